"""Matrix-factorization router (RouteLLM's ``mf``), served with numpy.

Every model ``m`` has a learned vector ``v_m`` and bias ``b_m``; a prompt is embedded,
joined with its structural features and projected to ``h(x)``. The model's score is
``s_m(x) = w . (v_m * h(x)) + b_m`` and ``P(strong beats weak) = sigmoid(s_strong - s_weak)``.
Training (``routellm_integrations.training.mf``) uses torch; serving needs only numpy
and the embedder, so routing costs one embedding and a dot product.

A checkpoint may carry an *everyday prior* (tensors ``everyday_weight``/``everyday_bias``,
``everyday_beta`` in its config; ``training.everyday``): ``P(task)`` from the same
embedding, so the score served is ``P(strong beats weak) * P(task) ** beta``. Greetings,
small talk, one-line facts and translations lie outside the benchmark-style pool the MF
learns from; the prior says so, and sends them towards the weak model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..embedders.base import Embedder
from ..errors import CheckpointError
from .checkpoint import read_config, read_tensors, resolve_embedder, save_checkpoint
from .embedded import EmbeddedPromptRouter

WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1

_REQUIRED = ("feature_mean", "feature_std", "text_proj", "model_embeddings", "classifier", "model_bias")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class MFWeights:
    """The tensors of a trained MF model, checked for consistent shapes."""

    def __init__(self, tensors: Mapping[str, np.ndarray], n_models: int, embedding_dim: int,
                 n_features: int) -> None:
        missing = [k for k in _REQUIRED if k not in tensors]
        if missing:
            raise CheckpointError(f"MF weights are missing tensor(s) {missing}")
        t = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}
        d_in = embedding_dim + n_features
        hidden = t.get("hidden_weight")
        proj_in = hidden.shape[0] if hidden is not None else d_in
        dim = t["classifier"].shape[0]
        expected = {
            "feature_mean": (n_features,), "feature_std": (n_features,),
            "text_proj": (dim, proj_in), "model_embeddings": (n_models, dim),
            "classifier": (dim,), "model_bias": (n_models,),
        }
        if hidden is not None:
            expected["hidden_weight"] = (proj_in, d_in)
            expected["hidden_bias"] = (proj_in,)
        for name, shape in expected.items():
            if name not in t or t[name].shape != shape:
                got = t[name].shape if name in t else "missing"
                raise CheckpointError(f"MF tensor {name!r} has shape {got}, expected {shape}")
            if not np.isfinite(t[name]).all():
                raise CheckpointError(f"MF tensor {name!r} holds NaN or infinite values")
        if (t["feature_std"] <= 0).any():
            raise CheckpointError("MF tensor 'feature_std' must be positive")
        if ("everyday_weight" in t) != ("everyday_bias" in t):
            raise CheckpointError("MF tensors 'everyday_weight' and 'everyday_bias' come together")
        if "everyday_weight" in t:
            for name, shape in (("everyday_weight", (embedding_dim,)), ("everyday_bias", (1,))):
                if t[name].shape != shape:
                    raise CheckpointError(f"MF tensor {name!r} has shape {t[name].shape}, expected {shape}")
                if not np.isfinite(t[name]).all():
                    raise CheckpointError(f"MF tensor {name!r} holds NaN or infinite values")
        self.tensors = t

    @property
    def has_everyday_prior(self) -> bool:
        return "everyday_weight" in self.tensors

    def task_probability(self, embeddings: np.ndarray) -> np.ndarray:
        """The everyday prior's ``P(task)`` of each prompt (1 without a prior)."""
        if not self.has_everyday_prior:
            return np.ones(len(embeddings), dtype=np.float64)
        t = self.tensors
        z = np.asarray(embeddings, dtype=np.float64) @ t["everyday_weight"].astype(np.float64)
        return _sigmoid(z + float(t["everyday_bias"][0]))

    def __getitem__(self, key: str) -> np.ndarray:
        return self.tensors[key]

    def hidden(self, x: np.ndarray) -> np.ndarray:
        """h(x): the projected prompt representation, shape (n, dim)."""
        t = self.tensors
        if "hidden_weight" in t:
            x = np.maximum(x @ t["hidden_weight"].T + t["hidden_bias"], 0.0)
        return x @ t["text_proj"].T


