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
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .decision import Route


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


# -- the admission rule every store applies (atomically) --------------------------------------

@dataclass
class ScopeTotals:
    """One scope's numbers at one instant: what :func:`admit` decides on."""

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


def admit(budget: Budget, s: ScopeTotals, route: Route, bounds: Mapping[str, float] | None) -> Route | None:
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


class Refusal(str):
    """The message of a refusal, and whether it is *busy*: refused only because of calls
    in flight (with nothing in flight the call would be admitted), so it may fit once
    they settle; else the scope is exhausted and a retry cannot succeed."""

    busy: bool = False


def busy(budget: Budget, s: ScopeTotals, route: Route, bounds: Mapping[str, float] | None) -> bool:
    """A refusal that only the money held by calls in flight causes: ``route`` would be
    admitted were nothing reserved (strong calls in flight still count against
    ``max_strong_calls``: they will once they finish)."""
    if s.reserved <= 0:
        return False
    settled = ScopeTotals(spent=s.spent, strong_calls=s.strong_calls + s.strong_in_flight)
    return admit(budget, settled, route, bounds) is not None


def refusal(budget: Budget, scope: str, s: ScopeTotals, route: Route, bounds: Mapping[str, float] | None) -> Refusal:
    """The message of the :class:`~routellm_integrations.errors.BudgetExceeded` a refusal
    raises (a :class:`Refusal`: ``.busy`` tells a retryable refusal from an exhausted scope)."""
    spent = f"${s.spent:.6f} spent, ${s.reserved:.6f} reserved in flight" + (
        f" of ${budget.max_usd:.6f}" if budget.max_usd else "")
    need = f" (this call may cost up to ${float(bounds.get(route, 0.0)):.6f})" if bounds else ""
    held = busy(budget, s, route, bounds)
    tail = f"; {s.in_flight} calls in flight hold the rest: it may fit once they settle" if held else ""
    out = Refusal(f"budget for scope {scope!r} exhausted ({spent}, {s.strong_calls} strong calls): "
                  f"a {route} call does not fit{need}{tail}")
    out.busy = held
    return out
