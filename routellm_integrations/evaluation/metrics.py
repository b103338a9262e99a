"""APGR and CPT exactly as the RouteLLM reference code computes them.

Why exactly: the paper's numbers (and the controls in the project notes) are only
comparable if the threshold sweep, the tie rule and the trapezoid are the same. The
reference sweeps the ``num_results + 1`` edges of ``pd.qcut(scores, num_results)``
(linear-interpolated quantiles, duplicates kept), routes strong where ``score >= edge``
except at the last edge (``score > edge``, so the sweep always reaches 0% strong), then
integrates quality over the strong-call fraction.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import DataError
from .benchmarks import Benchmark

_trapezoid = getattr(np, "trapezoid", None) or getattr(np, "trapz")


class CurvePoint(BaseModel):
    """One threshold of the sweep: the share of prompts sent strong and the quality."""

    model_config = ConfigDict(frozen=True)

    threshold: float
    strong_pct: float
    quality: float


class EvaluationResult(BaseModel):
    """A router's quality curve and summary metrics on one benchmark.

    ``cpt50`` etc. are the strong-call percentages needed to recover 50% (80%, 20%) of the
    quality gap between the weak and the strong model.
    """

    model_config = ConfigDict(frozen=True)

    router: str
    benchmark: str
    n_prompts: int
    points: list[CurvePoint]
    apgr: float
    cpt50: float
    cpt80: float
    cpt20: float
    strong_quality: float
    weak_quality: float
    auc: float
    strong_model: str = "strong"
    weak_model: str = "weak"
    outcome_kind: str = "accuracy"


class CandidateReport(BaseModel):
    """One scorer's APGR on a user's labels (cross-validated where it was fitted on them),
    with a 95% bootstrap interval: what the adaptation guard and the verifier's guard
    compare and report."""

    model_config = ConfigDict(frozen=True)

    name: str
    apgr: float
    lo: float
    hi: float
    detail: str = ""


def _check_scores(scores: Sequence[float] | np.ndarray, n: int, name: str) -> np.ndarray:
    arr = np.asarray(scores, dtype=float)
    if arr.ndim != 1:
        raise DataError(f"scores must be one score per prompt (1-D), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise DataError(f"got {arr.shape[0]} scores for benchmark {name!r} with {n} prompts")
    if n == 0:
        raise DataError(f"benchmark {name!r} has no prompts")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise DataError(f"scores must be finite; {bad.size} are not (first at index "
                        f"{int(bad[0])}: {arr[bad[0]]})")
    return arr


def _curve(scores: np.ndarray, strong: np.ndarray, weak: np.ndarray,
           num_results: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds, strong-call percentages and qualities, in sweep order."""
    thresholds = np.quantile(scores, np.linspace(0.0, 1.0, num_results + 1))
    pct = np.empty(len(thresholds))
    quality = np.empty(len(thresholds))
    last = len(thresholds) - 1
    for i, t in enumerate(thresholds):
        to_strong = scores > t if i == last else scores >= t
        pct[i] = to_strong.mean() * 100.0
        quality[i] = np.where(to_strong, strong, weak).mean()
    return thresholds, pct, quality


def _summarise(pct: np.ndarray, quality: np.ndarray, strong_q: float,
               weak_q: float) -> tuple[float, float, dict[float, float]]:
    """AUC, APGR and CPTs from a curve, sorted by strong-call share as the reference does."""
    order = np.argsort(pct, kind="stable")
    x, y = pct[order], quality[order]
    auc = float(_trapezoid(y, x / 100.0))
    weak_auc = float(_trapezoid(np.full_like(x, weak_q), x / 100.0))
    strong_auc = float(_trapezoid(np.full_like(x, strong_q), x / 100.0))
    apgr = (auc - weak_auc) / (strong_auc - weak_auc)
    cpts = {frac: float(np.interp(weak_q + frac * (strong_q - weak_q), y, x))
            for frac in (0.2, 0.5, 0.8)}
    return auc, float(apgr), cpts


