"""The routing policy: target share held online, budgets per scope, coherent agent steps."""

import threading
import time

import numpy as np
import pytest

from routellm_integrations import InvalidRouteError, InvalidThresholdError, RoutingPolicy
from routellm_integrations.budgets import Budget
from routellm_integrations.state import BudgetTracker
from routellm_integrations.errors import BudgetExceeded
from routellm_integrations.online import OnlineShareController
from routellm_integrations.routers.base import BaseRouter


class Fixed(BaseRouter):
    """Scores a prompt by the number written in it ("0.73 ..." -> 0.73)."""

    name = "fixed"

    def _score(self, prompts):
        return np.array([float(p.split()[0]) for p in prompts])


def prompts_with(scores):
    return [f"{s:.6f} prompt" for s in scores]


def test_online_share_converges_where_a_fixed_threshold_drifts():
    at_200, at_1000, fixed_200 = [], [], []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        warm = float(np.quantile(rng.uniform(0, 1, 500), 0.7))  # calibrated offline on uniform scores
        traffic = rng.beta(5, 2, 1000)  # live traffic scores much higher
        c = OnlineShareController(0.3, warm_threshold=warm)
        online = []
        for s in traffic:
            t = c.threshold()
            online.append(s >= t)
            c.observe(s, s >= t)
        at_200.append(np.mean(online[:200]))
        at_1000.append(np.mean(online))
        fixed_200.append(np.mean(traffic[:200] >= warm))
    assert min(fixed_200) > 0.4  # the offline threshold sends far more than 30% strong
    assert abs(np.mean(at_200) - 0.3) <= 0.02 and max(abs(np.array(at_200) - 0.3)) <= 0.04
    assert max(abs(np.array(at_1000) - 0.3)) <= 0.01
    restored = OnlineShareController.from_state_dict(c.state_dict())
    assert restored.threshold() == c.threshold() and restored.realised_share == c.realised_share


