"""The routing state a deployment shares: what every store holds, and the one admission rule.

A :class:`StateStore` holds three things, so that a restart or a second worker sees the
same money:

- **budgets**: per scope, the settled spend and strong-call count, and the reservations of
  calls in flight. ``reserve`` is one atomic step (read the scope, apply :func:`choose`,
  write the reservation), so N processes over one store hold one cap, not N. A
  reservation carries a lease: a process that died with calls in flight leaves
  reservations that expire after ``lease_s`` instead of holding the money for ever.
- **the cost ledger** (the only one: a call is written here once, and the in-process
  :class:`~routellm_integrations.state.CostLedger` is a view that reads it): one
  :class:`LedgerEntry` per settled call, queryable by scope, API key, route, model and time
  (:meth:`StateStore.usage`, in the one flat :class:`UsageReport` shape). When the call
  had a budget the entry is written in the same atomic step as the settlement, so the two
  never disagree.
- **online share state**: the :class:`~routellm_integrations.online.OnlineShareController`
  checkpoint of each policy, so a restart resumes the threshold it had learnt.

Faults (issue 25). A store that cannot answer in time raises
:class:`~routellm_integrations.errors.StoreUnavailableError` (its URL, never a password),
one that came back empty :class:`~routellm_integrations.errors.StoreResetError` (a
subclass) from budget calls until ``acknowledge_reset()``; :meth:`StateStore.ping` checks
both (a server's readiness probe). A settlement the store could not take is kept in a
write-ahead file and replayed exactly once (:mod:`.wal`). Reservations of dead processes
are reclaimed (SQLite: pid and host; Redis: owner heartbeats), and at most ``max_online``
online checkpoints are kept.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ..budgets import Budget, BudgetState, Reservation
from ..costs import LedgerStatus, LedgerTotals
from ..decision import Route

__all__ = ["DEFAULT_LEASE_S", "LedgerEntry", "Reservation", "StateStore", "UsageReport", "UsageTotals"]

#: how long a reservation outlives a process that died holding it (a call in flight for
#: longer than this has its reservation reclaimed; its settlement still counts its cost)
DEFAULT_LEASE_S = 900.0


class LedgerEntry(BaseModel):
    """One settled call as a ledger row: the columns of its :class:`CallRecord` that the
    ledger totals, built by :meth:`of` (the one way a routed call reaches a ledger).
    ``api_key`` names the caller's key (an id or a label the server gives it), never the
    secret itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: str
    ts: float = Field(default_factory=time.time, description="unix time the call settled")
    scope: str | None = None
    api_key: str | None = None
    router: str | None = None
    route: str | None = None
    #: "" when no model is known (a failure the caller could not attribute): not in ``by_model``
    model: str
    provider: str | None = None
    status: LedgerStatus
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cache_read_tokens: int = Field(0, ge=0)
    cache_write_tokens: int = Field(0, ge=0)
    cost_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    strong_cost_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    estimated: bool = False

    @classmethod
    def of(cls, record: Any, *, api_key: str | None = None, ts: float | None = None) -> LedgerEntry:
        """The ledger row of a settled :class:`~routellm_integrations.routing.CallRecord`
        (or its ``metadata()`` dict). A record still ``in_flight`` counts as ``ok``."""
        get = record.get if isinstance(record, Mapping) else (lambda name: getattr(record, name, None))
        status = get("status") or "ok"
        return cls(call_id=get("call_id"), ts=time.time() if ts is None else ts, scope=get("scope"), api_key=api_key,
                   router=get("router"), route=get("route"), model=get("model") or "",
                   provider=get("provider"), status="ok" if status == "in_flight" else status,
                   input_tokens=get("input_tokens") or 0, output_tokens=get("output_tokens") or 0,
                   cache_read_tokens=get("cache_read_tokens") or 0, cache_write_tokens=get("cache_write_tokens") or 0,
                   cost_usd=get("cost_usd"), strong_cost_usd=get("strong_cost_usd"), estimated=bool(get("estimated")))


#: the totals a store reports are the in-process ledger's: one accumulator, one set of counters
UsageTotals = LedgerTotals


