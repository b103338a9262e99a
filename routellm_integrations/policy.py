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

import numpy as np
from pydantic import BaseModel

from .budgets import GLOBAL_SCOPE, Budget, Reservation
from .calibration import reference_prompts, reference_threshold, threshold_for_strong_fraction
from .choice import check_cost_weight, choose
from .decision import Route, RoutingDecision
from .errors import BudgetExceeded, InvalidRouteError, InvalidThresholdError, RouterOptionError
from .online import OnlineShareController, OnlineSpendController
from .routers.base import BaseRouter, validate_threshold
from .routers.pair import ScoredPair, score_pair
from .routers.registry import check_router_name, is_model_free, load_router
from .state import BudgetTracker, open_store
from .validation import scrub_surrogates

StepPolicy = Literal["per_turn", "every_step", "sticky"]
#: the share of calls sent to the strong model when neither ``threshold`` nor
#: ``strong_fraction`` is given: held on live traffic, so it is the share your traffic gets
#: whatever its mix (a fixed threshold sends a different share of every kind of traffic)
DEFAULT_STRONG_FRACTION = 0.3
Bounds = Mapping[str, float]
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
        if threshold is not None and strong_fraction is not None:
            raise InvalidThresholdError("give threshold= or strong_fraction=, not both")
        self.models = _check_nway(models, threshold, strong_fraction, cost_weight, spend_per_call, max_cost_per_call)
        if steps not in ("per_turn", "every_step", "sticky"):
            raise ValueError(f"steps must be 'per_turn', 'every_step' or 'sticky', got {steps!r}")
        if not isinstance(router, (str, BaseRouter)) and not hasattr(router, "score"):
            raise TypeError(f"router must be a name, a folder or a router object, got {type(router).__name__}")
        if isinstance(router, str):
            check_router_name(router)  # a misspelt router fails here, not at the first call
        self._router_spec = router
        self._router: BaseRouter | None = router if not isinstance(router, str) else None
        self._router_options = dict(router_options or {})
        if threshold is None and strong_fraction is None and models is None:
            strong_fraction = DEFAULT_STRONG_FRACTION
        self._fixed = validate_threshold(threshold) if threshold is not None else None
        self.strong_fraction = (validate_threshold(strong_fraction, "strong_fraction")
                                if strong_fraction is not None else None)
        self._pair_names: tuple[str | None, str | None] = (None, None)
        self._scored_pair: list[str] | None = None
        self._scored_pair_source: str | None = None
        self._calibration_prompts = list(calibration_prompts) if calibration_prompts else None
        self._online: OnlineShareController | None = None
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
        self._sticky: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        # recent routed texts (memory only), so a hot-swapped router can be given the
        # threshold that keeps the strong share on this traffic
        self._recent: deque[str] = deque(maxlen=max(0, int(recent_prompts)))
        self._swap_lock = threading.Lock()
        self.cost_weight = check_cost_weight(cost_weight) if cost_weight is not None else (
            0.0 if self.models is not None and spend_per_call is None else None)
        self.spend_per_call = spend_per_call
        self.max_cost_per_call = max_cost_per_call
        self._spend: OnlineSpendController | None = None
        self._floor: OrderedDict[str, float] = OrderedDict()  # sticky N-way: the dearest cost reached per scope
        if self.models is not None:
            self._columns = self._nway_columns(self.router)
            if spend_per_call is not None:
                self._spend = self._restore_spend() or OnlineSpendController(spend_per_call,
                                                                             warm_cost_weight=self.cost_weight)

    # -- parts built on first use --------------------------------------------------
    @property
    def router(self) -> BaseRouter:
        if self._router is None:
            with self._lock:
                if self._router is None:
                    loaded = load_router(self._router_spec, **self._router_options)  # type: ignore[arg-type]
                    self._serve(self._paired(loaded))
        return self._router  # type: ignore[return-value]

    def _paired(self, router: BaseRouter) -> ScoredPair:
        """``router`` scoring the backends' pair (see :meth:`score_pair`); N-way unchanged."""
        if self.nway:
            return ScoredPair(router, None, None)
        explicit = "strong_model" in self._router_options or "weak_model" in self._router_options
        return score_pair(router, *self._pair_names, explicit=explicit)

    def _serve(self, scored: ScoredPair) -> None:
        """Serve ``scored.router`` and report its pair, together (callers hold ``_lock``)."""
        self._router = scored.router
        self._scored_pair, self._scored_pair_source = scored.pair, scored.source

    def score_pair(self, strong_model: str | None, weak_model: str | None) -> None:
        """Score the pair the calls go to: ``strong_model``/``weak_model`` are the backends'
        model names (``gpt-4o``, ``openai:gpt-4o-mini``'s model part). A router that reads
        model names is re-paired now, or when it loads; one that does not know a name
        keeps its default pair (warned once). Routing among N models ignores this."""
        self._pair_names = (strong_model, weak_model)
        with self._lock:
            if self._router is not None:
                self._serve(self._paired(self._router))

    @property
    def scored_pair(self) -> list[str] | None:
        """``[strong, weak]`` as the router scores them (None: it reads no model names)."""
        self.router  # noqa: B018 - loads (and pairs) the router
        return self._scored_pair

    def _pair_fields(self) -> dict[str, Any]:
        if self.nway:
            return {}
        return {"strong_fraction": self.strong_fraction, "scored_pair": self._scored_pair,
                "scored_pair_source": self._scored_pair_source}

    @property
    def nway(self) -> bool:
        """Routing among N models (``models=``) rather than a strong/weak pair."""
        return self.models is not None

    def _nway_columns(self, router: Any) -> Any:
        """The router's names for our models (an unknown one raises, with a hint)."""
        from .routers.quality import supports_quality

        if not supports_quality(router):
            raise RouterOptionError(f"router {getattr(router, 'name', type(router).__name__)!r} scores a strong/weak "
                                    "pair; routing among N models needs a router with quality(prompts, models), "
                                    "such as 'quality'")
        names = list(self.models.values())  # type: ignore[union-attr]
        columns = getattr(router, "columns", None)
        if callable(columns):
            columns(names)  # raises UnknownModelError with a "did you mean"
        return names

    def cost_weight_in_force(self, scope: str | None = None, costs: Bounds | None = None) -> float:
        """N-way: the cost weight a call would use now: the online target's (or the fixed)
        weight, raised as the scope's budget runs out. Below ``tighten_below`` of the cap
        left (``f`` of it, ``f / tighten_below = r``) it becomes ``w / r + (1/r - 1) / c``,
        ``c`` the call's mean expected cost (``costs``): a dollar is worth ever more quality,
        smoothly, until only the cheapest model is worth calling."""
        base = self._spend.cost_weight() if self._spend is not None else float(self.cost_weight or 0.0)
        if self.budget is None or scope is None:
            return base
        fraction = self.budget.state(_scope_of(scope)).remaining_fraction
        knee = self.budget.budget.tighten_below
        if fraction >= knee or knee <= 0:
            return base
        r = max(fraction / knee, 1e-9)
        typical = float(np.mean(list(costs.values()))) if costs else 0.0
        return base / r + ((1.0 / r - 1.0) / typical if typical > 0 else 0.0)

    @property
    def spend(self) -> OnlineSpendController | None:
        """The controller holding ``spend_per_call`` (None otherwise)."""
        return self._spend

    def scores_inline(self) -> bool:
        """Whether to score on the caller's event loop: the router is loaded and says its
        scoring is that cheap (:attr:`BaseRouter.inline_scoring`)."""
        router = self._router
        if router is None:  # not loaded yet: only the model-free routers load in no time
            return is_model_free(self.router_name)
        return bool(getattr(router, "inline_scoring", False))

    def _cheap_to_score(self) -> bool:
        """Whether scoring the reference mix (240 prompts) costs next to nothing:
        :meth:`scores_inline` once the router is loaded (an embedder that says it will score
        inline, such as the static table, is loaded by a first score)."""
        if not is_model_free(self.router_name):
            router = self.router
            if not getattr(router, "inline_scoring", False) and hasattr(getattr(router, "embedder", None),
                                                                         "inline_scoring"):
                router.score(list(reference_prompts()[:1]))
        return self.scores_inline()

    @property
    def router_name(self) -> str:
        spec = self._router_spec
        return spec if isinstance(spec, str) else str(getattr(spec, "name", type(spec).__name__))

    @property
    def online(self) -> OnlineShareController | None:
        """The controller holding ``strong_fraction`` (None with a fixed threshold)."""
        if self.strong_fraction is not None and self._online is None:
            warm = None
            if self._calibration_prompts:
                warm = threshold_for_strong_fraction(self.router.score(self._calibration_prompts),
                                                     self.strong_fraction)
            elif self._cheap_to_score():  # start from the share on the reference mix
                warm = reference_threshold(self.router, self.strong_fraction)
            restored = self._restore_online()
            with self._lock:
                if self._online is None:
                    self._online = restored or OnlineShareController(self.strong_fraction, warm_threshold=warm)
        return self._online

    # -- the online controller's checkpoint in the store ------------------------------------
    @property
    def _online_store_key(self) -> str:
        return self.online_key or f"{self.router_name}:share{self.strong_fraction}"

    def _restore_online(self) -> OnlineShareController | None:
        """The controller as the store last saw it (e.g. before a restart), when it holds
        the same target; a checkpoint that fails validation raises, naming the field."""
        if self.store is None:
            return None
        state = self.store.load_online(self._online_store_key)
        if state is None:
            return None
        restored = OnlineShareController.from_state_dict(state)
        return restored if restored.target == self.strong_fraction else None

    def checkpoint(self) -> None:
        """Write the online controller's state to the store now (it is also written every
        ``checkpoint_every`` decisions). A no-op without a store or a target share."""
        if self.store is not None and self._online is not None:
            self.store.save_online(self._online_store_key, self._online.state_dict())
            self._since_checkpoint = 0
        if self.store is not None and self._spend is not None:
            self.store.save_online(self._spend_store_key, self._spend.state_dict())
            self._since_checkpoint = 0

    @property
    def _spend_store_key(self) -> str:
        return self.online_key or f"{self.router_name}:spend{self.spend_per_call}:{','.join(self.models or ())}"

    def _restore_spend(self) -> OnlineSpendController | None:
        if self.store is None:
            return None
        state = self.store.load_online(self._spend_store_key)
        if state is None:
            return None
        restored = OnlineSpendController.from_state_dict(state)
        return restored if restored.target == self.spend_per_call else None

    @property
    def threshold(self) -> float:
        """The base threshold now in force (before any budget adjustment); None N-way."""
        if self.nway:
            return None  # type: ignore[return-value]
        return self._fixed if self._fixed is not None else self.online.threshold()  # type: ignore[union-attr]

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
        self._check_route(force, allow_none=True)
        scope = _scope_of(scope)
        start = time.perf_counter()
        if force is None and followup and self.steps == "per_turn" and turn_key is not None:
            with self._lock:
                previous = self._turns.get((scope, turn_key))
            if previous is not None and (not self.nway or previous.route in self.models):  # type: ignore[operator]
                admitted = self._admit(previous.route, scope, bounds, dry_run, costs)
                decision = previous.model_copy(update={
                    "route": admitted.route, "latency_ms": (time.perf_counter() - start) * 1000.0,
                    "step_policy": "per_turn:kept" if admitted.route == previous.route else "per_turn:kept:budget",
                    "budget": admitted.budget})
                return Ticket(decision, admitted.reservation)
        if self.nway:
            return self._decide_nway(text, force, scope, turn_key, bounds, dry_run, costs, start)
        router = self.router
        score = float(np.clip(router.score([text])[0], 0.0, 1.0))
        base = self.threshold
        threshold = self.budget.threshold_in_force(base, scope) if self.budget is not None else base
        if force is not None:
            wanted, made_by = force, "forced"
        elif self.steps == "sticky" and scope in self._sticky:
            wanted, made_by = "strong", "sticky:kept"
        else:
            wanted, made_by = ("strong" if score >= threshold else "weak"), self.steps
        admitted = self._admit(wanted, scope, bounds, dry_run)
        decision = RoutingDecision(route=admitted.route, score=score, threshold=threshold, router=router.name,
                                   latency_ms=(time.perf_counter() - start) * 1000.0, forced=force is not None,
                                   step_policy=made_by if admitted.route == wanted else f"{made_by}:budget",
                                   budget=admitted.budget, **self._pair_fields())
        if dry_run:
            return Ticket(decision, None)
        if self._online is not None and force is None:
            self._online.observe(score, decision.route == "strong")
            if self.store is not None:
                self._since_checkpoint += 1
                if self._since_checkpoint >= self.checkpoint_every:
                    self.checkpoint()
        self._remember(text, scope, turn_key, decision)
        with self._lock:
            if self.steps == "sticky" and decision.route == "strong":
                self._sticky[scope] = None
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

    def _decide_nway(self, text: str, force: str | None, scope: str, turn_key: str | None, bounds: Bounds | None,
                     dry_run: bool, costs: Bounds | None, start: float) -> Ticket:
        keys = list(self.models)  # type: ignore[arg-type]
        c = _costs_of(keys, costs)
        router = self.router
        q = np.asarray(router.quality([text], self._columns), dtype=np.float64).reshape(len(keys))
        weight = self.cost_weight_in_force(scope, costs)
        floor = self._floor.get(scope) if self.steps == "sticky" else None
        if force is not None:
            wanted, made_by = force, "forced"
        else:
            allowed = c.copy()
            if floor is not None:  # sticky: never below the dearest model this scope reached
                allowed = np.where(c >= floor * (1 - 1e-9), c, np.inf)
                if not np.isfinite(allowed).any():
                    allowed = c
            i = int(choose(np.where(np.isfinite(allowed), q, -np.inf)[None, :], c[None, :], weight,
                           self.max_cost_per_call)[0])
            free = int(choose(q[None, :], c[None, :], weight, self.max_cost_per_call)[0]) if floor is not None else i
            wanted, made_by = keys[i], ("sticky:kept" if free != i else self.steps)
        admitted = self._admit(wanted, scope, bounds, dry_run, costs)
        k = keys.index(admitted.route)
        decision = RoutingDecision(
            route=admitted.route, score=float(np.clip(q[k], 0.0, 1.0)), threshold=None, router=router.name,
            latency_ms=(time.perf_counter() - start) * 1000.0, forced=force is not None,
            step_policy=made_by if admitted.route == wanted else f"{made_by}:budget", budget=admitted.budget,
            qualities={key: float(v) for key, v in zip(keys, q)},
            expected_costs_usd={key: float(v) for key, v in zip(keys, c)}, cost_weight=float(weight))
        if dry_run:
            return Ticket(decision, None)
        if self._spend is not None and force is None:
            self._spend.observe(q, c)
            if self.store is not None:
                self._since_checkpoint += 1
                if self._since_checkpoint >= self.checkpoint_every:
                    self.checkpoint()
        self._remember(text, scope, turn_key, decision)
        if self.steps == "sticky":
            with self._lock:
                self._floor[scope] = max(self._floor.get(scope, 0.0), float(c[k]))
                self._floor.move_to_end(scope)
                while len(self._floor) > self.max_scopes:
                    self._floor.popitem(last=False)
        return Ticket(decision, admitted.reservation)

    def _check_route(self, route: Any, *, allow_none: bool = False) -> None:
        if route is None and allow_none:
            return
        if self.nway:
            if route not in self.models:  # type: ignore[operator]
                raise InvalidRouteError(f"a forced route must be one of the models {list(self.models)}, "  # type: ignore[arg-type]
                                        f"got {route!r}")
        elif route not in ("strong", "weak"):
            raise InvalidRouteError(f"a forced route must be 'strong' or 'weak', got {route!r}")

    # -- hot swap ----------------------------------------------------------------------
    def swap_router(self, router: BaseRouter | str, *, prompts: Sequence[str] | None = None) -> "SwapReport":
        """Serve ``router`` from the next decision on, without a restart, keeping the share
        of traffic sent strong: scores of a new router mean something else, so the
        threshold is re-set on recent prompts (``prompts``, else the last
        ``recent_prompts`` routed texts). With ``strong_fraction`` the online controller
        restarts from the new router's scores of them; with a fixed threshold the new
        threshold sends the same share of them strong as the old one did. Calls already
        in flight finish on the old router's decision."""
        if self.nway:
            return self._swap_nway(resolve_router(router))
        scored = self._paired(resolve_router(router))
        new = scored.router
        with self._swap_lock:
            sample = list(prompts) if prompts is not None else list(self._recent)
            old_router = self.router
            old_threshold = self.threshold
            new_scores = np.asarray(new.score(sample), dtype=np.float64) if sample else np.zeros(0)
            if self.strong_fraction is not None:
                share = self.strong_fraction
            elif sample:
                share = float(np.mean(np.asarray(old_router.score(sample)) >= old_threshold))
            else:
                share = None
            new_threshold = (threshold_for_strong_fraction(new_scores, share) if sample and share is not None
                             else old_threshold)
            with self._lock:
                self._serve(scored)
                self._router_spec = new
                if self.strong_fraction is not None:
                    self._online = OnlineShareController(self.strong_fraction, warm_threshold=new_threshold)
                    self._online.seed(new_scores)
                else:
                    self._fixed = new_threshold
            return SwapReport(old_router=old_router.name, new_router=new.name, old_threshold=old_threshold,
                              new_threshold=new_threshold, strong_share=share, n_prompts=len(sample),
                              share_kept=bool(sample) and share is not None)

    def _swap_nway(self, new: BaseRouter) -> "SwapReport":
        """N-way: the new router must know every model; the spend controller's window of
        qualities is started afresh (the old router's predictions mean something else)."""
        with self._swap_lock:
            columns = self._nway_columns(new)
            old = self.router
            with self._lock:
                self._router, self._router_spec, self._columns = new, new, columns
            if self._spend is not None:
                self._spend.forget_window()
            return SwapReport(old_router=old.name, new_router=new.name, old_threshold=None, new_threshold=None,
                              strong_share=None, n_prompts=0, share_kept=False)

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
        if self.nway:
            keys = list(self.models)  # type: ignore[arg-type]
            c = _costs_of(keys, costs) if costs is not None else None
            base = None
            extra: dict[str, Any] = {"cost_weight": None, "expected_costs_usd": None if c is None else
                                     {k: float(v) for k, v in zip(keys, c)}}
        else:
            base = self._fixed if self._fixed is not None else self.online.threshold()  # type: ignore[union-attr]
            extra = self._pair_fields()
        decision = RoutingDecision(route=admitted.route, score=None, threshold=base, router=self.router_name,
                                   latency_ms=0.0, forced=reason == "forced",
                                   step_policy=reason if admitted.route == route else f"{reason}:budget",
                                   budget=admitted.budget, escalated_from=escalated_from, **extra)
        return Ticket(decision, admitted.reservation)

    def _admit(self, route: str, scope: str, bounds: Bounds | None = None, dry_run: bool = False,
               costs: Bounds | None = None) -> "_Admitted":
        if self.budget is None:
            return _Admitted(route, None, None)
        kind, kind_bounds, fallback = route, bounds, route
        if self.nway:
            # the budget sees two kinds: the call's cheapest candidate (its fallback, "weak")
            # and every dearer one ("strong": it may be downgraded to the fallback)
            keys = list(self.models)  # type: ignore[arg-type]
            fallback = keys[int(np.argmin(_costs_of(keys, costs)))] if costs is not None else route
            kind = "weak" if route == fallback else "strong"
            kind_bounds = None if bounds is None else {"strong": float(bounds.get(route, 0.0)),
                                                       "weak": float(bounds.get(fallback, 0.0))}

        def named(chosen: str) -> str:
            return chosen if not self.nway else (route if chosen == kind else fallback)

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
        if self._spend is not None and succeeded:
            self._spend.spent(cost_usd)
        if self.budget is not None and ticket.reservation is not None:
            return self.budget.settle(ticket.reservation, cost_usd, succeeded=succeeded, entry=entry).model_dump()
        return None

    def close(self) -> None:
        """Checkpoint the online controller (the store stays open: it may be shared)."""
        self.checkpoint()


