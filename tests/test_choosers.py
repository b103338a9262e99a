"""The choosers behind one interface: a strong/weak pair is the two-model case of N.

Both are driven here directly (``policy.chooser``), with toy routers: the same calls
give the policy's route, a fallback key for the budget, the decision's fields, a
controller that learns only from scored calls and survives in a store, and a hot swap."""

from __future__ import annotations

import numpy as np
import pytest

from routellm_integrations.budgets import Budget
from routellm_integrations.choosers import (DEFAULT_STRONG_FRACTION, Chooser, CostWeightChooser, SwapReport,
                                            ThresholdChooser)
from routellm_integrations.costs import PriceTable
from routellm_integrations.errors import InvalidRouteError, UnknownModelError
from routellm_integrations.policy import RoutingPolicy
from routellm_integrations.routers.base import BaseRouter
from routellm_integrations.routing import Backend, CallLifecycle, turn_of
from routellm_integrations.state import MemoryStore

PRICES = PriceTable({"test": {"small": (0.1, 0.4), "mid": (1.0, 4.0), "big": (10.0, 40.0)}})
MODELS = {"s": "small-model", "m": "mid-model", "b": "big-model"}
COSTS = {"s": 0.0001, "m": 0.001, "b": 0.003}
PROMPTS = ["0.9 prove it", "0.2 hi", "0.6 summarise", "0.4 translate", "0.75 plan a trip", "0.1 thanks"]


class Written(BaseRouter):
    """Pair scores written at the prompt's start ("0.73 ..." -> 0.73); other text (the
    reference mix a share is warm-started on) by its length."""

    name = "written"
    inline_scoring = True

    def _score(self, prompts):
        return np.array([_written(p) for p in prompts])


class Halved(Written):
    name = "halved"

    def _score(self, prompts):
        return super()._score(prompts) / 2


class Qualities(Written):
    """N-model qualities: the small model gets what the pair score calls easy."""

    name = "qualities"
    models = ["small-model", "mid-model", "big-model"]

    def columns(self, models):
        for m in models:
            if m not in self.models:
                raise UnknownModelError(f"model {m!r} unknown")
        return [self.models.index(m) for m in models]

    def quality(self, prompts, models=None):
        s = self._score(prompts)[:, None]
        table = np.hstack([1.0 - s, 1.0 - s / 2, np.full_like(s, 0.95)])
        return table[:, self.columns(models or self.models)]


def _written(text: str) -> float:
    try:
        score = float(text.split()[0])
    except (ValueError, IndexError):
        score = -1.0
    return score if 0.0 <= score <= 1.0 else min(len(text), 200) / 200


def pair(**kw) -> RoutingPolicy:
    kw.setdefault("threshold", 0.5)
    return RoutingPolicy(Written(), steps="every_step", **kw)


def nway(**kw) -> RoutingPolicy:
    kw.setdefault("cost_weight", 100.0)
    return RoutingPolicy(Qualities(), models=MODELS, steps="every_step", **kw)


def choose(policy: RoutingPolicy, text: str, *, force=None, floor=None, costs=None):
    return policy.chooser.choose(text, force=force, scope="global", floor=floor, costs=costs)


# -- one interface -------------------------------------------------------------------------
def test_the_policy_owns_one_chooser_of_either_kind():
    p, n = pair(), nway()
    assert isinstance(p.chooser, ThresholdChooser) and isinstance(n.chooser, CostWeightChooser)
    assert all(isinstance(c, Chooser) for c in (p.chooser, n.chooser))
    assert p.chooser.keys == ["strong", "weak"] and n.chooser.keys == ["s", "m", "b"]
    assert not p.chooser.needs_costs and n.chooser.needs_costs
    assert p.chooser.candidates is None and n.chooser.candidates == ["s", "m", "b"]
    # what a chooser does not take reads as None, the same way for both
    assert (p.chooser.models, p.chooser.cost_weight, p.chooser.spend) == (None, None, None)
    assert (n.chooser.strong_fraction, n.chooser.threshold, n.chooser.online) == (None, None, None)
    assert p.nway is False and n.nway is True and n.models == MODELS and p.models is None


def test_a_pair_given_no_threshold_holds_the_default_share():
    chooser = RoutingPolicy(Written()).chooser
    assert chooser.strong_fraction == DEFAULT_STRONG_FRACTION and chooser.online is not None


@pytest.mark.parametrize("make, costs", [(pair, None), (nway, COSTS)])
def test_the_chooser_wants_the_route_the_policy_decides(make, costs):
    policy = make()
    for text in PROMPTS:
        choice = choose(policy, text, costs=costs)
        decision = policy.decide(text, costs=costs).decision
        assert decision.route == choice.wanted and decision.score == choice.scores[decision.route]
        assert {k: getattr(decision, k) for k in choice.fields} == choice.fields


