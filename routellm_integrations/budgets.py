"""Spend caps per scope (an agent run, a thread, or global) that routing respects.

A call *reserves* its expected cost before it starts and *settles* the real cost after,
under one lock, so concurrent calls cannot all pass a check that only one of them fits.
The expected cost of a route is the dearest call seen on it; until a route has been
priced once, a scope lets only one call of it run at a time. Together these bound any
overshoot of a cap to the cost of one call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from .decision import Route
from .errors import BudgetExceeded


class Budget(BaseModel):
    """A cap per scope. A strong call that no longer fits goes weak. Once even a weak call
    does not fit, ``on_exhausted="weak"`` keeps serving weak (the cap then bounds what
    strong calls spend), and ``"raise"`` refuses with :class:`BudgetExceeded` (total spend
    never passes the cap by more than one call)."""

    max_usd: float | None = Field(None, gt=0, description="spend cap in USD per scope")
    max_strong_calls: int | None = Field(None, ge=0, description="cap on strong calls per scope")
    on_exhausted: Literal["weak", "raise"] = "weak"


class BudgetState(BaseModel):
    """What a decision reports about its scope's budget."""

    scope: str
    spent_usd: float
    reserved_usd: float
    remaining_usd: float | None
    strong_calls: int
    remaining_fraction: float = Field(description="1 = untouched, 0 = exhausted")


@dataclass
class Reservation:
    scope: str
    route: Route
    amount: float
    probe: bool = False  # admitted before the route was ever priced
    settled: bool = False


@dataclass
class _Scope:
    spent: float = 0.0
    reserved: float = 0.0
    strong_calls: int = 0
    strong_in_flight: int = 0
    unpriced_in_flight: int = 0


class BudgetTracker:
    """Thread-safe spend per scope for one :class:`Budget`."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._scopes: dict[str, _Scope] = {}
        self._dearest: dict[str, float] = {}
        self._lock = threading.Lock()

    def _fraction(self, s: _Scope) -> float:
        parts = [1.0]
        if self.budget.max_usd is not None:
            parts.append(max(0.0, 1.0 - (s.spent + s.reserved) / self.budget.max_usd))
        if self.budget.max_strong_calls is not None:
            parts.append(0.0 if self.budget.max_strong_calls == 0 else
                         max(0.0, 1.0 - (s.strong_calls + s.strong_in_flight) / self.budget.max_strong_calls))
        return min(parts)

    def state(self, scope: str) -> BudgetState:
        with self._lock:
            s = self._scopes.setdefault(scope, _Scope())
            remaining = None if self.budget.max_usd is None else self.budget.max_usd - s.spent - s.reserved
            return BudgetState(scope=scope, spent_usd=s.spent, reserved_usd=s.reserved, remaining_usd=remaining,
                               strong_calls=s.strong_calls, remaining_fraction=self._fraction(s))

    def threshold_in_force(self, threshold: float, scope: str) -> float:
        """As the budget shrinks, demand more confidence before choosing strong:
        ``1 - (1 - threshold) * remaining_fraction`` (the base threshold when untouched,
        1 when exhausted)."""
        return 1.0 - (1.0 - threshold) * self.state(scope).remaining_fraction

    def _fits(self, s: _Scope, route: Route) -> bool:
        if route == "strong" and self.budget.max_strong_calls is not None and \
                s.strong_calls + s.strong_in_flight >= self.budget.max_strong_calls:
            return False
        if self.budget.max_usd is None:
            return True
        estimate = self._dearest.get(route)
        if estimate is None:  # never priced: one at a time, and only while money is left
            return s.unpriced_in_flight == 0 and s.spent + s.reserved < self.budget.max_usd
        return s.spent + s.reserved + estimate <= self.budget.max_usd

    def reserve(self, scope: str, route: Route) -> Reservation:
        """Admit a call on ``route`` (falling back to weak under ``on_exhausted="weak"``),
        or raise :class:`BudgetExceeded`. The returned reservation says which route."""
        with self._lock:
            s = self._scopes.setdefault(scope, _Scope())
            chosen: Route | None = route if self._fits(s, route) else None
            if chosen is None and (self.budget.on_exhausted == "weak" or self._fits(s, "weak")):
                chosen = "weak"  # "weak": weak calls are never refused; "raise": only when nothing fits
            if chosen is None:
                spent = f"${s.spent:.6f} spent" + (f" of ${self.budget.max_usd:.6f}" if self.budget.max_usd else "")
                raise BudgetExceeded(f"budget for scope {scope!r} exhausted ({spent}, "
                                     f"{s.strong_calls} strong calls): a {route} call does not fit")
            probe = chosen not in self._dearest
            amount = self._dearest.get(chosen, 0.0)
            s.reserved += amount
            s.strong_in_flight += chosen == "strong"
            s.unpriced_in_flight += probe
            return Reservation(scope, chosen, amount, probe)

    def settle(self, reservation: Reservation, cost_usd: float | None, *, succeeded: bool = True) -> None:
        """Replace the reservation by the real cost (``None`` or a failed call: nothing spent)."""
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            s = self._scopes[reservation.scope]
            s.reserved -= reservation.amount
            if reservation.route == "strong":
                s.strong_in_flight -= 1
                s.strong_calls += succeeded
            s.unpriced_in_flight -= reservation.probe
            if succeeded and cost_usd is not None:
                s.spent += cost_usd
                self._dearest[reservation.route] = max(self._dearest.get(reservation.route, 0.0), cost_usd)
