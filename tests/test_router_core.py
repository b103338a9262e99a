"""The router protocol, the controls, load_router and calibration: pure numpy, fast."""

import math

import numpy as np
import pytest

from routellm_integrations import (InvalidPromptError, InvalidThresholdError, RoutingDecision,
                                   UnknownRouterError, available_routers, load_router,
                                   threshold_for_strong_fraction)
from routellm_integrations.calibration import calibrate_threshold, strong_share
from routellm_integrations.routers import Router


def test_registered_names():
    assert {"random", "length", "mf"} <= set(available_routers())


def test_random_router_is_seeded_and_in_range():
    a, b = load_router("random", seed=3), load_router("random", seed=3)
    prompts = [f"p{i}" for i in range(100)]
    sa, sb = a.score(prompts), b.score(prompts)
    assert sa.shape == (100,)
    assert np.array_equal(sa, sb)
    assert ((sa >= 0) & (sa <= 1)).all()
    assert not np.array_equal(sa, load_router("random", seed=4).score(prompts))
    assert isinstance(a, Router)


def test_length_router_orders_by_length():
    r = load_router("length")
    s = r.score(["short", "a" * 400, "b" * 4000])
    assert s[0] < s[1] < s[2]
    assert s[1] == pytest.approx(0.5)


@pytest.mark.parametrize("threshold,route", [(0.0, "strong"), (0.5, "strong"), (0.51, "weak"), (1.0, "weak")])
def test_route_uses_score_at_least_threshold(threshold, route):
    decision = load_router("length").route("a" * 400, threshold)  # score exactly 0.5
    assert isinstance(decision, RoutingDecision)
    assert decision.route == route
    assert decision.router == "length"
    assert decision.threshold == threshold
    assert decision.latency_ms is not None and decision.latency_ms >= 0


def test_route_batch_matches_route():
    r = load_router("length")
    prompts = ["x" * n for n in (10, 300, 500, 900)]
    batch = r.route_batch(prompts, 0.5)
    assert [d.route for d in batch] == [r.route(p, 0.5).route for p in prompts]


@pytest.mark.parametrize("bad,needle", [
    ([], "empty"), ("a string", "single string"), (["ok", 3], "prompt 1 is a int"),
    (["ok", "   "], "prompt 1 is empty"), ([None], "prompt 0 is a NoneType"), (42, "sequence"),
])
def test_bad_prompts_raise_typed_errors(bad, needle):
    with pytest.raises(InvalidPromptError, match=needle):
        load_router("random").score(bad)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", None, True])
def test_bad_thresholds_raise_typed_errors(bad):
    with pytest.raises(InvalidThresholdError):
        load_router("random").route("hello", bad)


def test_unknown_router_and_bad_folders(tmp_path):
    with pytest.raises(UnknownRouterError, match="unknown router 'gpt5'"):
        load_router("gpt5")
    from routellm_integrations import CheckpointError
    with pytest.raises(CheckpointError, match="no config.json"):
        load_router(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_router(tmp_path)
    (tmp_path / "config.json").write_text('{"router": "alien"}')
    with pytest.raises(CheckpointError, match="alien"):
        load_router(tmp_path)


def test_threshold_for_strong_fraction_hits_target():
    scores = np.linspace(0, 1, 1000)
    for frac in (0.0, 0.1, 0.3, 0.5, 0.8, 1.0):
        t = threshold_for_strong_fraction(scores, frac)
        assert strong_share(scores, t) == pytest.approx(frac, abs=1e-3)


def test_threshold_with_ties_never_overshoots():
    scores = np.array([0.2] * 5 + [0.7] * 5)
    t = threshold_for_strong_fraction(scores, 0.3)
    assert strong_share(scores, t) <= 0.3
    t = threshold_for_strong_fraction(scores, 0.5)
    assert strong_share(scores, t) == 0.5


def test_calibrate_threshold_with_a_router():
    prompts = ["x" * n for n in range(1, 201)]
    t = calibrate_threshold(load_router("length"), prompts, 0.25)
    assert sum(load_router("length").route(p, t).route == "strong" for p in prompts) == 50
    with pytest.raises(InvalidThresholdError):
        calibrate_threshold(load_router("length"), prompts, 1.2)
    with pytest.raises(InvalidPromptError):
        threshold_for_strong_fraction([], 0.5)
    assert math.isfinite(t)
