"""What the ``mf`` and ``quality`` routers share: a checkpoint's models, scored from a
prompt's embedding joined with its standardised structural features, with a default
strong/weak pair among those models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..data.models import match_model
from ..embedders.base import Embedder
from ..errors import UnknownModelError
from .base import BaseRouter
from .features import structural_features


class EmbeddedPromptRouter(BaseRouter):
    """A router over ``weights`` (with ``feature_mean``/``feature_std``) and a
    checkpoint ``config`` (``models``, ``features``, the default pair). Subclasses
    implement ``_score`` on :meth:`prompt_inputs`."""

    def __init__(self, weights: Any, config: Mapping[str, Any], embedder: Embedder,
                 strong_model: str | None = None, weak_model: str | None = None, path: Path | None = None) -> None:
        self.weights = weights
        self.config_data = dict(config)
        self.embedder = embedder
        self.models: list[str] = list(config["models"])
        self.feature_names: list[str] = list(config["features"])
        self.path = path
        self.strong_model = self.resolve_model(strong_model or config["default_strong_model"], "strong model")
        self.weak_model = self.resolve_model(weak_model or config["default_weak_model"], "weak model")
        if self.strong_model == self.weak_model:
            raise UnknownModelError(f"strong and weak model are both {self.strong_model!r}; pick two different models")

    @property
    def inline_scoring(self) -> bool:
        # the embedding is the cost; a static token table (once loaded) is a lookup
        return bool(getattr(self.embedder, "inline_scoring", False))

    def resolve_model(self, model: str, what: str = "model") -> str:
        """The checkpoint's name for ``model``, or :class:`UnknownModelError` with a hint."""
        return match_model(model, self.models, what)

    def prompt_inputs(self, prompts: Sequence[str]) -> np.ndarray:
        """The model's input: unit embedding joined with standardised structural features."""
        emb = np.asarray(self.embedder.embed(list(prompts)), dtype=np.float32)
        return self.inputs_from_embeddings(prompts, emb)

    def inputs_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        feats = structural_features(prompts, self.feature_names)
        feats = (feats - self.weights["feature_mean"]) / self.weights["feature_std"]
        return np.concatenate([np.asarray(embeddings, dtype=np.float32), feats], axis=1)

    def config(self) -> dict[str, Any]:
        return {"strong_model": self.strong_model, "weak_model": self.weak_model, "embedder": self.embedder.name}