class MatrixFactorizationRouter(EmbeddedPromptRouter):
    """Scores ``P(strong_model beats weak_model)`` for a prompt.

    Load the shipped checkpoint with ``load_router("mf")``, or a trained folder with
    ``load_router(path)``. Any two models the checkpoint was trained on can be paired at
    serving time: ``load_router("mf", strong_model=..., weak_model=...)``.
    """

    name = "mf"

    def __init__(self, weights: MFWeights, config: Mapping[str, Any], embedder: Embedder,
                 strong_model: str | None = None, weak_model: str | None = None,
                 path: Path | None = None) -> None:
        super().__init__(weights, config, embedder, strong_model, weak_model, path)
        self._set_pair_vector()
        beta = config.get("everyday_beta")
        if weights.has_everyday_prior and not (isinstance(beta, (int, float)) and not isinstance(beta, bool)
                                               and 0 < beta <= 4):
            raise CheckpointError(f"an MF checkpoint with an everyday prior needs 'everyday_beta' in (0, 4], "
                                  f"got {beta!r}")
        self.everyday_beta = float(beta) if weights.has_everyday_prior else None

    # -- models ---------------------------------------------------------------------
    def _set_pair_vector(self) -> None:
        s, w = self.models.index(self.strong_model), self.models.index(self.weak_model)
        t = self.weights
        self._pair = t["classifier"] * (t["model_embeddings"][s] - t["model_embeddings"][w])
        self._pair_bias = float(t["model_bias"][s] - t["model_bias"][w])

    def with_pair(self, strong_model: str, weak_model: str) -> "MatrixFactorizationRouter":
        """The same weights scoring another pair (no reload, no retraining)."""
        return MatrixFactorizationRouter(self.weights, self.config_data, self.embedder,
                                         strong_model, weak_model, self.path)

    # -- scoring --------------------------------------------------------------------
    def scores_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """Score with embeddings computed elsewhere (evaluation and training reuse a cache)."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        h = self.weights.hidden(self.inputs_from_embeddings(prompts, embeddings))
        scores = _sigmoid(h @ self._pair + self._pair_bias)
        if self.everyday_beta is not None:
            scores = (scores * self.weights.task_probability(embeddings) ** self.everyday_beta).astype(scores.dtype)
        return scores

    def _score(self, prompts: list[str]) -> np.ndarray:
        return self.scores_from_embeddings(prompts, self.embedder.embed(list(prompts)))

    def model_scores(self, prompts: Sequence[str]) -> dict[str, np.ndarray]:
        """``s_m(x)`` for every known model: a ranking of all models per prompt."""
        h = self.weights.hidden(self.prompt_inputs(prompts))
        t = self.weights
        raw = (h * t["classifier"]) @ t["model_embeddings"].T + t["model_bias"]
        return {m: raw[:, i] for i, m in enumerate(self.models)}

    # -- persistence ----------------------------------------------------------------
    def save_pretrained(self, path: str | Path, model_card: str | None = None) -> Path:
        """Write ``model.safetensors`` + ``config.json`` (+ a model card) to a folder, atomically."""
        tensors = {WEIGHTS_FILE: (self.weights.tensors, {"format": "routellm-mf", "version": str(FORMAT_VERSION)})}
        return save_checkpoint(path, self.config_data, tensors=tensors, card=model_card)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, strong_model: str | None = None,
                        weak_model: str | None = None, embedder: Embedder | str | None = None,
                        ) -> "MatrixFactorizationRouter":
        folder = Path(path)
        config = read_config(folder, expected_router="mf")
        weights = read_weights(folder, config)
        emb = resolve_embedder(embedder, config)
        return cls(weights, config, emb, strong_model, weak_model, path=folder)


def read_weights(folder: Path, config: Mapping[str, Any]) -> MFWeights:
    tensors = read_tensors(folder / WEIGHTS_FILE)
    return MFWeights(tensors, n_models=len(config["models"]), embedding_dim=int(config["embedding_dim"]),
                     n_features=len(config["features"]))
