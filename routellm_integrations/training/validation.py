"""Choosing settings without looking at MT-Bench / MMLU / GSM8K, and reporting on them once.

* :func:`validation_sets`: benchmarks built from held-out prompts of the pool: one per
  task with a pair of models about 20 accuracy points apart, and the default pair (GPT-4
  Turbo vs Mixtral) on RouterBench.
* :func:`prompt_folds` / :func:`cross_validate`: seeded prompt folds (hash of the text,
  stable under reordering) and mean APGR over them, refitting the router without each
  fold; the pipeline's default validation.
* :func:`benchmark_rows`: the paper's three benchmarks, evaluation only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..data.battles import BattleTable
from .pool import split_hash


def prompt_folds(prompts: Sequence[str], n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold id in ``[0, n_folds)`` per prompt."""
    return (split_hash(prompts, seed) % np.uint64(n_folds)).astype(np.int64)


def pair_validation_benchmark(table: BattleTable, val_prompts: np.ndarray, strong: str, weak: str):
    """Held-out prompts with a strong-vs-weak battle, as a benchmark: outcome 1 for the winner,
    0.5 each for a tie (only the outcome difference matters for APGR)."""
    from ..evaluation.benchmarks import Benchmark

    s, w = table.models.index(strong), table.models.index(weak)
    is_pair = ((table.model_a == s) & (table.model_b == w)) | ((table.model_a == w) & (table.model_b == s))
    rows = np.flatnonzero(is_pair & val_prompts[table.prompt_idx])
    if rows.size == 0:
        return None
    strong_first = table.model_a[rows] == s
    strong_won = np.where(table.winner[rows] == 2, 0.5, (table.winner[rows] == 0) == strong_first)
    prompts, inverse = np.unique(table.prompt_idx[rows], return_inverse=True)
    strong_out = np.bincount(inverse, weights=strong_won) / np.bincount(inverse)
    return Benchmark(name="pool-validation", prompts=tuple(table.prompts[p] for p in prompts),
                     strong_outcome=strong_out, weak_outcome=1.0 - strong_out, strong_model=strong,
                     weak_model=weak, outcome_kind="score")


def _usable_pair_benchmark(table: BattleTable, held_out: np.ndarray, strong: str, weak: str, name: str,
                           min_prompts: int):
    """:func:`pair_validation_benchmark` renamed, or ``None`` when it has fewer than
    ``min_prompts`` prompts or the two models' mean outcomes are equal (APGR is undefined
    then; this also covers every outcome being equal)."""
    from ..evaluation.benchmarks import Benchmark

    bench = pair_validation_benchmark(table, held_out, strong, weak)
    if bench is None or len(bench) < min_prompts or bench.strong_quality == bench.weak_quality:
        return None
    return Benchmark(name=name, prompts=bench.prompts, strong_outcome=bench.strong_outcome,
                     weak_outcome=bench.weak_outcome, strong_model=strong, weak_model=weak, outcome_kind="score")


def validation_sets(table: BattleTable, held_out: np.ndarray, *, gap: float = 0.2, min_prompts: int = 20,
                    strong_model: str | None = None, weak_model: str | None = None,
                    allowed_models: set[str] | None = None) -> list[Any]:
    """Benchmarks from the held-out prompts (``held_out``: bool per prompt of ``table``).

    Per source (task): the pair of models, both answering every held-out prompt of the
    task, whose accuracy gap over the task's prompts is closest to ``gap`` (ties broken by
    name); outcome = 1 for a win, 0.5 each for a tie, 0 for a loss (only the difference
    matters for APGR). Plus the default pair on every held-out prompt where it met.
    ``allowed_models`` restricts the pairs (e.g. to models a router can score).
    """
    from ..data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL

    out = []
    m = len(table.models)
    rows_held = held_out[table.prompt_idx]
    for s_idx, source in enumerate(table.sources):
        rows = np.flatnonzero((table.source_idx == s_idx) & rows_held)
        if rows.size == 0:
            continue
        prompts = np.unique(table.prompt_idx[rows])
        if prompts.size < min_prompts:
            continue
        a, b, w = table.model_a[rows], table.model_b[rows], table.winner[rows]
        pm = np.unique(np.concatenate([np.stack([table.prompt_idx[rows], a], 1),
                                       np.stack([table.prompt_idx[rows], b], 1)]), axis=0)
        per_model = np.bincount(pm[:, 1], minlength=m)
        cands = np.array([i for i in np.flatnonzero(per_model >= 0.98 * prompts.size)
                          if allowed_models is None or table.models[i] in allowed_models], dtype=np.int64)
        if cands.size < 2:
            continue
        # head-to-head: (wins of i over j - wins of j over i) / prompts = accuracy gap
        beats = np.zeros((m, m))
        np.add.at(beats, (a[w == 0], b[w == 0]), 1.0)
        np.add.at(beats, (b[w == 1], a[w == 1]), 1.0)
        diff = (beats - beats.T)[np.ix_(cands, cands)] / prompts.size
        dist = np.where(diff > 0, np.abs(diff - gap), np.inf)
        if not np.isfinite(dist).any():
            continue
        order = sorted(((dist[x, y], table.models[cands[x]], table.models[cands[y]], x, y)
                        for x, y in zip(*np.nonzero(np.isfinite(dist)))))
        best_strong, best_weak = table.models[cands[order[0][3]]], table.models[cands[order[0][4]]]
        bench = _usable_pair_benchmark(table.select(rows), held_out, best_strong, best_weak, f"val:{source}",
                                       min_prompts)
        if bench is not None:
            out.append(bench)
    strong, weak = strong_model or DEFAULT_STRONG_MODEL, weak_model or DEFAULT_WEAK_MODEL
    if strong in table.models and weak in table.models:
        bench = _usable_pair_benchmark(table, held_out, strong, weak, "val:default-pair", min_prompts)
        if bench is not None:
            out.append(bench)
    return out


