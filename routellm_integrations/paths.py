"""Where data is read from and where derived artefacts (embedding caches, exported
encoders) are written. Nothing here is ever written inside the package or the repo.

The data folder (``benchmarks/`` and ``train/``) does not ship with the package. It is
found from, in order: the ``data_dir`` argument (``--data-dir`` on the command line),
then ``$ROUTELLM_DATA_DIR``. Nothing is guessed from the working directory or from where
the package is installed; a relative path that *is* given is resolved against the
working directory at the time of the call, as any path would be.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError

DATA_ENV = "ROUTELLM_DATA_DIR"
CACHE_ENV = "ROUTELLM_CACHE_DIR"

HOW_TO_PASS = f"pass --data-dir DIR (data_dir=DIR from Python) or set {DATA_ENV}=DIR"


def _existing_folder(value: str | os.PathLike[str], given_as: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DataError(f"data folder {str(path)!r} (from {given_as}) {what}; {HOW_TO_PASS}")
    return path.resolve()


def default_data_dir() -> Path:
    """The data folder named by ``$ROUTELLM_DATA_DIR`` (absolute), or :class:`DataError`
    saying how to give one."""
    env = os.environ.get(DATA_ENV)
    if not env:
        raise DataError(f"no router data folder given: {HOW_TO_PASS} (the folder holding "
                        "benchmarks/ and train/)")
    return _existing_folder(env, f"${DATA_ENV}")


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """``data_dir`` as an absolute folder (``None``: :func:`default_data_dir`)."""
    if data_dir is None:
        return default_data_dir()
    return _existing_folder(data_dir, "data_dir")


def cache_dir(*parts: str) -> Path:
    """A per-user cache folder (``$ROUTELLM_CACHE_DIR`` or ``~/.cache/routellm-integrations``)."""
    base = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "routellm-integrations")
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def embedding_cache_path() -> Path:
    """The sqlite file where training and evaluation keep prompt embeddings between runs."""
    return cache_dir("embeddings") / "embeddings.sqlite"
