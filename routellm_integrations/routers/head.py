"""Classifier-head routers (``bert``, ``causal_llm``): per-prompt features -> a small MLP
head -> class probabilities -> ``P(strong wins)``.

The two differ only in where a prompt's features come from (a sentence encoder, or a
small causal LM reading an instruction) and in their classes; loading, saving, the head
and the pair handling live here once. The head runs in numpy at serving time.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ..embedders.base import Embedder
from ..errors import CheckpointError, UnknownModelError
from .base import BaseRouter
from .checkpoint import read_config, read_tensors, save_checkpoint
from .features import structural_features

HEAD_FILE = "head.safetensors"


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class ClassifierHead:
    """``x -> [relu(x W1^T + b1)] W2^T + b2``: logits over a router's classes."""

    def __init__(self, tensors: Mapping[str, np.ndarray], d_in: int, n_features: int, n_classes: int) -> None:
        t = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}
        for k in ("feature_mean", "feature_std", "out_weight", "out_bias"):
            if k not in t:
                raise CheckpointError(f"classifier head is missing tensor {k!r}")
        if "hidden_weight" in t and t["hidden_weight"].ndim != 2:
            raise CheckpointError(f"head tensor 'hidden_weight' has shape {t['hidden_weight'].shape}, expected 2-d")
        hidden = t["hidden_weight"].shape[0] if "hidden_weight" in t else 0
        width = hidden or d_in
        expected = {"feature_mean": (n_features,), "feature_std": (n_features,),
                    "out_weight": (n_classes, width), "out_bias": (n_classes,)}
        if hidden:
            expected.update(hidden_weight=(hidden, d_in), hidden_bias=(hidden,))
        for k, shape in expected.items():
            if k not in t or t[k].shape != shape:
                raise CheckpointError(f"head tensor {k!r} has shape {t[k].shape if k in t else 'missing'}, "
                                      f"expected {shape}")
            if not np.isfinite(t[k]).all():
                raise CheckpointError(f"head tensor {k!r} holds NaN or infinite values")
        if (t["feature_std"] <= 0).any():
            raise CheckpointError("head tensor 'feature_std' must be positive")
        self.tensors = t

    def logits(self, x: np.ndarray) -> np.ndarray:
        t = self.tensors
        if "hidden_weight" in t:
            x = np.maximum(x @ t["hidden_weight"].T + t["hidden_bias"], 0.0)
        return x @ t["out_weight"].T + t["out_bias"]


def read_head(path: Path, d_in: int, n_features: int, n_classes: int) -> ClassifierHead:
    return ClassifierHead(read_tensors(path), d_in, n_features, n_classes)


class HeadRouter(BaseRouter):
    """A head over per-prompt features. A subclass names its ``classes``, says which of
    them mean "the weak model is as good" (``weak_classes``) and how a prompt becomes a
    feature vector (:meth:`prompt_features`)."""

    classes: ClassVar[tuple[str, ...]]
    #: indices of the classes in which the weak model does at least as well
    weak_classes: ClassVar[tuple[int, ...]]

    def __init__(self, head: ClassifierHead, config: Mapping[str, Any], embedder: Embedder,
                 strong_model: str | None = None, weak_model: str | None = None, path: Path | None = None) -> None:
        self.head = head
        self.config_data = dict(config)
        self.embedder = embedder
        self.feature_names: list[str] = list(config["features"])
        self.path = path
        self.strong_model = _model_name(strong_model or config["default_strong_model"], "strong")
        self.weak_model = _model_name(weak_model or config["default_weak_model"], "weak")
        if self.strong_model == self.weak_model:
            raise UnknownModelError(f"strong and weak model are both {self.strong_model!r}; pick two different models")

    @abstractmethod
    def prompt_features(self, prompts: list[str]) -> np.ndarray:
        """``(n, embedding_dim)`` float32 features of the prompts (before the structural ones)."""

    @classmethod
    @abstractmethod
    def default_embedder(cls, config: Mapping[str, Any], embedder: Any) -> Embedder:
        """The feature extractor a checkpoint was trained with (or ``embedder``, checked)."""

    def with_pair(self, strong_model: str, weak_model: str) -> "HeadRouter":
        return type(self)(self.head, self.config_data, self.embedder, strong_model, weak_model, self.path)

    def inputs_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        t = self.head.tensors
        feats = (structural_features(prompts, self.feature_names) - t["feature_mean"]) / t["feature_std"]
        return np.concatenate([np.asarray(embeddings, dtype=np.float32), feats], axis=1)

    def class_probabilities(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """``(n, len(classes))`` class probabilities."""
        return softmax(self.head.logits(self.inputs_from_embeddings(prompts, embeddings)).astype(np.float64))

    def scores_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        p = self.class_probabilities(prompts, embeddings)
        return 1.0 - p[:, list(self.weak_classes)].sum(axis=1)

    def _score(self, prompts: list[str]) -> np.ndarray:
        return self.scores_from_embeddings(prompts, self.prompt_features(prompts))

    def config(self) -> dict[str, Any]:
        return {"strong_model": self.strong_model, "weak_model": self.weak_model, "embedder": self.embedder.name}

    # -- persistence ----------------------------------------------------------------------
    def save_pretrained(self, path: str | Path, model_card: str | None = None) -> Path:
        """Write ``head.safetensors`` + ``config.json`` (+ a model card) to a folder, atomically."""
        tensors = {HEAD_FILE: (self.head.tensors, {"format": f"routellm-{self.name}", "version": "1"})}
        return save_checkpoint(path, self.config_data, tensors=tensors, card=model_card)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, strong_model: str | None = None, weak_model: str | None = None,
                        embedder: Any = None) -> "HeadRouter":
        folder = Path(path)
        config = read_config(folder, expected_router=cls.name)
        n_features = len(config["features"])
        head = read_head(folder / HEAD_FILE, int(config["embedding_dim"]) + n_features, n_features,
                         len(cls.classes))
        return cls(head, config, cls.default_embedder(config, embedder), strong_model, weak_model, path=folder)


def _model_name(model: Any, role: str) -> str:
    if not isinstance(model, str) or not model.strip():
        raise UnknownModelError(f"{role} model must be a non-empty model name, got {model!r}")
    from ..data.models import canonical_model_name

    return canonical_model_name(model)
