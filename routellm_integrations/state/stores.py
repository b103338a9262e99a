"""One way to open a state store, from a URL or an object (the package re-exports it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidStoreURL
from .base import StateStore
from .memory import MemoryStore

__all__ = ["open_store"]


def open_store(store: "StateStore | str | None" = None, **options: Any) -> StateStore:
    """A store from a URL (``memory://``, ``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
    ``redis://[:password@]host:port/db[?prefix=name]``, ``rediss://`` for TLS), a store
    object (returned as is) or ``None`` (a new in-memory store)."""
    if store is None:
        return MemoryStore(**options)
    if not isinstance(store, str):
        if isinstance(store, StateStore):
            return store
        raise TypeError(f"a state store must be a URL or a StateStore, got {type(store).__name__}")
    scheme = urlsplit(store).scheme
    if scheme == "memory":
        return MemoryStore(**options)
    if scheme == "sqlite":
        path = store[len("sqlite:///"):] if store.startswith("sqlite:///") else ""
        if not path:
            raise InvalidStoreURL(f"a SQLite store URL is sqlite:///path/to/file.db, got {store!r}")
        from .sqlite import SQLiteStore

        return SQLiteStore(Path(path), **options)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisStore

        return RedisStore(store, **options)
    from .redis import redact_url

    raise InvalidStoreURL(f"unknown state store URL {redact_url(store)!r}: use memory://, sqlite:///path or "
                          "redis://host:port/db")