def test_the_pair_routes_by_threshold_and_the_n_models_by_value():
    p, n = pair(), nway()
    assert [choose(p, t).wanted for t in PROMPTS] == ["strong", "weak", "strong", "weak", "strong", "weak"]
    # quality - 100 * cost: the small model where it is good enough, the big one on hard prompts
    assert choose(n, "0.1 thanks", costs=COSTS).wanted == "s"
    assert choose(n, "0.9 prove it", costs=COSTS).wanted == "b"
    assert choose(nway(cost_weight=0.0), "0.1 thanks", costs=COSTS).wanted == "m"  # quality only: m ties b


def test_forced_and_sticky_choices():
    p, n = pair(), nway()
    forced = choose(p, "0.9 prove it", force="weak")
    assert forced.wanted == "weak" and forced.forced and not forced.kept
    kept = choose(p, "0.1 thanks", floor=1.0)  # the scope went strong before
    assert kept.wanted == "strong" and kept.kept and kept.levels == {"strong": 1.0}
    # among N models the floor is the dearest cost the scope reached
    up = choose(n, "0.1 thanks", floor=COSTS["m"], costs=COSTS)
    assert up.wanted == "m" and up.kept and up.levels == COSTS


def test_routes_are_checked_by_the_chooser():
    with pytest.raises(InvalidRouteError, match="'strong' or 'weak'"):
        pair().chooser.check_route("s")
    with pytest.raises(InvalidRouteError, match="one of the models"):
        nway().chooser.check_route("strong")
    with pytest.raises(InvalidRouteError, match="expected cost"):
        choose(nway(), "0.1 thanks")  # N models need costs=


# -- the budget's fallback, the decision's fields, escalation -------------------------------
def test_the_fallback_key_is_the_weak_route_or_the_cheapest_model():
    p, n = pair().chooser, nway().chooser
    assert p.fallback("strong", None) == p.fallback("weak", COSTS) == "weak"
    assert n.fallback("b", COSTS) == n.fallback("m", COSTS) == "s"
    assert n.fallback("b", {"s": 0.01, "m": 0.001, "b": 0.1}) == "m"
    assert n.fallback("b", None) == "b"  # no costs: the call is its own fallback
    assert p.cheapest({"strong": 0.0, "weak": 0.0}) == "weak" and n.cheapest(COSTS) == "s"
    assert p.reference({"strong": 0.0, "weak": 1.0}, None) == "strong" and n.reference(COSTS, None) == "b"
    assert n.reference(COSTS, "m") == "m"
    with pytest.raises(InvalidRouteError):
        p.reference(COSTS, "weak")


def test_a_budget_downgrades_to_the_choosers_fallback():
    budget = Budget(max_strong_calls=1, on_exhausted="weak")  # one call in flight above the fallback
    p, n = pair(budget=budget), nway(budget=budget)
    assert [p.decide("0.9 prove it").decision.route for _ in range(2)] == ["strong", "weak"]
    assert [n.decide("0.9 prove it", costs=COSTS).decision.route for _ in range(2)] == ["b", "s"]
    decision = n.decide("0.9 prove it", costs=COSTS).decision
    assert decision.route == "s" and decision.step_policy == "every_step:budget"


def test_the_fields_a_decision_reports():
    p, n = pair(), nway()
    assert set(choose(p, "0.6 x").fields) == {"threshold", "strong_fraction", "scored_pair", "scored_pair_source"}
    assert choose(p, "0.6 x").fields["threshold"] == 0.5
    fields = choose(n, "0.6 x", costs=COSTS).fields
    assert set(fields) == {"threshold", "qualities", "expected_costs_usd", "cost_weight"}
    assert fields["threshold"] is None and fields["expected_costs_usd"] == COSTS and fields["cost_weight"] == 100.0
    assert p.chooser.unscored_fields(None)["threshold"] == 0.5
    assert n.chooser.unscored_fields(COSTS) == {"threshold": None, "cost_weight": None, "expected_costs_usd": COSTS}
    assert n.chooser.unscored_fields(None)["expected_costs_usd"] is None


def test_next_up_is_the_choosers_notion_of_up():
    p, n = pair().chooser, nway().chooser
    assert p.next_up("weak", {}, None) == "strong" and p.next_up("strong", {}, None) is None
    q = {"s": 0.4, "m": 0.7, "b": 0.9}
    assert n.next_up("s", q, COSTS) == "m" and n.next_up("m", q, COSTS) == "b" and n.next_up("b", q, COSTS) is None
    assert n.next_up("s", {"s": 0.4, "m": 0.2, "b": 0.9}, COSTS) == "b"  # never to a model expected to do worse


