"""The write-ahead file: a billed call is never lost because its store was down.

When a call's settlement cannot reach its store (:class:`~routellm_integrations.errors.StoreUnavailableError`:
Redis stopped answering or refused the connection, a SQLite file locked past its busy
timeout, or a store that came back empty, :class:`~routellm_integrations.errors.StoreResetError`),
the call lifecycle writes what the settlement would have written to a local append-only
file, one JSON line per call: the reservation (scope, route, id), the cost, whether it
succeeded, and the ledger entry. Each such write is logged at WARNING on the
``routellm_integrations.state`` logger (call id, route, scope, cost, the store's URL with
any password removed; never a key) and counted (:func:`lost_writes`, for a metrics layer).

The pending lines are replayed into their store, oldest first, at start-up (when a store
is opened), after the next settlement that reached the store and on ``store.ping()``. A
replayed line is applied exactly once: the stores settle idempotently by reservation id
and write the ledger idempotently by call id, so a line replayed twice (a crash between
the store's write and the file's rewrite), or a settlement that did reach the server after
it timed out here, counts once. Lines a replay could not apply stay for the next one.

Where the file is (one file per store):

- the store's ``wal=`` option (``open_store(url, wal="path/pending.jsonl")``), else
- ``$ROUTELLM_WAL``: a folder; the file is ``<folder>/routellm-pending-<store hash>.jsonl``, else
- a SQLite store: next to its database, ``<file>.pending.jsonl``; a Redis store:
  ``$ROUTELLM_CACHE_DIR`` (default ``~/.cache/routellm-integrations``)``/wal/routellm-pending-<hash>.jsonl``.

Beside the file, ``<file>.epoch`` remembers the store's epoch marker this host last saw
(see ``StoreResetError``) where the folder was placed (``wal=``, ``$ROUTELLM_WAL``) or for
a SQLite store. A deployment sets ``$ROUTELLM_WAL`` to a local folder.

Every process on a host that settles into the same store shares the file (appends and the
replay hold an exclusive ``flock`` on ``<file>.lock``). Give each host a local disk path.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..budgets import Budget, Reservation
from ..errors import StoreUnavailableError

__all__ = ["WAL_ENV", "lost_writes", "pending", "replay", "replayed_writes", "stats", "wal_path", "write_ahead"]

WAL_ENV = "ROUTELLM_WAL"
log = logging.getLogger("routellm_integrations.state")

_lock = threading.Lock()
_counts = {"lost_writes": 0, "replayed_writes": 0, "unwritten": 0}
_replaying: set[str] = set()  # paths this process is replaying now (no re-entry from the store's own calls)


def lost_writes() -> int:
    """Settlements (or ledger writes) this process could not write to their store and
    wrote to a write-ahead file instead (they are not lost: they are replayed)."""
    with _lock:
        return _counts["lost_writes"]


def replayed_writes() -> int:
    """Write-ahead lines this process replayed into their store."""
    with _lock:
        return _counts["replayed_writes"]


def stats() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def _store_key(store: Any) -> str:
    return f"{getattr(store, 'url', '')}|{getattr(store, 'prefix', '')}"


def wal_path(store: Any) -> Path:
    """The write-ahead file of ``store`` (see the module's documentation for the order)."""
    given = getattr(store, "wal", None)
    if given:
        return Path(given)
    digest = hashlib.sha256(_store_key(store).encode()).hexdigest()[:16]
    folder = os.environ.get(WAL_ENV)
    if folder:
        return Path(folder) / f"routellm-pending-{digest}.jsonl"
    path = getattr(store, "path", None)
    if path is not None:
        return Path(f"{path}.pending.jsonl")
    from ..paths import CACHE_ENV

    base = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "routellm-integrations")
    return base / "wal" / f"routellm-pending-{digest}.jsonl"  # the folder is made on the first write


@contextmanager
def _locked(path: Path, blocking: bool = True) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def write_ahead(store: Any, *, reservation: Reservation | None, cost_usd: float | None, succeeded: bool,
                entry: Any, error: BaseException | None = None) -> Path:
    """Append one settlement that ``store`` could not take (``reservation`` None: a ledger
    entry alone) and log and count it. Returns the file's path."""
    path = wal_path(store)
    line = {"v": 1, "ts": time.time(), "store": getattr(store, "url", ""),
            "reservation": None if reservation is None else {"id": reservation.id, "scope": reservation.scope,
                                                             "route": reservation.route, "amount": reservation.amount},
            "cost_usd": cost_usd, "succeeded": bool(succeeded),
            "entry": None if entry is None else json.loads(entry.model_dump_json())}
    text = json.dumps(line, allow_nan=False) + "\n"
    with _lock:
        _counts["lost_writes"] += 1
    try:
        with _locked(path):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, text.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:  # the local disk too: the log line is the last record of the call
        with _lock:
            _counts["unwritten"] = _counts.get("unwritten", 0) + 1
        log.error("routellm: state store %s unavailable and the write-ahead file %s cannot be written (%s): "
                  "a billed call is recorded only here: %s", getattr(store, "url", "?"), path, exc, text.strip())
        return path
    call_id = getattr(entry, "call_id", None)
    log.warning("routellm: state store %s unavailable (%s): call %s (route %s, scope %s, cost $%s) written to the "
                "write-ahead file %s, to be replayed when the store answers", getattr(store, "url", "?"),
                type(error).__name__ if error is not None else "error", call_id,
                getattr(entry, "route", None) or (reservation.route if reservation else None),
                reservation.scope if reservation else getattr(entry, "scope", None),
                "unpriced" if cost_usd is None else f"{cost_usd:.6f}", path)
    return path


