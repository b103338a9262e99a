"""From a router's score to a decision: the one place both framework integrations ask.

A policy owns everything between a score and a route: the threshold (fixed, or a target
share of strong calls held online), spend budgets per scope, how an agent's steps are
routed (once per user turn, every step, or sticky escalation), and forced routes.
Routers stay pure scorers. ``RoutedChat`` (LangChain) and ``RoutedLLM`` (LlamaIndex)
each hold one, so a prompt routes the same way in both.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterator, Literal, Mapping, Sequence

from .budgets import GLOBAL_SCOPE, Budget, Reservation
from .choosers import (DEFAULT_STRONG_FRACTION, Bounds, Chooser, CostWeightChooser, SwapReport,
                       check_choice_options, new_chooser)
from .decision import Route, RoutingDecision
from .errors import BudgetExceeded
from .online import OnlineShareController, OnlineSpendController
from .routers.base import BaseRouter, validate_threshold
from .routers.registry import check_router_name, is_model_free, load_router
from .state import BudgetTracker, open_store
from .validation import scrub_surrogates

__all__ = ["DEFAULT_STRONG_FRACTION", "Bounds", "Route", "RoutingPolicy", "StepPolicy", "SwapReport", "Ticket",
           "resolve_router", "routing_scope"]

StepPolicy = Literal["per_turn", "every_step", "sticky"]
#: the longest text :meth:`RoutingPolicy.scores_inline` lets a cheap router score on an
#: event loop (~1.5 ms with the static WordLlama embedder); longer texts go to a thread
INLINE_SCORING_CHARS = 2_000
_SCOPE: ContextVar[str | None] = ContextVar("routellm_scope", default=None)


@contextmanager
def routing_scope(scope: str) -> Iterator[str]:
    """Calls made inside (also from async tasks started inside) use ``scope`` for budgets
    and sticky routing, e.g. one agent run: ``with routing_scope(run_id): agent.run(...)``."""
    clean = _scope_of(scope)
    token = _SCOPE.set(clean)
    try:
        yield clean
    finally:
        _SCOPE.reset(token)


def _scope_of(scope: Any) -> str:
    """The scope a call is kept under: the one given, else the contextvar's, else global;
    lone surrogates (a thread id from scraped text) replaced, so every store can write it."""
    return scrub_surrogates(str(scope or _SCOPE.get() or GLOBAL_SCOPE))


def resolve_router(router: BaseRouter | str) -> BaseRouter:
    """A router object, or a name/folder for :func:`load_router`."""
    return router if isinstance(router, BaseRouter) else load_router(router)


@dataclass
class Ticket:
    """A decision in flight: settle it with the call's cost once the backend answered."""

    decision: RoutingDecision
    reservation: Reservation | None = None


