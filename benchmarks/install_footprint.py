"""What each way of installing the package puts on disk.

Builds the wheel (``pip wheel --no-deps``), then installs it into one fresh venv per user
path and prints, per path: the size of its site-packages (MB, and MB added over the
``baseline`` path: ``langchain-openai`` alone, what a LangChain user already has), the
install time, the number of distributions, and whether torch, transformers, onnxruntime,
matplotlib or sentence-transformers got installed.

    python benchmarks/install_footprint.py                       # the working tree
    python benchmarks/install_footprint.py --ref HEAD~3          # the package as a commit had it
    python benchmarks/install_footprint.py --paths core langchain --json out.json

Every venv installs with ``torch==2.13.0`` as a constraint (the CPU build the Makefile
pins): where a path pulls torch at all, it gets the same build as ``make setup``, not a
multi-GB CUDA one. pip's cache makes a second run fast; the first downloads everything.
Install time is wall time of one ``pip install`` (warm or cold cache: compare runs alike).

The goal it checks (issue 23): the ``langchain`` path pulls none of torch, transformers,
onnxruntime, matplotlib; ``--ref`` of a commit before the lean install shows the old state
(~1.7 GB over ``langchain-openai`` alone).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: user path -> what it installs ("{wheel}" is the built wheel's path)
PATHS: dict[str, list[str]] = {
    "baseline": ["langchain-openai"],
    "core": ["{wheel}"],
    "langchain": ["{wheel}[langchain]"],
    "llamaindex": ["{wheel}[llamaindex]"],
    "server": ["{wheel}[server]"],
    "all": ["{wheel}[all]"],
}
DEFAULT_PATHS = ("baseline", "core", "langchain", "llamaindex", "server")
#: distributions nobody routing with the default router should have to install
HEAVY = ("torch", "transformers", "onnxruntime", "matplotlib", "sentence-transformers")
TORCH_PIN = "torch==2.13.0"


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kw)


def source_tree(ref: str | None, tmp: Path) -> Path:
    """The working tree, or ``ref``'s tree exported with ``git archive`` into ``tmp``."""
    if ref is None:
        return ROOT
    out = tmp / "src"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def build_wheel(src: Path, tmp: Path) -> Path:
    dist = tmp / "dist"
    # a copy, so a build/ or egg-info left by the build never lands in the caller's tree
    work = tmp / "build-src"
    shutil.copytree(src, work, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info",
                                                            "__pycache__", ".pytest_cache", "dist"))
    # this interpreter's setuptools when it has one (no download); else pip's isolated build
    isolation = ["--no-build-isolation"] if _has_setuptools() else []
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation, "-w", str(dist), str(work)])
    wheels = sorted(dist.glob("routellm_integrations-*.whl"))
    if not wheels:
        raise SystemExit(f"no wheel built in {dist}")
    return wheels[-1]


def _has_setuptools() -> bool:
    """Whether this interpreter has the setuptools pyproject.toml's build-system asks for."""
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages"))


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                total += os.lstat(p).st_blocks * 512  # on disk, as du counts it
    return total


def distributions(venv: Path) -> set[str]:
    names = set()
    for info in site_packages(venv).glob("*.dist-info"):
        names.add(info.name.split("-")[0].lower().replace("_", "-"))
    return names


def measure(name: str, specs: list[str], wheel: Path, tmp: Path, constraints: Path) -> dict:
    venv = tmp / f"venv-{name}"
    run([sys.executable, "-m", "venv", str(venv)])
    py = str(venv / "bin" / "python")
    before = tree_bytes(site_packages(venv))  # pip and setuptools of the bare venv
    seed = distributions(venv)
    args = [s.format(wheel=wheel) for s in specs]
    t0 = time.perf_counter()
    run([py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", str(constraints), *args])
    seconds = time.perf_counter() - t0
    dists = distributions(venv) - seed
    return {"path": name, "install": " ".join(s.replace(str(wheel), "<wheel>") for s in specs),
            "mb": (tree_bytes(site_packages(venv)) - before) / 1e6, "seconds": seconds,
            "distributions": len(dists), "heavy": {h: h in dists for h in HEAVY}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paths", nargs="+", default=list(DEFAULT_PATHS), choices=sorted(PATHS))
    ap.add_argument("--ref", default=None, help="a git ref to build instead of the working tree")
    ap.add_argument("--wheel", type=Path, default=None, help="measure this wheel instead of building one")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="routellm-footprint-"))
    try:
        constraints = tmp / "constraints.txt"
        constraints.write_text(TORCH_PIN + "\n")
        wheel = args.wheel.resolve() if args.wheel else build_wheel(source_tree(args.ref, tmp), tmp)
        print(f"wheel: {wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB)"
              + (f", built from {args.ref}" if args.ref else ""), file=sys.stderr, flush=True)
        rows = []
        for name in args.paths:
            print(f"installing {name} ...", file=sys.stderr, flush=True)
            rows.append(measure(name, PATHS[name], wheel, tmp, constraints))
            shutil.rmtree(tmp / f"venv-{name}", ignore_errors=True)  # disk: the old state is GBs per venv
        base = next((r["mb"] for r in rows if r["path"] == "baseline"), None)
        head = f"{'path':11} {'site-packages MB':>16} {'+ over baseline':>15} {'install s':>9} {'dists':>5}  " + \
            " ".join(f"{h:>11}" if h != "sentence-transformers" else "sent-transf" for h in HEAVY)
        print(head)
        for r in rows:
            extra = "" if base is None or r["path"] == "baseline" else f"{r['mb'] - base:+.0f}"
            print(f"{r['path']:11} {r['mb']:16.0f} {extra:>15} {r['seconds']:9.1f} {r['distributions']:5d}  "
                  + " ".join(f"{'yes' if r['heavy'][h] else 'no':>11}" for h in HEAVY))
        if args.json:
            args.json.write_text(json.dumps({"wheel": wheel.name, "ref": args.ref, "rows": rows}, indent=1))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
