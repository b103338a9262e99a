"""Where data is read from and where derived artefacts (embedding caches, exported
encoders) are written. Nothing here is ever written inside the package or the repo."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError

DATA_ENV = "ROUTELLM_DATA_DIR"
CACHE_ENV = "ROUTELLM_CACHE_DIR"


def default_data_dir() -> Path:
    """The shared data folder: ``$ROUTELLM_DATA_DIR``, else ``../shared/data`` seen from
    the working directory or from the project checkout this package lives in."""
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(f"{DATA_ENV}={env!r} is not a folder")
        return path
    candidates = [Path.cwd() / ".." / "shared" / "data",
                  Path(__file__).resolve().parents[1] / ".." / "shared" / "data"]
    for c in candidates:
        if (c / "README.md").is_file():
            return c.resolve()
    raise DataError("router data not found: pass --data-dir / data_dir=, or set "
                    f"{DATA_ENV} (looked in {', '.join(str(c) for c in candidates)})")


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    if data_dir is None:
        return default_data_dir()
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DataError(f"data folder {str(path)!r} does not exist")
    return path


def cache_dir(*parts: str) -> Path:
    """A per-user cache folder (``$ROUTELLM_CACHE_DIR`` or ``~/.cache/routellm-integrations``)."""
    base = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "routellm-integrations")
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def embedding_cache_path() -> Path:
    """The sqlite file where training and evaluation keep prompt embeddings between runs."""
    return cache_dir("embeddings") / "embeddings.sqlite"