def _check_nway(models: Mapping[str, str] | None, threshold: float | None, strong_fraction: float | None,
                cost_weight: float | None, spend_per_call: float | None,
                max_cost_per_call: float | None) -> dict[str, str] | None:
    """The N-way options, checked together: a typed error names the one that is wrong."""
    import math

    if models is None:
        given = [n for n, v in (("cost_weight", cost_weight), ("spend_per_call", spend_per_call),
                                ("max_cost_per_call", max_cost_per_call)) if v is not None]
        if given:
            raise InvalidThresholdError(f"{', '.join(given)} choose among N models: give models= too "
                                        "(a strong/weak pair routes by threshold or strong_fraction)")
        return None
    if not isinstance(models, Mapping) or len(models) < 2:
        raise InvalidRouteError(f"models must map at least two route keys to model names, got {models!r}")
    for key, name in models.items():
        if not isinstance(key, str) or not key.strip():
            raise InvalidRouteError(f"a model key must be a non-empty string, got {key!r}")
        if not isinstance(name, str) or not name.strip():
            raise InvalidRouteError(f"model {key!r}: the router's name for it must be a non-empty string, got {name!r}")
    if threshold is not None or strong_fraction is not None:
        raise InvalidThresholdError("with models= (N-way routing) give cost_weight=, spend_per_call= or "
                                    "max_cost_per_call=, not threshold/strong_fraction")
    if cost_weight is not None:
        check_cost_weight(cost_weight)
    for name, value in (("spend_per_call", spend_per_call), ("max_cost_per_call", max_cost_per_call)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value <= 0):
            raise InvalidThresholdError(f"{name} must be a positive number of USD, got {value!r}")
    return dict(models)


def _costs_of(keys: list[str], costs: Bounds | None) -> np.ndarray:
    if costs is None:
        raise InvalidRouteError("routing among N models needs each model's expected cost (costs=)")
    missing = [k for k in keys if k not in costs]
    if missing:
        raise InvalidRouteError(f"no expected cost for model(s) {missing}")
    c = np.array([float(costs[k]) for k in keys], dtype=np.float64)
    if not np.isfinite(c).all() or (c < 0).any():
        raise InvalidRouteError(f"expected costs must be finite and >= 0, got {dict(costs)!r}")
    return c


class SwapReport(BaseModel):
    """What a hot swap changed: the router, and the threshold re-set to keep the share."""

    old_router: str
    new_router: str
    #: None when routing among N models (no threshold applies)
    old_threshold: float | None
    new_threshold: float | None
    #: the share of the sample prompts sent strong before and after (None: no sample)
    strong_share: float | None
    n_prompts: int
    #: False when there were no recent prompts to re-calibrate on (threshold unchanged)
    share_kept: bool


@dataclass
class _Admitted:
    route: str
    reservation: Reservation | None
    budget: dict[str, Any] | None
