"""Pieces shared by the ``sw_ranking``, ``bert`` and ``causal_llm`` trainers.

* :func:`prepare_pool`: sources (+ user battle files) -> decontaminated battle table with
  a compact prompt vocabulary, as ``routellm train mf`` does it.
* :func:`validation_sets`: benchmarks built from held-out prompts of the pool, used to
  choose settings without ever looking at MT-Bench / MMLU / GSM8K: one per task with a
  pair of models about 20 accuracy points apart, and the default pair (GPT-4 Turbo vs
  Mixtral) on RouterBench.
* :func:`prompt_folds`: seeded prompt folds (hash of the text, stable under reordering).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.battles import BattleTable
from ..errors import DataError
from .pipeline import DEFAULT_SOURCES, split_hash, subsample_prompts


@dataclass
class Pool:
    table: BattleTable
    decontamination: Any  # DecontaminationReport
    root: Path


def compact(table: BattleTable) -> BattleTable:
    """Drop prompts no battle uses from the vocabulary (indices re-coded)."""
    used = np.unique(table.prompt_idx)
    remap = np.full(len(table.prompts), -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return BattleTable([table.prompts[i] for i in used], table.models, table.sources, remap[table.prompt_idx],
                       table.model_a, table.model_b, table.winner, table.source_idx)


def prepare_pool(*, data_dir: str | os.PathLike[str] | None = None,
                 sources: Sequence[str] | None = DEFAULT_SOURCES,
                 battles_files: Sequence[str | os.PathLike[str]] = (), max_prompts_per_source: int | None = None,
                 seed: int = 0, reference_embedder: Any = "minilm", progress: bool = True) -> Pool:
    """Load, merge, optionally subsample and decontaminate (cosine >= 0.95 under exact
    MiniLM, or an exact match after normalisation) the training battles."""
    from ..data.decontaminate import decontaminate
    from ..data.sources import load_battles
    from ..data.user_files import load_battles_file
    from ..evaluation.benchmarks import all_benchmark_prompts
    from ..paths import resolve_data_dir

    say = print if progress else (lambda *a, **k: None)
    root = resolve_data_dir(data_dir)
    tables = [load_battles(root, sources)] if sources else []
    tables += [load_battles_file(f) for f in battles_files]
    if not tables:
        raise DataError("nothing to train on: give --sources and/or --battles")
    table = BattleTable.concat(tables)
    say(f"loaded {len(table):,} battles over {len(table.prompts):,} prompts and {len(table.models)} models")
    if max_prompts_per_source:
        table = subsample_prompts(table, max_prompts_per_source, seed)
        say(f"subsampled to {len(table):,} battles ({max_prompts_per_source} prompts per source)")
    ref = cached_embedder(reference_embedder)
    clean, decon = decontaminate(table, all_benchmark_prompts(root), ref)
    say(decon.summary())
    if len(clean) == 0:
        raise DataError("no battles left after decontamination")
    return Pool(compact(clean), decon, root)


def pool_card(pool: Pool) -> dict[str, Any]:
    """The model-card facts every trainer records about its training data."""
    return {"battles_by_source": pool.table.counts_by_source(), "decontamination": pool.decontamination.model_dump(),
            "data_sources": sorted(set(pool.table.sources))}


def validate_and_report(build: Any, pool: Pool, features: np.ndarray, *, label: str, seed: int,
                        progress: bool) -> list[dict[str, Any]]:
    """:func:`cross_validate` on the pool, printing one line per validation set."""
    rows = cross_validate(build, pool.table, features, label=label, seed=seed, progress=progress)
    if progress:
        for row in rows:
            print(f"validation {row['set']:36} {row['router']:10} APGR {row['apgr']:.3f} ({row['folds']} folds)")
    return rows


def cached_embedder(embedder: Any) -> Any:
    """An embedder (by name or object) behind the on-disk cache (``$ROUTELLM_CACHE_DIR``)."""
    from ..embedders import CachedEmbedder, get_embedder
    from ..paths import embedding_cache_path

    if isinstance(embedder, CachedEmbedder):
        return embedder
    return CachedEmbedder(get_embedder(embedder) if isinstance(embedder, str) else embedder,
                          path=embedding_cache_path())


def prompt_folds(prompts: Sequence[str], n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold id in ``[0, n_folds)`` per prompt."""
    return (split_hash(prompts, seed) % np.uint64(n_folds)).astype(np.int64)


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
    from ..evaluation.benchmarks import Benchmark
    from .pipeline import pair_validation_benchmark

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
        best = (None, int(cands[order[0][3]]), int(cands[order[0][4]]))
        bench = pair_validation_benchmark(table.select(rows), held_out, table.models[best[1]], table.models[best[2]])
        if bench is None or len(bench) < min_prompts or np.all(bench.strong_outcome == bench.weak_outcome):
            continue
        if bench.strong_quality == bench.weak_quality:
            continue
        out.append(Benchmark(name=f"val:{source}", prompts=bench.prompts, strong_outcome=bench.strong_outcome,
                             weak_outcome=bench.weak_outcome, strong_model=bench.strong_model,
                             weak_model=bench.weak_model, outcome_kind="score"))
    strong, weak = strong_model or DEFAULT_STRONG_MODEL, weak_model or DEFAULT_WEAK_MODEL
    if strong in table.models and weak in table.models:
        bench = pair_validation_benchmark(table, held_out, strong, weak)
        if bench is not None and len(bench) >= min_prompts and bench.strong_quality != bench.weak_quality:
            out.append(Benchmark(name="val:default-pair", prompts=bench.prompts,
                                 strong_outcome=bench.strong_outcome, weak_outcome=bench.weak_outcome,
                                 strong_model=strong, weak_model=weak, outcome_kind="score"))
    return out


def cross_validate(build: Any, table: BattleTable, features: np.ndarray, *, label: str = "router",
                   n_folds: int = 4, seed: int = 0, progress: bool = True) -> list[dict[str, Any]]:
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
