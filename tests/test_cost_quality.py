"""Cost-quality curves and AIQ (evaluation/cost_quality.py): hand-computed hulls and
areas, and the properties the N-way benchmark relies on. No data folder, no network."""

from __future__ import annotations

import numpy as np
import pytest

from routellm_integrations.evaluation.cost_quality import (
    CostQualityCurve,
    CostQualityPoint,
    LengthCostModel,
    aiq,
    best_single,
    cost_range,
    cost_to_reach,
    hull_quality_at,
    non_decreasing_convex_hull,
    oracle_points,
    single_model_points,
    sweep,
    weight_grid,
    zero_router_aiq,
)


def P(c: float, q: float, label: str = "") -> CostQualityPoint:
    return CostQualityPoint(c, q, label)


def coords(points: list[CostQualityPoint]) -> list[tuple[float, float]]:
    return [(p.cost, p.quality) for p in points]


# -- hull ---------------------------------------------------------------------------
def test_hull_drops_points_below_and_after_the_peak() -> None:
    pts = [P(0, 0.2), P(1, 0.3), P(2, 0.7), P(3, 0.75), P(4, 0.8), P(5, 0.6), P(2.5, 0.4)]
    # (1, 0.3) lies below the chord (0,0.2)-(2,0.7) (0.45 there); (3, 0.75) below
    # (2,0.7)-(4,0.8) (0.75 there: collinear, dropped); (5, 0.6) is after the peak.
    assert coords(non_decreasing_convex_hull(pts)) == [(0, 0.2), (2, 0.7), (4, 0.8)]


def test_hull_keeps_best_quality_at_equal_cost_and_is_order_free() -> None:
    pts = [P(1, 0.5), P(1, 0.6), P(0, 0.1), P(3, 0.9)]
    expect = [(0, 0.1), (1, 0.6), (3, 0.9)]
    assert coords(non_decreasing_convex_hull(pts)) == expect
    assert coords(non_decreasing_convex_hull(pts[::-1])) == expect


def test_hull_of_a_cheap_best_point_is_that_point() -> None:
    # the cheapest point is also the best: nothing dearer is worth buying
    pts = [P(1, 0.9), P(2, 0.8), P(3, 0.85)]
    assert coords(non_decreasing_convex_hull(pts)) == [(1, 0.9)]
    # a plateau: the first point of maximum quality ends the hull
    assert coords(non_decreasing_convex_hull([P(0, 0.2), P(1, 0.5), P(2, 0.5)])) == [(0, 0.2), (1, 0.5)]


def test_hull_rejects_empty_and_non_finite() -> None:
    with pytest.raises(ValueError):
        non_decreasing_convex_hull([])
    with pytest.raises(ValueError):
        P(float("nan"), 0.5)


# -- AIQ ----------------------------------------------------------------------------
def test_aiq_hand_computed() -> None:
    pts = [P(0, 0.2), P(2, 0.7), P(4, 0.8)]
    # trapezoids 2*(0.2+0.7)/2 + 2*(0.7+0.8)/2 = 0.9 + 1.5 = 2.4 over a range of 4
    assert aiq(pts, 0, 4) == pytest.approx(0.6)
    # flat right of the last vertex: [0, 6] adds 2 * 0.8
    assert aiq(pts, 0, 6) == pytest.approx((2.4 + 1.6) / 6)
    # a range starting inside the hull cuts it: [1, 4] -> (0.45+0.7)/2*1 + 1.5 = 2.075
    assert aiq(pts, 1, 4) == pytest.approx(2.075 / 3)


def test_aiq_left_of_first_point_is_zero_or_clamped() -> None:
    pts = [P(2, 0.5), P(4, 0.9)]
    # zero left of cost 2: (0.5+0.9)/2*2 = 1.4 over range 4
    assert aiq(pts, 0, 4) == pytest.approx(0.35)
    assert aiq(pts, 0, 4, left="clamp") == pytest.approx((1.0 + 1.4) / 4)
    assert hull_quality_at(non_decreasing_convex_hull(pts), 1.0) == 0.0
    assert hull_quality_at(non_decreasing_convex_hull(pts), 1.0, left="clamp") == 0.5
    assert hull_quality_at(non_decreasing_convex_hull(pts), 9.0) == 0.9


def test_single_point_aiq_convention() -> None:
    # one model at cost c, quality q: q * (cost_max - c) / (cost_max - cost_min)
    assert aiq([P(1, 0.6)], 1, 5) == pytest.approx(0.6)
    assert aiq([P(3, 0.6)], 1, 5) == pytest.approx(0.3)
    assert aiq([P(5, 0.9)], 1, 5) == 0.0
    assert aiq([P(3, 0.6)], 1, 5, left="clamp") == pytest.approx(0.6)


