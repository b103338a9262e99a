"""Cost-quality curves for N-way routing, and RouterBench's AIQ.

A strong/weak router is judged by quality against the share of strong calls (APGR, in
:mod:`.metrics`). Routing among N priced models needs the question RouterBench asks
(Hu et al., 2024, "RouterBench: A Benchmark for Multi-LLM Routing System"): what mean
quality does a router buy at each mean cost per prompt? A router with a knob (here the
``cost_weight`` of :func:`~routellm_integrations.choice.choose`) traces points
``(mean USD per prompt, mean correctness)``; any two of them can be mixed at random per
prompt, so everything on the segment between them is reachable too. Hence the figure of
merit is the area under the *non-decreasing convex hull* of the points, divided by the
cost range: the **AIQ** (average improvement in quality).

Conventions (one set, applied to every router alike, so AIQs on a task compare):

* The hull is the upper concave hull of the points, cut at its first point of maximum
  quality: spending more for less is never on it.
* Right of the hull's last point it is extended **flat**: you can always spend less than
  your budget by staying at that point.
* Left of the hull's first point it is **zero** (``left="zero"``, the default): no router
  can deliver quality at a cost below its cheapest operating point. This is what the
  RouterBench reference code does (``evaluation/AIQ.py`` integrates from the first hull
  point and counts nothing before it). ``left="clamp"`` (the first point's quality) is
  offered for sensitivity checks only.
* The integration range ``[cost_min, cost_max]`` should be the same for every router on
  a task; :func:`cost_range` gives the single models' cheapest and dearest mean cost.
  Parts of a hull outside the range are cut off (a router cheaper than every model does
  not earn area below ``cost_min``).

Under these conventions a single model (one point at cost ``c``, quality ``q``) has
``AIQ = q * (cost_max - c) / (cost_max - cost_min)``: the cheapest model scores its
quality, the dearest scores 0. The **zero router** (:func:`zero_router_aiq`) is the hull
of the single models: what mixing whole models at random, without looking at the
prompt, buys. A router that reads the prompt should beat it; the **oracle**
(:func:`oracle_points`, choosing with the true labels) bounds what any router can reach.

Everything here is numpy only, so it can score any router, in or outside this package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

import numpy as np

from ..choice import choose

LeftConvention = Literal["zero", "clamp"]


@dataclass(frozen=True)
class CostQualityPoint:
    """One operating point: mean USD per prompt and mean correctness over a prompt set.

    ``cost_weight`` records the knob that produced it (None for a single model or a
    hull vertex that is an interpolation)."""

    cost: float
    quality: float
    label: str = ""
    cost_weight: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cost) and math.isfinite(self.quality)):
            raise ValueError(f"cost-quality point {self.label!r} is not finite: ({self.cost}, {self.quality})")


@dataclass
class CostQualityCurve:
    """A router's points on one prompt set, with the figures computed from them."""

    label: str
    points: list[CostQualityPoint] = field(default_factory=list)

    def hull(self) -> list[CostQualityPoint]:
        return non_decreasing_convex_hull(self.points)

    def aiq(self, cost_min: float, cost_max: float, left: LeftConvention = "zero") -> float:
        return aiq(self.points, cost_min, cost_max, left=left)

    def cost_to_reach(self, quality: float) -> float | None:
        return cost_to_reach(self.points, quality)

    def best(self) -> CostQualityPoint:
        """The highest-quality point (the cheapest among ties)."""
        return min(self.points, key=lambda p: (-p.quality, p.cost))


# ---------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------
def _matrix(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what} must be a non-empty (prompts, models) matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} holds NaN or infinite values (drop prompts with missing outcomes first)")
    return a


