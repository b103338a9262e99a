"""Every SQLite file the library opens (state store, label store, embedding cache) may be
opened by several processes at once, e.g. server workers starting together. SQLite refuses
the switch to WAL at once, without its busy handler, while another connection holds the
write lock; each opener waits for the lock instead of failing."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from fakes import HashingEmbedder

from routellm_integrations.embedders.cache import CachedEmbedder
from routellm_integrations.labels.store import LabelStore
from routellm_integrations.sqlite_wal import enter_wal
from routellm_integrations.state import open_store

OPENERS = {
    "state store": lambda path: open_store(f"sqlite:///{path}", timeout_s=5),
    "label store": LabelStore,
    "embedding cache": lambda path: CachedEmbedder(HashingEmbedder(), path),
}


def _hold_write_lock(path, seconds):
    """Another process half way through its own set-up of the same new file."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE other_writer (a)")
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(seconds, lambda: holder.execute("ROLLBACK"))
    release.start()
    return holder, release


@pytest.mark.parametrize("opener", list(OPENERS))
def test_each_file_opens_once_the_other_writer_lets_go(opener, tmp_path):
    path = tmp_path / "shared.db"
    holder, release = _hold_write_lock(path, 0.3)
    try:
        OPENERS[opener](path)
    finally:
        release.join()
        holder.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_wait_is_bounded_and_other_errors_are_not_retried(tmp_path):
    path = tmp_path / "held.db"
    holder, release = _hold_write_lock(path, 5.0)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            enter_wal(sqlite3.connect(path, isolation_level=None), 0.2)
    finally:
        release.cancel()
        holder.execute("ROLLBACK")
        holder.close()
    closed = sqlite3.connect(tmp_path / "other.db")
    closed.close()
    with pytest.raises(sqlite3.ProgrammingError):
        enter_wal(closed, 5.0)