# -- the controller: observe, checkpoint, restore ---------------------------------------------
def test_observe_feeds_the_controller_only_scored_calls():
    p = pair(threshold=None, strong_fraction=0.5)
    seen = p.online.state_dict()["seen"]
    choice = choose(p, "0.9 prove it")
    assert p.chooser.observe(choice, "strong") and p.online.state_dict()["seen"] == seen + 1
    assert not p.chooser.observe(choose(p, "0.9 prove it", force="strong"), "strong")
    assert not pair().chooser.observe(choose(pair(), "0.9 x"), "strong")  # a fixed threshold learns nothing
    n = nway(cost_weight=None, spend_per_call=0.001)
    assert n.chooser.observe(choose(n, "0.6 x", costs=COSTS), "m") and n.spend.state_dict()["seen"] == 1
    assert not nway().chooser.observe(choose(nway(), "0.6 x", costs=COSTS), "m")


@pytest.mark.parametrize("make, options, costs, controller", [
    (pair, {"threshold": None, "strong_fraction": 0.4}, None, "online"),
    (nway, {"cost_weight": None, "spend_per_call": 0.001}, COSTS, "spend"),
])
def test_the_controller_survives_in_the_store(make, options, costs, controller):
    store = MemoryStore()
    first = make(store=store, **options)
    assert not make(**options).chooser.checkpoint()  # no store: nothing to write
    for text in PROMPTS:
        first.decide(text, costs=costs)
    assert first.chooser.checkpoint()
    again = make(store=store, **options)
    assert getattr(again, controller).state_dict() == getattr(first, controller).state_dict()


def test_a_fixed_threshold_has_nothing_to_checkpoint():
    assert not pair(store=MemoryStore()).chooser.checkpoint()


# -- hot swap ------------------------------------------------------------------------------------
def test_swap_keeps_the_pairs_share_and_checks_the_n_models():
    p = pair()
    installed = []
    report = p.chooser.swap(p.router, Halved(), PROMPTS, installed.append)
    assert isinstance(report, SwapReport) and report.share_kept and report.strong_share == 0.5
    assert [r.name for r in installed] == ["halved"] and p.chooser.threshold == report.new_threshold
    assert np.mean(Halved().score(PROMPTS) >= report.new_threshold) == 0.5
    n = nway()
    report = n.chooser.swap(n.router, Qualities(), [], installed.append)
    assert report.new_threshold is None and not report.share_kept and len(installed) == 2
    with pytest.raises(Exception, match="quality"):
        n.chooser.swap(n.router, Written(), [], installed.append)  # a pair router cannot choose among N
    assert len(installed) == 2


# -- every surface passes one mapping of backends -------------------------------------------------
def test_a_pair_lifecycle_takes_backends_by_route_key():
    strong, weak = Backend("strong", "big", "test"), Backend("weak", "small", "test")
    by_role = CallLifecycle(pair(), strong=strong, weak=weak, prices=PRICES)
    by_key = CallLifecycle(pair(), backends={"weak": Backend("x", "small", "test"), "strong": strong}, prices=PRICES)
    assert by_key.backends == by_role.backends and by_key.keys == ["strong", "weak"]
    assert (by_key.strong, by_key.weak, by_key.nway) == (strong, weak, False)
    for text in PROMPTS:
        with by_role.begin(turn_of([("user", text)])) as a, by_key.begin(turn_of([("user", text)])) as b:
            assert a.route == b.route and a.backend == b.backend
            assert b.finish({"input_tokens": 10, "output_tokens": 5}).models is None
    with pytest.raises(InvalidRouteError, match="must be the policy's models"):
        CallLifecycle(pair(), backends={"s": strong, "b": weak}, prices=PRICES)
    with pytest.raises(InvalidRouteError, match="give backends"):
        CallLifecycle(nway(), strong=strong, weak=weak, prices=PRICES)


def test_an_n_model_lifecycle_reports_its_candidates():
    backends = {"s": Backend("s", "small", "test"), "m": Backend("m", "mid", "test"), "b": Backend("b", "big", "test")}
    lc = CallLifecycle(nway(), backends=backends, prices=PRICES)
    assert (lc.strong.route, lc.weak.route, lc.nway, lc.candidates) == ("b", "s", True, ["s", "m", "b"])
    with lc.begin(turn_of([("user", "0.9 prove it")])) as call:
        record = call.finish({"input_tokens": 10, "output_tokens": 5})
    assert record.models == ["s", "m", "b"] and record.route == call.route