def cross_validate(build: Callable[[BattleTable], Any], table: BattleTable, features: np.ndarray, *,
                   label: str = "router", n_folds: int = 4, seed: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """Mean APGR over ``n_folds`` prompt folds of the pool, per validation set, for the
    router ``build(train_table)`` returns and for the length control.

    ``build(train)`` must return a router with ``with_pair(strong, weak)`` and
    ``scores_from_embeddings(prompts, features)``, where ``features[i]`` belongs to
    ``table.prompts[i]`` (an embedding, or any per-prompt input the router takes). A
    set whose pair the router cannot score (e.g. both models in one tier) is skipped
    for that fold. Sets scored in fewer than all folds are reported with their count.
    """
    from ..errors import UnknownModelError
    from ..evaluation.metrics import evaluate_scores
    from ..routers.length import LengthRouter

    say = print if progress else (lambda *a, **k: None)
    pid = {p: i for i, p in enumerate(table.prompts)}
    folds = prompt_folds(table.prompts, n_folds, seed)
    acc: dict[tuple[str, str], list[float]] = {}
    for f in range(n_folds):
        held = folds == f
        router = build(table.select(~held[table.prompt_idx]))
        for bench in validation_sets(table, held):
            try:
                pair = router.with_pair(bench.strong_model, bench.weak_model)
            except UnknownModelError:
                continue
            x = features[[pid[p] for p in bench.prompts]]
            acc.setdefault((bench.name, label), []).append(
                evaluate_scores(pair.scores_from_embeddings(bench.prompts, x), bench, label).apgr)
            acc.setdefault((bench.name, "length"), []).append(
                evaluate_scores(LengthRouter().score(bench.prompts), bench, "length").apgr)
        say(f"validation fold {f + 1}/{n_folds} done")
    rows = []
    for (name, who), vals in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1] == "length")):
        rows.append({"set": name, "router": who, "apgr": float(np.mean(vals)), "folds": len(vals)})
    return rows


def validate_and_report(build: Callable[[BattleTable], Any], table: BattleTable, features: np.ndarray, *,
                        label: str, seed: int, progress: bool) -> list[dict[str, Any]]:
    """:func:`cross_validate` on the pool, printing one line per validation set."""
    rows = cross_validate(build, table, features, label=label, seed=seed, progress=progress)
    if progress:
        for row in rows:
            print(f"validation {row['set']:36} {row['router']:10} APGR {row['apgr']:.3f} ({row['folds']} folds)")
    return rows


def benchmark_rows(router: Any, label: str, root: Path, progress: bool) -> list[dict[str, Any]]:
    """The paper's three benchmarks for ``router`` beside length and random (reported once)."""
    from ..evaluation.benchmarks import BENCHMARKS, load_benchmark
    from ..evaluation.metrics import evaluate_scores
    from ..evaluation.run import score_in_batches
    from ..routers.length import LengthRouter
    from ..routers.random import RandomRouter

    say = print if progress else (lambda *a, **k: None)
    rows = []
    for name in BENCHMARKS:
        bench = load_benchmark(name, root)
        for lab, r in ((label, router), ("length", LengthRouter()), ("random", RandomRouter(seed=0))):
            res = evaluate_scores(score_in_batches(r, bench.prompts, progress=progress), bench, lab)
            rows.append({"benchmark": name, "router": lab, "apgr": res.apgr, "cpt50": res.cpt50, "cpt80": res.cpt80})
            say(f"{name:9} {lab:10} APGR {res.apgr:.3f}  CPT(50%) {res.cpt50:5.1f}%  CPT(80%) {res.cpt80:5.1f}%")
    return rows