def _costs(x: np.ndarray, shape: tuple[int, int], what: str) -> np.ndarray:
    """Per-prompt costs ``(n, m)`` from ``(n, m)`` or per-model ``(m,)`` values."""
    a = np.asarray(x, dtype=np.float64)
    if a.shape not in (shape, (shape[1],)):
        raise ValueError(f"{what} must have shape {shape} or ({shape[1]},), got {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise ValueError(f"{what} must be finite USD amounts >= 0")
    return np.broadcast_to(a, shape)


def _points(points: Iterable[CostQualityPoint]) -> list[CostQualityPoint]:
    pts = list(points)
    if not pts:
        raise ValueError("no cost-quality points")
    return pts


# ---------------------------------------------------------------------------------
# Points
# ---------------------------------------------------------------------------------
def _point_of(choice: np.ndarray, outcomes: np.ndarray, costs: np.ndarray, label: str,
              weight: float | None) -> CostQualityPoint:
    rows = np.arange(len(choice))
    return CostQualityPoint(float(costs[rows, choice].mean()), float(outcomes[rows, choice].mean()), label, weight)


def sweep(quality_pred: np.ndarray, costs_expected: np.ndarray, outcomes: np.ndarray, costs_actual: np.ndarray,
          weights: Sequence[float], *, label: str = "router") -> list[CostQualityPoint]:
    """The points of a quality router: per cost weight, choose per prompt with
    :func:`~routellm_integrations.choice.choose` on the *predicted* quality and
    *expected* cost (what a router knows before the call), then score the choices with
    the *actual* outcome and the *actual* cost (what the call turned out to cost).

    ``quality_pred``, ``outcomes``: ``(n, m)``; the cost arrays ``(n, m)`` or ``(m,)``."""
    q = _matrix(quality_pred, "quality_pred")
    y = _matrix(outcomes, "outcomes")
    if y.shape != q.shape:
        raise ValueError(f"outcomes has shape {y.shape}, quality_pred {q.shape}")
    ce = _costs(costs_expected, q.shape, "costs_expected")
    ca = _costs(costs_actual, q.shape, "costs_actual")
    return [_point_of(choose(q, ce, float(w)), y, ca, label, float(w)) for w in weights]


def single_model_points(outcomes: np.ndarray, costs_actual: np.ndarray,
                        models: Sequence[str]) -> list[CostQualityPoint]:
    """One point per model: sending every prompt to it."""
    y = _matrix(outcomes, "outcomes")
    if len(models) != y.shape[1]:
        raise ValueError(f"{len(models)} model names for {y.shape[1]} outcome columns")
    ca = _costs(costs_actual, y.shape, "costs_actual")
    return [CostQualityPoint(float(ca[:, j].mean()), float(y[:, j].mean()), str(m)) for j, m in enumerate(models)]


def oracle_points(outcomes: np.ndarray, costs_actual: np.ndarray, weights: Sequence[float],
                  *, label: str = "oracle") -> list[CostQualityPoint]:
    """The oracle's points: per prompt, the model maximising ``correct - w * actual cost``
    with the true labels (weight 0: the cheapest model that is right, else the cheapest).
    No router that reads only the prompt can do better at any cost."""
    y = _matrix(outcomes, "outcomes")
    return sweep(y, costs_actual, y, costs_actual, weights, label=label)


def cost_range(single_points: Sequence[CostQualityPoint]) -> tuple[float, float]:
    """``(cheapest, dearest)`` mean cost of the single models: the AIQ range for a task."""
    pts = _points(single_points)
    return min(p.cost for p in pts), max(p.cost for p in pts)


def switch_weights(quality: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Every cost weight at which some prompt's choice changes, sorted.

    For one prompt, ``argmax_m quality_m - w * cost_m`` walks, as ``w`` falls from
    infinity to 0, along the upper hull of that prompt's ``(cost, quality)`` pairs from
    its cheapest model to its best one; it switches exactly at the hull's segment slopes.
    ``quality``: ``(n, m)``; ``costs``: ``(n, m)`` or ``(m,)``."""
    q = _matrix(quality, "quality")
    c = _costs(costs, q.shape, "costs")
    out: list[float] = []
    for qi, ci in zip(q, c):
        order = np.lexsort((-qi, ci))
        hull_c: list[float] = []
        hull_q: list[float] = []
        for j in order:
            cj, qj = float(ci[j]), float(qi[j])
            if hull_c and cj == hull_c[-1]:
                continue  # same cost, lower quality: never chosen
            if hull_q and qj <= hull_q[-1]:
                continue  # dearer and no better: never chosen
            while len(hull_c) >= 2 and ((hull_c[-1] - hull_c[-2]) * (qj - hull_q[-2])
                                        - (hull_q[-1] - hull_q[-2]) * (cj - hull_c[-2])) >= 0:
                hull_c.pop()
                hull_q.pop()
            hull_c.append(cj)
            hull_q.append(qj)
        out += [(hull_q[k + 1] - hull_q[k]) / (hull_c[k + 1] - hull_c[k]) for k in range(len(hull_c) - 1)]
    return np.sort(np.array(out, dtype=np.float64))


def weight_grid(costs: np.ndarray, n: int = 40, *, quality: np.ndarray | None = None,
                span: float = 1e2) -> list[float]:
    """``0`` and ``n`` log-spaced cost weights running from "best quality" to "cheapest".

    With ``quality`` (what the router predicts, or the true labels for the oracle) the
    range is that of :func:`switch_weights`: from just below the smallest weight at which
    any prompt's choice changes to just above the largest, so no weight is wasted on a
    repeated point. It needs no outcome labels, only the router's own predictions and
    expected costs. Without ``quality`` the range is ``1/span`` quality points per dearest
    mean cost to ``span`` points per cheapest (positive) mean cost.
    ``costs``: ``(n, m)`` or ``(m,)`` USD."""
    if n < 1:
        return [0.0]
    if quality is not None:
        sw = switch_weights(quality, costs)
        sw = sw[sw > 0]
        if sw.size == 0:
            return [0.0]
        lo, hi = sw[0] * 0.99, sw[-1] * 1.01
    else:
        c = np.asarray(costs, dtype=np.float64)
        per_model = c.mean(axis=0) if c.ndim == 2 else c
        positive = per_model[per_model > 0]
        if positive.size == 0:
            return [0.0]
        lo, hi = 1.0 / (span * positive.max()), span / positive.min()
    return [0.0] + [float(w) for w in np.logspace(math.log10(lo), math.log10(hi), n)]


# ---------------------------------------------------------------------------------
# Hull, AIQ, cost to reach a quality
# ---------------------------------------------------------------------------------
def non_decreasing_convex_hull(points: Iterable[CostQualityPoint]) -> list[CostQualityPoint]:
    """The vertices of the upper concave hull of ``points``, by rising cost, cut at the
    first point of maximum quality (so quality rises strictly along it).

    Why the hull: two operating points can be mixed at random per prompt, so every
    point on the segment between them is reachable at the matching mean cost; the best
    reachable quality at a cost is the upper hull. Points below it, collinear with it,
    or after its peak (dearer and no better) are dropped. At equal cost only the best
    quality counts. Monotone chain, ``O(p log p)``."""
    pts = sorted(_points(points), key=lambda p: (p.cost, -p.quality))
    unique: list[CostQualityPoint] = []
    for p in pts:
        if not unique or p.cost > unique[-1].cost:
            unique.append(p)
    hull: list[CostQualityPoint] = []
    for p in unique:
        while len(hull) >= 2:
            o, a = hull[-2], hull[-1]
            cross = (a.cost - o.cost) * (p.quality - o.quality) - (a.quality - o.quality) * (p.cost - o.cost)
            if cross >= 0:  # a is on or below the segment o-p: not a vertex of the upper hull
                hull.pop()
            else:
                break
        hull.append(p)
    peak = max(range(len(hull)), key=lambda i: (hull[i].quality, -i))
    return hull[:peak + 1]


def hull_quality_at(hull: Sequence[CostQualityPoint], cost: float, left: LeftConvention = "zero") -> float:
    """The hull's quality at ``cost`` under the module's conventions (``hull`` as
    :func:`non_decreasing_convex_hull` returns it): linear between vertices, flat after
    the last, zero (or the first quality, ``left="clamp"``) before the first."""
    h = _points(hull)
    if cost < h[0].cost:
        return h[0].quality if left == "clamp" else 0.0
    return float(np.interp(cost, [p.cost for p in h], [p.quality for p in h]))


def aiq(points: Iterable[CostQualityPoint], cost_min: float, cost_max: float,
        left: LeftConvention = "zero") -> float:
    """RouterBench's AIQ: ``1/(cost_max - cost_min) * integral of the hull's quality over
    [cost_min, cost_max]``, with the conventions of the module docstring. When the range
    is empty (every model costs the same) it is the hull's quality at ``cost_max``."""
    if left not in ("zero", "clamp"):
        raise ValueError(f"left must be 'zero' or 'clamp', got {left!r}")
    if not (math.isfinite(cost_min) and math.isfinite(cost_max)) or cost_max < cost_min:
        raise ValueError(f"cost range [{cost_min}, {cost_max}] is not a finite interval")
    hull = non_decreasing_convex_hull(points)
    if cost_max == cost_min:
        return hull_quality_at(hull, cost_max, left)
    xs_h = np.array([p.cost for p in hull])
    ys_h = np.array([p.quality for p in hull])
    area = 0.0
    start = cost_min
    if hull[0].cost > cost_min:
        if left == "clamp":
            area += hull[0].quality * (min(hull[0].cost, cost_max) - cost_min)
        start = hull[0].cost
    if start < cost_max:
        inner = xs_h[(xs_h > start) & (xs_h < cost_max)]
        xs = np.concatenate([[start], inner, [cost_max]])
        ys = np.interp(xs, xs_h, ys_h)  # flat right of the last vertex
        area += float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))
    return area / (cost_max - cost_min)


