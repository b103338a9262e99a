"""The routing state a deployment shares: what every store holds, and the one admission rule.

A :class:`StateStore` holds three things, so that a restart or a second worker sees the
same money:

- **budgets**: per scope, the settled spend and strong-call count, and the reservations of
  calls in flight. ``reserve`` is one atomic step (read the scope, apply :func:`choose`,
  write the reservation), so N processes over one store hold one cap, not N. A
  reservation carries a lease: a process that died with calls in flight leaves
  reservations that expire after ``lease_s`` instead of holding the money for ever.
- **the cost ledger**: one :class:`LedgerEntry` per settled call, queryable by scope, API
  key, route, model and time (:meth:`StateStore.usage`). When the call had a budget the
  entry is written in the same atomic step as the settlement, so the two never disagree.
- **online share state**: the :class:`~routellm_integrations.online.OnlineShareController`
  checkpoint of each policy, so a restart resumes the threshold it had learnt.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from ..budgets import Budget, BudgetState, Reservation
from ..costs import LedgerStatus, LedgerTotals
from ..decision import Route

__all__ = ["DEFAULT_LEASE_S", "LedgerEntry", "Reservation", "ScopeTotals", "StateStore", "UsageReport", "choose",
           "state_of"]

#: how long a reservation outlives a process that died holding it (a call in flight for
#: longer than this has its reservation reclaimed; its settlement still counts its cost)
DEFAULT_LEASE_S = 900.0


@dataclass
class ScopeTotals:
    """One scope's numbers at one instant: what :func:`choose` decides on."""

    spent: float = 0.0
    reserved: float = 0.0
    strong_calls: int = 0
    strong_in_flight: int = 0
    in_flight: int = 0


def _fits(budget: Budget, s: ScopeTotals, route: Route, amount: float | None, whole: bool) -> bool:
    if route == "strong" and budget.max_strong_calls is not None and \
            s.strong_calls + s.strong_in_flight >= budget.max_strong_calls:
        return False
    if budget.max_usd is None:
        return True
    if whole and amount is not None:
        return s.spent + s.reserved + amount <= budget.max_usd + 1e-12
    return s.spent + s.reserved < budget.max_usd


def choose(budget: Budget, s: ScopeTotals, route: Route, bounds: Mapping[str, float] | None) -> Route | None:
    """The admission rule every store applies atomically: the route a call asking for
    ``route`` is admitted on, or ``None`` (refused).

    A call is admitted while money is left beyond what is spent and reserved
    (``spent + reserved < cap``), so total spend passes the cap by less than one call; under
    ``on_exhausted="weak"`` a strong call must fit whole, else it goes weak. The Redis store
    runs the same rule as a Lua script (``redis.py``); the store tests hold the two equal."""
    def amount(r: Route) -> float | None:
        return float(bounds.get(r, 0.0)) if bounds else None

    if route == "strong" and budget.on_exhausted == "weak":
        if _fits(budget, s, "strong", amount("strong"), whole=True):
            return "strong"
        return "weak" if _fits(budget, s, "weak", amount("weak"), whole=False) else None
    return route if _fits(budget, s, route, amount(route), whole=False) else None


def fraction_left(budget: Budget, s: ScopeTotals) -> float:
    """1 = untouched, 0 = exhausted (settled spend only)."""
    parts = [1.0]
    if budget.max_usd is not None:
        parts.append(max(0.0, 1.0 - s.spent / budget.max_usd))
    if budget.max_strong_calls is not None:
        parts.append(0.0 if budget.max_strong_calls == 0 else max(0.0, 1.0 - s.strong_calls / budget.max_strong_calls))
    return min(parts)


def state_of(budget: Budget, scope: str, s: ScopeTotals) -> BudgetState:
    remaining = None if budget.max_usd is None else budget.max_usd - s.spent - s.reserved
    return BudgetState(scope=scope, spent_usd=s.spent, reserved_usd=s.reserved, remaining_usd=remaining,
                       strong_calls=s.strong_calls, in_flight=s.in_flight, strong_in_flight=s.strong_in_flight,
                       remaining_fraction=fraction_left(budget, s))


def refusal(budget: Budget, scope: str, s: ScopeTotals, route: Route, bounds: Mapping[str, float] | None) -> str:
    """The message of the :class:`~routellm_integrations.errors.BudgetExceeded` a refusal raises."""
    spent = f"${s.spent:.6f} spent, ${s.reserved:.6f} reserved in flight" + (
        f" of ${budget.max_usd:.6f}" if budget.max_usd else "")
    need = f" (this call may cost up to ${float(bounds.get(route, 0.0)):.6f})" if bounds else ""
    return (f"budget for scope {scope!r} exhausted ({spent}, {s.strong_calls} strong calls): "
            f"a {route} call does not fit{need}")


class LedgerEntry(BaseModel):
    """One settled call, as the ledger keeps it. ``api_key`` names the caller's key (an id
    or a label the server gives it), never the secret itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: str
    ts: float = Field(default_factory=time.time, description="unix time the call settled")
    scope: str | None = None
    api_key: str | None = None
    router: str | None = None
    route: str | None = None
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


#: the totals a store reports are the in-process ledger's: one accumulator, one set of counters
UsageTotals = LedgerTotals


class UsageReport(BaseModel):
    """What ``GET /v1/routing/usage`` returns: totals, by route and by model."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    total: UsageTotals = Field(default_factory=UsageTotals)
    by_route: dict[str, UsageTotals] = Field(default_factory=dict)
    by_model: dict[str, UsageTotals] = Field(default_factory=dict)

    @field_serializer("total")
    def _dump_total(self, t: UsageTotals) -> dict[str, Any]:
        return t.as_dict()

    @field_serializer("by_route", "by_model")
    def _dump_groups(self, groups: dict[str, UsageTotals]) -> dict[str, dict[str, Any]]:
        return {k: t.as_dict() for k, t in groups.items()}

    @classmethod
    def of(cls, entries: Any) -> "UsageReport":
        report = cls()
        for e in entries:
            report.total.add_entry(e)
            report.by_route.setdefault(e.route or "unrouted", UsageTotals()).add_entry(e)
            report.by_model.setdefault(e.model, UsageTotals()).add_entry(e)
        return report


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

    def close(self) -> None: ...
