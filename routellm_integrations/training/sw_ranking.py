"""Building the similarity-weighted ranking router: tiers, the battle index, a checkpoint.

There is no training beyond embedding the battles' prompts (the paper's point). Steps:

1. **Tiers.** A global Bradley-Terry fit with ties over every battle (each source given
   the same total weight, so CRUXEval's ~1,100 pairs per prompt do not set the scale),
   then ``n_tiers`` quantile tiers by rating (:func:`~routellm_integrations.data.elo.assign_tiers`),
   as the paper groups Arena models into 10 tiers. Caveat: the pool's sources share only
   a few models, so ratings across sources are poorly calibrated (GPT-4 Turbo 1106 plays
   only RouterBench's easy multiple-choice and MBPP prompts, and lands mid-table). With
   ``tiering="family"`` snapshots of one model line share a rating instead.
2. **Index.** Per training prompt, the tier win matrix ``T_p[i, j]`` (weighted wins of
   tier i over tier j on that prompt; ties half each; same-tier battles carry no
   information and are dropped), and the prompt's embedding.
3. **Serving** is in :mod:`routellm_integrations.routers.sw_ranking`.

:func:`direct_refit_scores` is the slow reference: it weights every battle individually
and refits with :func:`~routellm_integrations.data.elo.fit_bradley_terry`, as the paper's
code does per request. Tests compare the fast path with it.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel, Field

from ..data.battles import BattleTable
from ..data.elo import EloRatings, assign_tiers, fit_bradley_terry
from ..errors import DataError
from ..routers.sw_ranking import DEFAULT_L2, DEFAULT_NEWTON_STEPS, SWRankingIndex, SWRankingRouter, similarity_weights


class SWRankingConfig(BaseModel):
    n_tiers: int = Field(10, ge=2, description="tiers of models (the paper: 10)")
    tiering: Literal["model", "family"] = Field(
        "model", description="rate each model ('model') or each model line, snapshots together ('family')")
    balance: Literal["source", "none"] = Field(
        "source", description="give each source the same total weight, in the tiering and in the index")
    top_k: int | None = Field(None, ge=1, description="serve with the k most similar training prompts only "
                              "(None: all, as the paper)")
    l2: float = Field(DEFAULT_L2, ge=0)
    newton_steps: int = Field(DEFAULT_NEWTON_STEPS, ge=1)


def battle_weights(table: BattleTable, balance: str) -> np.ndarray:
    """Per-battle weights (mean 1): every source the same total, or all equal."""
    from .mf import MFTrainingConfig, battle_weights as mf_weights

    return mf_weights(table, MFTrainingConfig(balance=balance, tie_weight=1.0)).astype(np.float64)


def fit_tiers(table: BattleTable, cfg: SWRankingConfig) -> tuple[EloRatings, dict[str, int]]:
    """Global ratings and tiers (0 = strongest) of every model with a battle."""
    from ..data.models import model_family

    w = battle_weights(table, cfg.balance)
    if cfg.tiering == "model":
        ratings = fit_bradley_terry(table, w, l2=cfg.l2)
        return ratings, assign_tiers(ratings, cfg.n_tiers)
    fams = [model_family(m) for m in table.models]
    names, inv = np.unique(fams, return_inverse=True)
    keep = inv[table.model_a] != inv[table.model_b]
    fam_table = BattleTable(table.prompts, list(names), table.sources, table.prompt_idx[keep],
                            inv[table.model_a][keep], inv[table.model_b][keep], table.winner[keep],
                            table.source_idx[keep])
    fam_ratings = fit_bradley_terry(fam_table, w[keep], l2=cfg.l2)
    fam_tiers = assign_tiers(fam_ratings, cfg.n_tiers)
    played = np.bincount(np.concatenate([table.model_a, table.model_b]), minlength=len(table.models)) > 0
    ratings = {m: fam_ratings.ratings[f] for m, f, p in zip(table.models, fams, played) if p and f in fam_tiers}
    tiers = {m: fam_tiers[model_family(m)] for m in ratings}
    return EloRatings(ratings=ratings, n_battles=fam_ratings.n_battles, total_weight=fam_ratings.total_weight,
                      l2=cfg.l2, iterations=fam_ratings.iterations), tiers


def tier_table(table: BattleTable, tiers: dict[str, int], n_tiers: int) -> tuple[BattleTable, np.ndarray]:
    """Battles re-coded to tiers (models ``"tier-0"``...), same-tier battles dropped;
    also returns the kept rows of ``table``."""
    code = np.array([tiers.get(m, -1) for m in table.models], dtype=np.int64)
    ta, tb = code[table.model_a], code[table.model_b]
    keep = np.flatnonzero((ta >= 0) & (tb >= 0) & (ta != tb))
    return BattleTable(table.prompts, [f"tier-{i}" for i in range(n_tiers)], table.sources, table.prompt_idx[keep],
                       ta[keep], tb[keep], table.winner[keep], table.source_idx[keep]), keep


def tier_win_matrices(table: BattleTable, tiers: dict[str, int], n_tiers: int, weights: np.ndarray) -> np.ndarray:
    """``(P, T, T)``: per prompt, weighted wins of tier i over tier j (a tie half each)."""
    tt, keep = tier_table(table, tiers, n_tiers)
    w = np.asarray(weights, dtype=np.float64)[keep]
    win_a = np.select([tt.winner == 0, tt.winner == 1], [1.0, 0.0], 0.5) * w
    t2 = n_tiers * n_tiers
    base = tt.prompt_idx * t2
    size = len(table.prompts) * t2
    flat = np.bincount(base + tt.model_a * n_tiers + tt.model_b, weights=win_a, minlength=size) + \
        np.bincount(base + tt.model_b * n_tiers + tt.model_a, weights=w - win_a, minlength=size)
    return flat.reshape(len(table.prompts), n_tiers, n_tiers)


def build_sw_ranking(table: BattleTable, embeddings: np.ndarray, *, embedder_name: str, strong_model: str,
                     weak_model: str, config: SWRankingConfig | None = None,
                     extra_config: dict[str, Any] | None = None) -> tuple[SWRankingRouter, dict[str, Any]]:
    """A router over ``table`` (``embeddings[i]`` embeds ``table.prompts[i]``).

    Returns the router (with a placeholder embedder; attach one with ``router.embedder =``)
    and a summary (ratings, tiers, index size)."""
    from .mf import _NamedOnly

    cfg = config or SWRankingConfig()
    if len(table) == 0:
        raise DataError("no battles to build an index from")
    if embeddings.shape[0] != len(table.prompts):
        raise DataError(f"{embeddings.shape[0]} embeddings for {len(table.prompts)} prompts")
    start = time.perf_counter()
    ratings, tiers = fit_tiers(table, cfg)
    for m in (strong_model, weak_model):
        if m not in tiers:
            raise DataError(f"model {m!r} has no battles in the training data, so it has no tier")
    if tiers[strong_model] == tiers[weak_model]:
        raise DataError(f"{strong_model!r} and {weak_model!r} fall in the same tier ({tiers[strong_model]}); "
                        "use more tiers or another pair")
    n_tiers = max(tiers.values()) + 1
    wins = tier_win_matrices(table, tiers, n_tiers, battle_weights(table, cfg.balance))
    has = wins.reshape(len(table.prompts), -1).sum(axis=1) > 0
    # prompts whose battles are all within one tier add nothing: leave them out of the index
    index = SWRankingIndex.build(embeddings[has], wins[has], l2=cfg.l2)
    config_data: dict[str, Any] = {
        "router": "sw_ranking", "format_version": 1, "models": sorted(tiers), "features": [],
        "tiers": dict(sorted(tiers.items())), "n_tiers": n_tiers,
        "ratings": {m: round(r, 2) for m, r in sorted(ratings.ratings.items())},
        "embedder": embedder_name, "embedding_dim": int(embeddings.shape[1]),
        "default_strong_model": strong_model, "default_weak_model": weak_model,
        "l2": cfg.l2, "top_k": cfg.top_k, "newton_steps": cfg.newton_steps, "training": cfg.model_dump(),
    }
    config_data.update(extra_config or {})
    router = SWRankingRouter(index, config_data, _NamedOnly(embedder_name, embeddings.shape[1]))
    summary = {"n_index_prompts": int(has.sum()), "n_prompts_without_cross_tier_battles": int((~has).sum()),
               "n_battles": len(table), "tiers": tiers, "seconds": time.perf_counter() - start,
               "index_bytes": int(sum(v.nbytes for v in index.tensors.values()))}
    return router, summary


def direct_refit_scores(table: BattleTable, tiers: dict[str, int], n_tiers: int, battle_weight: np.ndarray,
                        embeddings: np.ndarray, query_embeddings: np.ndarray, strong_tier: int, weak_tier: int,
                        *, l2: float = DEFAULT_L2, top_k: int | None = None) -> np.ndarray:
    """The slow reference: per query, weight every battle by its prompt's similarity and
    refit Bradley-Terry over the individual battles (no aggregation, no warm start)."""
    tt, keep = tier_table(table, tiers, n_tiers)
    bw = np.asarray(battle_weight, dtype=np.float64)[keep]
    emb = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    q = query_embeddings / np.linalg.norm(query_embeddings, axis=1, keepdims=True)
    # the index holds only prompts with a cross-tier battle; max cos and top-k are over those
    has = np.bincount(tt.prompt_idx, minlength=len(table.prompts)) > 0
    out = np.empty(len(q))
    for i, v in enumerate(q):
        sims = np.full(len(table.prompts), -np.inf)
        sims[has] = emb[has] @ v
        w = np.zeros(len(table.prompts))
        w[has] = similarity_weights(sims[has][None], top_k)[0]
        r = fit_bradley_terry(tt, w[tt.prompt_idx] * bw, l2=l2, max_iter=200, tol=1e-12)
        out[i] = r.win_probability(f"tier-{strong_tier}", f"tier-{weak_tier}")
    return out


def train_sw_ranking_command(*, out: Path, data_dir: str | os.PathLike[str] | None = None,
                             sources: Sequence[str] | None = None, battles_files: Sequence[str] = (),
                             config: SWRankingConfig | None = None, embedder: Any = "minilm-onnx-int8",
                             reference_embedder: Any = "minilm",
                             max_prompts_per_source: int | None = None, seed: int = 0, evaluate: bool = True,
                             validate: bool = True, progress: bool = True) -> Path:
    """``routellm train sw_ranking``: pool -> decontamination -> embeddings -> tiers and
    index -> checkpoint with a model card (validation and benchmark figures)."""
    from ..data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL
    from .common import cached_embedder, pool_card, prepare_pool, validate_and_report
    from .pipeline import DEFAULT_SOURCES, embed_with_progress

    say = print if progress else (lambda *a, **k: None)
    cfg = config or SWRankingConfig()
    pool = prepare_pool(data_dir=data_dir, sources=DEFAULT_SOURCES if sources is None else sources,
                        battles_files=battles_files, max_prompts_per_source=max_prompts_per_source, seed=seed,
                        reference_embedder=reference_embedder, progress=progress)
    emb = cached_embedder(embedder)
    say(f"embedding {len(pool.table.prompts):,} training prompts with {emb.name} ...")
    embeddings = embed_with_progress(emb, pool.table.prompts, progress)
    router, summary = build_sw_ranking(pool.table, embeddings, embedder_name=emb.name,
                                       strong_model=DEFAULT_STRONG_MODEL, weak_model=DEFAULT_WEAK_MODEL, config=cfg)
    say(f"index: {summary['n_index_prompts']:,} prompts, {summary['index_bytes'] / 1e6:.1f} MB; tiers of the "
        f"default pair: {router.strong_tier} vs {router.weak_tier}")
    router.embedder = emb
    card: dict[str, Any] = {**pool_card(pool), "index": {k: v for k, v in summary.items() if k != "tiers"}}
    if validate:
        def build(train: BattleTable) -> SWRankingRouter:
            return build_sw_ranking(train, embeddings, embedder_name=emb.name, strong_model=DEFAULT_STRONG_MODEL,
                                    weak_model=DEFAULT_WEAK_MODEL, config=cfg)[0]

        card["validation"] = validate_and_report(build, pool, embeddings, label="sw_ranking", seed=seed,
                                                 progress=progress)
    if evaluate:
        card["benchmarks"] = benchmark_rows(router, "sw_ranking", pool.root, progress)
    router.config_data["card"] = card
    command = ("routellm " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("routellm")
               else f"routellm train sw_ranking --out {out}")
    router.embedder = emb.inner
    router.save_pretrained(out, model_card=render_card(router.config_data, command))
    say(f"saved {out}")
    return out


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


def render_card(config: dict[str, Any], command: str, description: str | None = None) -> str:
    """Model card for the sw_ranking / bert / causal_llm checkpoints."""
    from .card import LICENCES, family

    meta = config.get("card", {})
    families = sorted({family(s) for s in meta.get("battles_by_source", {})})
    desc = description or (
        "Similarity-weighted ranking router (RouteLLM, Ong et al. 2024): per prompt, every training battle is "
        "weighted by `10 * 10 ** (cos / max cos)` (cosine between the prompt and the battle's prompt), "
        f"Bradley-Terry ratings with ties are fitted over {config.get('n_tiers', '?')} model tiers, and the score "
        "is P(strong model's tier beats weak model's tier). Served exactly (aggregated per training prompt, "
        "warm-started Newton steps), not approximated.")
    lines = [f"# `{config['router']}` router checkpoint", "", desc, "",
             f"- Embedding space: `{config['embedder']}` ({config['embedding_dim']}-d)",
             f"- Default pair: strong `{config['default_strong_model']}`, weak `{config['default_weak_model']}`.",
             f"- Reproduce: `{command}`", "", "## Training data", "",
             "| source | battles (after decontamination) | licence |", "|---|---:|---|"]
    for source, n in sorted(meta.get("battles_by_source", {}).items()):
        lines.append(f"| {source} | {n:,} | {LICENCES.get(family(source), ('', 'see source'))[1]} |")
    if any(LICENCES.get(f, ("", ""))[1].startswith("CC BY-NC") for f in families):
        lines += ["", "**Licence note:** trained partly on AlpacaEval data (CC BY-NC 4.0): non-commercial."]
    decon = meta.get("decontamination")
    if decon:
        lines += ["", "## Decontamination", "",
                  f"{decon['prompts_dropped']:,} of {decon['prompts_seen']:,} training prompts were dropped as "
                  f"equal to, or within cosine {decon['threshold']} (`{decon['embedder']}`) of, a benchmark prompt."]
    if "tiers" in config:
        by_tier: dict[int, list[str]] = {}
        for m, t in config["tiers"].items():
            by_tier.setdefault(t, []).append(m)
        lines += ["", "## Tiers (global Bradley-Terry rating, quantiles; 0 = strongest)", "",
                  "Ratings across sources are only loosely comparable (the sources share few models).", "",
                  "| tier | models |", "|---:|---|"]
        for t in sorted(by_tier):
            lines.append(f"| {t} | {', '.join(sorted(by_tier[t]))} |")
    for key, title in (("training_report", "Training"),):
        if meta.get(key):
            lines += ["", f"## {title}", "", "```", *(f"{k}: {v}" for k, v in meta[key].items()), "```"]
    val = meta.get("validation")
    if val:
        lines += ["", "## Validation (held-out prompts of the training pool, mean over prompt folds)", "",
                  "Per task: a pair of models ~20 accuracy points apart on it; `default-pair`: GPT-4 Turbo vs "
                  "Mixtral (RouterBench). The index/model is rebuilt without the held-out fold each time.", "",
                  "| set | router | APGR | folds |", "|---|---|---:|---:|"]
        for row in val:
            lines.append(f"| {row['set']} | {row['router']} | {row['apgr']:.3f} | {row['folds']} |")
    bench = meta.get("benchmarks")
    if bench:
        lines += ["", "## Benchmarks (evaluation only; never trained or tuned on)", "",
                  "| benchmark | router | APGR | CPT(50%) | CPT(80%) |", "|---|---|---:|---:|---:|"]
        for row in bench:
            lines.append(f"| {row['benchmark']} | {row['router']} | {row['apgr']:.3f} | {row['cpt50']:.1f}% "
                         f"| {row['cpt80']:.1f}% |")
    lines += ["", "## Limits", "", "Trained on single prompts (first turns). The pool's golden labels come mostly "
              "from maths, code and multiple-choice tasks.", ""]
    return "\n".join(lines)
