"""Opening one SQLite file from several processes at once (state store, label store,
embedding cache): the switch to WAL, which SQLite does not retry on its own."""

from __future__ import annotations

import sqlite3
import time


def enter_wal(db: sqlite3.Connection, timeout_s: float) -> None:
    """Switch a new connection's file to WAL, retrying while another process does the same.

    SQLite answers ``PRAGMA journal_mode=WAL`` with "database is locked" at once, without
    calling the busy handler, while a second connection is changing the mode of the same new
    file, so the second of two processes opening one new file would fail. WAL
    is persistent: once any process has switched the file, the first query sees it and
    nothing is retried."""
    deadline, pause = time.monotonic() + timeout_s, 0.005
    while True:
        try:
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not any(word in str(exc).lower() for word in ("locked", "busy")) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