def cost_to_reach(points: Iterable[CostQualityPoint], quality: float) -> float | None:
    """The lowest mean cost at which the hull reaches ``quality`` (interpolating between
    vertices, i.e. mixing two operating points), or None if it never does. Used with the
    best single model's quality: what the router needs to spend to match it."""
    hull = non_decreasing_convex_hull(points)
    target = float(quality) - 1e-12
    if hull[0].quality >= target:
        return hull[0].cost
    for a, b in zip(hull, hull[1:]):
        if b.quality >= target:
            return a.cost + (b.cost - a.cost) * (target - a.quality) / (b.quality - a.quality)
    return None


def zero_router_aiq(outcomes: np.ndarray, costs_actual: np.ndarray, models: Sequence[str],
                    cost_min: float | None = None, cost_max: float | None = None,
                    left: LeftConvention = "zero") -> float:
    """AIQ of the zero router: the hull of the single models (a random mix of whole
    models, blind to the prompt). The range defaults to :func:`cost_range` of the
    singles."""
    singles = single_model_points(outcomes, costs_actual, models)
    lo, hi = cost_range(singles)
    return aiq(singles, lo if cost_min is None else cost_min, hi if cost_max is None else cost_max, left=left)


def best_single(single_points: Sequence[CostQualityPoint]) -> CostQualityPoint:
    """The single model of highest quality (the cheapest among ties)."""
    return min(_points(single_points), key=lambda p: (-p.quality, p.cost))


