"""The toy router's trainer: its config, its fit, and the spec the pipeline runs."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from fakes import HashingEmbedder

from routellm_integrations.training.registry import TrainerSpec

from .router import ToyRouter


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scale: float = Field(0.5, gt=0, description="log-length units per unit of logit")
    seed: int = Field(0, ge=0, description="unused; set from train(seed=)")


def length_threshold(table, strong_model: str, weak_model: str) -> float:
    """The log length halfway between the mean of the prompts the strong model won against
    the weak one and the mean of the rest."""
    s, w = table.models.index(strong_model), table.models.index(weak_model)
    strong_won = np.zeros(len(table.prompts), dtype=bool)
    won = ((table.model_a == s) & (table.model_b == w) & (table.winner == 0)) | \
          ((table.model_a == w) & (table.model_b == s) & (table.winner == 1))
    strong_won[table.prompt_idx[won]] = True
    loglen = np.log([len(p) for p in table.prompts])
    return float((loglen[strong_won].mean() + loglen[~strong_won].mean()) / 2)


def fit(table, embeddings, config, *, embedder, strong_model, weak_model, progress=False):
    threshold = length_threshold(table, strong_model, weak_model)
    config_data = {"router": "toy", "models": list(table.models), "features": [], "embedder": embedder.name,
                   "embedding_dim": int(embeddings.shape[1]), "default_strong_model": strong_model,
                   "default_weak_model": weak_model, "threshold": threshold, "scale": config.scale}
    return ToyRouter(config_data, embedder), {"threshold": threshold, "n_prompts": len(table.prompts)}


TRAINER = TrainerSpec(name="toy", config=ToyConfig, fit=fit,
                      describe=lambda cfg: f"Toy router: strong above log length {cfg['threshold']:.2f}.",
                      default_embedder=lambda config: HashingEmbedder(dim=16))  # scoring uses no embedding
