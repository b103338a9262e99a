"""The adapted router's head: what it reads of a prompt (three blocks, each regularised on
its own) and the ridge head that scores them. Fitting it is ``adaptation/``'s job.

- the prompt's sentence embedding: which kind of prompt it is (many weights, so strongly
  regularised unless there are many labels);
- its standardised structural features (length, lines, digits, code ...): within a task
  length carries most of what is cheap to know;
- the base router's score as a logit: what the generic router knows, so with few labels
  the head can lean on it instead of learning from scratch.

Blocks are kept apart so cross-validation can choose one penalty for the embedding and
another for the few dense features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..embedders.base import Embedder
from .base import BaseRouter
from .features import FEATURES, structural_features

FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)
#: routers whose score carries nothing the structural features lack
NO_PRIOR_ROUTERS = frozenset({"random", "length"})


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1.0 - 1e-4)
    return np.log(q / (1.0 - q))


@dataclass
class Blocks:
    """Raw (unstandardised) inputs of n prompts."""

    embedding: np.ndarray  # (n, d) float32
    features: np.ndarray  # (n, len(FEATURE_NAMES))
    prior: np.ndarray | None  # (n,) base-score logit, or None when the base has none to give

    def __len__(self) -> int:
        return int(self.embedding.shape[0])

    def subset(self, idx: np.ndarray) -> "Blocks":
        return Blocks(self.embedding[idx], self.features[idx], None if self.prior is None else self.prior[idx])


def base_scores(base: BaseRouter, prompts: Sequence[str], embeddings: np.ndarray,
                embedder: Embedder) -> np.ndarray:
    """The base router's scores, reusing the embeddings when it lives in the same space."""
    own = getattr(base, "embedder", None)
    if hasattr(base, "scores_from_embeddings") and own is not None and getattr(own, "name", None) == embedder.name:
        return np.asarray(base.scores_from_embeddings(list(prompts), embeddings), dtype=np.float64)
    return np.asarray(base.score(list(prompts)), dtype=np.float64)


def uses_prior(base: BaseRouter) -> bool:
    return base.name not in NO_PRIOR_ROUTERS


def compute_blocks(prompts: Sequence[str], embedder: Embedder, base: BaseRouter | None, *,
                   embeddings: np.ndarray | None = None, batch_size: int = 256) -> Blocks:
    """Inputs for prompts with text (``embeddings`` when already computed elsewhere)."""
    items = list(prompts)
    if embeddings is None:
        parts = [np.asarray(embedder.embed(items[s:s + batch_size]), dtype=np.float32)
                 for s in range(0, len(items), batch_size)]
        embeddings = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)
    feats = structural_features(items, FEATURE_NAMES).astype(np.float64)
    prior = logit(base_scores(base, items, embeddings, embedder)) if base is not None and uses_prior(base) else None
    return Blocks(np.asarray(embeddings, dtype=np.float32), feats, prior)


@dataclass
class Standardiser:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardiser":
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 1e-8, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


@dataclass
class RidgeHead:
    """``prediction = emb . w_e + z(features) . w_f + z(prior) * w_p + bias``: how much
    better the strong model is expected to do on the prompt (the labels' own scale)."""

    w_embedding: np.ndarray
    w_features: np.ndarray
    w_prior: float | None
    bias: float
    features: Standardiser
    prior: Standardiser | None

    def design(self, blocks: Blocks) -> np.ndarray:
        return design_matrix(blocks, self.features, self.prior)

    def predict(self, blocks: Blocks) -> np.ndarray:
        out = blocks.embedding.astype(np.float64) @ self.w_embedding + self.features(blocks.features) @ self.w_features
        if self.w_prior is not None and self.prior is not None and blocks.prior is not None:
            out = out + self.prior(blocks.prior) * self.w_prior
        return out + self.bias


def design_matrix(blocks: Blocks, features: Standardiser, prior: Standardiser | None) -> np.ndarray:
    cols = [blocks.embedding.astype(np.float64), features(blocks.features)]
    if prior is not None and blocks.prior is not None:
        cols.append(prior(blocks.prior)[:, None])
    return np.concatenate(cols, axis=1)