def _epoch_file(store: Any) -> Path:
    path = wal_path(store)
    return path.with_name(path.name + ".epoch")


def _remembers(store: Any) -> bool:
    """Epochs are remembered beside a write-ahead file a deployment placed (``wal=``,
    ``$ROUTELLM_WAL``) or beside a SQLite file; not in the per-user cache folder, where a
    later, unrelated server on a reused port would look like a store that lost its data."""
    return bool(getattr(store, "wal", None) or os.environ.get(WAL_ENV) or getattr(store, "path", None) is not None)


def remembered_epoch(store: Any) -> str | None:
    """The epoch marker this host last saw in ``store`` (kept beside its write-ahead file),
    so a process started after the store came back empty notices. None where nothing is
    remembered (a Redis store with neither ``wal=`` nor ``$ROUTELLM_WAL``: then only the
    processes that were running notice)."""
    if not _remembers(store):
        return None
    try:
        return _epoch_file(store).read_text().strip() or None
    except OSError:
        return None


def remember_epoch(store: Any, epoch: str) -> None:
    if not _remembers(store) or remembered_epoch(store) == epoch:
        return
    path = _epoch_file(store)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(epoch)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only disk: detection then rests on the processes that run
        log.warning("routellm: cannot remember the epoch of state store %s in %s: %s",
                    getattr(store, "url", "?"), path, exc)


def pending(store: Any) -> int:
    """Lines in ``store``'s write-ahead file not yet replayed."""
    try:
        with open(wal_path(store), "rb") as f:
            return sum(1 for raw in f if raw.strip())
    except FileNotFoundError:
        return 0


def has_pending(store: Any) -> bool:
    """Cheap (one ``stat``): whether the write-ahead file holds anything (a memory store
    never has one: it cannot be unavailable)."""
    if getattr(store, "url", None) == "memory://":
        return False
    try:
        return os.stat(wal_path(store)).st_size > 0
    except OSError:
        return False


def _apply(store: Any, line: dict[str, Any]) -> None:
    from .base import LedgerEntry

    entry = LedgerEntry.model_validate(line["entry"]) if line.get("entry") is not None else None
    r = line.get("reservation")
    if r is None:
        if entry is not None:
            store.record(entry)
        return
    reservation = Reservation(r["scope"], r["route"], float(r["amount"]), id=r["id"])
    # the budget's caps do not change what a settlement writes (only the state it reports)
    store.settle(Budget(), reservation, line.get("cost_usd"), succeeded=bool(line.get("succeeded")), entry=entry)


def replay(store: Any) -> int:
    """Apply ``store``'s pending write-ahead lines, oldest first; returns how many were
    applied. Stops at the first the store cannot take (the rest stay). Another process
    replaying the same file now: returns 0 at once."""
    path = wal_path(store)
    key = str(path)
    with _lock:
        if key in _replaying:
            return 0
        _replaying.add(key)
    try:
        if not has_pending(store):
            return 0
        with _locked(path, blocking=False) as got:
            if not got:
                return 0
            try:
                lines = [raw for raw in path.read_bytes().splitlines() if raw.strip()]
            except FileNotFoundError:
                return 0
            done = 0
            try:
                for raw in lines:
                    try:
                        line = json.loads(raw)
                    except ValueError:  # a torn last line (a crash mid-append): nothing to apply
                        log.warning("routellm: skipped an unreadable line of the write-ahead file %s", path)
                        done += 1
                        continue
                    try:
                        _apply(store, line)
                    except StoreUnavailableError:
                        raise
                    except (ValueError, KeyError, TypeError) as exc:  # never applicable: set aside, not dropped
                        log.error("routellm: a write-ahead line of %s cannot be applied (%s); moved to %s.rejected",
                                  path, type(exc).__name__, path)
                        with open(f"{path}.rejected", "ab") as f:
                            f.write(raw + b"\n")
                        done += 1
                        continue
                    done += 1
            except StoreUnavailableError as exc:
                log.warning("routellm: state store %s still unavailable (%s): %d write-ahead lines wait in %s",
                            getattr(store, "url", "?"), type(exc).__name__, len(lines) - done, path)
            rest = lines[done:]
            if rest:
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(b"".join(raw + b"\n" for raw in rest))
                os.replace(tmp, path)
            else:
                path.unlink(missing_ok=True)
            applied = done
        with _lock:
            _counts["replayed_writes"] += applied
        if applied:
            log.warning("routellm: replayed %d write-ahead lines into state store %s", applied,
                        getattr(store, "url", "?"))
        return applied
    finally:
        with _lock:
            _replaying.discard(key)
