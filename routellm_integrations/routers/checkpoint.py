"""A router checkpoint on disk: ``config.json`` + safetensors file(s) + a ``README.md`` card.

One module reads and writes every router's folder, so the rules hold for all of them:

* **Reading is defensive.** A folder may come from anywhere (a download, a colleague, an
  attacker), so nothing is opened before it is known to be a regular file of a sane size
  (a FIFO would block ``open`` for ever; a symlink to ``/dev/zero`` would fill memory),
  JSON nesting is bounded, and every field the loaders rely on is type-checked. Anything
  wrong is a :class:`~routellm_integrations.errors.CheckpointError` naming the file and
  the field, never a raw ``KeyError`` or ``TypeError`` from deep inside a router.
* **Writing is atomic.** A checkpoint is written into a temporary sibling folder and
  renamed into place, ``config.json`` last: a crash mid-save leaves the old checkpoint
  or none, never tensors of one training run beside the config of another.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..embedders.base import Embedder
from ..errors import CheckpointError

CONFIG_FILE = "config.json"
CARD_FILE = "README.md"

#: a config holds names, hyper-parameters and the model card's figures: tens of kB
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: the shipped tensors are a few MB; an sw_ranking index over a whole pool can reach 1 GB
MAX_TENSOR_BYTES = 4 * 1024 ** 3
#: deeper JSON than any config needs; Python's parser would otherwise recurse until it fails
MAX_JSON_DEPTH = 64


# -- files ------------------------------------------------------------------------------------
def regular_file(path: Path, max_bytes: int) -> int:
    """The size of ``path`` once it is known to be a regular file of at most ``max_bytes``
    (symlinks are followed, so a link to a device is refused as the device)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {str(path.parent)!r} has no {path.name}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise CheckpointError(f"{path} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) or
                stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise CheckpointError(f"{path} is {kind}; a checkpoint file must be a regular file")
    if st.st_size > max_bytes:
        raise CheckpointError(f"{path} is {st.st_size:,} bytes, over the {max_bytes:,}-byte limit for this file")
    return int(st.st_size)


def _depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (a linear scan, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def read_json(path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """A small JSON file, parsed safely."""
    regular_file(path, max_bytes)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path} is not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    if _depth(text) > MAX_JSON_DEPTH:
        raise CheckpointError(f"{path} nests deeper than {MAX_JSON_DEPTH} levels; no router config does")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from None


def read_tensors(path: Path, max_bytes: int = MAX_TENSOR_BYTES) -> dict[str, np.ndarray]:
    """A safetensors file as numpy arrays, or :class:`CheckpointError` naming what is wrong."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    regular_file(path, max_bytes)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"{path} is corrupt or not a safetensors file: {exc}") from None
    for name, value in tensors.items():
        if value.dtype.kind not in "fiu":
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {value.dtype}, not a number type")
    return tensors


# -- configs ----------------------------------------------------------------------------------
def _names(value: Any, key: str, where: Path, *, unique: bool) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise CheckpointError(f"{where}: {key!r} must be a list of non-empty names, got {_show(value)}")
    if unique and len(set(value)) != len(value):
        raise CheckpointError(f"{where}: {key!r} lists a name twice")
    return list(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def positive_int(config: Mapping[str, Any], key: str, where: Path | str, default: int | None = None) -> int:
    """``config[key]`` (``default`` when absent and one is given) as a positive integer."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise CheckpointError(f"{where}: {key!r} must be a positive integer, got {_show(value)}")
    return value


def optional_number(config: Mapping[str, Any], key: str, where: Path | str, default: float, *,
                    minimum: float | None = None) -> float:
    """A hyper-parameter read back from a config: a real, finite number (not a string)."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise CheckpointError(f"{where}: {key!r} must be a finite number, got {_show(value)}")
    if minimum is not None and value < minimum:
        raise CheckpointError(f"{where}: {key!r} must be at least {minimum}, got {value}")
    return float(value)


def read_config(folder: Path, expected_router: str, *,
                required: Sequence[str] = ("models", "features", "embedder", "embedding_dim",
                                           "default_strong_model", "default_weak_model")) -> dict[str, Any]:
    """``folder/config.json`` of a ``expected_router`` checkpoint, with the common fields
    checked: ``models`` and ``features`` lists of names, ``embedding_dim`` a positive
    integer, ``embedder``/``embedder_key`` strings, the default pair among the models."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {str(folder)!r} does not exist")
    where = folder / CONFIG_FILE
    config = read_json(where)
    if not isinstance(config, dict):
        raise CheckpointError(f"{where} must hold a JSON object, got {type(config).__name__}")
    router = config.get("router")
    if router != expected_router:
        raise CheckpointError(f"{where} is not a {expected_router!r} checkpoint (router={_show(router)})")
    for key in required:
        if key not in config:
            raise CheckpointError(f"{where} lacks the key {key!r}")
    if "models" in config:
        _names(config["models"], "models", where, unique=True)
    if "features" in config and config["features"] != []:  # a router may use no structural feature
        from .features import FEATURES

        unknown = [f for f in _names(config["features"], "features", where, unique=True) if f not in FEATURES]
        if unknown:
            raise CheckpointError(f"{where}: unknown prompt feature(s) {unknown}; this version computes "
                                  f"{sorted(FEATURES)}")
    if "embedding_dim" in config:
        positive_int(config, "embedding_dim", where)
    for key in ("embedder", "embedder_key"):
        if key in config and (not isinstance(config[key], str) or not config[key].strip()):
            raise CheckpointError(f"{where}: {key!r} must be an embedder name, got {_show(config[key])}")
    for key in ("default_strong_model", "default_weak_model"):
        if key in config:
            value = config[key]
            if not isinstance(value, str) or not value.strip():
                raise CheckpointError(f"{where}: {key!r} must be a model name, got {_show(value)}")
            if "models" in config and value not in config["models"]:
                raise CheckpointError(f"{where}: {key!r} is {value!r}, which is not among its models")
    return config


def resolve_embedder(embedder: Embedder | str | None, config: Mapping[str, Any]) -> Embedder:
    """The embedder a checkpoint was trained with (by its recorded name), or the one given,
    checked against the recorded space and width: vectors from another space would load
    and score without error, and wrong."""
    if embedder is None or isinstance(embedder, str):
        from ..embedders import get_embedder

        embedder = get_embedder(embedder or config.get("embedder_key", config["embedder"]))
    elif not (hasattr(embedder, "embed") and isinstance(getattr(embedder, "name", None), str)):
        raise CheckpointError(f"embedder must be an embedder name or an object with .name and .embed(), "
                              f"got {type(embedder).__name__}")
    if embedder.name != config["embedder"]:
        raise CheckpointError(f"checkpoint was trained on {config['embedder']!r} embeddings; "
                              f"the embedder given produces {embedder.name!r}")
    if int(embedder.dim) != int(config["embedding_dim"]):
        raise CheckpointError(f"embedder dim {embedder.dim} != checkpoint embedding_dim {config['embedding_dim']}")
    return embedder


# -- writing ----------------------------------------------------------------------------------
def save_checkpoint(folder: str | os.PathLike[str], config: Mapping[str, Any], *,
                    tensors: Mapping[str, tuple[Mapping[str, np.ndarray], Mapping[str, str]]] | None = None,
                    card: str | None = None, populate: Callable[[Path], None] | None = None) -> Path:
    """Write a checkpoint folder atomically.

    ``tensors`` maps a file name to ``(arrays, safetensors metadata)``; ``populate(tmp)``
    may add more (an adapted router copies its base folder in). Everything goes to a
    temporary sibling, ``config.json`` last, then replaces ``folder`` by renames. An
    existing ``folder`` is replaced only if it is empty or a checkpoint (has a
    ``config.json``): saving over an unrelated folder is refused, not a silent deletion.
    """
    from safetensors.numpy import save_file

    out = Path(folder)
    if out.exists():
        if not out.is_dir():
            raise CheckpointError(f"cannot save a checkpoint to {str(out)!r}: it is a file")
        if any(out.iterdir()) and not (out / CONFIG_FILE).is_file():
            raise CheckpointError(f"{str(out)!r} is not empty and is not a checkpoint; refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.saving-", dir=out.parent))
    try:
        if populate is not None:
            populate(tmp)
        for name, (arrays, metadata) in (tensors or {}).items():
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / name),
                      metadata=dict(metadata))
        if card is not None:
            (tmp / CARD_FILE).write_text(card)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        for path in tmp.iterdir():
            if path.is_file():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint is shared like any folder
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rmdir(old)
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
