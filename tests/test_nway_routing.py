"""N-way routing in the core: quality scores, the cost-weighted choice, budgets over N
models, the online spend target, and escalation on every exit path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routellm_integrations import RoutingPolicy, load_router
from routellm_integrations.budgets import Budget
from routellm_integrations.costs import PriceTable, Usage
from routellm_integrations.errors import (BudgetExceeded, InvalidRouteError, InvalidThresholdError, PriceTableError,
                                          RouterOptionError, UnknownModelError)
from routellm_integrations.online import OnlineSpendController
from routellm_integrations.routers.base import BaseRouter
from routellm_integrations.routing import (Answer, Backend, CallLifecycle, EscalationCheckError, ToolCall,
                                           empty_or_refusal, invalid_structured_output, invalid_tool_call,
                                           low_confidence, turn_of)
from routellm_integrations.choice import choose, chosen_cost, weight_for_spend
from routellm_integrations.state import MemoryStore

PRICES = PriceTable({"test": {"small": (0.1, 0.4), "mid": (1.0, 4.0), "big": (10.0, 40.0)}})
KEYS = {"s": "small-model", "m": "mid-model", "b": "big-model"}


class ToyQuality(BaseRouter):
    """Quality from the prompt's words: 'hard' prompts only the big model gets right,
    'medium' ones the mid and big; everything else every model."""

    name = "toy_quality"
    models = ["small-model", "mid-model", "big-model"]
    inline_scoring = True

    def columns(self, models):
        for m in models:
            if m not in self.models:
                raise UnknownModelError(f"model {m!r} unknown")
        return [self.models.index(m) for m in models]

    def quality(self, prompts, models=None):
        cols = self.columns(models or self.models)
        table = {"hard": [0.1, 0.3, 0.9], "medium": [0.2, 0.8, 0.9]}
        rows = [table.get(next((w for w in ("hard", "medium") if w in p), ""), [0.9, 0.9, 0.92]) for p in prompts]
        return np.asarray(rows)[:, cols]

    def _score(self, prompts):
        return np.full(len(prompts), 0.5)


def lifecycle(*, budget=None, store=None, **policy_options) -> CallLifecycle:
    policy = RoutingPolicy(ToyQuality(), models=KEYS, budget=budget, store=store, **policy_options)
    backends = {"s": Backend("s", "small", "test"), "m": Backend("m", "mid", "test"), "b": Backend("b", "big", "test")}
    return CallLifecycle(policy, backends=backends, prices=PRICES, expected_output_tokens=100)


def turn(text: str):
    return turn_of([("user", text)])


# -- the choice -------------------------------------------------------------------------
def test_choose_trades_quality_against_cost():
    q = np.array([[0.5, 0.7, 0.9]])
    c = np.array([0.001, 0.01, 0.1])
    assert choose(q, c, 0.0)[0] == 2  # quality only
    assert choose(q, c, 1e6)[0] == 0  # cost only
    assert choose(q, c, 20.0)[0] == 1  # 0.7 - 0.2 > 0.9 - 2 and > 0.5 - 0.02
    assert choose(q, c, 0.0, max_cost_usd=0.01)[0] == 1  # the best that fits the cap
    assert choose(q, c, 0.0, max_cost_usd=1e-9)[0] == 0  # nothing fits: the cheapest
    assert choose(np.array([[0.8, 0.8]]), np.array([0.2, 0.1]), 0.0)[0] == 1  # a tie goes to the cheaper


def test_weight_for_spend_meets_the_target():
    rng = np.random.default_rng(0)
    q = rng.uniform(size=(200, 3)) * np.array([0.6, 0.8, 1.0])
    c = np.array([0.001, 0.01, 0.1])
    for target in (0.005, 0.02, 0.05):
        w = weight_for_spend(q, c, target)
        assert chosen_cost(q, c, w) <= target
        assert chosen_cost(q, c, w * 0.5) > target  # the smallest such weight, to a factor of 2
    assert weight_for_spend(q, c, 1.0) == 0.0  # the best quality already fits


# -- the quality router -------------------------------------------------------------------
def test_shipped_quality_router_scores_every_model_calibrated():
    router = load_router("quality")
    prompts = ["Find the number of ordered pairs of positive integers (m, n) such that m^2 n = 20^20.",
               "Let f(x) = x^3 - 3x + 1. Find the sum of the squares of the roots of f.",
               "What is the capital of France?",
               "Which of the following is a mammal? A. shark B. dolphin C. trout D. eel Answer:"]
    q = router.quality(prompts, ["gpt-4o", "gpt-4o-mini-2024-07-18", "mistralai/Mixtral-8x7B-Instruct-v0.1"])
    assert q.shape == (4, 3) and q.dtype == np.float64 and ((q >= 0) & (q <= 1)).all()
    assert q[:2, 0].max() < q[2:, 0].min()  # competition maths is harder for gpt-4o than trivia
    assert (q[:, 0] > q[:, 2]).all()  # and gpt-4o beats Mixtral on each
    assert router.resolve_model("gpt-4o") == "gpt-4o-2024-08-06"  # undated: the latest snapshot
    assert router.quality(["hi there"]).shape == (1, len(router.models))
    with pytest.raises(UnknownModelError, match="Did you mean"):
        router.quality(["x"], ["gpt-4o-mni"])
    with pytest.raises(UnknownModelError, match="more than once"):
        router.quality(["x"], ["gpt-4o", "gpt-4o-2024-08-06"])
    report = router.config_data["card"]["training_report"]
    assert report["val_ece"] < 0.03 and report["val_log_loss"] < report["val_log_loss_raw"] + 1e-9
    # the pair question still works: P(strong right and weak wrong | they differ)
    s = router.score(["Prove the Riemann hypothesis.", "What is 2 + 2?"])
    assert ((s >= 0) & (s <= 1)).all()


def test_nway_needs_a_quality_router_and_known_models():
    with pytest.raises(RouterOptionError, match="quality"):
        RoutingPolicy("random", models=KEYS)
    with pytest.raises(UnknownModelError):
        RoutingPolicy(ToyQuality(), models={"a": "small-model", "b": "nope"})
    with pytest.raises(InvalidThresholdError, match="not threshold"):
        RoutingPolicy(ToyQuality(), models=KEYS, threshold=0.5)
    with pytest.raises(InvalidThresholdError, match="give models="):
        RoutingPolicy("random", cost_weight=3.0)
    with pytest.raises(InvalidThresholdError):
        RoutingPolicy(ToyQuality(), models=KEYS, cost_weight=-1)
    with pytest.raises(InvalidRouteError, match="at least two"):
        RoutingPolicy(ToyQuality(), models={"a": "small-model"})
    policy = RoutingPolicy(ToyQuality(), models=KEYS)
    with pytest.raises(PriceTableError, match="'m'"):
        CallLifecycle(policy, backends={"s": Backend("s", "small", "test"), "m": Backend("m", "unknown", "test"),
                                        "b": Backend("b", "big", "test")}, prices=PRICES)
    with pytest.raises(InvalidRouteError, match="must be the policy's models"):
        CallLifecycle(policy, backends={"s": Backend("s", "small", "test"), "b": Backend("b", "big", "test")},
                      prices=PRICES)


# -- the lifecycle over N models ----------------------------------------------------------
def test_each_call_goes_to_the_best_value_model_and_reports_it():
    lc = lifecycle(cost_weight=50.0)
    picks = {}
    for text in ("a hard proof", "a medium puzzle", "an easy greeting"):
        with lc.begin(turn(text)) as call:
            record = call.finish(Usage(200, 100))
        picks[text] = record.route
        assert record.models == ["s", "m", "b"] and set(record.qualities) == {"s", "m", "b"}
        assert record.threshold is None and record.cost_weight == 50.0
        assert record.model == lc.backend(record.route).model
        assert record.strong_model == "big" and record.weak_model == "small"  # savings vs the dearest
    assert picks == {"a hard proof": "b", "a medium puzzle": "m", "an easy greeting": "s"}
    summary = lc.ledger.summary()
    assert set(summary["by_route"]) == {"s", "m", "b"} and summary["calls"] == 3
    assert summary["savings_usd"] > 0
    with lc.begin(turn("an easy greeting"), force="b") as call:
        assert call.route == "b" and call.decision.forced
        call.finish(Usage(10, 10))
    with pytest.raises(InvalidRouteError, match="one of the models"):
        lc.begin(turn("x"), force="strong")


def test_max_cost_per_call_caps_the_choice():
    lc = lifecycle(cost_weight=0.0, max_cost_per_call=0.001)
    call = lc.begin(turn("a hard proof"))
    assert call.route == "m"  # big would cost ~$0.004 here; mid ~$0.0004 fits
    call.finish(Usage(10, 10))


def test_budget_over_n_models_falls_back_to_the_cheapest_and_caps_dearer_calls():
    lc = lifecycle(cost_weight=0.0, budget=Budget(max_strong_calls=1, tighten_below=0.0))
    first = lc.begin(turn("a hard proof"))
    assert first.route == "b"
    first.finish(Usage(100, 100))
    second = lc.begin(turn("a medium puzzle"))  # mid counts as "strong": the cap is spent
    assert second.route == "s" and second.decision.step_policy.endswith(":budget")
    second.finish(Usage(100, 100))
    lc = lifecycle(cost_weight=0.0, budget=Budget(max_usd=0.01, default_output_tokens=100))
    routes = []
    for _ in range(40):
        try:
            call = lc.begin(turn("a hard proof"), max_output_tokens=100)
        except BudgetExceeded:
            break
        routes.append(call.route)
        call.finish(Usage(50, 100))
    state = lc.policy.budget.state("global")
    assert "b" in routes and routes[-1] == "s"  # dearer calls stop fitting before the cheap one does
    assert state.spent_usd <= 0.01 + PRICES.cost("big", Usage(50, 100), "test")
    assert state.reserved_usd == 0 and state.in_flight == 0


def test_budget_tightening_raises_the_cost_weight():
    lc = lifecycle(cost_weight=1.0, budget=Budget(max_usd=0.01, tighten_below=0.5, default_output_tokens=100))
    costs = lc.expected_costs(turn("a hard proof"))
    assert lc.policy.cost_weight_in_force("global", costs) == 1.0
    call = lc.begin(turn("a hard proof"))
    assert call.route == "b"
    call.finish(Usage(300, 100))  # spends 0.007 of 0.01: 30% left, r = 0.6
    tight = lc.policy.cost_weight_in_force("global", costs)
    mean_cost = sum(costs.values()) / 3
    assert tight == pytest.approx(1.0 / 0.6 + (1 / 0.6 - 1) / mean_cost, rel=1e-6)
    assert lc.begin(turn("a hard proof")).route != "b"  # the dearest is no longer worth it


def test_spend_per_call_is_held_online():
    lc = lifecycle(spend_per_call=0.0004)
    rng = np.random.default_rng(1)
    words = rng.choice(["hard", "medium", "easy"], size=400, p=[0.3, 0.3, 0.4])
    for i, w in enumerate(words):
        call = lc.begin(turn(f"a {w} question number {i}"))
        out = int(rng.integers(60, 140))
        call.finish(Usage(20, out))
    realised = lc.ledger.total.cost_usd / 400
    assert realised == pytest.approx(0.0004, rel=0.15), realised
    routes = lc.ledger.summary()["by_route"]
    assert len(routes) >= 2  # a mix, not one model
    assert lc.policy.spend.realised_spend == pytest.approx(realised)


def test_spend_controller_state_round_trips_and_is_validated():
    c = OnlineSpendController(0.01, warm_cost_weight=2.0)
    for _ in range(12):
        c.observe([0.5, 0.9], [0.001, 0.1])
        c.spent(0.02)
    restored = OnlineSpendController.from_state_dict(c.state_dict())
    assert restored.cost_weight() == pytest.approx(c.cost_weight())
    bad = c.state_dict() | {"rows": [[[1.5, 0.2], [0.1, 0.1]]]}
    from routellm_integrations.errors import InvalidStateError

    with pytest.raises(InvalidStateError, match="rows"):
        OnlineSpendController.from_state_dict(bad)
    with pytest.raises(InvalidStateError):
        OnlineSpendController(0.0)


def test_spend_controller_resumes_from_the_store():
    store = MemoryStore()
    lc = lifecycle(spend_per_call=0.0004, store=store, checkpoint_every=5)
    for i in range(30):
        lc.begin(turn(f"a hard question {i}")).finish(Usage(20, 100))
    lc.policy.checkpoint()
    again = lifecycle(spend_per_call=0.0004, store=store)
    assert again.policy.spend.state_dict()["seen"] == 30


# -- escalation ----------------------------------------------------------------------------
def test_escalation_goes_up_one_model_and_counts_both_calls():
    store = MemoryStore()
    lc = lifecycle(cost_weight=1e9, budget=Budget(max_usd=1.0), store=store)  # everything starts cheapest
    seen = []
    call = lc.begin(turn("an easy greeting"))
    call.on_settled(seen.append)
    assert call.route == "s"
    up = call.review([empty_or_refusal()], Answer(text="I'm sorry, but I can't help with that."), Usage(30, 12))
    assert up is not None and up.route == "m" and up.decision.escalated_from == "s"
    assert call.record.status == "escalated" and call.record.escalation_reason == "refusal"
    assert call.record.strong_cost_usd == 0.0  # the cascade counts its savings once, on its last call
    top = up.review([empty_or_refusal()], Answer(text=""), Usage(30, 0))
    assert top.route == "b" and up.record.status == "escalated"
    assert top.review([empty_or_refusal()], Answer(text=""), Usage(30, 0)) is None  # nothing above: kept
    assert top.record.status == "ok" and top.record.reason == "escalated"
    assert [r.route for r in seen] == ["s", "m", "b"]  # a listener hears every call of the cascade
    totals = lc.ledger.total
    assert totals.calls == 3 and totals.escalated_calls == 2
    state = lc.policy.budget.state("global")
    expected = sum(PRICES.cost(m, Usage(30, o), "test") for m, o in (("small", 12), ("mid", 0), ("big", 0)))
    assert math.isclose(state.spent_usd, expected) and state.reserved_usd == 0 and state.in_flight == 0
    assert [e.status for e in store.entries()] == ["escalated", "escalated", "ok"]
    assert store.usage().total.escalated_calls == 2


@pytest.mark.parametrize("exit_path", ["fail", "cancel", "abandon", "drop"])
def test_an_escalated_call_settles_on_every_exit(exit_path):
    import gc

    lc = lifecycle(cost_weight=1e9, budget=Budget(max_usd=1.0))
    call = lc.begin(turn("x"))
    up = call.review([lambda a: "always"], Answer(text="{}"), Usage(10, 10))
    assert up is not None and lc.policy.budget.state("global").in_flight == 1
    if exit_path == "drop":
        del up
        gc.collect()
        import time

        for _ in range(100):
            if lc.policy.budget.state("global").in_flight == 0:
                break
            time.sleep(0.01)
    else:
        getattr(up, exit_path)()
    state = lc.policy.budget.state("global")
    assert state.in_flight == 0 and state.reserved_usd == 0
    assert math.isclose(state.spent_usd, PRICES.cost("small", Usage(10, 10), "test"))


def test_escalation_the_budget_cannot_take_keeps_the_answer():
    lc = lifecycle(cost_weight=1e9, budget=Budget(max_strong_calls=0))
    call = lc.begin(turn("x"))
    assert call.review([lambda a: "bad"], Answer(text="meh"), Usage(10, 10)) is None
    assert call.record.status == "ok" and lc.policy.budget.state("global").in_flight == 0


def test_a_check_that_raises_is_a_typed_error_and_the_answer_is_billed():
    lc = lifecycle(cost_weight=1e9)

    def broken(answer):
        raise KeyError("oops")

    call = lc.begin(turn("x"))
    with pytest.raises(EscalationCheckError, match="broken"):
        call.review([broken], Answer(text="ok"), Usage(10, 10))
    assert call.record.status == "ok" and call.record.cost_usd > 0
    call = lc.begin(turn("x"))
    with pytest.raises(EscalationCheckError, match="returned int"):
        call.review([lambda a: 3], Answer(text="ok"), Usage(10, 10))


def test_pair_escalates_weak_to_strong():
    policy = RoutingPolicy("random", threshold=1.0)  # everything weak
    lc = CallLifecycle(policy, strong=Backend("strong", "big", "test"), weak=Backend("weak", "small", "test"),
                       prices=PRICES)
    call = lc.begin(turn("x"))
    up = call.review([invalid_structured_output()], Answer(text="not json", response_schema={}), Usage(10, 5))
    assert call.route == "weak" and up.route == "strong" and up.decision.step_policy == "escalated"
    up.finish(Usage(10, 5))
    assert lc.ledger.summary()["by_route"]["weak"]["escalated_calls"] == 1


# -- the built-in checks --------------------------------------------------------------------
def test_built_in_checks():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    check = invalid_structured_output()
    assert check(Answer(text='{"n": 3}', response_schema=schema)) is None
    assert check(Answer(text='```json\n{"n": 3}\n```', response_schema=schema)) is None
    assert "not valid JSON" in check(Answer(text='{"n": 3', response_schema=schema))
    assert "does not match" in check(Answer(text='{"n": "three"}', response_schema=schema))
    assert check(Answer(text="free text")) is None  # no schema asked for: not checked
    tools = {"add": {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]}}
    tc = invalid_tool_call()
    assert tc(Answer(tool_calls=[ToolCall("add", '{"a": 1}')], tools=tools)) is None
    assert "unknown tool 'mul'" in tc(Answer(tool_calls=[ToolCall("mul", "{}")], tools=tools))
    assert "not valid JSON" in tc(Answer(tool_calls=[ToolCall("add", "{a:1")], tools=tools))
    assert "do not match" in tc(Answer(tool_calls=[ToolCall("add", {"b": 1})], tools=tools))
    assert "could not be parsed" in tc(Answer(invalid_tool_calls=[("add", "bad json")], tools=tools))
    er = empty_or_refusal()
    assert er(Answer(text="  ")) == "empty answer"
    assert er(Answer(text="I cannot help with that request.")) == "refusal"
    assert er(Answer(text="I can help: the answer is 4.")) is None
    assert er(Answer(text="", tool_calls=[ToolCall("add", "{}")])) is None
    lc_ = low_confidence(-1.0)
    assert lc_(Answer(text="x", logprobs=[-0.1, -0.2])) is None
    assert "logprob" in lc_(Answer(text="x", logprobs=[-3.0, -2.0]))
    assert lc_(Answer(text="x")) is None  # no logprobs: not checked


def test_platt_calibration_recovers_the_scale_and_never_runs_away():
    from routellm_integrations.training.quality import platt

    rng = np.random.default_rng(0)
    z = rng.normal(size=4000) * 3
    y = (rng.uniform(size=4000) < 1 / (1 + np.exp(-(0.5 * z + 0.3)))).astype(float)
    a, c = platt(z, y)
    assert a == pytest.approx(0.5, abs=0.06) and c == pytest.approx(0.3, abs=0.1)
    # overconfident logits on a few rows: damped steps, no blow-up (undamped Newton went to a ~ 467)
    z = np.r_[np.full(20, 30.0), np.full(20, -30.0)]
    y = np.r_[np.ones(19), 0, np.zeros(19), 1]
    a, c = platt(z, y)
    assert 0 < a < 1 and abs(c) < 1


def test_hot_swap_keeps_n_way_routing():
    lc = lifecycle(spend_per_call=0.0004)
    for i in range(20):
        lc.begin(turn(f"a hard question {i}")).finish(Usage(20, 100))
    report = lc.policy.swap_router(ToyQuality())
    assert report.new_threshold is None and not report.share_kept
    assert lc.policy.spend.state_dict()["rows"] == []
    assert lc.begin(turn("a medium one")).route in KEYS
    with pytest.raises(RouterOptionError):
        lc.policy.swap_router("random")  # no quality(): refused, the old router stays
    assert lc.policy.router.name == "toy_quality"


def test_an_escalated_turn_keeps_the_model_that_answered_for_its_tool_steps():
    lc = lifecycle(cost_weight=1e9)
    first = turn_of([("user", "book a flight")])
    call = lc.begin(first)
    up = call.review([lambda a: "bad"], Answer(text="x"), Usage(10, 10))
    assert up.route == "m" and up.decision.qualities == call.decision.qualities
    assert up.decision.score == pytest.approx(call.decision.qualities["m"])
    up.finish(Usage(10, 10))
    step = turn_of([("user", "book a flight"), ("assistant", "calling"), ("tool", "ok")])
    assert step.followup and step.key == first.key
    follow = lc.begin(step)
    assert follow.route == "m" and follow.decision.step_policy == "per_turn:kept"
    follow.finish(Usage(5, 5))
    record = follow.record
    assert follow.finish(Usage(99, 99), text="more") is record  # settled: nothing changes
    assert follow.delivered_chars == 0 and follow.answer is None


def test_escalation_skips_a_dearer_model_predicted_worse():
    class Skewed(ToyQuality):
        def quality(self, prompts, models=None):  # mid is dearer than small but predicted worse
            return np.tile([0.6, 0.2, 0.9], (len(prompts), 1))[:, self.columns(models or self.models)]

    policy = RoutingPolicy(Skewed(), models=KEYS, cost_weight=1e9)
    backends = {"s": Backend("s", "small", "test"), "m": Backend("m", "mid", "test"), "b": Backend("b", "big", "test")}
    lc = CallLifecycle(policy, backends=backends, prices=PRICES)
    call = lc.begin(turn("x"))
    assert call.route == "s" and lc.next_up(call) == "b"
    # equal prices: a model as dear and predicted better is "up"; the worse one is not
    same = PriceTable({"test": {"small": (1.0, 1.0), "mid": (1.0, 1.0), "big": (1.0, 1.0)}})
    lc = CallLifecycle(RoutingPolicy(Skewed(), models=KEYS, cost_weight=0.0), backends=backends, prices=same)
    call = lc.begin(turn("x"))
    assert call.route == "b" and lc.next_up(call) is None
    forced = lc.begin(turn("x"), force="m")  # a forced call has no predictions: nothing is "up" at one price
    assert lc.next_up(forced) is None
