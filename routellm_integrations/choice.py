"""Choosing one of N models for a prompt: predicted quality against expected cost.

Per prompt, the choice maximises ``quality - cost_weight * expected_cost_usd`` over the
models, or takes the best quality whose expected cost fits ``max_cost_usd``. With
``cost_weight=0`` it is "best quality"; as the weight grows it slides down to "cheapest".
``cost_weight`` is in quality points per USD: 1000 means a tenth of a cent is worth one
point of P(correct). Ties go to the cheaper model.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InvalidThresholdError


def check_cost_weight(value: float, what: str = "cost_weight") -> float:
    """A finite, non-negative number (quality points per USD)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or float(value) < 0:
        raise InvalidThresholdError(f"{what} must be a finite number >= 0 (quality points per USD), got {value!r}")
    return float(value)


def choose(quality: np.ndarray, costs: np.ndarray, cost_weight: float = 0.0,
           max_cost_usd: float | None = None) -> np.ndarray:
    """Index of the chosen model per prompt.

    ``quality``: ``(n, m)`` predicted P(correct); ``costs``: ``(n, m)`` or ``(m,)``
    expected USD per call. Under ``max_cost_usd``, a model whose expected cost exceeds
    it is never chosen; when none fits, the cheapest is."""
    q = np.atleast_2d(np.asarray(quality, dtype=np.float64))
    c = np.broadcast_to(np.asarray(costs, dtype=np.float64), q.shape)
    utility = q - check_cost_weight(cost_weight) * c
    cheapest = np.argmin(c, axis=1)
    if max_cost_usd is not None:
        over = c > float(max_cost_usd) * (1 + 1e-12)
        utility = np.where(over, -np.inf, utility)
    # ties (within float noise) go to the cheaper model: break them by cost
    best = utility.max(axis=1, keepdims=True)
    near = utility >= best - 1e-12
    choice = np.where(near, c, np.inf).argmin(axis=1)
    return np.where(np.isfinite(best[:, 0]), choice, cheapest)


def chosen_cost(quality: np.ndarray, costs: np.ndarray, cost_weight: float) -> float:
    """Mean expected cost of :func:`choose` over the rows (what a cost weight spends)."""
    q = np.atleast_2d(quality)
    c = np.broadcast_to(np.asarray(costs, dtype=np.float64), q.shape)
    idx = choose(q, c, cost_weight)
    return float(c[np.arange(len(idx)), idx].mean())


def weight_for_spend(quality: np.ndarray, costs: np.ndarray, target_usd: float, *, iterations: int = 60) -> float:
    """The smallest cost weight whose choices on these rows spend at most ``target_usd``
    per call on average (bisection in log space; spend falls as the weight grows).

    Runs before every decision of an online spend target, so the choice is evaluated on
    arrays prepared once (the same arithmetic as :func:`choose`, without its checks)."""
    q = np.atleast_2d(np.asarray(quality, dtype=np.float64))
    c = np.ascontiguousarray(np.broadcast_to(np.asarray(costs, dtype=np.float64), q.shape))
    rows = np.arange(q.shape[0])

    def spend(weight: float) -> float:
        utility = q - weight * c
        near = utility >= utility.max(axis=1, keepdims=True) - 1e-12
        return float(c[rows, np.where(near, c, np.inf).argmin(axis=1)].mean())

    if spend(0.0) <= target_usd:
        return 0.0
    positive = c[c > 0]
    # a weight this large makes a quality point worth less than the smallest cost gap
    hi = 1e3 / max(float(positive.min()) if positive.size else 1e-12, 1e-12)
    lo = hi * 1e-12
    if spend(hi) > target_usd:
        return hi
    for _ in range(iterations):
        mid = math.sqrt(lo * hi)
        if spend(mid) > target_usd:
            lo = mid
        else:
            hi = mid
    return hi
