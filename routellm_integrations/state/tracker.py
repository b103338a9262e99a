"""A :class:`~routellm_integrations.budgets.Budget` held in a state store: spend per scope,
reserved before each call and settled after it, with the admission rule of
:mod:`~routellm_integrations.budgets` applied by the store in one atomic step."""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..budgets import Budget, BudgetState, Reservation, ScopeTotals, admit
from ..decision import Route
from .base import LedgerEntry, StateStore
from .memory import MemoryStore

__all__ = ["BudgetTracker"]


class BudgetTracker:
    """Spend per scope for one :class:`Budget`, kept in ``store`` (a new in-memory store by
    default: thread-safe within this process).

    In memory, scope state is bounded: at most ``max_scopes`` scopes (least recently used
    idle ones are forgotten first) and, with ``scope_ttl_s``, idle scopes unused for that
    long are forgotten (forgetting a scope forgets its spend). A shared store keeps every
    scope."""

    def __init__(self, budget: Budget, *, max_scopes: int = 100_000, scope_ttl_s: float | None = None,
                 store: "StateStore | str | None" = None) -> None:
        from .stores import open_store

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
        st = self.state(scope)
        totals = ScopeTotals(spent=st.spent_usd, reserved=st.reserved_usd, strong_calls=st.strong_calls,
                             strong_in_flight=st.strong_in_flight, in_flight=st.in_flight)
        return admit(self.budget, totals, route, bounds)

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
