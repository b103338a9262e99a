"""A cascade's figures: quality against the escalation share, and against total cost.

A cascade calls the cheap model first, checks its answer, and escalates to the strong
model the answers its check scores highest. Offline, with both models' recorded
outcomes, escalating the top-``s`` share of answers gives exactly the quality a router
gets by sending the top-``s`` share of prompts to the strong model, so **APGR against
the escalation share** is :func:`~.metrics.evaluate_scores` applied to the check's
scores: the same sweep (deciles), tie rule and normalisation as every router here.

What differs is the cost: a cascade always pays the cheap call. Costs are in units of
one cheap call, with the strong call costing ``ratio`` of them (strong/weak price
ratio; the issue reports 4 and 16). Per prompt, on average:

* plain router, strong share ``s``:       ``(1 - s) + ratio * s``
* cascade (one cheap call):               ``1 + ratio * s``
* agreement (a second cheap answer):      ``2 + ratio * s``
* hybrid (the prompt router's top ``h`` straight to strong, the rest cascaded with
  escalation share ``e`` among them, so ``s = h + (1 - h) e``):
  ``ratio * h + (1 - h) * (cheap_calls + ratio * e)``

**Cost-normalised APGR** (the probe's figure): put cost on the axis APGR puts the
strong share on, ``x = (cost - 1) / (ratio - 1)`` (0 = every prompt answered by the
cheap model alone, 1 = every prompt answered by the strong model alone), and integrate
the policy's PGR ``(q - q_weak) / (q_strong - q_weak)`` over ``x`` from 0 to 1:

* between operating points the curve is linear (mixing two thresholds at random per
  prompt reaches every point of the segment);
* left of a policy's cheapest point (agreement's and the hybrid's start above 0) the
  curve joins (0, 0), answering with the cheap model alone, linearly (same argument);
* right of ``x = 1`` nothing counts: a cascade that escalates nearly everything costs
  more than calling the strong model alone and earns no area there.

So a plain router's cost-normalised APGR *is* its APGR (``x = s``), and a cascade's is
lower than its share APGR by the cheap calls it pays, more so at ratio 4 than at 16.
The figures are computed on whatever prompts are given (a held-out half, a user's
file); intervals come from :func:`bootstrap` over prompts, paired across policies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import DataError
from .benchmarks import Benchmark
from .metrics import _curve, _trapezoid

#: the strong/weak price ratios the issue asks every cost figure at
PRICE_RATIOS: tuple[float, ...] = (4.0, 16.0)


@dataclass(frozen=True)
class OperatingPoint:
    """One threshold of a policy: shares of prompts (0-1), mean calls per prompt, quality."""

    strong_share: float
    cheap_calls: float
    quality: float

    def cost(self, ratio: float) -> float:
        """Mean cost per prompt in cheap-call units."""
        return self.cheap_calls + ratio * self.strong_share

    def x(self, ratio: float) -> float:
        """Cost on the 0 (all cheap) .. 1 (all strong) axis."""
        return (self.cost(ratio) - 1.0) / (ratio - 1.0)


class PolicyResult(BaseModel):
    """A routing or cascade policy's figures on one prompt set."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str  # "router" | "cascade" | "hybrid"
    benchmark: str
    n_prompts: int
    apgr: float  # quality against the share of prompts answered by the strong model
    cost_apgr: dict[float, float]  # price ratio -> cost-normalised APGR
    cheap_calls: float  # cheap calls per prompt the policy pays at least (cascade 1, agreement 2)
    points: list[tuple[float, float, float]]  # (strong share, cheap calls per prompt, quality)
    lo: float | None = None
    hi: float | None = None
    cost_lo: dict[float, float] | None = None
    cost_hi: dict[float, float] | None = None


def _check(scores: Sequence[float] | np.ndarray, n: int, what: str) -> np.ndarray:
    arr = np.asarray(scores, dtype=float)
    if arr.shape != (n,):
        raise DataError(f"{what}: expected one score per prompt ({n}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{what}: scores must be finite")
    return arr


