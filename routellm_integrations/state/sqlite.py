"""Routing state in a SQLite file: survives restarts, shared by the processes of one host.

Every reserve and settle is one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock), so
admission is atomic across processes; WAL mode lets readers (usage queries) run beside
them. A transaction that committed is on disk when ``kill -9`` strikes (WAL with
``synchronous=NORMAL`` loses nothing on a process crash; only an OS crash could drop the
last transactions, and ``synchronous="FULL"`` closes that too). Reservations carry a lease
(``lease_s``): a process that died leaves reservations the next admission in that scope
reclaims once they expire.

Faults (issue 25):

- **bounded waits**: a connection waits at most ``timeout_s`` (default 10 s) for another
  process's write lock; a lock held longer, a file that cannot be opened or a disk error
  raise :class:`~routellm_integrations.errors.StoreUnavailableError` naming the file.
- **a file that comes back empty**: the first store to open a file writes an epoch marker
  (table ``meta``); a store that joined an epoch and finds the marker gone or replaced (the
  file deleted and re-created, seen by its inode, even under a running process) raises :class:`~routellm_integrations.errors.StoreResetError`
  from budget calls until ``acknowledge_reset()``; the epoch this host last saw is kept
  beside the write-ahead file, so a restarted process notices too.
- **dead processes**: each reservation names its host, pid and the pid's start time; at
  start-up (and before a refusal) reservations of processes of this host that are no
  longer alive are deleted at once, without waiting for their lease.
- **online rows**: at most ``max_online`` (default 1,000) ``save_online`` keys are kept,
  the least recently saved dropped first.
- **idempotent settlement**: a reservation id is settled once (table ``settled``), so the
  write-ahead replay (:mod:`.wal`) of a settlement that did reach the file counts once.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ..budgets import Budget, BudgetState, ScopeTotals, admit, refusal, state_of
from ..decision import Route
from ..errors import BudgetExceeded, StoreResetError, StoreUnavailableError
from ..costs import check_usd
from ..sqlite_wal import enter_wal
from .base import DEFAULT_LEASE_S, LedgerEntry, Reservation, UsageQuery, UsageReport

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_scopes (
    scope TEXT PRIMARY KEY, spent REAL NOT NULL DEFAULT 0, strong_calls INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, route TEXT NOT NULL, amount REAL NOT NULL,
    expires_at REAL NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL DEFAULT '',
    started INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settled (id TEXT PRIMARY KEY, ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS settled_ts ON settled (ts);
CREATE INDEX IF NOT EXISTS reservations_scope ON reservations (scope);
CREATE TABLE IF NOT EXISTS ledger (
    call_id TEXT PRIMARY KEY, ts REAL NOT NULL, scope TEXT, api_key TEXT, router TEXT, route TEXT,
    model TEXT NOT NULL, provider TEXT, status TEXT NOT NULL, input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,
    cost_usd REAL, strong_cost_usd REAL, estimated INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_ts ON ledger (ts);
CREATE INDEX IF NOT EXISTS ledger_api_key ON ledger (api_key, ts);
CREATE INDEX IF NOT EXISTS ledger_scope ON ledger (scope, ts);
CREATE TABLE IF NOT EXISTS online (key TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS online_updated ON online (updated);
"""
#: settled reservation ids are remembered this long (a write-ahead line older than this
#: replays as a new settlement)
SETTLED_KEEP_S = 30 * 86400.0
DEFAULT_MAX_ONLINE = 1_000
_HOST = socket.gethostname()


