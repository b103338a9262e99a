"""Embedding cache: never embed the same text twice in the same space.

Why: training and evaluation re-runs embed the same tens of thousands of prompts; on two
cores that is minutes each time. Keys are ``sha256(text)`` inside the inner embedder's
``name``, so vectors from another model or other numerics (e.g. int8) are never served.
The disk store is sqlite (stdlib) holding raw float32 bytes: no pickle, safe to share.
A store sqlite reports as corrupt (not a database, a malformed or truncated image) is only
a cache: it is moved aside to ``<name>.corrupt-<time>`` with a warning and a fresh one is
started, when opened or as soon as a read or write finds the damage.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import EmbedderError
from ..sqlite_wal import enter_wal
from ._common import validate_texts
from .base import Embedder

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    space TEXT NOT NULL,
    key   BLOB NOT NULL,
    dim   INTEGER NOT NULL,
    vec   BLOB NOT NULL,
    PRIMARY KEY (space, key)
) WITHOUT ROWID
"""
_SQL_VARS = 500  # below sqlite's default 999 host-parameter limit


#: sqlite's primary result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB
_CORRUPT_CODES = {11, 26}


def _is_corrupt(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11: the extended code
    if isinstance(code, int):
        return code & 0xFF in _CORRUPT_CODES
    msg = str(exc).lower()
    return "malformed" in msg or "not a database" in msg


def text_key(text: str) -> bytes:
    # surrogatepass: lone surrogates (seen in scraped data) still hash instead of raising
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class CachedEmbedder:
    """Wraps any :class:`Embedder`; same ``name`` and ``dim``, so it is a drop-in.

    Only texts missing from both the memory and the disk store reach the inner embedder,
    in one call, each distinct text once; output order matches the input. The memory
    tier is an LRU bounded by ``max_items`` so a long-running router does not grow
    without limit. Safe to share between threads.
    """

    def __init__(self, inner: Embedder, path: str | os.PathLike[str] | None = None,
                 max_items: int = 50_000) -> None:
        if not (hasattr(inner, "embed") and hasattr(inner, "name") and hasattr(inner, "dim")):
            raise EmbedderError(f"CachedEmbedder needs an Embedder, got {type(inner).__name__}")
        self.inner = inner
        self.max_items = int(max_items)
        self.path = Path(path) if path is not None else None
        self._mem: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._connect()
            except sqlite3.Error as exc:
                self._db = self._rebuild(exc, "cannot open")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        try:
            enter_wal(db, 30)
            db.execute(_SCHEMA)
            db.commit()
        except BaseException:
            db.close()
            raise
        return db

    def _rebuild(self, exc: sqlite3.Error, doing: str) -> sqlite3.Connection:
        """A fresh store in place of a corrupt one (moved aside, with a warning); any
        other sqlite failure (locked, read-only, disk full) is an :class:`EmbedderError`."""
        assert self.path is not None
        if not _is_corrupt(exc):
            raise EmbedderError(f"{doing} embedding cache {str(self.path)!r}: {exc}") from exc
        if self._db is not None:
            self._db.close()
            self._db = None
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):  # sqlite's sidecars belong to the bad file
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                os.replace(src, f"{aside}{suffix}")
        warnings.warn(f"embedding cache {str(self.path)!r} is corrupt ({exc}); moved it to {str(aside)!r} "
                      "and started a fresh cache (its vectors will be re-embedded)", RuntimeWarning, stacklevel=3)
        try:
            return self._connect()
        except sqlite3.Error as again:
            raise EmbedderError(f"cannot start a fresh embedding cache at {str(self.path)!r}: {again}") from again

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.inner!r}, path={str(self.path) if self.path else None!r})"

    def __len__(self) -> int:
        return len(self._mem)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> "CachedEmbedder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = validate_texts(texts)
        keys = [text_key(t) for t in items]
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for k in keys:
                v = self._mem.get(k)
                if v is not None:
                    self._mem.move_to_end(k)
                    found[k] = v
            missing = list(dict.fromkeys(k for k in keys if k not in found))
            if missing and self._db is not None:
                for k, v in self._read_db(missing).items():
                    found[k] = v
                    self._remember(k, v)
        todo = list(dict.fromkeys(k for k in keys if k not in found))  # distinct, in order
        if todo:
            first_text = {}
            for k, t in zip(keys, items):
                first_text.setdefault(k, t)
            vecs = np.asarray(self.inner.embed([first_text[k] for k in todo]), dtype=np.float32)
            if vecs.shape != (len(todo), self.dim):
                raise EmbedderError(f"{self.name}: inner embedder returned shape {vecs.shape}, "
                                    f"expected {(len(todo), self.dim)}")
            fresh = {k: vecs[i].copy() for i, k in enumerate(todo)}
            found.update(fresh)
            with self._lock:
                for k, v in fresh.items():
                    self._remember(k, v)
                if self._db is not None:
                    self._write_db(fresh)
        with self._lock:
            self.hits += len(keys) - len(todo)
            self.misses += len(todo)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def count_cached(self, texts: Sequence[str]) -> int:
        """How many distinct texts of ``texts`` the memory or disk store already holds
        (what an ``embed`` of them would not send to the inner embedder); embeds nothing."""
        keys = list(dict.fromkeys(text_key(t) for t in validate_texts(texts)))
        with self._lock:
            in_mem = {k for k in keys if k in self._mem}
            rest = [k for k in keys if k not in in_mem]
            if not rest or self._db is None:
                return len(in_mem)
            on_disk = 0
            try:
                for start in range(0, len(rest), _SQL_VARS):
                    chunk = rest[start:start + _SQL_VARS]
                    marks = ",".join("?" * len(chunk))
                    on_disk += self._db.execute(
                        f"SELECT COUNT(*) FROM embeddings WHERE space = ? AND dim = ? AND key IN ({marks})",
                        [self.name, self.dim, *chunk]).fetchone()[0]
            except sqlite3.Error as exc:
                self._db = self._rebuild(exc, "cannot read")
                on_disk = 0
        return len(in_mem) + int(on_disk)

    def _remember(self, key: bytes, vec: np.ndarray) -> None:
        self._mem[key] = vec
        self._mem.move_to_end(key)
        while len(self._mem) > self.max_items:
            self._mem.popitem(last=False)

    def _read_db(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        assert self._db is not None
        out: dict[bytes, np.ndarray] = {}
        try:
            for start in range(0, len(keys), _SQL_VARS):
                chunk = keys[start:start + _SQL_VARS]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, dim, vec FROM embeddings WHERE space = ? AND key IN ({marks})",
                    [self.name, *chunk]).fetchall()
                for key, dim, blob in rows:
                    if dim == self.dim and len(blob) == 4 * dim:
                        out[bytes(key)] = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        except sqlite3.Error as exc:
            self._db = self._rebuild(exc, "cannot read")
            return {}  # the fresh store holds nothing: every key is a miss
        return out

    def _write_db(self, fresh: dict[bytes, np.ndarray]) -> None:
        space, dim = self.name, self.dim
        rows = [(space, k, dim, v.astype("<f4").tobytes()) for k, v in fresh.items()]
        for attempt in range(2):  # once more on a fresh store if this one turns out corrupt
            assert self._db is not None
            try:
                with self._db:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO embeddings (space, key, dim, vec) VALUES (?, ?, ?, ?)", rows)
                return
            except sqlite3.Error as exc:
                if attempt or not _is_corrupt(exc):
                    raise EmbedderError(f"cannot write embedding cache {str(self.path)!r}: {exc}") from exc
                self._db = self._rebuild(exc, "cannot write")
