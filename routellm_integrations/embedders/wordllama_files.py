"""The WordLlama l2_supercat files this package ships, and the one command that makes them.

Why ship a copy: the default router needs only WordLlama's token table (16 MB, fp16) and
its tokenizer JSON, but installing the ``wordllama`` package pulls its Cython extensions
(15 MB) and the Hugging Face stack through ``tokenizers`` (~35 MB) into every install.
The copy is byte-for-byte the package's (sha256 below, checked on export and by a test),
so the vectors, and every router trained on them, are unchanged.

Re-create the files from the ``wordllama`` wheel (``pip install wordllama==0.4.0.post1``)::

    python -m routellm_integrations.embedders.wordllama_files
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from pathlib import Path

#: where the files live inside this package
FOLDER = Path(__file__).with_name("weights")
WEIGHTS = FOLDER / "wordllama_l2_supercat_256.safetensors"
TOKENIZER = FOLDER / "wordllama_l2_supercat_tokenizer.json"
#: the wheel they come from, and the files in it
SOURCE_VERSION = "0.4.0.post1"
SOURCES = {
    WEIGHTS: ("weights/l2_supercat_256.safetensors",
              "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5"),
    TOKENIZER: ("tokenizers/l2_supercat_tokenizer_config.json",
                "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68"),
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export(package_dir: Path | None = None) -> list[Path]:
    """Copy the two files out of an installed ``wordllama`` and check their digests."""
    if package_dir is None:
        spec = importlib.util.find_spec("wordllama")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"needs the wordllama package: pip install wordllama=={SOURCE_VERSION}")
        package_dir = Path(list(spec.submodule_search_locations)[0])
    FOLDER.mkdir(exist_ok=True)
    written = []
    for target, (relative, digest) in SOURCES.items():
        source = package_dir / relative
        if sha256(source) != digest:
            raise SystemExit(f"{source} is not the file of wordllama {SOURCE_VERSION} (sha256 differs)")
        shutil.copyfile(source, target)
        written.append(target)
    return written


if __name__ == "__main__":
    for path in export(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(path)