def test_aiq_degenerate_and_bad_ranges() -> None:
    assert aiq([P(1, 0.4), P(1, 0.7)], 1, 1) == pytest.approx(0.7)
    with pytest.raises(ValueError):
        aiq([P(1, 0.4)], 2, 1)
    with pytest.raises(ValueError):
        aiq([P(1, 0.4)], 0, 1, left="middle")  # type: ignore[arg-type]


def test_aiq_is_monotone_in_adding_points() -> None:
    rng = np.random.default_rng(3)
    pts = [P(float(c), float(q)) for c, q in rng.random((12, 2))]
    base = aiq(pts, 0, 1)
    for c, q in rng.random((20, 2)):
        assert aiq(pts + [P(float(c), float(q))], 0, 1) >= base - 1e-12


# -- cost to reach ------------------------------------------------------------------
def test_cost_to_reach_interpolates_and_gives_none_when_unreachable() -> None:
    pts = [P(0, 0.2), P(2, 0.7), P(4, 0.8)]
    assert cost_to_reach(pts, 0.1) == 0.0
    assert cost_to_reach(pts, 0.7) == pytest.approx(2.0)
    assert cost_to_reach(pts, 0.75) == pytest.approx(3.0)
    assert cost_to_reach(pts, 0.45) == pytest.approx(1.0)
    assert cost_to_reach(pts, 0.81) is None
    curve = CostQualityCurve("r", pts)
    assert curve.cost_to_reach(0.75) == pytest.approx(3.0)
    assert curve.best() == pts[2]


# -- singles, zero router, oracle, sweep --------------------------------------------
def _toy() -> tuple[np.ndarray, np.ndarray, list[str]]:
    # 6 prompts x 3 models; model 2 is best and dearest, model 0 cheapest
    y = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
    c = np.array([1.0, 2.0, 5.0])
    return y, c, ["cheap", "mid", "dear"]


def test_single_model_points_and_range() -> None:
    y, c, models = _toy()
    singles = single_model_points(y, c, models)
    assert coords(singles) == [(1.0, 2 / 6), (2.0, 3 / 6), (5.0, 4 / 6)]
    assert [p.label for p in singles] == models
    assert cost_range(singles) == (1.0, 5.0)
    assert best_single(singles).label == "dear"
    with pytest.raises(ValueError):
        single_model_points(y, c, models[:2])


def test_zero_router_is_the_hull_of_the_singles() -> None:
    y, c, models = _toy()
    singles = single_model_points(y, c, models)
    hull = non_decreasing_convex_hull(singles)
    # by hand: (1, 1/3), (2, 1/2), (5, 2/3) -> the mid point is above the chord, so all stay
    assert coords(hull) == coords(singles)
    by_hand = ((1 / 3 + 1 / 2) / 2 * 1 + (1 / 2 + 2 / 3) / 2 * 3) / 4
    assert zero_router_aiq(y, c, models) == pytest.approx(by_hand)
    assert zero_router_aiq(y, c, models) == pytest.approx(aiq(singles, 1.0, 5.0))
    # the zero router is at least as good as any single model
    for p in singles:
        assert zero_router_aiq(y, c, models) >= aiq([p], 1.0, 5.0)


def test_oracle_dominates_every_single_model() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((200, 5)) < np.array([0.3, 0.4, 0.5, 0.6, 0.7])).astype(float)
    c = rng.uniform(0.5, 1.5, (200, 5)) * np.array([1, 2, 4, 8, 16])
    models = [f"m{j}" for j in range(5)]
    singles = single_model_points(y, c, models)
    lo, hi = cost_range(singles)
    oracle = oracle_points(y, c, weight_grid(c, 40))
    # weight 0: every prompt some model gets right is right
    assert oracle[0].quality == pytest.approx(y.max(axis=1).mean())
    hull = non_decreasing_convex_hull(oracle)
    for s in singles:
        assert hull_quality_at(hull, s.cost) >= s.quality
        assert cost_to_reach(oracle, s.quality) <= s.cost + 1e-12
    assert aiq(oracle, lo, hi) > zero_router_aiq(y, c, models)