def _gap(bench: Benchmark) -> tuple[float, float]:
    sq, wq = bench.strong_quality, bench.weak_quality
    if sq == wq:
        raise DataError(f"{bench.name!r}: strong and weak quality are both {sq}; APGR is undefined")
    return sq, wq


def router_points(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray,
                  num_results: int = 10) -> list[OperatingPoint]:
    """A plain router: prompts above the threshold go to the strong model only."""
    _, pct, quality = _curve(np.asarray(scores, dtype=float), strong, weak, num_results)
    return [OperatingPoint(p / 100.0, 1.0 - p / 100.0, float(q)) for p, q in zip(pct, quality)]


def cascade_points(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray, *, cheap_calls: float = 1.0,
                   num_results: int = 10) -> list[OperatingPoint]:
    """A cascade: every prompt pays ``cheap_calls``; answers above the threshold escalate."""
    _, pct, quality = _curve(np.asarray(scores, dtype=float), strong, weak, num_results)
    return [OperatingPoint(p / 100.0, float(cheap_calls), float(q)) for p, q in zip(pct, quality)]


def hybrid_points(router_scores: np.ndarray, check_scores: np.ndarray, strong: np.ndarray, weak: np.ndarray, *,
                  straight_share: float, cheap_calls: float = 1.0, num_results: int = 10) -> list[OperatingPoint]:
    """Route, then verify, as one knob (spend): below ``straight_share`` of strong calls
    it is the plain router; from there the router's top ``straight_share`` of prompts go
    straight to the strong model (no cheap call) and the rest are cascaded, the
    escalation share among them growing from 0 to 1."""
    if not 0.0 < straight_share < 1.0:
        raise ValueError(f"straight_share must be in (0, 1), got {straight_share}")
    n = len(strong)
    k = round(straight_share * n)
    order = np.argsort(-np.asarray(router_scores, dtype=float), kind="stable")
    top = np.zeros(n, dtype=bool)
    top[order[:k]] = True
    h = k / n
    below = [p for p in router_points(router_scores, strong, weak, num_results) if p.strong_share < h]
    rest = ~top
    q_top = float(strong[top].sum())
    out = below + [OperatingPoint(h, 1.0 - h, float((q_top + weak[rest].sum()) / n))]
    if rest.any():
        _, pct, quality = _curve(np.asarray(check_scores, dtype=float)[rest], strong[rest], weak[rest], num_results)
        m = int(rest.sum())
        for p, q in zip(pct, quality):
            e = p / 100.0
            out.append(OperatingPoint(h + (1 - h) * e, (1 - h) * cheap_calls, float((q_top + q * m) / n)))
    return out


def cost_normalised_apgr(points: Sequence[OperatingPoint], strong_quality: float, weak_quality: float,
                         ratio: float) -> float:
    """Area under PGR against normalised cost on [0, 1] (conventions in the module doc)."""
    if ratio <= 1.0:
        raise ValueError(f"the strong/weak price ratio must exceed 1, got {ratio}")
    gap = strong_quality - weak_quality
    xy = sorted((p.x(ratio), (p.quality - weak_quality) / gap) for p in points)
    x = np.array([a for a, _ in xy])
    y = np.array([b for _, b in xy])
    if x[0] > 0.0:  # join the cheap model alone
        x, y = np.concatenate([[0.0], x]), np.concatenate([[0.0], y])
    if x[-1] > 1.0:
        y_at_1 = float(np.interp(1.0, x, y))
        keep = x < 1.0
        x, y = np.concatenate([x[keep], [1.0]]), np.concatenate([y[keep], [y_at_1]])
    elif x[-1] < 1.0:  # cannot happen for a policy that reaches all-strong; flat for safety
        x, y = np.concatenate([x, [1.0]]), np.concatenate([y, [y[-1]]])
    return float(_trapezoid(y, x))