class RoutingPolicy:
    """Route strong when ``score >= threshold``, within a budget, coherently across steps.

    - ``threshold``: fixed. ``strong_fraction``: the share of traffic to send strong, held
      on live traffic (warm-started from ``calibration_prompts`` when given). Given
      neither, a pair holds :data:`DEFAULT_STRONG_FRACTION` (30%) of calls strong, and
      each decision's ``strong_fraction`` says so.
    - The pair a router scores: :meth:`score_pair` (called by the call lifecycle with the
      backends' model names) re-pairs a router that reads model names (``mf``), so it
      scores the two models it routes between; ``router_options`` naming
      ``strong_model``/``weak_model`` win. Each decision names it as ``scored_pair``.
    - ``budget``: a :class:`~.budgets.Budget` per scope; as it shrinks the threshold rises
      towards 1; exhausted, calls go weak (or raise, by the budget's policy).
    - ``steps``: ``"per_turn"`` (default) routes once per user turn and keeps that backend
      for the tool-calling steps that follow; ``"every_step"`` routes each call;
      ``"sticky"`` stays strong for the rest of a scope once it went strong.

    Per-scope state (budgets, sticky scopes, turn decisions) is bounded by
    ``max_scopes`` (least recently used first) and, with ``scope_ttl_s``, by idle time.

    ``store`` (a :class:`~.state.StateStore` or a URL: ``sqlite:///routing.db``,
    ``redis://host:6379/0``) keeps budget spend, the ledger of calls and the online share
    controller's checkpoint there, so they survive a restart and every process over the
    store holds one cap. ``online_key`` names this policy's controller in the store.

    **N models** (``models={route_key: router_model_name}``, e.g. from
    ``RoutedChat(models={...})``): the router must offer ``quality(prompts, models)``
    (``"quality"``); each call goes to the model maximising ``quality - cost_weight *
    expected_cost`` (the expected costs come with each call: ``decide(..., costs=)``), or
    the best one whose expected cost fits ``max_cost_per_call``; ``spend_per_call`` holds
    a target spend per call online instead of a fixed ``cost_weight`` (which then only
    warm-starts it). Budgets work the same: the cheapest candidate of a call is its
    fallback (the "weak" route), every other candidate counts as a "strong" call
    (``max_strong_calls`` caps them), and as money runs out the cost weight rises.

    The choice itself is the policy's :attr:`chooser` (:mod:`~.choosers`): a
    :class:`~.choosers.ThresholdChooser` for a pair, the two-model case with route keys
    ``"strong"``/``"weak"``, or a :class:`~.choosers.CostWeightChooser` among N models,
    behind one interface; the policy admits what it wants by the budget, keeps turns and
    sticky scopes, and records the decision.

    The router is loaded on first use, so building a chat model stays cheap (with
    ``models`` it loads at once, so an unknown model name fails here).
    """

    def __init__(self, router: BaseRouter | str = "mf", *, threshold: float | None = None,
                 strong_fraction: float | None = None, calibration_prompts: Sequence[str] | None = None,
                 budget: Budget | None = None, steps: StepPolicy = "per_turn",
                 router_options: dict[str, Any] | None = None, max_scopes: int = 100_000,
                 scope_ttl_s: float | None = None, recent_prompts: int = 512,
                 store: Any = None, online_key: str | None = None, checkpoint_every: int = 20,
                 models: Mapping[str, str] | None = None, cost_weight: float | None = None,
                 spend_per_call: float | None = None, max_cost_per_call: float | None = None) -> None:
        models = check_choice_options(models, threshold, strong_fraction, cost_weight, spend_per_call,
                                      max_cost_per_call)
        if steps not in ("per_turn", "every_step", "sticky"):
            raise ValueError(f"steps must be 'per_turn', 'every_step' or 'sticky', got {steps!r}")
        if not isinstance(router, (str, BaseRouter)) and not hasattr(router, "score"):
            raise TypeError(f"router must be a name, a folder or a router object, got {type(router).__name__}")
        if isinstance(router, str):
            check_router_name(router)  # a misspelt router fails here, not at the first call
        self._router_spec = router
        self._router: BaseRouter | None = router if not isinstance(router, str) else None
        self._router_options = dict(router_options or {})
        # checked here, before the budget and the store, so a wrong value fails as it always did
        threshold = validate_threshold(threshold) if threshold is not None else None
        strong_fraction = (validate_threshold(strong_fraction, "strong_fraction")
                           if strong_fraction is not None else None)
        self.steps: StepPolicy = steps
        if budget is not None and not isinstance(budget, Budget):
            raise TypeError(f"budget must be a Budget(...), got {type(budget).__name__}")
        if store is not None:
            store = open_store(store)
        self.store = store
        self.online_key = online_key
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.checkpoint_every = int(checkpoint_every)
        self._since_checkpoint = 0
        self.budget = (BudgetTracker(budget, max_scopes=max_scopes, scope_ttl_s=scope_ttl_s, store=store)
                       if budget is not None else None)
        self.max_scopes = int(max_scopes)
        self._turns: OrderedDict[tuple[str, str], RoutingDecision] = OrderedDict()
        # sticky routing: per scope, how far up it went (a pair: strong; N models: the dearest cost reached)
        self._sticky: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        # recent routed texts (memory only), so a hot-swapped router can be given the
        # threshold that keeps the strong share on this traffic; each is bounded
        # (routing.turn.MAX_ROUTING_CHARS), so this holds at most that many characters each
        self._recent: deque[str] = deque(maxlen=max(0, int(recent_prompts)))
        self._swap_lock = threading.Lock()
        explicit = "strong_model" in self._router_options or "weak_model" in self._router_options
        #: from a router's scores to a wanted route: a pair (threshold) or N models (cost weight)
        self.chooser: Chooser = new_chooser(
            self, self._lock, models=models, threshold=threshold, strong_fraction=strong_fraction,
            calibration_prompts=calibration_prompts, explicit_pair=explicit, cost_weight=cost_weight,
            spend_per_call=spend_per_call, max_cost_per_call=max_cost_per_call)
        self.chooser.start()

    # -- what the chooser holds, read as before ---------------------------------------------
    @property
    def models(self) -> dict[str, str] | None:
        """The route keys and the router's names for them (None: a strong/weak pair)."""
        return self.chooser.models

    @property
    def nway(self) -> bool:
        """Routing among N models (``models=``) rather than a strong/weak pair."""
        return isinstance(self.chooser, CostWeightChooser)

    @property
    def strong_fraction(self) -> float | None:
        return self.chooser.strong_fraction

    @property
    def cost_weight(self) -> float | None:
        return self.chooser.cost_weight

    @property
    def spend_per_call(self) -> float | None:
        return self.chooser.spend_per_call

    @property
    def max_cost_per_call(self) -> float | None:
        return self.chooser.max_cost_per_call

    # -- parts built on first use --------------------------------------------------
    @property
    def router(self) -> BaseRouter:
        if self._router is None:
            with self._lock:
                if self._router is None:
                    loaded = load_router(self._router_spec, **self._router_options)  # type: ignore[arg-type]
                    self._router = self.chooser.serve(loaded)
        return self._router  # type: ignore[return-value]

    def _install(self, router: BaseRouter) -> None:
        """Serve ``router`` from the next decision on (callers hold ``_lock``)."""
        self._router = self._router_spec = router

    def score_pair(self, strong_model: str | None, weak_model: str | None) -> None:
        """Score the pair the calls go to: ``strong_model``/``weak_model`` are the backends'
        model names (``gpt-4o``, ``openai:gpt-4o-mini``'s model part). A router that reads
        model names is re-paired now, or when it loads; one that does not know a name
        keeps its default pair (warned once). Routing among N models ignores this."""
        self.score_backends({"strong": strong_model, "weak": weak_model})

    def score_backends(self, models: Mapping[str, str | None]) -> None:
        """The backends' model names per route key (the call lifecycle passes them): a
        pair's router is re-paired to score them (:meth:`score_pair`); among N models
        each key already names its model."""
        with self._lock:
            self._router = self.chooser.score_backends(models, self._router)

    @property
    def scored_pair(self) -> list[str] | None:
        """``[strong, weak]`` as the router scores them (None: it reads no model names)."""
        self.router  # noqa: B018 - loads (and pairs) the router
        return self.chooser.scored_pair

    def cost_weight_in_force(self, scope: str | None = None, costs: Bounds | None = None) -> float:
        """N-way: the cost weight a call would use now: the online target's (or the fixed)
        weight, raised as the scope's budget runs out
        (:meth:`~.choosers.Chooser.cost_weight_in_force`)."""
        return self.chooser.cost_weight_in_force(None if scope is None else _scope_of(scope), costs)

    @property
    def spend(self) -> OnlineSpendController | None:
        """The controller holding ``spend_per_call`` (None otherwise)."""
        return self.chooser.spend

    def scores_inline(self, text: str | None = None) -> bool:
        """Whether to score on the caller's event loop: the router is loaded and says its
        scoring is that cheap (:attr:`BaseRouter.inline_scoring`), and ``text`` (the text
        to score, when given) is at most :data:`INLINE_SCORING_CHARS` long. A router's
        "cheap" holds per prompt of ordinary length: the static embedder's cost grows with
        the text (~0.75 ms per 1,000 characters; ~25 ms for a text at the routing bound,
        :data:`~.routing.turn.MAX_ROUTING_CHARS`), so a long text scores off the loop."""
        if text is not None and len(text) > INLINE_SCORING_CHARS:
            return False
        router = self._router
        if router is None:  # not loaded yet: only the model-free routers load in no time
            return is_model_free(self.router_name)
        return bool(getattr(router, "inline_scoring", False))

    @property
    def router_name(self) -> str:
        spec = self._router_spec
        return spec if isinstance(spec, str) else str(getattr(spec, "name", type(spec).__name__))

    @property
    def online(self) -> OnlineShareController | None:
        """The controller holding ``strong_fraction`` (None with a fixed threshold)."""
        return self.chooser.online

    def checkpoint(self) -> None:
        """Write the online controller's state to the store now (it is also written every
        ``checkpoint_every`` decisions). A no-op without a store or an online target."""
        if self.chooser.checkpoint():
            self._since_checkpoint = 0

    @property
    def threshold(self) -> float:
        """The base threshold now in force (before any budget adjustment); None N-way."""
        return self.chooser.threshold  # type: ignore[return-value]

    # -- deciding ------------------------------------------------------------------
    def decide(self, text: str, force: str | None = None, *, scope: str | None = None,
               turn_key: str | None = None, followup: bool = False, bounds: Bounds | None = None,
               dry_run: bool = False, costs: Bounds | None = None) -> Ticket:
        """Decide for one call. ``scope`` keys budgets and sticky routing (a thread or run
        id); ``turn_key`` identifies the user turn and ``followup`` says this call continues
        it (a tool-calling step), for ``steps="per_turn"``. ``bounds`` is the most each
        route can cost (USD), reserved against the budget. ``dry_run`` previews: nothing is
        reserved, observed or remembered. N-way, ``costs`` is each model's expected cost
        (USD) for this call, and ``force`` may name any model key."""
        from .routing.turn import bound_text  # lazily: the routing package imports this module

        self._check_route(force, allow_none=True)
        scope = _scope_of(scope)
        start = time.perf_counter()
        if isinstance(text, str):
            text = bound_text(text)  # scored and remembered bounded, whoever calls
        if force is None and followup and self.steps == "per_turn" and turn_key is not None:
            with self._lock:
                previous = self._turns.get((scope, turn_key))
            if previous is not None and previous.route in self.chooser.keys:
                admitted = self._admit(previous.route, scope, bounds, dry_run, costs)
                decision = previous.model_copy(update={
                    "route": admitted.route, "latency_ms": (time.perf_counter() - start) * 1000.0,
                    "step_policy": "per_turn:kept" if admitted.route == previous.route else "per_turn:kept:budget",
                    "budget": admitted.budget})
                return Ticket(decision, admitted.reservation)
        floor = self._sticky.get(scope) if self.steps == "sticky" else None
        choice = self.chooser.choose(text, force=force, scope=scope, floor=floor, costs=costs)
        admitted = self._admit(choice.wanted, scope, bounds, dry_run, costs)
        made_by = "forced" if force is not None else ("sticky:kept" if choice.kept else self.steps)
        decision = RoutingDecision(route=admitted.route, score=choice.scores[admitted.route], router=choice.router,
                                   latency_ms=(time.perf_counter() - start) * 1000.0, forced=force is not None,
                                   step_policy=made_by if admitted.route == choice.wanted else f"{made_by}:budget",
                                   budget=admitted.budget, **choice.fields)
        if dry_run:
            return Ticket(decision, None)
        if self.chooser.observe(choice, decision.route) and self.store is not None:
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.checkpoint_every:
                self.checkpoint()
        self._remember(text, scope, turn_key, decision)
        level = choice.levels.get(decision.route)
        if self.steps == "sticky" and level is not None:
            with self._lock:
                self._sticky[scope] = max(self._sticky.get(scope, 0.0), level)
                self._sticky.move_to_end(scope)
                while len(self._sticky) > self.max_scopes:
                    self._sticky.popitem(last=False)
        return Ticket(decision, admitted.reservation)

    def remember_turn(self, scope: str | None, turn_key: str | None, decision: RoutingDecision) -> None:
        """Make ``decision`` the one the turn's follow-up steps keep (an escalation: they
        stay on the model that answered)."""
        if turn_key is None:
            return
        with self._lock:
            key = (_scope_of(scope), turn_key)
            if key in self._turns:
                self._turns[key] = decision
                self._turns.move_to_end(key)

    def _remember(self, text: str, scope: str, turn_key: str | None, decision: RoutingDecision) -> None:
        if self._recent.maxlen:
            self._recent.append(text)
        if turn_key is not None:
            with self._lock:
                self._turns[(scope, turn_key)] = decision
                self._turns.move_to_end((scope, turn_key))
                while len(self._turns) > min(10_000, self.max_scopes):
                    self._turns.popitem(last=False)

    def _check_route(self, route: Any, *, allow_none: bool = False) -> None:
        if route is None and allow_none:
            return
        self.chooser.check_route(route)

    # -- hot swap ----------------------------------------------------------------------
    def swap_router(self, router: BaseRouter | str, *, prompts: Sequence[str] | None = None) -> SwapReport:
        """Serve ``router`` from the next decision on, without a restart, keeping the share
        of traffic sent strong: scores of a new router mean something else, so the
        threshold is re-set on recent prompts (``prompts``, else the last
        ``recent_prompts`` routed texts). With ``strong_fraction`` the online controller
        restarts from the new router's scores of them; with a fixed threshold the new
        threshold sends the same share of them strong as the old one did. Among N models
        the new router must know every model, and the spend controller starts a new
        window. Calls already in flight finish on the old router's decision."""
        new = resolve_router(router)
        with self._swap_lock:
            sample = list(prompts) if prompts is not None else list(self._recent)
            return self.chooser.swap(self.router, new, sample, self._install)

    def admit(self, route: str, *, scope: str | None = None, reason: str = "forced",
              bounds: Bounds | None = None, dry_run: bool = False, costs: Bounds | None = None,
              escalated_from: str | None = None, degrade: bool = True) -> Ticket:
        """A route chosen without scoring (forced by the caller, nothing to score, or an
        escalation), still admitted by the budget and reported like any decision.
        ``degrade=False``: refuse (:class:`BudgetExceeded`) rather than admit the call on
        a cheaper route (an escalation that can only go back down is pointless)."""
        self._check_route(route)
        scope = _scope_of(scope)
        admitted = self._admit(route, scope, bounds, dry_run, costs)
        if admitted.route != route and not degrade:
            if admitted.reservation is not None:
                self.budget.settle(admitted.reservation, None, succeeded=False)  # type: ignore[union-attr]
            raise BudgetExceeded(f"budget for scope {scope!r}: a {route} call does not fit")
        decision = RoutingDecision(route=admitted.route, score=None, router=self.router_name,
                                   latency_ms=0.0, forced=reason == "forced",
                                   step_policy=reason if admitted.route == route else f"{reason}:budget",
                                   budget=admitted.budget, escalated_from=escalated_from,
                                   **self.chooser.unscored_fields(costs))
        return Ticket(decision, admitted.reservation)

    def escalated(self, from_route: str, to_route: str) -> None:
        """A call decided here on ``from_route`` (scored, so the online controller saw it)
        was escalated to ``to_route``: a held strong share counts it as a strong call, so
        ``strong_fraction`` holds the share of calls answered strong, escalations
        included (route, then verify; see :class:`~.choosers.CascadeShareController`)."""
        if self.chooser.escalated(from_route, to_route) and self.store is not None:
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.checkpoint_every:
                self.checkpoint()

    def _admit(self, route: str, scope: str, bounds: Bounds | None = None, dry_run: bool = False,
               costs: Bounds | None = None) -> "_Admitted":
        """The budget sees two kinds of call: one on the route's fallback (the chooser's
        :meth:`~.choosers.Chooser.fallback`, "weak") and every other ("strong": it may be
        downgraded to the fallback). A pair's routes are those kinds."""
        if self.budget is None:
            return _Admitted(route, None, None)
        fallback = self.chooser.fallback(route, costs)
        kind = "weak" if route == fallback else "strong"
        kind_bounds = None if not bounds else {"strong": float(bounds.get(route, 0.0)),
                                               "weak": float(bounds.get(fallback, 0.0))}

        def named(chosen: str) -> str:
            return route if chosen == kind else fallback

        if dry_run:
            chosen = self.budget.fits(scope, kind, kind_bounds)  # type: ignore[arg-type]
            if chosen is None:
                raise BudgetExceeded(f"budget for scope {scope!r} exhausted: a {route} call would not fit")
            return _Admitted(named(chosen), None, self.budget.state(scope).model_dump())
        reservation, state = self.budget.reserve_with_state(scope, kind, kind_bounds)  # type: ignore[arg-type]
        return _Admitted(named(reservation.route), reservation, state.model_dump())

    async def adecide(self, text: str, force: str | None = None, **kwargs: Any) -> Ticket:
        """:meth:`decide` off the event loop (scoring embeds the prompt: CPU work)."""
        return await asyncio.to_thread(self.decide, text, force, **kwargs)

    def budget_state(self, decision: RoutingDecision) -> dict[str, Any] | None:
        """The budget of the decision's scope now (after its call settled), or None."""
        if self.budget is None or decision.budget is None:
            return None
        return self.budget.state(decision.budget["scope"]).model_dump()

    def settle(self, ticket: Ticket, cost_usd: float | None, *, succeeded: bool = True,
               entry: Any = None) -> dict[str, Any] | None:
        """Record what the routed call cost (``succeeded=False``: it failed, nothing spent)
        and settle its budget reservation, writing the call's ledger ``entry`` in the same
        step (the lifecycle passes one only when the budget settles in its store). Returns
        the scope's budget state after, or None without a budget."""
        spend = self.chooser.spend
        if spend is not None and succeeded:
            spend.spent(cost_usd)
        if self.budget is not None and ticket.reservation is not None:
            return self.budget.settle(ticket.reservation, cost_usd, succeeded=succeeded, entry=entry).model_dump()
        return None

    def close(self) -> None:
        """Checkpoint the online controller (the store stays open: it may be shared)."""
        self.checkpoint()


@dataclass
class _Admitted:
    route: str
    reservation: Reservation | None
    budget: dict[str, Any] | None
