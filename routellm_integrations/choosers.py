"""From a router's scores to a wanted route: a strong/weak pair is the two-model case.

A :class:`~routellm_integrations.policy.RoutingPolicy` owns one chooser and asks it, for
each call, which route the prompt wants; the policy then admits that route by the
budget, keeps turns and sticky scopes, and records the decision. The chooser owns the
rest: its routes (``keys``), the call's fallback when money runs out, the controller
that holds its target on live traffic (checkpointed in the store), what a decision
reports, and how a hot-swapped router is brought in.

- :class:`ThresholdChooser`: two routes, ``("strong", "weak")``; strong when the score
  reaches a threshold, fixed or held at a share of strong calls online
  (:class:`CascadeShareController`: the share counts escalations, so a pair with
  escalation checks routes, then verifies: the prompts the router is surest of go
  straight to the strong model, the rest to the weak one, whose failed answers fill the
  share). A router that reads model names is re-paired
  to score the backends' pair (:func:`~.routers.pair.score_pair`).
- :class:`CostWeightChooser`: N routes, one per model; the one maximising ``quality -
  cost_weight * expected_cost`` (:func:`~.choice.choose`), the weight fixed or held at a
  spend per call online (:class:`~.online.OnlineSpendController`).
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

import numpy as np
from pydantic import BaseModel

from .calibration import reference_prompts, reference_threshold, threshold_for_strong_fraction
from .choice import check_cost_weight, choose
from .errors import InvalidRouteError, InvalidThresholdError, RouterOptionError
from .online import OnlineShareController, OnlineSpendController
from .routers.base import BaseRouter, validate_threshold
from .routers.pair import score_pair
from .routers.registry import is_model_free

if TYPE_CHECKING:
    from .state import BudgetTracker

#: the share of calls sent to the strong model when neither ``threshold`` nor
#: ``strong_fraction`` is given: held on live traffic, so it is the share your traffic gets
#: whatever its mix (a fixed threshold sends a different share of every kind of traffic)
DEFAULT_STRONG_FRACTION = 0.3
Bounds = Mapping[str, float]


class Host(Protocol):
    """What a chooser reads from the policy that owns it (the router loads there, lazily)."""

    budget: "BudgetTracker | None"
    store: Any
    online_key: str | None

    @property
    def router(self) -> BaseRouter: ...

    @property
    def router_name(self) -> str: ...

    def scores_inline(self, text: str | None = None) -> bool: ...


@dataclass(frozen=True)
class Choice:
    """What a chooser wants for one prompt, before the budget admits it."""

    #: the route the prompt wants
    wanted: str
    #: an earlier decision of the scope kept it up (sticky), not this prompt's score
    kept: bool
    #: the name of the router that scored it
    router: str
    #: the score a decision reports, per route it may be admitted on
    scores: dict[str, float]
    #: sticky routing: how far up each route goes (a sticky scope never goes below its
    #: highest); a route absent here leaves the scope where it was
    levels: dict[str, float]
    #: the fields the decision reports besides route and score (``threshold`` always)
    fields: dict[str, Any]
    #: the caller forced the route: the controller learns nothing from it
    forced: bool = False
    #: what :meth:`Chooser.observe` feeds the controller
    observation: Any = field(default=None, repr=False)


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


class CascadeShareController(OnlineShareController):
    """A held strong share that counts a cascade's escalations: *route, then verify*.

    With escalation checks, a call the router sent to the weak model may still end on the
    strong one. The target share (``strong_fraction``, the one knob) is then the share
    of calls answered strong, direct or escalated: the router sends its top ``d`` of
    prompts straight to the strong model, ``d = (target - e) / (1 - e)``, ``e`` the
    recent escalation rate of weak calls (a moving estimate over ``window`` decisions;
    0 until ``min_samples`` weak calls were seen), and each escalation counts as a strong
    call in the realised share and the controller's integral term. Without escalations
    it is the plain :class:`~.online.OnlineShareController`. A checkpoint keeps the
    counts, the integral term and the escalation rate's moving counts, so a restarted
    process sends the same share straight to the strong model."""

    def __init__(self, target: float, **kwargs: Any) -> None:
        super().__init__(target, **kwargs)
        self._weak_n = 0.0
        self._escalated_n = 0.0
        self._escalations = 0

    @property
    def escalation_rate(self) -> float | None:
        """The recent share of weak calls that were escalated (None: too few seen)."""
        with self._lock:
            return self._rate()

    def _rate(self) -> float | None:
        return min(1.0, self._escalated_n / self._weak_n) if self._weak_n >= self.min_samples else None

    @property
    def direct_target(self) -> float:
        """The share of calls sent straight to the strong model now."""
        with self._lock:
            return self._direct()

    def _direct(self) -> float:
        e = self._rate() or 0.0
        return 0.0 if e >= 1.0 else float(np.clip((self.target - e) / (1.0 - e), 0.0, self.target))

    @property
    def escalations(self) -> int:
        """Escalations counted since this controller was built (or restored)."""
        with self._lock:
            return self._escalations

    def threshold(self) -> float:
        with self._lock:
            if len(self._scores) < self.min_samples:
                if self.warm_threshold is not None and not self._escalations:
                    return self.warm_threshold
                if not self._scores:
                    return 1.0 - self._direct()
            direct = self._direct()
            if direct <= 0.0:
                return 1.0
            base = float(np.quantile(np.fromiter(self._scores, dtype=np.float64), 1.0 - direct))
            return float(np.clip(base + self._offset, 0.0, 1.0))

    def observe(self, score: float, strong: bool) -> None:
        super().observe(score, strong)
        with self._lock:
            decay = 1.0 - 1.0 / self.window
            self._weak_n *= decay
            self._escalated_n *= decay
            self._weak_n += 0.0 if strong else 1.0

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        with self._lock:
            state.update(weak_n=self._weak_n, escalated_n=self._escalated_n)
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "CascadeShareController":
        restored = super().from_state_dict(state)  # validates the checkpoint
        assert isinstance(restored, CascadeShareController)
        restored._weak_n = float(state.get("weak_n", 0.0))
        restored._escalated_n = float(state.get("escalated_n", 0.0))
        return restored

    def escalated(self) -> None:
        """A call this controller saw go weak was escalated to the strong model: it counts
        as a strong call (the realised share, the integral term, the escalation rate)."""
        with self._lock:
            self._escalations += 1
            self._escalated_n += 1.0
            self._strong = min(self._seen, self._strong + 1)
            if len(self._scores) >= self.min_samples:
                self._offset += self.gain


class Chooser(ABC):
    """One interface for a pair and for N models: the policy never asks which it has.

    The options a chooser does not take read as None (a pair has no ``cost_weight``,
    N models no ``strong_fraction``), so a caller reads them the same way for both."""

    #: the route keys, in the order the caller named them (a pair: strong first)
    keys: list[str]
    #: whether each call must come with every route's expected cost (``costs=``)
    needs_costs: bool = False
    #: the keys a call's record lists as its candidates (None: a pair's routes are roles)
    candidates: list[str] | None = None
    models: dict[str, str] | None = None
    strong_fraction: float | None = None
    cost_weight: float | None = None
    spend_per_call: float | None = None
    max_cost_per_call: float | None = None

    def __init__(self, host: Host, lock: threading.Lock) -> None:
        # the policy's lock: the router it serves and what the chooser reports of it change together
        self.host, self._lock = host, lock

    # -- the routes ---------------------------------------------------------------------
    def check_route(self, route: Any) -> None:
        """Raise :class:`InvalidRouteError` unless ``route`` is one of :attr:`keys`."""
        if route not in self.keys:
            raise InvalidRouteError(f"a forced route must be {self._expected()}, got {route!r}")

    def _expected(self) -> str:
        return f"one of the models {self.keys}"

    @abstractmethod
    def fallback(self, route: str, costs: Bounds | None) -> str:
        """The route a call asking for ``route`` falls back to when money runs out (the
        budget's "weak" kind; every other route counts as "strong")."""

    @abstractmethod
    def cheapest(self, nominal: Mapping[str, float]) -> str:
        """The bottom route, given each route's nominal price (reports call it "weak")."""

    @abstractmethod
    def reference(self, nominal: Mapping[str, float], given: str | None) -> str:
        """The route savings are counted against (``given``, checked, or the default)."""

    @abstractmethod
    def next_up(self, route: str, qualities: Mapping[str, float], costs: Bounds | None) -> str | None:
        """Where an escalation of a call on ``route`` goes (None at the top)."""

    # -- the router ---------------------------------------------------------------------
    def serve(self, router: BaseRouter) -> BaseRouter:
        """``router``, just loaded, as this chooser serves it (a pair re-pairs it to score
        the backends' models). The caller holds the policy's lock and installs the result,
        so the router and what the chooser reports of it change together."""
        return router

    def score_backends(self, models: Mapping[str, str | None], router: BaseRouter | None) -> BaseRouter | None:
        """The backends' model names per route key arrived: the router (when loaded) as
        served for them (among N models each key already names its model: unchanged).
        The caller holds the policy's lock."""
        return router

    @property
    def scored_pair(self) -> list[str] | None:
        return None

    def start(self) -> None:
        """Called once the policy is built: what must fail at construction rather than at
        the first call fails here."""

    # -- choosing -----------------------------------------------------------------------
    @abstractmethod
    def choose(self, text: str, *, force: str | None, scope: str, floor: float | None,
               costs: Bounds | None) -> Choice:
        """The route ``text`` wants. ``floor``: the scope's sticky level (None: not sticky)."""

    def observe(self, choice: Choice, route: str) -> bool:
        """Feed the decided ``route`` to the controller; whether one learnt from it."""
        return False

    def escalated(self, from_route: str, to_route: str) -> bool:
        """A call the controller observed on ``from_route`` was escalated to ``to_route``
        (its answer failed a check); whether the controller counted it. A spend target
        counts the escalated call when it settles, so only a held share needs this."""
        return False

    @abstractmethod
    def unscored_fields(self, costs: Bounds | None) -> dict[str, Any]:
        """The fields a decision made without scoring (forced, escalated) reports."""

    @property
    def threshold(self) -> float | None:
        """The base threshold in force (None: no threshold applies)."""
        return None

    @property
    def online(self) -> OnlineShareController | None:
        """The controller holding ``strong_fraction`` (None otherwise)."""
        return None

    @property
    def spend(self) -> OnlineSpendController | None:
        """The controller holding ``spend_per_call`` (None otherwise)."""
        return None

    def cost_weight_in_force(self, scope: str | None, costs: Bounds | None) -> float:
        """The cost weight a call would use now: the online target's (or the fixed) weight,
        raised as the scope's budget runs out. Below ``tighten_below`` of the cap left
        (``f`` of it, ``f / tighten_below = r``) it becomes ``w / r + (1/r - 1) / c``, ``c``
        the call's mean expected cost (``costs``): a dollar is worth ever more quality,
        smoothly, until only the cheapest model is worth calling."""
        spend = self.spend
        base = spend.cost_weight() if spend is not None else float(self.cost_weight or 0.0)
        budget = self.host.budget
        if budget is None or scope is None:
            return base
        fraction = budget.state(scope).remaining_fraction
        knee = budget.budget.tighten_below
        if fraction >= knee or knee <= 0:
            return base
        r = max(fraction / knee, 1e-9)
        typical = float(np.mean(list(costs.values()))) if costs else 0.0
        return base / r + ((1.0 / r - 1.0) / typical if typical > 0 else 0.0)

    # -- the controller in the store ------------------------------------------------------
    @property
    def _controller(self) -> OnlineShareController | OnlineSpendController | None:
        """The online controller this chooser holds now (None: none, or not built yet)."""
        return None

    @property
    def _store_key(self) -> str:
        """The controller's name in the store (the policy's ``online_key`` when given)."""
        raise NotImplementedError

    def _stored(self, kind: Any, target: float | None) -> Any:
        """The controller of type ``kind`` as the store last saw it (e.g. before a
        restart), when it holds the same ``target``; a checkpoint that fails validation
        raises, naming the field."""
        store = self.host.store
        state = store.load_online(self._store_key) if store is not None else None
        if state is None:
            return None
        restored = kind.from_state_dict(state)
        return restored if restored.target == target else None

    def checkpoint(self) -> bool:
        """Write the controller's state to the store; whether there was one to write."""
        store, controller = self.host.store, self._controller
        if store is None or controller is None:
            return False
        store.save_online(self._store_key, controller.state_dict())
        return True

    # -- hot swap -------------------------------------------------------------------------
    @abstractmethod
    def swap(self, old: BaseRouter, new: BaseRouter, sample: Sequence[str],
             install: Callable[[BaseRouter], None]) -> SwapReport:
        """Bring ``new`` in for ``old``; ``sample`` is recent traffic to re-calibrate on.
        ``install`` serves a router (called holding the policy's lock)."""


class ThresholdChooser(Chooser):
    """A strong/weak pair: ``"strong"`` when ``score >= threshold``.

    ``threshold`` fixed, or ``strong_fraction`` held on live traffic (warm-started from
    ``calibration_prompts``, else the reference mix when scoring it is cheap); given
    neither, :data:`DEFAULT_STRONG_FRACTION`. ``explicit``: ``router_options`` named the
    router's pair, which then wins over the backends'."""

    def __init__(self, host: Host, lock: threading.Lock, *, threshold: float | None = None,
                 strong_fraction: float | None = None, calibration_prompts: Sequence[str] | None = None,
                 explicit: bool = False) -> None:
        super().__init__(host, lock)
        self.keys = ["strong", "weak"]
        if threshold is not None and strong_fraction is not None:
            raise InvalidThresholdError("give threshold= or strong_fraction=, not both")
        if threshold is None and strong_fraction is None:
            strong_fraction = DEFAULT_STRONG_FRACTION
        self._fixed = validate_threshold(threshold) if threshold is not None else None
        self.strong_fraction = (validate_threshold(strong_fraction, "strong_fraction")
                                if strong_fraction is not None else None)
        self._calibration_prompts = list(calibration_prompts) if calibration_prompts else None
        self._explicit = explicit
        self._pair_names: tuple[str | None, str | None] = (None, None)
        self._scored_pair: list[str] | None = None
        self._scored_pair_source: str | None = None
        self._online: OnlineShareController | None = None

    def _expected(self) -> str:
        return "'strong' or 'weak'"

    def fallback(self, route: str, costs: Bounds | None) -> str:
        return "weak"

    def cheapest(self, nominal: Mapping[str, float]) -> str:
        return "weak"

    def reference(self, nominal: Mapping[str, float], given: str | None) -> str:
        if given not in (None, "strong"):
            raise InvalidRouteError("reference= names the savings model among N models; a pair counts "
                                    "savings against its strong model")
        return "strong"

    def next_up(self, route: str, qualities: Mapping[str, float], costs: Bounds | None) -> str | None:
        return "strong" if route == "weak" else None

    # -- the pair the router scores ---------------------------------------------------------
    def serve(self, router: BaseRouter) -> BaseRouter:
        """``router`` re-paired to score the backends' pair (see :func:`score_pair`)."""
        scored = score_pair(router, *self._pair_names, explicit=self._explicit)
        self._scored_pair, self._scored_pair_source = scored.pair, scored.source
        return scored.router

    def score_backends(self, models: Mapping[str, str | None], router: BaseRouter | None) -> BaseRouter | None:
        self._pair_names = (models.get("strong"), models.get("weak"))
        return self.serve(router) if router is not None else None

    @property
    def scored_pair(self) -> list[str] | None:
        return self._scored_pair

    def _pair_fields(self) -> dict[str, Any]:
        return {"strong_fraction": self.strong_fraction, "scored_pair": self._scored_pair,
                "scored_pair_source": self._scored_pair_source}

    # -- choosing ---------------------------------------------------------------------------
    def choose(self, text: str, *, force: str | None, scope: str, floor: float | None,
               costs: Bounds | None) -> Choice:
        router = self.host.router
        score = float(np.clip(router.score([text])[0], 0.0, 1.0))
        base = self.threshold
        budget = self.host.budget
        threshold = budget.threshold_in_force(base, scope) if budget is not None else base
        if force is not None:
            wanted, kept = force, False
        elif floor is not None:  # sticky: this scope went strong before
            wanted, kept = "strong", True
        else:
            wanted, kept = ("strong" if score >= threshold else "weak"), False
        return Choice(wanted=wanted, kept=kept, router=router.name, scores={"strong": score, "weak": score},
                      levels={"strong": 1.0}, fields={"threshold": threshold, **self._pair_fields()},
                      forced=force is not None, observation=score)

    def observe(self, choice: Choice, route: str) -> bool:
        if self._online is None or choice.forced:
            return False
        self._online.observe(choice.observation, route == "strong")
        return True

    def escalated(self, from_route: str, to_route: str) -> bool:
        online = self._online
        if not isinstance(online, CascadeShareController) or from_route != "weak" or to_route != "strong":
            return False
        online.escalated()
        return True

    def unscored_fields(self, costs: Bounds | None) -> dict[str, Any]:
        return {"threshold": self.threshold, **self._pair_fields()}

    @property
    def threshold(self) -> float:
        return self._fixed if self._fixed is not None else self.online.threshold()  # type: ignore[union-attr]

    @property
    def online(self) -> OnlineShareController | None:
        if self.strong_fraction is not None and self._online is None:
            warm = None
            if self._calibration_prompts:
                warm = threshold_for_strong_fraction(self.host.router.score(self._calibration_prompts),
                                                     self.strong_fraction)
            elif cheap_to_score(self.host):  # start from the share on the reference mix
                warm = reference_threshold(self.host.router, self.strong_fraction)
            restored = self._restore()
            with self._lock:
                if self._online is None:
                    self._online = restored or CascadeShareController(self.strong_fraction, warm_threshold=warm)
        return self._online

    # -- the controller in the store ----------------------------------------------------------
    @property
    def _store_key(self) -> str:
        return self.host.online_key or f"{self.host.router_name}:share{self.strong_fraction}"

    def _restore(self) -> OnlineShareController | None:
        return self._stored(CascadeShareController, self.strong_fraction)

    @property
    def _controller(self) -> OnlineShareController | None:
        return self._online

    # -- hot swap -------------------------------------------------------------------------
    def swap(self, old: BaseRouter, new: BaseRouter, sample: Sequence[str],
             install: Callable[[BaseRouter], None]) -> SwapReport:
        """Keep the share of traffic sent strong: a new router's scores mean something
        else, so the threshold is re-set on ``sample``. With ``strong_fraction`` the
        controller restarts from the new router's scores of it; with a fixed threshold
        the new one sends the same share of it strong as the old one did."""
        scored = score_pair(new, *self._pair_names, explicit=self._explicit)
        new = scored.router
        old_threshold = self.threshold
        new_scores = np.asarray(new.score(list(sample)), dtype=np.float64) if sample else np.zeros(0)
        if self.strong_fraction is not None:
            share: float | None = self.strong_fraction
        elif sample:
            share = float(np.mean(np.asarray(old.score(list(sample))) >= old_threshold))
        else:
            share = None
        new_threshold = (threshold_for_strong_fraction(new_scores, share) if sample and share is not None
                         else old_threshold)
        with self._lock:
            install(new)
            self._scored_pair, self._scored_pair_source = scored.pair, scored.source
            if self.strong_fraction is not None:
                self._online = CascadeShareController(self.strong_fraction, warm_threshold=new_threshold)
                self._online.seed(new_scores)
            else:
                self._fixed = new_threshold
        return SwapReport(old_router=old.name, new_router=new.name, old_threshold=old_threshold,
                          new_threshold=new_threshold, strong_share=share, n_prompts=len(sample),
                          share_kept=bool(sample) and share is not None)


class CostWeightChooser(Chooser):
    """N models (``models={route_key: router_model_name}``): the one maximising
    ``quality - cost_weight * expected_cost``, or the best whose expected cost fits
    ``max_cost_per_call``; ``spend_per_call`` holds a spend per call online instead of a
    fixed weight (which then only warm-starts it). The router must offer
    ``quality(prompts, models)``; the router loads when the policy is built, so an
    unknown model name fails there."""

    needs_costs = True

    def __init__(self, host: Host, lock: threading.Lock, *, models: Mapping[str, str],
                 cost_weight: float | None = None, spend_per_call: float | None = None,
                 max_cost_per_call: float | None = None) -> None:
        super().__init__(host, lock)
        self.models = dict(models)
        self.keys = list(self.models)
        self.candidates = list(self.keys)
        self.cost_weight = check_cost_weight(cost_weight) if cost_weight is not None else (
            0.0 if spend_per_call is None else None)
        self.spend_per_call = spend_per_call
        self.max_cost_per_call = max_cost_per_call
        self._columns: list[str] | None = None
        self._spend: OnlineSpendController | None = None

    def start(self) -> None:
        """Load the router now and check it names every model (an unknown one fails when
        the policy is built), then restore the spend controller from the store."""
        self._columns = _quality_columns(self.host.router, list(self.models.values()))
        if self.spend_per_call is not None:
            self._spend = self._restore() or OnlineSpendController(self.spend_per_call,
                                                                   warm_cost_weight=self.cost_weight)

    def _costs(self, costs: Bounds | None) -> np.ndarray:
        return _costs_of(self.keys, costs)

    def fallback(self, route: str, costs: Bounds | None) -> str:
        if costs is None:
            return route
        return self.keys[int(np.argmin(self._costs(costs)))]

    def cheapest(self, nominal: Mapping[str, float]) -> str:
        return min(self.keys, key=lambda k: nominal[k])

    def reference(self, nominal: Mapping[str, float], given: str | None) -> str:
        if given is not None and given not in self.keys:
            raise InvalidRouteError(f"reference={given!r} is not one of the models {self.keys}")
        return given or max(self.keys, key=lambda k: nominal[k])

    def next_up(self, route: str, qualities: Mapping[str, float], costs: Bounds | None) -> str | None:
        """Among the models dearer than the call's for this turn (or as dear and predicted
        better), the cheapest one predicted at least as good as the call's model, else
        the cheapest one: a failed answer is never re-sent to a model expected to do worse
        when another is there."""
        c, q = costs or {}, qualities
        mine, q_mine = c[route], q.get(route, -1.0)

        def above(k: str) -> bool:
            tol = abs(mine) * 1e-9
            return k != route and (c[k] > mine + tol or (c[k] >= mine - tol and q.get(k, -1.0) > q_mine))

        up = [k for k in self.keys if above(k)]
        better = [k for k in up if q.get(k, -1.0) >= q_mine]
        pool = better or up
        return min(pool, key=lambda k: (c[k], -q.get(k, 0.0))) if pool else None

    # -- choosing -----------------------------------------------------------------------------
    def choose(self, text: str, *, force: str | None, scope: str, floor: float | None,
               costs: Bounds | None) -> Choice:
        keys = self.keys
        c = self._costs(costs)
        router = self.host.router
        q = np.asarray(router.quality([text], self._columns), dtype=np.float64).reshape(len(keys))
        weight = self.cost_weight_in_force(scope, costs)
        kept = False
        if force is not None:
            wanted = force
        else:
            allowed = c.copy()
            if floor is not None:  # sticky: never below the dearest model this scope reached
                allowed = np.where(c >= floor * (1 - 1e-9), c, np.inf)
                if not np.isfinite(allowed).any():
                    allowed = c
            i = int(choose(np.where(np.isfinite(allowed), q, -np.inf)[None, :], c[None, :], weight,
                           self.max_cost_per_call)[0])
            free = int(choose(q[None, :], c[None, :], weight, self.max_cost_per_call)[0]) if floor is not None else i
            wanted, kept = keys[i], free != i
        return Choice(wanted=wanted, kept=kept, router=router.name,
                      scores={k: float(np.clip(v, 0.0, 1.0)) for k, v in zip(keys, q)},
                      levels={k: float(v) for k, v in zip(keys, c)},
                      fields={"threshold": None, "qualities": {k: float(v) for k, v in zip(keys, q)},
                              "expected_costs_usd": {k: float(v) for k, v in zip(keys, c)},
                              "cost_weight": float(weight)},
                      forced=force is not None, observation=(q, c))

    def observe(self, choice: Choice, route: str) -> bool:
        if self._spend is None or choice.forced:
            return False
        self._spend.observe(*choice.observation)
        return True

    def unscored_fields(self, costs: Bounds | None) -> dict[str, Any]:
        c = self._costs(costs) if costs is not None else None
        return {"threshold": None, "cost_weight": None,
                "expected_costs_usd": None if c is None else {k: float(v) for k, v in zip(self.keys, c)}}

    @property
    def spend(self) -> OnlineSpendController | None:
        return self._spend

    # -- the controller in the store ----------------------------------------------------------
    @property
    def _store_key(self) -> str:
        return self.host.online_key or f"{self.host.router_name}:spend{self.spend_per_call}:{','.join(self.keys)}"

    def _restore(self) -> OnlineSpendController | None:
        return self._stored(OnlineSpendController, self.spend_per_call)

    @property
    def _controller(self) -> OnlineSpendController | None:
        return self._spend

    # -- hot swap -------------------------------------------------------------------------------
    def swap(self, old: BaseRouter, new: BaseRouter, sample: Sequence[str],
             install: Callable[[BaseRouter], None]) -> SwapReport:
        """The new router must know every model; the spend controller's window of
        qualities is started afresh (the old router's predictions mean something else)."""
        columns = _quality_columns(new, list(self.models.values()))
        with self._lock:
            install(new)
            self._columns = columns
        if self._spend is not None:
            self._spend.forget_window()
        return SwapReport(old_router=old.name, new_router=new.name, old_threshold=None, new_threshold=None,
                          strong_share=None, n_prompts=0, share_kept=False)


def new_chooser(host: Host, lock: threading.Lock, *, models: Mapping[str, str] | None,
                threshold: float | None, strong_fraction: float | None,
                calibration_prompts: Sequence[str] | None, explicit_pair: bool, cost_weight: float | None,
                spend_per_call: float | None, max_cost_per_call: float | None) -> Chooser:
    """The chooser the options (checked by :func:`check_choice_options`) ask for: N
    models with ``models=``, else a pair."""
    if models is None:
        return ThresholdChooser(host, lock, threshold=threshold, strong_fraction=strong_fraction,
                                calibration_prompts=calibration_prompts, explicit=explicit_pair)
    return CostWeightChooser(host, lock, models=models, cost_weight=cost_weight, spend_per_call=spend_per_call,
                             max_cost_per_call=max_cost_per_call)


def check_choice_options(models: Mapping[str, str] | None, threshold: float | None, strong_fraction: float | None,
                         cost_weight: float | None, spend_per_call: float | None,
                         max_cost_per_call: float | None) -> dict[str, str] | None:
    """The choice options, checked together: a typed error names the one that is wrong.
    Returns the models (None: a pair)."""
    if threshold is not None and strong_fraction is not None:
        raise InvalidThresholdError("give threshold= or strong_fraction=, not both")
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


def cheap_to_score(host: Host) -> bool:
    """Whether scoring the reference mix (240 prompts) costs next to nothing:
    ``host.scores_inline()`` once the router is loaded (an embedder that says it will score
    inline, such as the static table, is loaded by a first score)."""
    if not is_model_free(host.router_name):
        router = host.router
        if not getattr(router, "inline_scoring", False) and hasattr(getattr(router, "embedder", None),
                                                                     "inline_scoring"):
            router.score(list(reference_prompts()[:1]))
    return host.scores_inline()


def _quality_columns(router: Any, names: list[str]) -> list[str]:
    """The router's names for our models (an unknown one raises, with a hint)."""
    from .routers.quality import supports_quality

    if not supports_quality(router):
        raise RouterOptionError(f"router {getattr(router, 'name', type(router).__name__)!r} scores a strong/weak "
                                "pair; routing among N models needs a router with quality(prompts, models), "
                                "such as 'quality'")
    columns = getattr(router, "columns", None)
    if callable(columns):
        columns(names)  # raises UnknownModelError with a "did you mean"
    return names


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