def _summary(name: str, kind: str, bench: Benchmark, points: list[OperatingPoint],
             ratios: Sequence[float], cheap_calls: float) -> PolicyResult:
    sq, wq = _gap(bench)
    # the share curve: quality against the strong share, like APGR for a router
    xs = np.array([p.strong_share for p in points])
    ys = np.array([(p.quality - wq) / (sq - wq) for p in points])
    order = np.argsort(xs, kind="stable")
    share_apgr = float(_trapezoid(ys[order], xs[order]))
    return PolicyResult(name=name, kind=kind, benchmark=bench.name, n_prompts=len(bench), apgr=share_apgr,
                        cost_apgr={float(r): cost_normalised_apgr(points, sq, wq, r) for r in ratios},
                        cheap_calls=cheap_calls,
                        points=[(p.strong_share, p.cheap_calls, p.quality) for p in points])


def evaluate_router_cost(scores: Sequence[float] | np.ndarray, bench: Benchmark, name: str, *,
                         ratios: Sequence[float] = PRICE_RATIOS, num_results: int = 10) -> PolicyResult:
    """A plain router's APGR and (equal, by construction) cost-normalised APGR."""
    arr = _check(scores, len(bench), name)
    points = router_points(arr, bench.strong_outcome, bench.weak_outcome, num_results)
    return _summary(name, "router", bench, points, ratios, 0.0)


def evaluate_cascade(scores: Sequence[float] | np.ndarray, bench: Benchmark, name: str, *, cheap_calls: float = 1.0,
                     ratios: Sequence[float] = PRICE_RATIOS, num_results: int = 10) -> PolicyResult:
    """A cascade whose check scores each cheap answer (higher = escalate first)."""
    arr = _check(scores, len(bench), name)
    points = cascade_points(arr, bench.strong_outcome, bench.weak_outcome, cheap_calls=cheap_calls,
                            num_results=num_results)
    return _summary(name, "cascade", bench, points, ratios, cheap_calls)


def evaluate_hybrid(router_scores: Sequence[float] | np.ndarray, check_scores: Sequence[float] | np.ndarray,
                    bench: Benchmark, name: str, *, straight_share: float, cheap_calls: float = 1.0,
                    ratios: Sequence[float] = PRICE_RATIOS, num_results: int = 10) -> PolicyResult:
    """Route, then verify (:func:`hybrid_points`)."""
    r = _check(router_scores, len(bench), f"{name} (router scores)")
    c = _check(check_scores, len(bench), f"{name} (check scores)")
    points = hybrid_points(r, c, bench.strong_outcome, bench.weak_outcome, straight_share=straight_share,
                           cheap_calls=cheap_calls, num_results=num_results)
    return _summary(name, "hybrid", bench, points, ratios, (1 - straight_share) * cheap_calls)


#: a policy as a function of the prompts' indices it is evaluated on (a resample)
Policy = Callable[[Benchmark, np.ndarray], PolicyResult]


def policy(kind: str, *scores: np.ndarray, cheap_calls: float = 1.0, straight_share: float = 0.2,
           ratios: Sequence[float] = PRICE_RATIOS, name: str = "") -> Policy:
    """A policy over fixed per-prompt scores, re-evaluable on any resample of the prompts."""
    def run(bench: Benchmark, idx: np.ndarray) -> PolicyResult:
        if kind == "router":
            return evaluate_router_cost(scores[0][idx], bench, name, ratios=ratios)
        if kind == "cascade":
            return evaluate_cascade(scores[0][idx], bench, name, cheap_calls=cheap_calls, ratios=ratios)
        if kind == "hybrid":
            return evaluate_hybrid(scores[0][idx], scores[1][idx], bench, name, straight_share=straight_share,
                                   cheap_calls=cheap_calls, ratios=ratios)
        raise ValueError(f"unknown policy kind {kind!r}")
    return run