def _proc_start(pid: int) -> int:
    """The pid's start time in clock ticks since boot (Linux ``/proc``), 0 where unknown:
    tells a live process from a new one that reused a dead one's pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def _ino(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _alive(pid: int, started: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not (started and _proc_start(pid) not in (0, started))


_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "readonly", "no such table", "malformed",
                "not a database", "disk is full", "cannot operate on a closed")
_LEDGER_FIELDS = tuple(LedgerEntry.model_fields)


class SQLiteStore:
    """``SQLiteStore("routing.sqlite")``, or ``open_store("sqlite:///routing.sqlite")``.

    One connection per thread; safe for many threads and processes over one file (on a
    local disk: SQLite's locking is not reliable on network file systems)."""

    def __init__(self, path: str | os.PathLike[str], *, lease_s: float = DEFAULT_LEASE_S,
                 synchronous: Literal["NORMAL", "FULL"] = "NORMAL", timeout_s: float = 10.0,
                 max_online: int = DEFAULT_MAX_ONLINE, wal: str | os.PathLike[str] | None = None) -> None:
        if not (isinstance(lease_s, (int, float)) and math.isfinite(lease_s) and lease_s > 0):
            raise ValueError(f"lease_s must be a positive number of seconds, got {lease_s!r}")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite:///{self.path}"
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        if int(max_online) < 1:
            raise ValueError("max_online must be at least 1")
        self.lease_s, self.synchronous, self.timeout_s = float(lease_s), synchronous, float(timeout_s)
        self.max_online = int(max_online)
        self.wal = wal
        self.epoch: str | None = None
        self.was_reset = False
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._pid, self._started = os.getpid(), _proc_start(os.getpid())
        self._settles = 0
        with self._guard():
            db = self._db()
            db.executescript(_SCHEMA)  # idempotent; executescript commits on its own
            cols = {row[1] for row in db.execute("PRAGMA table_info(reservations)")}
            for col, decl in (("host", "TEXT NOT NULL DEFAULT ''"), ("started", "INTEGER NOT NULL DEFAULT 0")):
                if col not in cols:
                    try:
                        db.execute(f"ALTER TABLE reservations ADD COLUMN {col} {decl}")
                    except sqlite3.OperationalError as exc:  # another process added it first
                        if "duplicate column" not in str(exc):
                            raise
            self._join_epoch()
        self._ready = True
        from .wal import replay

        try:
            replay(self)  # start-up: settlements an earlier run could not write
        except StoreUnavailableError:
            pass

    # -- faults ------------------------------------------------------------------------
    class _Guard:
        def __init__(self, store: "SQLiteStore") -> None:
            self.store = store

        def __enter__(self) -> None:
            return None

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
            if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError | sqlite3.ProgrammingError) and \
                    any(word in str(exc).lower() for word in _UNAVAILABLE):
                raise StoreUnavailableError(f"state store {self.store.url} unavailable: {exc} (waited up to "
                                            f"{self.store.timeout_s:g} s)", self.store.url) from exc
            return False

    def _guard(self) -> "SQLiteStore._Guard":
        return SQLiteStore._Guard(self)

    def _join_epoch(self) -> None:
        """Adopt the file's epoch marker (writing one on a new file), or notice that a file
        this host used before came back without it."""
        from .wal import remember_epoch, remembered_epoch

        db = self._db()
        known = remembered_epoch(self)
        with self._tx() as tx:
            cur = self._meta(tx, "epoch")
            if cur is None and known is None:
                cur = uuid.uuid4().hex
                tx.execute("INSERT INTO meta VALUES ('epoch', ?)", (cur,))
        if cur is not None and (known is None or known == cur or cur == self._meta(db, "acked")):
            self.epoch, self.was_reset = cur, False
            remember_epoch(self, cur)
        else:
            self.epoch, self.was_reset = known, True

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _check_epoch(self, db: sqlite3.Connection) -> None:
        cur = self._meta(db, "epoch")
        if cur is not None and cur == self.epoch:
            return
        if cur is not None and cur == self._meta(db, "acked"):  # an operator acknowledged a reset
            from .wal import remember_epoch

            self.epoch, self.was_reset = cur, False
            remember_epoch(self, cur)
            return
        self.was_reset = True
        raise StoreResetError(f"state store {self.url} came back empty: its epoch marker is "
                              f"{'gone' if cur is None else 'replaced'}, so its budgets would restart from zero; "
                              "budget calls are refused until an operator calls store.acknowledge_reset()", self.url)

    def acknowledge_reset(self) -> str:
        """Accept the store as it is now (its budgets restart from what it holds): writes
        the epoch marker again where it is gone and marks it acknowledged, so every process
        on this store resumes. Then replays pending write-ahead lines. Returns the epoch."""
        from .wal import remember_epoch, replay

        with self._guard(), self._tx() as db:
            cur = self._meta(db, "epoch")
            if cur is None:
                cur = uuid.uuid4().hex
                db.execute("INSERT INTO meta VALUES ('epoch', ?)", (cur,))
            db.execute("INSERT INTO meta VALUES ('acked', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       (cur,))
        self.epoch, self.was_reset = cur, False
        remember_epoch(self, cur)
        replay(self)
        return cur

    def ping(self) -> None:
        """One trivial query (and the epoch check): :class:`StoreUnavailableError` when the
        file cannot answer within ``timeout_s``, :class:`StoreResetError` after a reset.
        Replays pending write-ahead lines once it answers."""
        with self._guard():
            db = self._db()
            db.execute("SELECT 1").fetchone()
            self._check_epoch(db)
        from .wal import has_pending, replay

        if has_pending(self):
            replay(self)

    def reclaim_dead(self) -> int:
        """Delete the reservations of processes of this host that are no longer alive (a
        ``kill -9`` in flight), in every scope; returns how many. Every admission does this
        for its own scope first; a server calls this at start-up to free the whole file at
        once. Other hosts' reservations expire with their lease."""
        with self._guard(), self._tx() as db:
            return self._reclaim_dead(db, None)

    def _reclaim_dead(self, db: sqlite3.Connection, scope: str | None) -> int:
        where, args = ("host = ?", [_HOST]) if scope is None else ("scope = ? AND host = ?", [scope, _HOST])
        owners = db.execute(f"SELECT DISTINCT pid, started FROM reservations WHERE {where}", args).fetchall()
        n = 0
        for pid, started in owners:
            if (pid == self._pid and started in (0, self._started)) or _alive(pid, started):
                continue
            n += db.execute(f"DELETE FROM reservations WHERE {where} AND pid = ? AND started = ?",
                            [*args, pid, started]).rowcount
        return n

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- connections ---------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is not None and getattr(self._local, "ino", None) != _ino(self.path):
            # the file was deleted or replaced under this connection: writing on would go to
            # a file nobody reads. Reconnect; the new file's epoch check then refuses.
            with self._conns_lock:
                self._conns = [c for c in self._conns if c is not db]
            try:
                db.close()
            except sqlite3.Error:
                pass
            db = self._local.db = None
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False)
            enter_wal(db, self.timeout_s)
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            self._local.db, self._local.ino = db, _ino(self.path)
            with self._conns_lock:
                self._conns.append(db)
            if getattr(self, "_ready", False):
                db.executescript(_SCHEMA)  # a file re-created under us: its tables (without the marker)
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            if exc_type is not None:
                self.db.execute("ROLLBACK")
                return
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error:  # busy past the timeout: leave no transaction open on this connection
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    def _tx(self) -> "SQLiteStore._Tx":
        return SQLiteStore._Tx(self._db())

    # -- budgets ---------------------------------------------------------------------------
    def _totals(self, db: sqlite3.Connection, scope: str) -> ScopeTotals:
        """The scope's spend and its live reservations (an expired lease holds nothing)."""
        row = db.execute("SELECT spent, strong_calls FROM budget_scopes WHERE scope = ?", (scope,)).fetchone()
        live = db.execute("SELECT COALESCE(SUM(amount), 0), COUNT(*), COALESCE(SUM(route = 'strong'), 0) "
                          "FROM reservations WHERE scope = ? AND expires_at >= ?", (scope, time.time())).fetchone()
        spent, strong = (row if row else (0.0, 0))
        in_flight = int(live[1])
        return ScopeTotals(spent=float(spent), reserved=float(live[0]) if in_flight else 0.0,
                           strong_calls=int(strong), strong_in_flight=int(live[2]), in_flight=in_flight)

    def reserve(self, budget: Budget, scope: str, route: Route,
                bounds: Mapping[str, float] | None) -> tuple[Reservation, BudgetState]:
        now = time.time()
        with self._guard(), self._tx() as db:
            self._check_epoch(db)
            db.execute("DELETE FROM reservations WHERE scope = ? AND expires_at < ?", (scope, now))
            self._reclaim_dead(db, scope)
            s = self._totals(db, scope)
            chosen = admit(budget, s, route, bounds)
            if chosen is None:
                raise BudgetExceeded(refusal(budget, scope, s, route, bounds))
            amount = float(bounds.get(chosen, 0.0)) if bounds else 0.0
            r = Reservation(scope, chosen, amount)
            db.execute("INSERT INTO reservations (id, scope, route, amount, expires_at, pid, host, started) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (r.id, scope, chosen, amount, now + self.lease_s, self._pid, _HOST, self._started))
            s.reserved += amount
            s.in_flight += 1
            s.strong_in_flight += chosen == "strong"
        return r, state_of(budget, scope, s)

    def settle(self, budget: Budget, reservation: Reservation, cost_usd: float | None, *, succeeded: bool,
               entry: LedgerEntry | None = None) -> BudgetState:
        cost = check_usd("cost_usd", cost_usd) or 0.0
        now = time.time()
        with self._guard(), self._tx() as db:
            self._check_epoch(db)
            # a reservation reclaimed after its lease still settles: its cost was spent; a
            # reservation id settles once (a write-ahead replay of a settlement that landed)
            if not reservation.settled and db.execute("INSERT OR IGNORE INTO settled VALUES (?, ?)",
                                                      (reservation.id, now)).rowcount:
                db.execute("DELETE FROM reservations WHERE id = ?", (reservation.id,))
                strong = int(reservation.route == "strong" and succeeded)
                db.execute("INSERT INTO budget_scopes (scope, spent, strong_calls) VALUES (?, ?, ?) "
                           "ON CONFLICT (scope) DO UPDATE SET spent = spent + excluded.spent, "
                           "strong_calls = strong_calls + excluded.strong_calls", (reservation.scope, cost, strong))
                if entry is not None:
                    self._insert(db, entry)
            self._settles += 1
            if self._settles % 1000 == 1:
                db.execute("DELETE FROM settled WHERE ts < ?", (now - SETTLED_KEEP_S,))
            s = self._totals(db, reservation.scope)
        reservation.settled = True
        return state_of(budget, reservation.scope, s)

    def renew(self, reservation: Reservation) -> None:
        with self._guard(), self._tx() as db:
            db.execute("UPDATE reservations SET expires_at = ? WHERE id = ?", (time.time() + self.lease_s,
                                                                               reservation.id))

    def budget_state(self, budget: Budget, scope: str) -> BudgetState:
        with self._guard():
            db = self._db()
            db.execute("BEGIN")
            try:
                self._check_epoch(db)
                s = self._totals(db, scope)
            finally:
                db.execute("COMMIT")
        return state_of(budget, scope, s)

    # -- ledger ------------------------------------------------------------------------------
    @staticmethod
    def _insert(db: sqlite3.Connection, e: LedgerEntry) -> None:
        d = e.model_dump()
        d["estimated"] = int(d["estimated"])
        db.execute(f"INSERT OR IGNORE INTO ledger ({', '.join(_LEDGER_FIELDS)}) "
                   f"VALUES ({', '.join('?' * len(_LEDGER_FIELDS))})", tuple(d[f] for f in _LEDGER_FIELDS))

    def record(self, entry: LedgerEntry) -> None:
        with self._guard(), self._tx() as db:
            self._insert(db, entry)

    @staticmethod
    def _where(q: UsageQuery) -> tuple[str, list[Any]]:
        where, args = [], []
        for col in ("scope", "api_key", "route", "model"):
            value = getattr(q, col)
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        if q.since is not None:
            where.append("ts >= ?")
            args.append(q.since)
        if q.until is not None:
            where.append("ts < ?")
            args.append(q.until)
        return (f" WHERE {' AND '.join(where)}" if where else ""), args

    def entries(self, query: UsageQuery | None = None) -> list[LedgerEntry]:
        where, args = self._where(query or UsageQuery())
        with self._guard():
            rows = self._db().execute(f"SELECT {', '.join(_LEDGER_FIELDS)} FROM ledger{where} ORDER BY ts",
                                      args).fetchall()
        return [LedgerEntry(**{**dict(zip(_LEDGER_FIELDS, row)), "estimated": bool(row[-1])}) for row in rows]

    def usage(self, query: UsageQuery | None = None) -> UsageReport:
        """Totals aggregated by SQLite (a usage request does not read every entry back)."""
        where, args = self._where(query or UsageQuery())
        # what counts in the money totals: not a cache hit, nor a failure that billed no tokens
        counts = ("(status != 'cached' AND (status NOT IN ('failed', 'cancelled') "
                  "OR input_tokens > 0 OR output_tokens > 0))")
        with self._guard():
            rows = self._usage_rows(where, args, counts)
        report = UsageReport()
        for route, model, status, n, inp, out, cache_r, cache_w, cost, unpriced, strong, strong_unpriced, est in rows:
            for t in report.groups(route, model):
                t.add_group(status, n, input_tokens=int(inp), output_tokens=int(out), cache_read_tokens=int(cache_r),
                            cache_write_tokens=int(cache_w), cost_usd=float(cost), unpriced=int(unpriced),
                            strong_usd=float(strong), strong_unpriced=int(strong_unpriced), estimated=int(est))
        return report

    def _usage_rows(self, where: str, args: list[Any], counts: str) -> list[Any]:
        return self._db().execute(
            f"SELECT route, model, status, COUNT(*), SUM(CASE WHEN {counts} THEN input_tokens ELSE 0 END), "
            f"SUM(CASE WHEN {counts} THEN output_tokens ELSE 0 END), "
            f"SUM(CASE WHEN {counts} THEN cache_read_tokens ELSE 0 END), "
            f"SUM(CASE WHEN {counts} THEN cache_write_tokens ELSE 0 END), "
            f"COALESCE(SUM(CASE WHEN {counts} THEN cost_usd END), 0), SUM(cost_usd IS NULL AND {counts}), "
            f"COALESCE(SUM(CASE WHEN {counts} THEN strong_cost_usd END), 0), SUM(strong_cost_usd IS NULL AND {counts}), "
            f"SUM(estimated) FROM ledger{where} GROUP BY route, model, status", args).fetchall()

    # -- online share --------------------------------------------------------------------------
    def load_online(self, key: str) -> dict[str, Any] | None:
        with self._guard():
            row = self._db().execute("SELECT state FROM online WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def save_online(self, key: str, state: Mapping[str, Any]) -> None:
        text = json.dumps(dict(state), allow_nan=False)
        with self._guard(), self._tx() as db:
            db.execute("INSERT INTO online VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET state = excluded.state, "
                       "updated = excluded.updated", (key, text, time.time()))
            # at most max_online keys: the least recently saved go first
            excess = db.execute("SELECT COUNT(*) FROM online").fetchone()[0] - self.max_online
            if excess > 0:
                db.execute("DELETE FROM online WHERE key IN (SELECT key FROM online WHERE key != ? "
                           "ORDER BY updated, key LIMIT ?)", (key, excess))

    def close(self) -> None:
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for db in conns:
            try:
                db.close()
            except sqlite3.ProgrammingError:  # closed from another thread's object: harmless
                pass
        self._local = threading.local()
