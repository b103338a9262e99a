"""Bradley-Terry / Elo fitting: recovery of known strengths, ties, weights, tiers."""

from __future__ import annotations

import time

import numpy as np
import pytest

from routellm_integrations.data.battles import Battle, BattleTable
from routellm_integrations.data.elo import (EloRatings, aggregate_wins, assign_tiers,
                                            fit_bradley_terry)
from routellm_integrations.errors import DataError, UnknownModelError

TRUE = {"m0": 1300.0, "m1": 1150.0, "m2": 1000.0, "m3": 950.0, "m4": 700.0}


def _p(ra: float, rb: float) -> float:
    return 1.0 / (1.0 + 10 ** ((rb - ra) / 400))


def synthetic_table(n: int, seed: int = 0, tie_rate: float = 0.0) -> BattleTable:
    """Battles drawn from a Bradley-Terry model with the ratings in TRUE.

    Ties are drawn so that a's expected score (win = 1, tie = 1/2) is still the BT
    probability p: P(tie) = 2 * tie_rate * min(p, 1 - p), P(a wins) = p - P(tie) / 2.
    That is the sense in which "a tie is half a win" is an unbiased model.
    """
    rng = np.random.default_rng(seed)
    models = list(TRUE)
    r = np.array([TRUE[m] for m in models])
    a = rng.integers(0, len(models), n)
    b = (a + rng.integers(1, len(models), n)) % len(models)
    p = 1 / (1 + 10 ** ((r[b] - r[a]) / 400))
    p_tie = 2 * tie_rate * np.minimum(p, 1 - p)
    u = rng.random(n)
    winner = np.where(u < p - p_tie / 2, 0, np.where(u < p + p_tie / 2, 2, 1))
    return BattleTable(["p"], models, ["synthetic"], np.zeros(n, dtype=np.int64), a, b, winner,
                       np.zeros(n, dtype=np.int16))


def _table(rows: list[tuple[str, str, str]]) -> BattleTable:
    return BattleTable.from_battles([Battle("p", a, b, w, "s") for a, b, w in rows])  # type: ignore[arg-type]


def test_recovers_known_strengths() -> None:
    fit = fit_bradley_terry(synthetic_table(40_000, tie_rate=0.5), l2=1e-6)
    assert fit.ranking() == list(TRUE)
    assert np.mean(list(fit.ratings.values())) == pytest.approx(1000.0)
    true_mean = np.mean(list(TRUE.values()))
    for m, r in TRUE.items():
        assert fit.ratings[m] == pytest.approx(r - true_mean + 1000.0, abs=25)
    for a in TRUE:
        for b in TRUE:
            if a != b:
                assert fit.win_probability(a, b) == pytest.approx(_p(TRUE[a], TRUE[b]), abs=0.03)
                assert fit.win_probability(a, b) + fit.win_probability(b, a) == pytest.approx(1.0)


def test_anchor_model_is_1000() -> None:
    fit = fit_bradley_terry(synthetic_table(5_000), anchor="m2")
    assert fit.ratings["m2"] == pytest.approx(1000.0)
    assert fit.anchor == "m2"
    with pytest.raises(UnknownModelError):
        fit_bradley_terry(synthetic_table(100), anchor="nobody")


def test_ties_count_half_a_win_each() -> None:
    only_ties = fit_bradley_terry(_table([("A", "B", "tie")] * 10))
    assert only_ties.ratings["A"] == pytest.approx(only_ties.ratings["B"], abs=1e-6)
    # one win and one tie for A = 1.5 of 2 points: P(A beats B) = 0.75 at the MLE
    fit = fit_bradley_terry(_table([("A", "B", "a"), ("B", "A", "tie")]), l2=0.0)
    assert fit.win_probability("A", "B") == pytest.approx(0.75, abs=1e-4)
    wins, games = aggregate_wins(_table([("A", "B", "a"), ("B", "A", "tie")]))
    assert wins.tolist() == [[0.0, 1.5], [0.5, 0.0]] and games.tolist() == [[0.0, 2.0], [2.0, 0.0]]