@dataclass
class Bootstrap:
    """Every policy's figures on the same resamples of the prompts: intervals per policy
    and paired differences between any two."""

    full: dict[str, PolicyResult]
    apgr: dict[str, np.ndarray]
    cost: dict[str, dict[float, np.ndarray]]

    def interval(self, name: str, ratio: float | None = None) -> tuple[float, float]:
        vals = self.apgr[name] if ratio is None else self.cost[name][ratio]
        return float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))

    def paired(self, a: str, b: str, ratio: float | None = None) -> dict[str, float]:
        """``a - b`` on the full set, with the 95% interval and ``P(a better)`` over resamples."""
        va, vb = ((self.apgr[a], self.apgr[b]) if ratio is None else (self.cost[a][ratio], self.cost[b][ratio]))
        full = (self.full[a].apgr - self.full[b].apgr if ratio is None
                else self.full[a].cost_apgr[ratio] - self.full[b].cost_apgr[ratio])
        d = va - vb
        return {"diff": float(full), "lo": float(np.quantile(d, 0.025)), "hi": float(np.quantile(d, 0.975)),
                "p_a_better": float((d > 0).mean())}

    def with_intervals(self) -> dict[str, PolicyResult]:
        out = {}
        for name, res in self.full.items():
            lo, hi = self.interval(name)
            ratios = list(res.cost_apgr)
            out[name] = res.model_copy(update={
                "lo": lo, "hi": hi, "cost_lo": {r: self.interval(name, r)[0] for r in ratios},
                "cost_hi": {r: self.interval(name, r)[1] for r in ratios}})
        return out


def bootstrap(policies: Mapping[str, Policy], bench: Benchmark, *, n_boot: int = 200, seed: int = 0) -> Bootstrap:
    """Evaluate every policy on the full set and on ``n_boot`` resamples of its prompts
    (the same resamples for all, so differences are paired). Resamples where the strong
    and the weak model tie on average are skipped, as in :func:`.metrics.paired_bootstrap_apgr`."""
    n = len(bench)
    everything = np.arange(n)
    full = {name: p(bench, everything) for name, p in policies.items()}
    apgr: dict[str, list[float]] = {name: [] for name in policies}
    cost: dict[str, dict[float, list[float]]] = {name: {r: [] for r in full[name].cost_apgr} for name in policies}
    rng = np.random.default_rng(seed)
    for _ in range(int(n_boot)):
        idx = rng.integers(0, n, n)
        sub = bench.subset(idx)
        if sub.strong_quality == sub.weak_quality:
            continue
        for name, p in policies.items():
            res = p(sub, idx)
            apgr[name].append(res.apgr)
            for r, v in res.cost_apgr.items():
                cost[name][r].append(v)
    if not any(apgr.values()):
        raise DataError("every bootstrap resample had equal strong and weak quality")
    return Bootstrap(full, {k: np.array(v) for k, v in apgr.items()},
                     {k: {r: np.array(v) for r, v in d.items()} for k, d in cost.items()})


def format_cascade_table(results: Sequence[PolicyResult]) -> str:
    """policy, kind, cheap calls, APGR vs strong share [interval], cost-normalised APGR per ratio."""
    ratios = sorted({r for res in results for r in res.cost_apgr})
    header = ["policy", "kind", "cheap calls", "APGR (share)", *(f"cost APGR @{r:g}x" for r in ratios)]

    def cell(v: float, lo: float | None, hi: float | None) -> str:
        return f"{v:.3f}" if lo is None or hi is None else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"

    rows = []
    for res in results:
        rows.append([res.name, res.kind, f"{res.cheap_calls:g}", cell(res.apgr, res.lo, res.hi),
                     *(cell(res.cost_apgr[r], (res.cost_lo or {}).get(r), (res.cost_hi or {}).get(r))
                       if r in res.cost_apgr else "" for r in ratios)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join([c.ljust(w) for c, w in zip(cells[:2], widths[:2])]
                         + [c.rjust(w) for c, w in zip(cells[2:], widths[2:])]).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])
