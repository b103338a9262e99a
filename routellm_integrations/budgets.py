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
ever downgraded, however many calls are in flight.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .decision import Route
from .errors import BudgetExceeded

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
    remaining_fraction: float = Field(description="1 = untouched, 0 = exhausted (settled spend only)")


@dataclass
class Reservation:
    scope: str
    route: Route
    amount: float
    settled: bool = False


@dataclass
class _Scope:
    spent: float = 0.0
    reserved: float = 0.0
    strong_calls: int = 0
    strong_in_flight: int = 0
    in_flight: int = 0
    touched: float = field(default_factory=time.monotonic)

    @property
    def idle(self) -> bool:
        return self.in_flight == 0


class BudgetTracker:
    """Thread-safe spend per scope for one :class:`Budget`.

    Scope state is bounded: at most ``max_scopes`` scopes (least recently used idle ones
    are forgotten first) and, with ``scope_ttl_s``, idle scopes unused for that long are
    forgotten. A scope with calls in flight and the global scope are never forgotten.
    Forgetting a scope forgets its spend: size ``max_scopes`` above the number of runs
    whose caps must hold at once."""

    def __init__(self, budget: Budget, *, max_scopes: int = 100_000, scope_ttl_s: float | None = None) -> None:
        if max_scopes < 1:
            raise ValueError("max_scopes must be at least 1")
        if scope_ttl_s is not None and not scope_ttl_s > 0:
            raise ValueError("scope_ttl_s must be a positive number of seconds, or None")
        self.budget = budget
        self.max_scopes, self.scope_ttl_s = int(max_scopes), scope_ttl_s
        self._scopes: OrderedDict[str, _Scope] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._scopes)

    # -- scope bookkeeping (under the lock) ----------------------------------------------
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
        ``max_scopes``. The dict is in use order (every use moves a scope to the end and
        stamps it), so the scan stops at the first scope that is neither."""
        ttl, excess, doomed = self.scope_ttl_s, len(self._scopes) - self.max_scopes, []
        for key, s in self._scopes.items():
            expired = ttl is not None and now - s.touched > ttl
            if not expired and len(doomed) >= excess:
                break
            if s.idle and key not in (GLOBAL_SCOPE, keep):
                doomed.append(key)
        for key in doomed:
            del self._scopes[key]

    def _fraction(self, s: _Scope) -> float:
        parts = [1.0]
        if self.budget.max_usd is not None:
            parts.append(max(0.0, 1.0 - s.spent / self.budget.max_usd))
        if self.budget.max_strong_calls is not None:
            parts.append(0.0 if self.budget.max_strong_calls == 0 else
                         max(0.0, 1.0 - s.strong_calls / self.budget.max_strong_calls))
        return min(parts)

    def state(self, scope: str) -> BudgetState:
        """The scope's state now (reading it creates nothing)."""
        with self._lock:
            s = self._scopes.get(scope) or _Scope()
            remaining = None if self.budget.max_usd is None else self.budget.max_usd - s.spent - s.reserved
            return BudgetState(scope=scope, spent_usd=s.spent, reserved_usd=s.reserved, remaining_usd=remaining,
                               strong_calls=s.strong_calls, in_flight=s.in_flight,
                               remaining_fraction=self._fraction(s))

    def threshold_in_force(self, threshold: float, scope: str) -> float:
        """Demand more confidence as the budget runs out: the base threshold while more
        than ``tighten_below`` of it is left, then rising linearly to 1 at exhaustion."""
        with self._lock:
            s = self._scopes.get(scope)
            fraction = self._fraction(s) if s is not None else 1.0
        knee = self.budget.tighten_below
        factor = 1.0 if fraction >= knee else (fraction / knee if knee > 0 else 1.0)
        return 1.0 - (1.0 - threshold) * factor

    def _fits(self, s: _Scope, route: Route, amount: float | None, whole: bool) -> bool:
        """Room for a call on ``route``: money left (``whole``: room for all of ``amount``)."""
        if route == "strong" and self.budget.max_strong_calls is not None and \
                s.strong_calls + s.strong_in_flight >= self.budget.max_strong_calls:
            return False
        if self.budget.max_usd is None:
            return True
        if whole and amount is not None:
            return s.spent + s.reserved + amount <= self.budget.max_usd + 1e-12
        return s.spent + s.reserved < self.budget.max_usd

    def fits(self, scope: str, route: Route, bounds: Mapping[str, float] | None = None) -> Route | None:
        """The route a call would be admitted on now, without reserving (a preview);
        ``None`` when it would be refused."""
        with self._lock:
            s = self._scopes.get(scope) or _Scope()
            return self._choose(s, route, bounds)

    def _choose(self, s: _Scope, route: Route, bounds: Mapping[str, float] | None) -> Route | None:
        def amount(r: Route) -> float | None:
            return float(bounds.get(r, 0.0)) if bounds else None

        if route == "strong" and self.budget.on_exhausted == "weak":
            if self._fits(s, "strong", amount("strong"), whole=True):
                return "strong"
            return "weak" if self._fits(s, "weak", amount("weak"), whole=False) else None
        return route if self._fits(s, route, amount(route), whole=False) else None

    def reserve(self, scope: str, route: Route, bounds: Mapping[str, float] | None = None) -> Reservation:
        """Admit a call on ``route`` (a strong call may fall back to weak under
        ``on_exhausted="weak"``) reserving ``bounds[route]`` USD, or raise
        :class:`BudgetExceeded`. The returned reservation says which route."""
        with self._lock:
            s = self._scope(scope)
            chosen = self._choose(s, route, bounds)
            if chosen is None:
                spent = f"${s.spent:.6f} spent, ${s.reserved:.6f} reserved in flight" + (
                    f" of ${self.budget.max_usd:.6f}" if self.budget.max_usd else "")
                need = f" (this call may cost up to ${float(bounds.get(route, 0.0)):.6f})" if bounds else ""
                raise BudgetExceeded(f"budget for scope {scope!r} exhausted ({spent}, "
                                     f"{s.strong_calls} strong calls): a {route} call does not fit{need}")
            amount = float(bounds.get(chosen, 0.0)) if bounds else 0.0
            s.reserved += amount
            s.in_flight += 1
            s.strong_in_flight += chosen == "strong"
            return Reservation(scope, chosen, amount)

    def settle(self, reservation: Reservation, cost_usd: float | None, *, succeeded: bool = True) -> None:
        """Replace the reservation by the real cost (``None``: nothing spent). Settling
        twice is a no-op. ``succeeded`` says whether a strong call counts as made."""
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            s = self._scopes.get(reservation.scope)
            if s is None:  # cannot happen while in flight (never evicted); be safe
                s = self._scopes[reservation.scope] = _Scope()
            s.in_flight -= 1
            # exactly 0 once nothing is in flight (float sums of many bounds drift)
            s.reserved = max(0.0, s.reserved - reservation.amount) if s.in_flight > 0 else 0.0
            if reservation.route == "strong":
                s.strong_in_flight -= 1
                s.strong_calls += bool(succeeded)
            if cost_usd is not None and math.isfinite(cost_usd) and cost_usd > 0:
                s.spent += float(cost_usd)
            s.touched = time.monotonic()
            self._scopes.move_to_end(reservation.scope)  # settling is a use: keeps the dict in use order
