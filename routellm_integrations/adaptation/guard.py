"""Choosing the head by cross-validation, and the guard that decides whether to trust it.

With ~100 labels an in-domain head can be *worse* than prompt length (probe: MMLU 0.539
vs 0.613), and the generic router may be better than both on mixed traffic. So the
decision is made on the user's labels only: every candidate is scored by cross-validated
APGR, and the adapted head is served only when a paired bootstrap says it beats the
better of the base router and length with high probability; otherwise that fallback is
served, and the report says which and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..evaluation.benchmarks import Benchmark
from ..evaluation.metrics import CandidateReport, evaluate_scores, paired_bootstrap_apgr
from .head import Penalty, fit_head, folds, out_of_fold
from ..routers.ridge_head import Blocks

#: embedding penalties tried (inf: no embedding, only length/structure/base score)
EMBEDDING_ALPHAS: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, float("inf"))
DENSE_ALPHAS: tuple[float, ...] = (1.0, 30.0)


@dataclass
class Selection:
    penalty: Penalty
    apgr: float  # its mean out-of-fold APGR (optimistic: the best of the grid on these folds)


def default_grid() -> list[Penalty]:
    return [Penalty(e, d) for e in EMBEDDING_ALPHAS for d in DENSE_ALPHAS]


def cv_select(blocks: Blocks, y: np.ndarray, bench: Benchmark, *, grid: Sequence[Penalty] | None = None,
              k: int = 5, repeats: int = 2, seed: int = 0,
              tick: Callable[[], None] | None = None) -> Selection:
    """The penalty with the best mean out-of-fold APGR over ``repeats`` shuffles of k folds."""
    grid = list(grid or default_grid())
    apgrs = np.zeros((repeats, len(grid)))
    for r in range(repeats):
        oof = out_of_fold(blocks, y, grid, folds(len(blocks), k, seed + r))
        apgrs[r] = [_apgr(o, bench) for o in oof]
        if tick is not None:
            tick()
    mean = apgrs.mean(axis=0)
    best = int(np.argmax(mean))
    return Selection(grid[best], float(mean[best]))


def nested_oof(blocks: Blocks, y: np.ndarray, bench: Benchmark, *, grid: Sequence[Penalty] | None = None,
               k: int = 5, repeats: int = 1, seed: int = 0, tick: Callable[[], None] | None = None) -> np.ndarray:
    """Out-of-fold predictions of the whole procedure, the penalty chosen again inside each
    training part: what the guard compares, since the best of a grid scored on the same
    folds that chose it looks better than it is."""
    n = len(blocks)
    out = np.zeros(n)
    everything = np.arange(n)
    for r in range(repeats):  # averaged over shuffles: one split's luck is most of the noise
        for held in folds(n, k, seed + 1000 + r):
            train = np.setdiff1d(everything, held, assume_unique=True)
            inner = cv_select(blocks.subset(train), y[train], bench.subset(train), grid=grid, k=k, repeats=1,
                              seed=seed + r)
            out[held] += fit_head(blocks.subset(train), y[train], inner.penalty).predict(blocks.subset(held)) / repeats
        if tick is not None:
            tick()
    return out


def _apgr(scores: np.ndarray, bench: Benchmark) -> float:
    s = np.asarray(scores, dtype=np.float64)
    if np.ptp(s) == 0 or bench.strong_quality == bench.weak_quality:  # nothing to rank, or nothing to gain
        return 0.5
    return evaluate_scores(s, bench, "candidate").apgr


def interval(scores: np.ndarray, bench: Benchmark, name: str, detail: str, n_boot: int, seed: int) -> CandidateReport:
    """APGR with a bootstrap interval over prompts."""
    full = _apgr(scores, bench)
    rng = np.random.default_rng(seed)
    n = len(bench)
    vals = []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, n, n)
        sub = bench.subset(idx)
        if sub.strong_quality == sub.weak_quality:
            continue
        vals.append(_apgr(scores[idx], sub))
    lo, hi = (float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))) if vals else (full, full)
    return CandidateReport(name=name, apgr=full, lo=lo, hi=hi, detail=detail)


@dataclass
class GuardDecision:
    serves: str  # "adapted" | "base" | "length"
    reason: str
    p_adapted_better: float
    p_base_better: float | None


def _p_better(a: np.ndarray, b: np.ndarray, bench: Benchmark, n_boot: int, seed: int) -> float:
    if np.ptp(b) == 0:
        return 1.0 if _apgr(a, bench) > 0.5 else 0.0
    if np.ptp(a) == 0:
        return 0.0
    return float(paired_bootstrap_apgr(a, b, bench, n_boot=n_boot, seed=seed)["p_a_better"])


def guard(adapted_oof: np.ndarray, length: np.ndarray, base: np.ndarray | None, bench: Benchmark, *,
          confidence: float, base_confidence: float, n_boot: int, seed: int) -> GuardDecision:
    """Each richer candidate must *earn* its place: length, which needs no model, is the
    default; the base router replaces it only when it beats length in ``base_confidence``
    of the paired bootstrap resamples of the user's labels, and the adapted head replaces
    that choice when it beats it in ``confidence`` of them.

    Why length first: on one task's traffic the generic routers sit near chance while
    length keeps its edge, and with 50 labels a plain comparison picks the wrong one of
    the two about a third of the time. A richer router that is really better on the
    user's traffic (the base on mixed traffic, the head with enough labels) wins the
    bootstrap comparison clearly."""
    apgr = {"length": _apgr(length, bench), "adapted": _apgr(adapted_oof, bench)}
    fallback, fallback_scores, p_base = "length", length, None
    if base is not None:
        apgr["base"] = _apgr(base, bench)
        p_base = _p_better(base, length, bench, n_boot, seed)
        if p_base >= base_confidence:
            fallback, fallback_scores = "base", base
    why = (f"base ({apgr['base']:.3f}) beats length ({apgr['length']:.3f}) in {p_base:.0%} of resamples "
           f"(needs {base_confidence:.0%})"
           if base is not None and p_base is not None else "no base score to compare")
    p = _p_better(adapted_oof, fallback_scores, bench, n_boot, seed + 1)
    if p >= confidence:
        return GuardDecision("adapted", f"cross-validated APGR of the adapted head {apgr['adapted']:.3f} beats "
                                        f"{fallback} ({apgr[fallback]:.3f}) in {p:.0%} of bootstrap resamples "
                                        f"(needs {confidence:.0%}); {why}", p, p_base)
    return GuardDecision(fallback, f"the adapted head ({apgr['adapted']:.3f}) beats {fallback} "
                                   f"({apgr[fallback]:.3f}) in only {p:.0%} of bootstrap resamples (needs "
                                   f"{confidence:.0%}); {why}: serving {fallback}", p, p_base)