def test_weights() -> None:
    t = synthetic_table(3_000, seed=1, tie_rate=0.1)
    w = np.random.default_rng(2).random(len(t))
    w[::3] = 0.0
    weighted = fit_bradley_terry(t, weights=w)
    # weight 0 removes a battle ...
    subset = fit_bradley_terry(t.select(w > 0), weights=w[w > 0])
    for m in TRUE:
        assert weighted.ratings[m] == pytest.approx(subset.ratings[m], abs=1e-6)
    # ... and scaling every weight barely matters (only through the small L2 penalty)
    doubled = fit_bradley_terry(t, weights=2 * w)
    for m in TRUE:
        assert doubled.ratings[m] == pytest.approx(weighted.ratings[m], abs=0.5)
    # unit weights are the unweighted fit
    plain = fit_bradley_terry(t)
    ones = fit_bradley_terry(t, weights=np.ones(len(t)))
    assert plain.ratings == pytest.approx(ones.ratings)
    # concentrating weight on battles m4 won flips m4 above m0
    tilt = np.where(((t.model_a == 4) & (t.winner == 0)) | ((t.model_b == 4) & (t.winner == 1)), 50.0, 1.0)
    tilted = fit_bradley_terry(t, weights=tilt)
    assert tilted.ratings["m4"] > tilted.ratings["m0"]


def test_bad_weights_are_rejected() -> None:
    t = synthetic_table(10)
    with pytest.raises(DataError, match="shape"):
        fit_bradley_terry(t, weights=np.ones(3))
    with pytest.raises(DataError, match="non-negative"):
        fit_bradley_terry(t, weights=-np.ones(10))


def test_undefeated_model_and_unplayed_models() -> None:
    t = BattleTable(["p"], ["A", "B", "C"], ["s"], np.zeros(5, dtype=np.int64), np.zeros(5), np.ones(5),
                    np.zeros(5), np.zeros(5))
    fit = fit_bradley_terry(t)  # A never loses: finite only thanks to the L2 penalty
    assert np.isfinite(fit.ratings["A"]) and fit.ratings["A"] > fit.ratings["B"]
    assert "C" not in fit.ratings
    with pytest.raises(UnknownModelError, match="C"):
        fit.win_probability("A", "C")


def test_fit_is_fast_on_a_million_weighted_battles() -> None:
    t = synthetic_table(1_000_000, seed=3, tie_rate=0.1)
    w = np.random.default_rng(4).random(len(t))
    start = time.perf_counter()
    fit_bradley_terry(t, weights=w)
    assert time.perf_counter() - start < 2.0


def test_assign_tiers() -> None:
    ratings = {f"m{i:02d}": float(1000 + 10 * i) for i in range(20)}
    tiers = assign_tiers(ratings, n_tiers=10)
    assert tiers["m19"] == 0 and tiers["m18"] == 0 and tiers["m17"] == 1 and tiers["m00"] == 9
    assert sorted(np.bincount(list(tiers.values())).tolist()) == [2] * 10
    few = assign_tiers({"a": 3.0, "b": 2.0, "c": 1.0}, n_tiers=10)
    assert few == {"a": 0, "b": 1, "c": 2}
    wide = assign_tiers({"a": 100.0, "b": 95.0, "c": 0.0}, n_tiers=10, method="equal_width")
    assert wide == {"a": 0, "b": 0, "c": 9}
    fit = EloRatings(ratings={"x": 1.0, "y": 2.0}, n_battles=1, total_weight=1.0, l2=0.0, iterations=1)
    assert assign_tiers(fit, n_tiers=2) == {"y": 0, "x": 1}
    with pytest.raises(DataError):
        assign_tiers(ratings, method="kmeans")  # type: ignore[arg-type]


@pytest.mark.slow
def test_real_pool_rates_gpt4_above_mixtral() -> None:
    from routellm_integrations.data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL
    from routellm_integrations.data.sources import load_battles

    table = load_battles()
    fit = fit_bradley_terry(table)
    assert fit.ratings[DEFAULT_STRONG_MODEL] > fit.ratings[DEFAULT_WEAK_MODEL] + 30
    assert 0.55 < fit.win_probability(DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL) < 0.95
    tiers = assign_tiers(fit)
    assert tiers[DEFAULT_STRONG_MODEL] < tiers[DEFAULT_WEAK_MODEL]
    assert set(tiers.values()) == set(range(10))