def evaluate_scores(scores: Sequence[float] | np.ndarray, benchmark: Benchmark, router: str,
                    num_results: int = 10) -> EvaluationResult:
    """Evaluate one router's scores (higher = more likely to need the strong model).

    ``scores[i]`` belongs to ``benchmark.prompts[i]``. Raises :class:`DataError` when the
    scores do not match the prompts, are not finite, or when the benchmark's strong and
    weak quality are equal (the gap APGR is normalised by would be zero).
    """
    if int(num_results) < 1:
        raise ValueError(f"num_results must be >= 1, got {num_results}")
    arr = _check_scores(scores, len(benchmark), benchmark.name)
    strong_q, weak_q = benchmark.strong_quality, benchmark.weak_quality
    if strong_q == weak_q:
        raise DataError(f"benchmark {benchmark.name!r}: strong and weak quality are both "
                        f"{strong_q}; APGR and CPT are undefined")
    thresholds, pct, quality = _curve(arr, benchmark.strong_outcome, benchmark.weak_outcome,
                                      int(num_results))
    auc, apgr, cpts = _summarise(pct, quality, strong_q, weak_q)
    points = [CurvePoint(threshold=float(t), strong_pct=float(p), quality=float(q))
              for t, p, q in zip(thresholds, pct, quality)]
    return EvaluationResult(
        router=router, benchmark=benchmark.name, n_prompts=len(benchmark), points=points,
        apgr=apgr, cpt50=cpts[0.5], cpt80=cpts[0.8], cpt20=cpts[0.2],
        strong_quality=strong_q, weak_quality=weak_q, auc=auc,
        strong_model=benchmark.strong_model, weak_model=benchmark.weak_model,
        outcome_kind=benchmark.outcome_kind)


def paired_bootstrap_apgr(scores_a: Sequence[float] | np.ndarray,
                          scores_b: Sequence[float] | np.ndarray, benchmark: Benchmark, *,
                          n_boot: int = 200, seed: int = 0,
                          num_results: int = 10) -> dict[str, float]:
    """APGR(a) - APGR(b) with a paired bootstrap over prompts.

    Why: on 72 MT-Bench prompts one SD of APGR is ~0.07, so a difference between two
    routers means little without an interval. Both routers are scored on the same resample
    each round; resamples where strong and weak quality tie are skipped.
    Returns ``diff`` (on the full set), ``mean``, ``sd``, ``lo``/``hi`` (2.5%/97.5%) and
    ``p_a_better`` (share of resamples where a scored higher).
    """
    n = len(benchmark)
    a = _check_scores(scores_a, n, benchmark.name)
    b = _check_scores(scores_b, n, benchmark.name)
    strong, weak = benchmark.strong_outcome, benchmark.weak_outcome
    full = (evaluate_scores(a, benchmark, "a", num_results).apgr
            - evaluate_scores(b, benchmark, "b", num_results).apgr)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, n, n)
        s, w = strong[idx], weak[idx]
        sq, wq = float(s.mean()), float(w.mean())
        if sq == wq:
            continue
        apgrs = []
        for sc in (a[idx], b[idx]):
            _, pct, q = _curve(sc, s, w, num_results)
            apgrs.append(_summarise(pct, q, sq, wq)[1])
        diffs.append(apgrs[0] - apgrs[1])
    if not diffs:
        raise DataError("every bootstrap resample had equal strong and weak quality")
    d = np.array(diffs)
    return {"diff": float(full), "mean": float(d.mean()), "sd": float(d.std(ddof=1)) if
            d.size > 1 else 0.0, "lo": float(np.quantile(d, 0.025)),
            "hi": float(np.quantile(d, 0.975)), "p_a_better": float((d > 0).mean())}


def format_table(results: Sequence[EvaluationResult]) -> str:
    """A fixed-width text table (router, benchmark, n, APGR, CPT(50%), CPT(80%))."""
    header = ("router", "benchmark", "n", "APGR", "CPT(50%)", "CPT(80%)")
    rows = [(r.router, r.benchmark, str(r.n_prompts), f"{r.apgr:.3f}", f"{r.cpt50:.1f}%",
             f"{r.cpt80:.1f}%") for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:2], widths[:2])]
        right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:])]
        return "  ".join(left + right).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])
