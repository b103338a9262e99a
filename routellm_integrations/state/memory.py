"""Routing state in this process's memory: the default, gone on restart.

Scope state is bounded: at most ``max_scopes`` scopes (least recently used idle ones are
forgotten first) and, with ``scope_ttl_s``, idle scopes unused for that long are forgotten.
A scope with calls in flight and the global scope are never forgotten. The ledger keeps
the last ``max_entries`` calls for queries; its unfiltered totals (``usage()``) count every
call the store ever settled. At most ``max_online`` (default 1,000) ``save_online`` keys
are kept, the least recently used dropped first. Memory cannot be unreachable or come back
empty while the process runs: :meth:`MemoryStore.ping` does nothing and ``was_reset`` is
always False.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..budgets import GLOBAL_SCOPE, Budget, BudgetState, ScopeTotals, admit, refusal, state_of
from ..decision import Route
from ..errors import BudgetExceeded
from ..costs import check_usd
from .base import LedgerEntry, Reservation, UsageQuery, UsageReport


#: entries kept by the in-memory store a call lifecycle or a ``CostLedger`` opens for itself
#: (its totals still count every call; ~1.4 kB an entry): a process that never asked for a
#: queryable ledger does not grow one
IN_PROCESS_MAX_ENTRIES = 1_000


@dataclass
class _Scope(ScopeTotals):
    touched: float = field(default_factory=time.monotonic)


class MemoryStore:
    """Thread-safe; one lock serialises admission, so the cap holds under any number of
    threads of this process (not across processes: use SQLite or Redis for that)."""

    url = "memory://"

    def __init__(self, *, max_scopes: int = 100_000, scope_ttl_s: float | None = None,
                 max_entries: int = 100_000, max_online: int = 1_000) -> None:
        if max_scopes < 1:
            raise ValueError("max_scopes must be at least 1")
        if scope_ttl_s is not None and not scope_ttl_s > 0:
            raise ValueError("scope_ttl_s must be a positive number of seconds, or None")
        self.max_scopes, self.scope_ttl_s = int(max_scopes), scope_ttl_s
        self._scopes: OrderedDict[str, _Scope] = OrderedDict()
        self._entries: deque[LedgerEntry] = deque(maxlen=max(1, int(max_entries)))
        self._totals = UsageReport()  # every entry ever written (the deque forgets the oldest)
        if int(max_online) < 1:
            raise ValueError("max_online must be at least 1")
        self.max_online = int(max_online)
        self._online: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryStore(scopes={len(self._scopes)}, entries={len(self._entries)})"

    def __len__(self) -> int:
        with self._lock:
            return len(self._scopes)

    # -- scopes (under the lock) -----------------------------------------------------------
    def _scope(self, scope: str) -> _Scope:
        s = self._scopes.get(scope)
        now = time.monotonic()
        if s is None:
            s = self._scopes[scope] = _Scope(touched=now)
            self._evict(now, keep=scope)
        else:
            s.touched = now
            self._scopes.move_to_end(scope)
        return s

    def _evict(self, now: float, keep: str) -> None:
        """Forget idle scopes past their TTL, then least recently used idle ones down to
        ``max_scopes``. The dict is in use order, so the scan stops at the first scope
        that is neither."""
        ttl, excess, doomed = self.scope_ttl_s, len(self._scopes) - self.max_scopes, []
        for key, s in self._scopes.items():
            expired = ttl is not None and now - s.touched > ttl
            if not expired and len(doomed) >= excess:
                break
            if s.in_flight == 0 and key not in (GLOBAL_SCOPE, keep):
                doomed.append(key)
        for key in doomed:
            del self._scopes[key]

    # -- budgets ---------------------------------------------------------------------------
    def reserve(self, budget: Budget, scope: str, route: Route,
                bounds: Mapping[str, float] | None) -> tuple[Reservation, BudgetState]:
        with self._lock:
            s = self._scope(scope)
            chosen = admit(budget, s, route, bounds)
            if chosen is None:
                raise BudgetExceeded(refusal(budget, scope, s, route, bounds))
            amount = float(bounds.get(chosen, 0.0)) if bounds else 0.0
            s.reserved += amount
            s.in_flight += 1
            s.strong_in_flight += chosen == "strong"
            return Reservation(scope, chosen, amount), state_of(budget, scope, s)

    def settle(self, budget: Budget, reservation: Reservation, cost_usd: float | None, *, succeeded: bool,
               entry: LedgerEntry | None = None) -> BudgetState:
        cost = check_usd("cost_usd", cost_usd)
        with self._lock:
            s = self._scopes.get(reservation.scope)
            if s is None:  # cannot happen while in flight (never evicted); be safe
                s = self._scopes[reservation.scope] = _Scope()
            if not reservation.settled:
                reservation.settled = True
                s.in_flight -= 1
                # exactly 0 once nothing is in flight (float sums of many bounds drift)
                s.reserved = max(0.0, s.reserved - reservation.amount) if s.in_flight > 0 else 0.0
                if reservation.route == "strong":
                    s.strong_in_flight -= 1
                    s.strong_calls += bool(succeeded)
                if cost:
                    s.spent += cost
                if entry is not None:
                    self._append(entry)
            s.touched = time.monotonic()
            self._scopes.move_to_end(reservation.scope)  # settling is a use: keeps the dict in use order
            return state_of(budget, reservation.scope, s)

    def renew(self, reservation: Reservation) -> None:
        """In memory a reservation lives as long as the process: nothing to extend."""

    def budget_state(self, budget: Budget, scope: str) -> BudgetState:
        with self._lock:
            return state_of(budget, scope, self._scopes.get(scope) or ScopeTotals())

    # -- ledger ------------------------------------------------------------------------------
    def _append(self, entry: LedgerEntry) -> None:
        self._entries.append(entry)
        self._totals.add_entry(entry)

    def record(self, entry: LedgerEntry) -> None:
        with self._lock:
            self._append(entry)

    def entries(self, query: UsageQuery | None = None) -> list[LedgerEntry]:
        q = query or UsageQuery()
        with self._lock:
            return [e for e in self._entries if q.matches(e)]

    def usage(self, query: UsageQuery | None = None) -> UsageReport:
        """Unfiltered: every call this store settled (kept as running totals); filtered:
        the last ``max_entries`` calls that match."""
        if query is None or query == UsageQuery():
            with self._lock:
                return self._totals.copy()
        return UsageReport.of(self.entries(query))

    # -- online share --------------------------------------------------------------------------
    def load_online(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            state = self._online.get(key)
            if state is None:
                return None
            self._online.move_to_end(key)
            return copy.deepcopy(state)

    def save_online(self, key: str, state: Mapping[str, Any]) -> None:
        with self._lock:
            self._online[key] = copy.deepcopy(dict(state))
            self._online.move_to_end(key)
            while len(self._online) > self.max_online:
                self._online.popitem(last=False)

    #: memory never comes back empty under a running process
    was_reset = False

    def ping(self) -> None:
        """Nothing to reach: always ready."""

    def acknowledge_reset(self) -> None:
        """Nothing to acknowledge (memory is never reset under a running process)."""

    def close(self) -> None:
        pass
