"""Bradley-Terry ratings on the Elo scale, fitted from battles (ties = half a win each).

This is the model Chatbot Arena and RouteLLM's similarity-weighted ranking router use:
P(a beats b) = 1 / (1 + 10 ** ((R_b - R_a) / 400)). The similarity-weighted router refits
it for every incoming prompt with per-battle weights, so the fit must be fast: battles
are first reduced to weighted (a, b) win totals (an M x M matrix, M ~ 100 models), then
a few Newton steps on M parameters solve the maximum-likelihood problem exactly. The
cost after aggregation does not depend on the number of battles.

A small L2 penalty keeps the problem well posed when a model never loses (or never
wins) or when the battle graph is disconnected; ratings of models in different connected
components are then only tied together by that penalty and should not be compared.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import DataError, UnknownModelError
from .battles import BattleTable

ELO_SCALE = 400.0
ELO_BASE = 10.0
ELO_INIT = 1000.0
_K = ELO_SCALE / math.log(ELO_BASE)  # natural-log strength -> Elo points


class EloRatings(BaseModel):
    """Fitted ratings. ``ratings`` maps model -> Elo rating (higher = stronger)."""

    model_config = ConfigDict(frozen=True)

    ratings: dict[str, float]
    n_battles: int
    total_weight: float
    anchor: str | None = None  # None: the mean rating is ELO_INIT
    l2: float
    iterations: int

    def rating(self, model: str) -> float:
        try:
            return self.ratings[model]
        except KeyError:
            raise UnknownModelError(f"model {model!r} has no rating (it is in no battle); "
                                    f"rated: {sorted(self.ratings)[:10]}...") from None

    def win_probability(self, a: str, b: str) -> float:
        """P(``a`` beats ``b``) under the fitted model (a tie counting as half)."""
        return 1.0 / (1.0 + ELO_BASE ** ((self.rating(b) - self.rating(a)) / ELO_SCALE))

    def ranking(self) -> list[str]:
        """Models from strongest to weakest."""
        return sorted(self.ratings, key=lambda m: -self.ratings[m])


def aggregate_wins(table: BattleTable, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(wins, games)``: ``wins[i, j]`` = weighted wins of model i over j, a tie adding
    half to both sides; ``games = wins + wins.T``. Indices follow ``table.models``."""
    m = len(table.models)
    if weights is None:
        w = np.ones(len(table), dtype=np.float64)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(table),):
            raise DataError(f"weights has shape {w.shape}, expected ({len(table)},) - one per battle")
        if not np.isfinite(w).all() or (w < 0).any():
            raise DataError("weights must be finite and non-negative")
    a = table.model_a.astype(np.int64)
    b = table.model_b.astype(np.int64)
    win_a = np.where(table.winner == 0, 1.0, np.where(table.winner == 1, 0.0, 0.5)) * w
    flat = np.bincount(a * m + b, weights=win_a, minlength=m * m) + \
        np.bincount(b * m + a, weights=w - win_a, minlength=m * m)
    wins = flat.reshape(m, m)
    return wins, wins + wins.T


def fit_bradley_terry(table: BattleTable, weights: np.ndarray | None = None, *, l2: float = 1e-3,
                      anchor: str | None = None, max_iter: int = 100, tol: float = 1e-8) -> EloRatings:
    """Maximum-likelihood Bradley-Terry ratings on the Elo scale.

    ``weights`` (one per battle, >= 0) scale each battle's contribution: weight 0 removes
    it, and multiplying all weights by a constant changes the ratings only through the
    (small) penalty ``l2 * sum(theta ** 2) / 2`` on natural-log strengths. Ratings are
    shifted so their mean is 1000, or so that ``anchor`` is exactly 1000. Models of
    ``table.models`` without any (non-zero-weight) battle get no rating.
    """
    if l2 < 0:
        raise DataError(f"l2 must be >= 0, got {l2}")
    wins, games = aggregate_wins(table, weights)
    played = games.sum(axis=1) > 0
    idx = np.flatnonzero(played)
    names = [table.models[i] for i in idx]
    if anchor is not None and anchor not in names:
        raise UnknownModelError(f"anchor model {anchor!r} has no battle in this table")
    if len(idx) == 0:
        return EloRatings(ratings={}, n_battles=len(table), total_weight=0.0, anchor=anchor, l2=l2, iterations=0)
    W, N = wins[np.ix_(idx, idx)], games[np.ix_(idx, idx)]
    k = len(idx)
    # tiny ridge when l2 == 0 so a disconnected or one-sided graph still has a solution
    lam = l2 if l2 > 0 else 1e-9
    def objective(t: np.ndarray) -> float:  # penalised log-likelihood (maximised)
        d = t[:, None] - t[None, :]
        return float(-(W * np.logaddexp(0.0, -d)).sum() - 0.5 * lam * (t @ t))

    theta = np.zeros(k)
    current = objective(theta)
    it = 0
    for it in range(1, max_iter + 1):
        p = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))  # P(i beats j)
        grad = W.sum(axis=1) - (N * p).sum(axis=1) - lam * theta
        h = N * p * (1.0 - p)  # Fisher information between i and j
        hess = np.diag(h.sum(axis=1) + lam) - h  # negative Hessian: Laplacian + ridge
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while True:  # backtracking keeps Newton monotone on near-separable data
            candidate = objective(theta + t * step)
            if candidate >= current - 1e-12 * abs(current) or t < 1e-6:
                break
            t *= 0.5
        theta = theta + t * step
        current = candidate
        if np.max(np.abs(t * step)) < tol:
            break
    elo = _K * theta
    shift = ELO_INIT - (elo[names.index(anchor)] if anchor is not None else elo.mean())
    ratings = {n: float(r + shift) for n, r in zip(names, elo)}
    return EloRatings(ratings=ratings, n_battles=len(table), total_weight=float(N.sum() / 2),
                      anchor=anchor, l2=l2, iterations=it)


def assign_tiers(ratings: EloRatings | dict[str, float], n_tiers: int = 10,
                 method: Literal["quantile", "equal_width"] = "quantile") -> dict[str, int]:
    """Group models into ``n_tiers`` tiers by global rating; tier 0 is the strongest.

    The RouteLLM paper groups Arena models into 10 tiers so that sparse per-model data
    pools into denser per-tier data. ``"quantile"`` (default) puts about the same number
    of models in each tier by rank, so every tier has data; ``"equal_width"`` cuts the
    rating range into equal intervals (tiers can be empty). With fewer models than tiers,
    quantile tiers give each model its own tier in rank order.
    """
    if n_tiers < 1:
        raise DataError(f"n_tiers must be >= 1, got {n_tiers}")
    r = ratings.ratings if isinstance(ratings, EloRatings) else dict(ratings)
    if not r:
        return {}
    order = sorted(r, key=lambda m: (-r[m], m))
    if method == "quantile":
        n = len(order)
        return {m: min(n_tiers - 1, (rank * n_tiers) // n) if n >= n_tiers else rank
                for rank, m in enumerate(order)}
    if method == "equal_width":
        hi, lo = r[order[0]], r[order[-1]]
        width = (hi - lo) / n_tiers
        if width == 0:
            return {m: 0 for m in order}
        return {m: min(n_tiers - 1, int((hi - r[m]) / width)) for m in order}
    raise DataError(f"unknown tier method {method!r}; use 'quantile' or 'equal_width'")