@dataclass(eq=True)
class UsageReport(LedgerTotals):
    """The one usage shape: the totals, flat, and the same totals by route and by model.
    ``store.usage()``, ``CostLedger.summary()``, the LangChain tracker's ``summary()`` and
    ``GET /v1/routing/usage`` all give it (:meth:`as_dict`)::

        {"calls": 3, "cost_usd": 0.0012, ..., "strong_fraction": 0.33,
         "by_route": {"strong": {...}, "weak": {...}}, "by_model": {"gpt-4o": {...}, ...}}
    """

    by_route: dict[str, LedgerTotals] = field(default_factory=dict)
    by_model: dict[str, LedgerTotals] = field(default_factory=dict)

    @property
    def total(self) -> LedgerTotals:
        """The flat totals alone (the same numbers as the report's own fields)."""
        return LedgerTotals(**{f.name: getattr(self, f.name) for f in fields(LedgerTotals)})

    @property
    def strong_fraction(self) -> float | None:
        """The share of completed calls that went to the ``strong`` route (None before any)."""
        strong = self.by_route.get("strong")
        return ((strong.calls if strong is not None else 0) / self.calls) if self.calls else None

    def groups(self, route: str | None, model: str) -> list[LedgerTotals]:
        """The accumulators a call on ``route``/``model`` adds to: the total, its route, its model."""
        out: list[LedgerTotals] = [self, self.by_route.setdefault(route or "unrouted", LedgerTotals())]
        if model:
            out.append(self.by_model.setdefault(model, LedgerTotals()))
        return out

    def add_entry(self, e: Any) -> None:
        """One ledger entry, in the total, its route and its model."""
        for t in self.groups(e.route, e.model):
            LedgerTotals.add_entry(t, e)

    @classmethod
    def of(cls, entries: Any) -> UsageReport:
        report = cls()
        for e in entries:
            report.add_entry(e)
        return report

    def combined(self, other: UsageReport, sign: int = 1) -> UsageReport:
        """This report plus (``sign=-1``: minus) ``other``, group by group (a view over
        several stores adds their reports; a view reset subtracts what it had seen)."""
        out = UsageReport()
        for src, k in ((self, 1), (other, sign)):
            _add_into(out, src, k)
            for mine, theirs in ((out.by_route, src.by_route), (out.by_model, src.by_model)):
                for name, t in theirs.items():
                    _add_into(mine.setdefault(name, LedgerTotals()), t, k)
        for groups in (out.by_route, out.by_model):
            for name in [n for n, t in groups.items() if _empty(t)]:
                del groups[name]
        if _empty(out):  # what is left of sums that cancelled is float noise: none
            _add_into(out, out, -1)
        return out

    def copy(self) -> UsageReport:
        return self.combined(UsageReport())

    def as_dict(self) -> dict[str, Any]:
        out = LedgerTotals.as_dict(self)
        out["strong_fraction"] = self.strong_fraction
        out["by_route"] = {k: t.as_dict() for k, t in self.by_route.items()}
        out["by_model"] = {k: t.as_dict() for k, t in self.by_model.items()}
        return out

    def model_dump(self, mode: str | None = None) -> dict[str, Any]:
        """:meth:`as_dict` (the report was a pydantic model; JSON-ready either way)."""
        return self.as_dict()


def _add_into(target: LedgerTotals, src: LedgerTotals, sign: int) -> None:
    for f in fields(LedgerTotals):
        setattr(target, f.name, getattr(target, f.name) + sign * getattr(src, f.name))


def _empty(t: LedgerTotals) -> bool:
    """No call counted (every entry counts in one of these three)."""
    return not (t.calls or t.failed_calls or t.cached_calls)


@dataclass(frozen=True)
class UsageQuery:
    scope: str | None = None
    api_key: str | None = None
    route: str | None = None
    model: str | None = None
    since: float | None = None
    until: float | None = None

    def matches(self, e: LedgerEntry) -> bool:
        return ((self.scope is None or e.scope == self.scope) and (self.api_key is None or e.api_key == self.api_key)
                and (self.route is None or e.route == self.route) and (self.model is None or e.model == self.model)
                and (self.since is None or e.ts >= self.since) and (self.until is None or e.ts < self.until))


@runtime_checkable
class StateStore(Protocol):
    """Where routing state lives: :class:`~.memory.MemoryStore` (one process, the default),
    :class:`~.sqlite.SQLiteStore` (a file: survives restarts, several processes on one
    host) or :class:`~.redis.RedisStore` (several processes and hosts).

    Budget methods take the :class:`Budget` in force, so the store holds numbers only and
    two policies with different caps can share it under different scopes."""

    #: the store's URL with any password removed (safe to log)
    url: str

    def reserve(self, budget: Budget, scope: str, route: Route,
                bounds: Mapping[str, float] | None) -> tuple[Reservation, BudgetState]:
        """Atomically apply :func:`choose` and hold the admitted route's bound; raise
        :class:`~routellm_integrations.errors.BudgetExceeded` when refused."""
        ...

    def settle(self, budget: Budget, reservation: Reservation, cost_usd: float | None, *, succeeded: bool,
               entry: LedgerEntry | None = None) -> BudgetState:
        """Replace the reservation by the real cost and write ``entry``, in one step.
        Settling twice is a no-op; a reservation whose lease expired still adds its cost."""
        ...

    def renew(self, reservation: Reservation) -> None:
        """Extend a live reservation's lease (a long stream is still running)."""
        ...

    def budget_state(self, budget: Budget, scope: str) -> BudgetState: ...

    def record(self, entry: LedgerEntry) -> None:
        """Write a ledger entry of a call that had no budget to settle."""
        ...

    def entries(self, query: UsageQuery | None = None) -> list[LedgerEntry]: ...

    def usage(self, query: UsageQuery | None = None) -> UsageReport: ...

    def load_online(self, key: str) -> dict[str, Any] | None: ...

    def save_online(self, key: str, state: Mapping[str, Any]) -> None: ...

    def ping(self) -> None:
        """Reach the store now: raise :class:`~routellm_integrations.errors.StoreUnavailableError`
        when it does not answer within its timeouts, :class:`~routellm_integrations.errors.StoreResetError`
        when it came back empty (memory: nothing to reach)."""
        ...

    def close(self) -> None: ...
