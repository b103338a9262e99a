"""Building the similarity-weighted ranking router: tiers, the battle index, a checkpoint.

There is no training beyond embedding the battles' prompts (the paper's point). Steps:

1. **Tiers** (:mod:`.tiers`). A global Bradley-Terry fit with ties over every battle
   (each source given the same total weight), then ``n_tiers`` quantile tiers by
   rating, as the paper groups Arena models into 10 tiers. Caveat: the pool's sources share only
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
import time
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..data.battles import BattleTable
from ..data.elo import EloRatings, fit_bradley_terry
from ..errors import DataError
from ..routers.sw_ranking import DEFAULT_L2, DEFAULT_NEWTON_STEPS, SWRankingIndex, SWRankingRouter, similarity_weights
from . import tiers as _tiers
from .embedding import PlaceholderEmbedder
from .pipeline import train
from .registry import TrainerSpec
from .tiers import battle_weights, tier_table

__all__ = ["SWRankingConfig", "TRAINER", "battle_weights", "build_sw_ranking", "direct_refit_scores", "fit",
           "fit_tiers", "tier_table", "tier_win_matrices", "train_sw_ranking_command"]


class SWRankingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt option must not silently mean its default

    n_tiers: int = Field(10, ge=2, description="tiers of models (the paper: 10)")
    tiering: Literal["model", "family"] = Field(
        "model", description="rate each model ('model') or each model line, snapshots together ('family')")
    balance: Literal["source", "none"] = Field(
        "source", description="give each source the same total weight, in the tiering and in the index")
    top_k: int | None = Field(None, ge=1, description="serve with the k most similar training prompts only "
                              "(None: all, as the paper)")
    l2: float = Field(DEFAULT_L2, ge=0, description="L2 penalty of the Bradley-Terry fits (tiering and serving)")
    newton_steps: int = Field(DEFAULT_NEWTON_STEPS, ge=1, description="warm-started Newton steps per served prompt")


def fit_tiers(table: BattleTable, cfg: SWRankingConfig) -> tuple[EloRatings, dict[str, int]]:
    """Global ratings and tiers (0 = strongest) of every model with a battle, as ``cfg`` says."""
    return _tiers.fit_tiers(table, cfg.n_tiers, tiering=cfg.tiering, balance=cfg.balance, l2=cfg.l2)


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
    router = SWRankingRouter(index, config_data, PlaceholderEmbedder(embedder_name, embeddings.shape[1]))
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


def fit(table: BattleTable, embeddings: np.ndarray, config: SWRankingConfig, *, embedder: Any, strong_model: str,
        weak_model: str, progress: bool = False) -> tuple[SWRankingRouter, dict[str, Any]]:
    """:class:`TrainerSpec` ``fit``: :func:`build_sw_ranking`; the report is the index summary
    (the tiers are in the checkpoint config already)."""
    router, summary = build_sw_ranking(table, embeddings, embedder_name=embedder.name, strong_model=strong_model,
                                       weak_model=weak_model, config=config)
    if progress:
        print(f"index: {summary['n_index_prompts']:,} prompts, {summary['index_bytes'] / 1e6:.1f} MB; tiers of the "
              f"default pair: {router.strong_tier} vs {router.weak_tier}")
    return router, {k: v for k, v in summary.items() if k != "tiers"}


def describe(config: Mapping[str, Any]) -> str:
    return ("Similarity-weighted ranking router (RouteLLM, Ong et al. 2024): per prompt, every training battle is "
            "weighted by `10 * 10 ** (cos / max cos)` (cosine between the prompt and the battle's prompt), "
            f"Bradley-Terry ratings with ties are fitted over {config.get('n_tiers', '?')} model tiers, and the "
            "score is P(strong model's tier beats weak model's tier). Served exactly (aggregated per training "
            "prompt, warm-started Newton steps), not approximated.")


TRAINER = TrainerSpec(name="sw_ranking", config=SWRankingConfig, fit=fit, describe=describe,
                      default_embedder="minilm-onnx-int8", report_key="index")


def train_sw_ranking_command(*, out: Path, data_dir: str | os.PathLike[str] | None = None,
                             sources: Sequence[str] | None = None, battles_files: Sequence[str] = (),
                             config: SWRankingConfig | None = None, embedder: Any = "minilm-onnx-int8",
                             reference_embedder: Any = "minilm",
                             max_prompts_per_source: int | None = None, seed: int = 0, evaluate: bool = True,
                             validate: bool = True, progress: bool = True) -> Path:
    """``routellm train sw_ranking``: :func:`~.pipeline.train` with this trainer."""
    return train(TRAINER, out=out, data_dir=data_dir, sources=sources,
                 battles_files=battles_files, config=config, embedder=embedder,
                 reference_embedder=reference_embedder, max_prompts_per_source=max_prompts_per_source, seed=seed,
                 evaluate=evaluate, validate=validate, progress=progress)