def test_sweep_weight_zero_picks_highest_predicted_quality() -> None:
    y, c, _ = _toy()
    pred = np.tile([0.2, 0.9, 0.5], (6, 1))  # the router believes "mid" is best
    pts = sweep(pred, c, y, c, [0.0, 1e6])
    assert pts[0].cost == 2.0 and pts[0].quality == pytest.approx(3 / 6)
    assert pts[0].cost_weight == 0.0 and pts[0].label == "router"
    # a huge weight sends everything to the cheapest model
    assert pts[1].cost == 1.0 and pts[1].quality == pytest.approx(2 / 6)


def test_sweep_scores_actual_not_expected_costs() -> None:
    y, _, _ = _toy()
    pred = np.tile([0.2, 0.9, 0.5], (6, 1))
    expected = np.array([1.0, 2.0, 5.0])
    actual = np.array([10.0, 20.0, 50.0])
    (pt,) = sweep(pred, expected, y, actual, [0.0])
    assert pt.cost == 20.0


def test_sweep_with_perfect_predictions_matches_oracle() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random((50, 4)) < 0.5).astype(float)
    c = np.array([1.0, 2.0, 3.0, 4.0])
    w = weight_grid(c, 10)
    assert coords(sweep(y, c, y, c, w)) == coords(oracle_points(y, c, w))


def test_sweep_per_prompt_choice_beats_a_fixed_model() -> None:
    # prompts of two kinds; model 0 only solves kind A, model 1 only kind B, same price:
    # a router that knows the kind gets everything right; any single model gets half
    y = np.array([[1, 0], [0, 1]] * 5, dtype=float)
    c = np.array([1.0, 1.0])
    pts = sweep(y * 0.8 + 0.1, c, y, c, [0.0])
    assert pts[0].quality == 1.0
    assert max(p.quality for p in single_model_points(y, c, ["a", "b"])) == 0.5


def test_sweep_rejects_bad_shapes_and_values() -> None:
    y, c, _ = _toy()
    with pytest.raises(ValueError):
        sweep(y[:, :2], c, y, c, [0.0])
    with pytest.raises(ValueError):
        sweep(y, c[:2], y, c, [0.0])
    bad = y.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        sweep(y, c, bad, c, [0.0])
    with pytest.raises(ValueError):
        sweep(y, -c, y, c, [0.0])


def test_weight_grid_spans_best_quality_to_cheapest() -> None:
    y, c, _ = _toy()
    w = weight_grid(c, 40)
    assert w[0] == 0.0 and len(w) == 41 and all(a < b for a, b in zip(w[1:], w[2:]))
    pred = np.tile([0.2, 0.5, 0.9], (6, 1))
    pts = sweep(pred, c, y, c, w)
    assert pts[0].cost == 5.0  # best predicted quality
    assert pts[-1].cost == 1.0  # cheapest
    assert weight_grid(np.zeros(3)) == [0.0]


# -- expected cost ------------------------------------------------------------------
def test_length_cost_model_fits_lines_and_clips() -> None:
    lengths = np.array([100.0, 200.0, 300.0, 400.0])
    costs = np.stack([1e-4 + 1e-6 * lengths, np.full(4, 3e-3)], axis=1)
    model = LengthCostModel.fit(lengths, costs)
    np.testing.assert_allclose(model.predict(np.array([250.0])), [[3.5e-4, 3e-3]], rtol=1e-9)
    # outside the fitted range the prediction is clipped to the costs seen
    np.testing.assert_allclose(model.predict(np.array([0.0, 10_000.0]))[:, 0], [2e-4, 5e-4], rtol=1e-9)
    with pytest.raises(ValueError):
        LengthCostModel.fit(lengths[:3], costs)


def test_switch_weights_are_the_per_prompt_hull_slopes() -> None:
    from routellm_integrations.evaluation.cost_quality import switch_weights

    c = np.array([1.0, 2.0, 4.0, 5.0])
    # prompt 0: hull (1,.2)-(2,.6)-(4,.8); (5,.7) is dearer and worse -> slopes .4, .1
    # prompt 1: model 1 is no better than model 0 -> never chosen; (1,.5)-(4,.8) slope .1
    q = np.array([[0.2, 0.6, 0.8, 0.7], [0.5, 0.5, 0.8, 0.6]])
    np.testing.assert_allclose(switch_weights(q, c), [0.1, 0.1, 0.4])
    w = weight_grid(c, 30, quality=q)
    assert w[0] == 0.0 and w[1] < 0.1 and w[-1] > 0.4
    pts = sweep(q, c, np.ones_like(q), c, w)
    assert pts[0].cost == 4.0 and pts[-1].cost == 1.0
    # every prompt's best model is its cheapest: nothing to sweep
    assert weight_grid(c, 30, quality=np.array([[0.9, 0.5, 0.4, 0.1]])) == [0.0]