# ---------------------------------------------------------------------------------
# Expected cost from prompt length
# ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LengthCostModel:
    """Expected USD per call of each model as ``intercept + slope * len(prompt)``, fitted
    per model by least squares on calls whose cost is known, and clipped to the range
    seen in fitting (a linear fit should not promise a call cheaper than any seen).

    Why length: input tokens grow with the prompt, and a router only sees the prompt;
    output length is unknown before the call, so its mean is absorbed by the intercept."""

    intercept: np.ndarray  # (m,)
    slope: np.ndarray  # (m,) USD per character
    low: np.ndarray  # (m,)
    high: np.ndarray  # (m,)

    @classmethod
    def fit(cls, lengths: np.ndarray, costs: np.ndarray) -> "LengthCostModel":
        """``lengths``: ``(n,)`` prompt characters; ``costs``: ``(n, m)`` USD per call."""
        x = np.asarray(lengths, dtype=np.float64)
        c = _matrix(costs, "costs")
        if x.shape != (c.shape[0],):
            raise ValueError(f"lengths has shape {x.shape}, expected ({c.shape[0]},)")
        design = np.stack([np.ones_like(x), x], axis=1)
        coef, *_ = np.linalg.lstsq(design, c, rcond=None)
        return cls(coef[0], coef[1], c.min(axis=0), c.max(axis=0))

    def predict(self, lengths: np.ndarray) -> np.ndarray:
        x = np.asarray(lengths, dtype=np.float64)[:, None]
        return np.clip(self.intercept + self.slope * x, self.low, self.high)


__all__ = ["CostQualityCurve", "CostQualityPoint", "LengthCostModel", "aiq", "best_single", "cost_range",
           "cost_to_reach", "hull_quality_at", "non_decreasing_convex_hull", "oracle_points",
           "single_model_points", "sweep", "switch_weights", "weight_grid", "zero_router_aiq"]