def test_online_share_is_thread_safe():
    c = OnlineShareController(0.5, min_samples=5)
    scores = np.random.default_rng(1).uniform(0, 1, 4000)

    def work(chunk):
        for s in chunk:
            c.observe(s, s >= c.threshold())

    threads = [threading.Thread(target=work, args=(scores[i::4],)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert c.state_dict()["seen"] == 4000
    assert abs(c.realised_share - 0.5) < 0.05


def test_policy_with_strong_fraction_needs_no_calibration():
    policy = RoutingPolicy(Fixed(), strong_fraction=0.25)
    routes = [policy.decide(p).decision.route for p in prompts_with(np.random.default_rng(2).uniform(0, 1, 400))]
    assert abs(routes.count("strong") / 400 - 0.25) <= 0.03
    with pytest.raises(InvalidThresholdError):
        RoutingPolicy(Fixed(), threshold=0.5, strong_fraction=0.3)
    with pytest.raises(InvalidRouteError):
        policy.decide("0.5 x", force="maybe")


def test_per_turn_keeps_the_backend_for_tool_steps_and_every_step_does_not():
    per_turn = RoutingPolicy(Fixed(), threshold=0.5)
    first = per_turn.decide("0.9 plan the research", turn_key="t1").decision
    step = per_turn.decide("0.1 tool result", turn_key="t1", followup=True).decision
    assert first.route == step.route == "strong" and step.step_policy == "per_turn:kept"
    new_turn = per_turn.decide("0.1 thanks", turn_key="t2").decision
    assert new_turn.route == "weak" and new_turn.step_policy == "per_turn"
    every = RoutingPolicy(Fixed(), threshold=0.5, steps="every_step")
    every.decide("0.9 plan", turn_key="t1")
    assert every.decide("0.1 tool result", turn_key="t1", followup=True).decision.route == "weak"


def test_sticky_escalation_stays_strong_within_its_scope():
    policy = RoutingPolicy(Fixed(), threshold=0.5, steps="sticky")
    assert policy.decide("0.2 hi", scope="a").decision.route == "weak"
    assert policy.decide("0.8 hard", scope="a").decision.route == "strong"
    kept = policy.decide("0.1 easy again", scope="a").decision
    assert kept.route == "strong" and kept.step_policy == "sticky:kept"
    assert policy.decide("0.1 other thread", scope="b").decision.route == "weak"


def test_budget_raises_the_threshold_then_goes_weak_and_reports_its_state():
    policy = RoutingPolicy(Fixed(), threshold=0.5, budget=Budget(max_usd=1.0, tighten_below=1.0), steps="every_step")
    t0 = policy.decide("0.6 a", scope="run").decision
    assert t0.route == "strong" and t0.threshold == pytest.approx(0.5)
    policy.settle(policy.decide("0.6 a", scope="run"), 0.5)  # half the budget spent
    half = policy.decide("0.6 b", scope="run").decision
    assert half.threshold > 0.7 and half.route == "weak"  # demands more confidence
    assert half.budget["spent_usd"] == pytest.approx(0.5)
    policy.settle(policy.decide("0.99 c", scope="run", force="strong"), 0.5)  # spend the rest
    assert policy.budget.threshold_in_force(0.5, "run") == pytest.approx(1.0)
    assert policy.budget.state("run").remaining_fraction == 0.0
    with pytest.raises(BudgetExceeded, match="a weak call does not fit"):  # the cap holds total spend
        policy.decide("0.99 d", scope="run")
    assert policy.budget.state("run").in_flight == 2  # t0 and half were never settled; the refusal reserved nothing
    assert policy.decide("0.99 e", scope="other").decision.route == "strong"  # scopes are separate


def test_threshold_only_tightens_once_less_than_tighten_below_is_left():
    policy = RoutingPolicy(Fixed(), threshold=0.5, budget=Budget(max_usd=1.0), steps="every_step")
    policy.settle(policy.decide("0.6 a", scope="r"), 0.4)  # 60% left: above the default knee (50%)
    assert policy.budget.threshold_in_force(0.5, "r") == pytest.approx(0.5)
    policy.settle(policy.decide("0.6 a", scope="r"), 0.35)  # 25% left: half-way down the knee
    assert policy.budget.threshold_in_force(0.5, "r") == pytest.approx(1.0 - 0.5 * 0.5)


def test_raise_mode_refuses_instead_of_downgrading_and_weak_mode_downgrades():
    bounds = {"strong": 0.3, "weak": 0.01}
    for mode, expect in (("weak", "weak"), ("raise", None)):
        policy = RoutingPolicy(Fixed(), threshold=0.5, budget=Budget(max_usd=1.0, on_exhausted=mode),
                               steps="every_step")
        policy.settle(policy.decide("0.9 x", scope="s", bounds=bounds), 0.8)
        if expect is None:  # the route is kept while money is left: the last call may pass the cap
            kept = policy.decide("0.99 y", scope="s", bounds=bounds)
            assert kept.decision.route == "strong" and kept.decision.step_policy == "every_step"
            policy.settle(kept, 0.25)
            with pytest.raises(BudgetExceeded, match="exhausted"):
                policy.decide("0.99 z", scope="s", bounds=bounds)
            with pytest.raises(BudgetExceeded, match="a weak call does not fit"):
                policy.decide("0.01 z", scope="s", bounds=bounds)
        else:
            d = policy.decide("0.99 y", scope="s", bounds=bounds).decision
            assert d.route == "weak" and d.step_policy == "every_step:budget"


def test_reservations_are_per_call_bounds_so_a_far_cap_never_downgrades_concurrent_calls():
    policy = RoutingPolicy("length", threshold=0.0, budget=Budget(max_usd=1000.0))
    tickets = [policy.decide("long prompt " * 50, bounds={"strong": 0.05, "weak": 0.001}) for _ in range(300)]
    assert {t.decision.step_policy for t in tickets} == {"per_turn"}
    assert policy.budget.state("global").reserved_usd == pytest.approx(300 * 0.05)
    for t in tickets:
        policy.settle(t, 0.01)
    state = policy.budget.state("global")
    assert state.reserved_usd == pytest.approx(0.0) and state.in_flight == 0 and state.spent_usd == pytest.approx(3.0)


def test_dry_run_previews_without_reserving_observing_or_remembering():
    policy = RoutingPolicy(Fixed(), strong_fraction=0.5, budget=Budget(max_usd=1.0), steps="sticky")
    before = policy.online.state_dict()
    d = policy.decide("0.9 x", scope="p", turn_key="t", bounds={"strong": 0.5, "weak": 0.1}, dry_run=True).decision
    assert d.route == "strong"
    assert policy.budget.state("p").in_flight == 0 and policy.budget.state("p").reserved_usd == 0.0
    assert policy.online.state_dict() == before and "p" not in policy._sticky and not policy._turns


def test_scope_state_is_bounded_and_reading_state_creates_nothing():
    policy = RoutingPolicy(Fixed(), threshold=0.5, budget=Budget(max_usd=1.0), steps="sticky", max_scopes=50)
    for i in range(500):
        policy.settle(policy.decide("0.9 x", scope=f"run-{i}"), 0.001)
    assert len(policy.budget) <= 50 and len(policy._sticky) <= 50
    policy.budget.state("never-used")
    assert "never-used" not in policy.budget.store._scopes
    held = policy.decide("0.9 x", scope="in-flight")  # a scope with a call in flight is never forgotten
    for i in range(500, 700):
        policy.settle(policy.decide("0.9 x", scope=f"run-{i}"), 0.001)
    assert policy.budget.state("in-flight").in_flight == 1
    policy.settle(held, 0.001)
    assert policy.budget.state("in-flight").in_flight == 0


def test_scope_ttl_forgets_idle_scopes():
    tracker = BudgetTracker(Budget(max_usd=1.0), scope_ttl_s=0.05)
    tracker.settle(tracker.reserve("old", "weak", {"weak": 0.1}), 0.1)
    time.sleep(0.1)
    tracker.settle(tracker.reserve("new", "weak", {"weak": 0.1}), 0.1)
    assert "old" not in tracker.store._scopes and "new" in tracker.store._scopes
    with pytest.raises(ValueError):
        Budget(max_cost=1.0)  # a misspelt field is an error, not "no cap"


def test_budget_never_overshoots_by_more_than_one_call_under_concurrency():
    tracker = BudgetTracker(Budget(max_usd=1.0, on_exhausted="raise"))
    spent, refused, lock = [], [0], threading.Lock()
    rng = np.random.default_rng(3)
    costs = rng.uniform(0.01, 0.05, 2000)

    def call(cost):
        try:  # each call reserves its upper bound, as the lifecycle does
            r = tracker.reserve("run", "strong", {"strong": float(costs.max())})
        except BudgetExceeded:
            with lock:
                refused[0] += 1
            return
        tracker.settle(r, float(cost))
        with lock:
            spent.append(float(cost))

    threads = [threading.Thread(target=lambda cs=costs[i::8]: [call(c) for c in cs]) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert refused[0] > 0
    assert sum(spent) <= 1.0 + costs.max()
    assert tracker.state("run").spent_usd == pytest.approx(sum(spent))


def test_strong_call_cap_and_weak_fallback():
    policy = RoutingPolicy(Fixed(), threshold=0.5, budget=Budget(max_strong_calls=2), steps="every_step")
    routes = []
    for _ in range(4):
        ticket = policy.decide("0.9 hard", scope="s")
        policy.settle(ticket, 0.01)
        routes.append(ticket.decision.route)
    assert routes == ["strong", "strong", "weak", "weak"]
    strict = RoutingPolicy(Fixed(), threshold=0.5, budget=Budget(max_usd=0.02, on_exhausted="raise"))
    strict.settle(strict.decide("0.1 x", scope="s"), 0.02)
    with pytest.raises(BudgetExceeded, match="scope 's' exhausted"):
        strict.decide("0.1 y", scope="s")
