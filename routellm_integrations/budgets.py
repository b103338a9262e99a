"""Spend caps per scope (an agent run, a thread, or global) that routing respects.

A call *reserves* an upper bound of what it can cost before it starts (its input counted
from the text, plus its output bound, times the model's price) and *settles* the real
cost after, under one lock. Admission:

- a call is admitted only while there is money left beyond what is spent and reserved
  in flight (``spent + reserved < cap``). So however many calls run at once, total spend
  passes the cap by less than the cost of one call: the last one admitted (every call
  in flight costs at most what it reserved);
- under ``on_exhausted="weak"`` a strong call must *fit* whole
  (``spent + reserved + its bound <= cap``), else it goes weak.

Reservations are per call, not "the dearest call seen", so far from the cap nothing is
ever downgraded, however many calls are in flight. The numbers live in a state store
(:mod:`routellm_integrations.state`): this process's memory by default, or a SQLite file or
a Redis server shared by several processes, which then hold one cap between them.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .decision import Route

if TYPE_CHECKING:
    from .state.base import LedgerEntry, StateStore

GLOBAL_SCOPE = "global"


class Budget(BaseModel):
    """A cap per scope, on *total* spend (strong and weak calls alike). Spend passes the
    cap by less than one call, under any concurrency.

    - ``on_exhausted="weak"`` (default): a strong call whose upper bound does not fit in
      what is left goes weak; once nothing is left, a call raises :class:`BudgetExceeded`.
    - ``on_exhausted="raise"``: calls keep the route they were given (never a silent
      downgrade) and raise :class:`BudgetExceeded` once nothing is left.

    A call reserves ``max_tokens`` (when the call sets it) or ``default_output_tokens``
    of output; a model that writes more than that can pass the cap by its excess.
    As money runs out the router demands more confidence: below ``tighten_below`` of
    the cap left, the threshold in force rises linearly to 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_usd: float | None = Field(None, gt=0, description="spend cap in USD per scope")
    max_strong_calls: int | None = Field(None, ge=0, description="cap on strong calls per scope")
    on_exhausted: Literal["weak", "raise"] = "weak"
    default_output_tokens: int = Field(4096, ge=1, le=10_000_000,
                                       description="output tokens a call reserves when it sets no max_tokens")
    tighten_below: float = Field(0.5, ge=0.0, le=1.0,
                                 description="remaining fraction below which the threshold starts rising")

    @field_validator("max_usd")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("max_usd must be a finite number of USD")
        return v


class BudgetState(BaseModel):
    """What a decision reports about its scope's budget."""

    scope: str
    spent_usd: float
    reserved_usd: float
    remaining_usd: float | None
    strong_calls: int
    in_flight: int = 0
    strong_in_flight: int = 0
    remaining_fraction: float = Field(description="1 = untouched, 0 = exhausted (settled spend only)")


@dataclass
class Reservation:
    """Money held for one call in flight, until it settles (or, in a shared store, until
    its lease expires)."""

    scope: str
    route: Route
    amount: float
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    settled: bool = False


class BudgetTracker:
    """Spend per scope for one :class:`Budget`, kept in ``store`` (a new in-memory store by
    default: thread-safe within this process).

    In memory, scope state is bounded: at most ``max_scopes`` scopes (least recently used
    idle ones are forgotten first) and, with ``scope_ttl_s``, idle scopes unused for that
    long are forgotten (forgetting a scope forgets its spend). A shared store keeps every
    scope."""

    def __init__(self, budget: Budget, *, max_scopes: int = 100_000, scope_ttl_s: float | None = None,
                 store: "StateStore | str | None" = None) -> None:
        from .state import MemoryStore, open_store

        self.budget = budget
        self.store = open_store(store) if store is not None else MemoryStore(max_scopes=max_scopes,
                                                                            scope_ttl_s=scope_ttl_s)

    def __len__(self) -> int:
        """Scopes held in memory (a shared store keeps every scope: 0 here)."""
        return len(self.store) if hasattr(self.store, "__len__") else 0  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return True

    def state(self, scope: str) -> BudgetState:
        """The scope's state now (reading it creates nothing)."""
        return self.store.budget_state(self.budget, scope)

    def threshold_in_force(self, threshold: float, scope: str) -> float:
        """Demand more confidence as the budget runs out: the base threshold while more
        than ``tighten_below`` of it is left, then rising linearly to 1 at exhaustion."""
        fraction = self.state(scope).remaining_fraction
        knee = self.budget.tighten_below
        factor = 1.0 if fraction >= knee else (fraction / knee if knee > 0 else 1.0)
        return 1.0 - (1.0 - threshold) * factor

    def fits(self, scope: str, route: Route, bounds: Mapping[str, float] | None = None) -> Route | None:
        """The route a call would be admitted on now, without reserving (a preview);
        ``None`` when it would be refused."""
        from .state.base import ScopeTotals, choose

        st = self.state(scope)
        totals = ScopeTotals(spent=st.spent_usd, reserved=st.reserved_usd, strong_calls=st.strong_calls,
                             strong_in_flight=st.strong_in_flight, in_flight=st.in_flight)
        return choose(self.budget, totals, route, bounds)

    def reserve(self, scope: str, route: Route, bounds: Mapping[str, float] | None = None) -> Reservation:
        """Admit a call on ``route`` (a strong call may fall back to weak under
        ``on_exhausted="weak"``) reserving ``bounds[route]`` USD, or raise
        :class:`BudgetExceeded`. The returned reservation says which route.

        The cap holds within one call only for calls that reserve their upper bound (the
        call lifecycle always does for a priced model): a call with no ``bounds`` reserves
        nothing, so as many such calls as are in flight together may pass the cap."""
        return self.reserve_with_state(scope, route, bounds)[0]

    def reserve_with_state(self, scope: str, route: Route,
                           bounds: Mapping[str, float] | None = None) -> "tuple[Reservation, BudgetState]":
        """:meth:`reserve`, with the scope's state just after (one round trip to the store)."""
        return self.store.reserve(self.budget, scope, route, bounds)

    def renew(self, reservation: Reservation) -> None:
        """Extend the lease of a call still running (a shared store reclaims expired ones)."""
        if not reservation.settled:
            self.store.renew(reservation)

    def settle(self, reservation: Reservation, cost_usd: float | None, *, succeeded: bool = True,
               entry: "LedgerEntry | None" = None) -> BudgetState:
        """Replace the reservation by the real cost (``None``: nothing spent) and write the
        call's ledger ``entry`` in the same step. Settling twice is a no-op. ``succeeded``
        says whether a strong call counts as made."""
        if cost_usd is not None and not (math.isfinite(cost_usd) and cost_usd > 0):
            cost_usd = None
        return self.store.settle(self.budget, reservation, cost_usd, succeeded=succeeded, entry=entry)
