"""Routing state in a SQLite file: survives restarts, shared by the processes of one host.

Every reserve and settle is one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock), so
admission is atomic across processes; WAL mode lets readers (usage queries) run beside
them. A transaction that committed is on disk when ``kill -9`` strikes (WAL with
``synchronous=NORMAL`` loses nothing on a process crash; only an OS crash could drop the
last transactions, and ``synchronous="FULL"`` closes that too). Reservations carry a lease
(``lease_s``): a process that died leaves reservations the next admission in that scope
reclaims once they expire.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ..budgets import Budget, BudgetState, ScopeTotals, admit, refusal, state_of
from ..decision import Route
from ..errors import BudgetExceeded
from ..costs import check_usd
from .base import DEFAULT_LEASE_S, LedgerEntry, Reservation, UsageQuery, UsageReport

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget_scopes (
    scope TEXT PRIMARY KEY, spent REAL NOT NULL DEFAULT 0, strong_calls INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, route TEXT NOT NULL, amount REAL NOT NULL,
    expires_at REAL NOT NULL, pid INTEGER NOT NULL);
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
"""
_LEDGER_FIELDS = tuple(LedgerEntry.model_fields)


class SQLiteStore:
    """``SQLiteStore("routing.sqlite")``, or ``open_store("sqlite:///routing.sqlite")``.

    One connection per thread; safe for many threads and processes over one file (on a
    local disk: SQLite's locking is not reliable on network file systems)."""

    def __init__(self, path: str | os.PathLike[str], *, lease_s: float = DEFAULT_LEASE_S,
                 synchronous: Literal["NORMAL", "FULL"] = "NORMAL", timeout_s: float = 60.0) -> None:
        if not (isinstance(lease_s, (int, float)) and math.isfinite(lease_s) and lease_s > 0):
            raise ValueError(f"lease_s must be a positive number of seconds, got {lease_s!r}")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite:///{self.path}"
        self.lease_s, self.synchronous, self.timeout_s = float(lease_s), synchronous, float(timeout_s)
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._db().executescript(_SCHEMA)  # idempotent; executescript commits on its own

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- connections ---------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            self._local.db = db
            with self._conns_lock:
                self._conns.append(db)
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")

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
        with self._tx() as db:
            db.execute("DELETE FROM reservations WHERE scope = ? AND expires_at < ?", (scope, now))
            s = self._totals(db, scope)
            chosen = admit(budget, s, route, bounds)
            if chosen is None:
                raise BudgetExceeded(refusal(budget, scope, s, route, bounds))
            amount = float(bounds.get(chosen, 0.0)) if bounds else 0.0
            r = Reservation(scope, chosen, amount)
            db.execute("INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?)",
                       (r.id, scope, chosen, amount, now + self.lease_s, os.getpid()))
            s.reserved += amount
            s.in_flight += 1
            s.strong_in_flight += chosen == "strong"
        return r, state_of(budget, scope, s)

    def settle(self, budget: Budget, reservation: Reservation, cost_usd: float | None, *, succeeded: bool,
               entry: LedgerEntry | None = None) -> BudgetState:
        cost = check_usd("cost_usd", cost_usd) or 0.0
        with self._tx() as db:
            # a reservation reclaimed after its lease still settles: its cost was spent
            if not reservation.settled:
                db.execute("DELETE FROM reservations WHERE id = ?", (reservation.id,))
                strong = int(reservation.route == "strong" and succeeded)
                db.execute("INSERT INTO budget_scopes (scope, spent, strong_calls) VALUES (?, ?, ?) "
                           "ON CONFLICT (scope) DO UPDATE SET spent = spent + excluded.spent, "
                           "strong_calls = strong_calls + excluded.strong_calls", (reservation.scope, cost, strong))
                if entry is not None:
                    self._insert(db, entry)
            reservation.settled = True
            s = self._totals(db, reservation.scope)
        return state_of(budget, reservation.scope, s)

    def renew(self, reservation: Reservation) -> None:
        with self._tx() as db:
            db.execute("UPDATE reservations SET expires_at = ? WHERE id = ?", (time.time() + self.lease_s,
                                                                               reservation.id))

    def budget_state(self, budget: Budget, scope: str) -> BudgetState:
        db = self._db()
        db.execute("BEGIN")
        try:
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
        with self._tx() as db:
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
        rows = self._db().execute(f"SELECT {', '.join(_LEDGER_FIELDS)} FROM ledger{where} ORDER BY ts",
                                  args).fetchall()
        return [LedgerEntry(**{**dict(zip(_LEDGER_FIELDS, row)), "estimated": bool(row[-1])}) for row in rows]

    def usage(self, query: UsageQuery | None = None) -> UsageReport:
        """Totals aggregated by SQLite (a usage request does not read every entry back)."""
        where, args = self._where(query or UsageQuery())
        # what counts in the money totals: not a cache hit, nor a failure that billed no tokens
        counts = ("(status != 'cached' AND (status NOT IN ('failed', 'cancelled') "
                  "OR input_tokens > 0 OR output_tokens > 0))")
        rows = self._db().execute(
            f"SELECT route, model, status, COUNT(*), SUM(CASE WHEN {counts} THEN input_tokens ELSE 0 END), "
            f"SUM(CASE WHEN {counts} THEN output_tokens ELSE 0 END), "
            f"SUM(CASE WHEN {counts} THEN cache_read_tokens ELSE 0 END), "
            f"SUM(CASE WHEN {counts} THEN cache_write_tokens ELSE 0 END), "
            f"COALESCE(SUM(CASE WHEN {counts} THEN cost_usd END), 0), SUM(cost_usd IS NULL AND {counts}), "
            f"COALESCE(SUM(CASE WHEN {counts} THEN strong_cost_usd END), 0), SUM(strong_cost_usd IS NULL AND {counts}), "
            f"SUM(estimated) FROM ledger{where} GROUP BY route, model, status", args).fetchall()
        report = UsageReport()
        for route, model, status, n, inp, out, cache_r, cache_w, cost, unpriced, strong, strong_unpriced, est in rows:
            for t in report.groups(route, model):
                t.add_group(status, n, input_tokens=int(inp), output_tokens=int(out), cache_read_tokens=int(cache_r),
                            cache_write_tokens=int(cache_w), cost_usd=float(cost), unpriced=int(unpriced),
                            strong_usd=float(strong), strong_unpriced=int(strong_unpriced), estimated=int(est))
        return report

    # -- online share --------------------------------------------------------------------------
    def load_online(self, key: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT state FROM online WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def save_online(self, key: str, state: Mapping[str, Any]) -> None:
        text = json.dumps(dict(state), allow_nan=False)
        with self._tx() as db:
            db.execute("INSERT INTO online VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET state = excluded.state, "
                       "updated = excluded.updated", (key, text, time.time()))

    def close(self) -> None:
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for db in conns:
            try:
                db.close()
            except sqlite3.ProgrammingError:  # closed from another thread's object: harmless
                pass
        self._local = threading.local()
