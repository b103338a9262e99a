"""The quality router: calibrated P(answer correct) for every model it knows, per prompt.

A strong/weak router answers one question ("does the strong model win here?"); routing
among N models with prices needs another: how good is each model's answer likely to be?
This router is a pointwise head on golden labels (per prompt and model: was the answer
correct), over the same prompt representation as ``mf`` (a static embedding joined with
structural features, so a decision costs about as little)::

    logit_m(x) = d . x + (P x) . v_m + b_m          # difficulty + low-rank model fit + ability
    quality_m(x) = sigmoid(a_m * logit_m(x) + c_m)  # per-model Platt calibration, held-out data

``d`` is how hard the prompt is for every model, ``v_m`` what model ``m`` is good at, and
``(a_m, c_m)`` are fitted on prompts the head never trained on, so that a predicted 0.7
means right about 70% of the time (the model card reports the calibration error).
:meth:`QualityRouter.quality` is what N-way routing asks; :meth:`score` still answers
the pair question (from the two models' qualities), so the router also serves as an
ordinary strong/weak router.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..embedders.base import Embedder
from ..errors import CheckpointError, UnknownModelError
from ..validation import scrub_surrogates
from .base import validate_prompts
from .checkpoint import read_config, read_tensors, resolve_embedder, save_checkpoint
from .embedded import EmbeddedPromptRouter

WEIGHTS_FILE = "quality.safetensors"
FORMAT_VERSION = 1
_REQUIRED = ("feature_mean", "feature_std", "difficulty", "prompt_proj", "model_vectors", "model_bias",
             "calib_scale", "calib_bias")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


class QualityWeights:
    """The tensors of a quality head, checked for consistent shapes and finite values."""

    def __init__(self, tensors: Mapping[str, np.ndarray], n_models: int, embedding_dim: int, n_features: int) -> None:
        missing = [k for k in _REQUIRED if k not in tensors]
        if missing:
            raise CheckpointError(f"quality weights are missing tensor(s) {missing}")
        t = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}
        d_in = embedding_dim + n_features
        rank = t["prompt_proj"].shape[0] if t["prompt_proj"].ndim == 2 else -1
        expected = {"feature_mean": (n_features,), "feature_std": (n_features,), "difficulty": (d_in,),
                    "prompt_proj": (rank, d_in), "model_vectors": (n_models, rank), "model_bias": (n_models,),
                    "calib_scale": (n_models,), "calib_bias": (n_models,)}
        for name, shape in expected.items():
            if t[name].shape != shape or rank < 1:
                raise CheckpointError(f"quality tensor {name!r} has shape {t[name].shape}, expected {shape}")
            if not np.isfinite(t[name]).all():
                raise CheckpointError(f"quality tensor {name!r} holds NaN or infinite values")
        if (t["feature_std"] <= 0).any():
            raise CheckpointError("quality tensor 'feature_std' must be positive")
        self.tensors = t

    def __getitem__(self, key: str) -> np.ndarray:
        return self.tensors[key]

    def logits(self, x: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Uncalibrated logits, shape ``(n, len(columns))``."""
        t = self.tensors
        shared = x @ t["difficulty"]
        fit = (x @ t["prompt_proj"].T) @ t["model_vectors"][columns].T
        return shared[:, None] + fit + t["model_bias"][columns]

    def quality(self, x: np.ndarray, columns: np.ndarray) -> np.ndarray:
        t = self.tensors
        z = self.logits(x, columns) * t["calib_scale"][columns] + t["calib_bias"][columns]
        return _sigmoid(z.astype(np.float64))


class QualityRouter(EmbeddedPromptRouter):
    """Predicted quality of each model on each prompt: ``quality(prompts, models)``.

    ``load_router("quality")`` loads the shipped head (trained on the pool's golden
    labels: RouterBench, ZeroEval and LLMRouter, 65 models); ``routellm train quality``
    makes one from your data. Model names are matched as the data files spell them
    (``gpt-4o-mini-2024-07-18``, ``mistralai/Mixtral-8x7B-Instruct-v0.1``), through the
    same canonical names, and an undated name means the latest dated snapshot
    (``gpt-4o`` -> ``gpt-4o-2024-08-06``). As a pair router, ``score`` is
    P(strong right and weak wrong | exactly one is right)."""

    name = "quality"

    def __init__(self, weights: QualityWeights, config: Mapping[str, Any], embedder: Embedder,
                 strong_model: str | None = None, weak_model: str | None = None, path: Path | None = None) -> None:
        super().__init__(weights, config, embedder, strong_model, weak_model, path)
        self._pair = np.array([self.models.index(self.strong_model), self.models.index(self.weak_model)])

    def columns(self, models: Sequence[str] | None) -> np.ndarray:
        """Indices of ``models`` (all known models when None); a name twice is an error."""
        if models is None:
            return np.arange(len(self.models))
        if isinstance(models, str) or not isinstance(models, Sequence) or not models:
            raise UnknownModelError(f"models must be a non-empty list of model names, got {models!r}")
        names = [self.resolve_model(m) for m in models]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise UnknownModelError(f"models {list(models)!r} name {dup!r} more than once")
        return np.array([self.models.index(n) for n in names])

    # -- scoring --------------------------------------------------------------------
    def quality(self, prompts: Sequence[str], models: Sequence[str] | None = None) -> np.ndarray:
        """Calibrated P(correct) of each of ``models`` (default: all of :attr:`models`) on
        each prompt: float64, shape ``(len(prompts), len(models))``, in [0, 1]."""
        columns = self.columns(models)
        items = [scrub_surrogates(p) for p in validate_prompts(prompts)]
        return self.weights.quality(self.prompt_inputs(items), columns)

    def quality_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray,
                                models: Sequence[str] | None = None) -> np.ndarray:
        """:meth:`quality` with embeddings computed elsewhere (evaluation reuses a cache)."""
        return self.weights.quality(self.inputs_from_embeddings(prompts, embeddings), self.columns(models))

    def _pair_score(self, q: np.ndarray) -> np.ndarray:
        s, w = q[:, 0], q[:, 1]
        win, loss = s * (1.0 - w), w * (1.0 - s)
        return np.where(win + loss > 0, win / np.maximum(win + loss, 1e-300), 0.5)

    def _score(self, prompts: list[str]) -> np.ndarray:
        return self._pair_score(self.weights.quality(self.prompt_inputs(prompts), self._pair))

    def scores_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        return self._pair_score(self.weights.quality(self.inputs_from_embeddings(prompts, embeddings), self._pair))

    def with_pair(self, strong_model: str, weak_model: str) -> "QualityRouter":
        return QualityRouter(self.weights, self.config_data, self.embedder, strong_model, weak_model, self.path)

    # -- persistence ----------------------------------------------------------------
    def save_pretrained(self, path: str | Path, model_card: str | None = None) -> Path:
        tensors = {WEIGHTS_FILE: (self.weights.tensors, {"format": "routellm-quality",
                                                         "version": str(FORMAT_VERSION)})}
        return save_checkpoint(path, self.config_data, tensors=tensors, card=model_card)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, strong_model: str | None = None, weak_model: str | None = None,
                        embedder: Embedder | str | None = None) -> "QualityRouter":
        folder = Path(path)
        config = read_config(folder, expected_router="quality")
        weights = QualityWeights(read_tensors(folder / WEIGHTS_FILE), n_models=len(config["models"]),
                                 embedding_dim=int(config["embedding_dim"]), n_features=len(config["features"]))
        return cls(weights, config, resolve_embedder(embedder, config), strong_model, weak_model, path=folder)


def supports_quality(router: Any) -> bool:
    """Whether ``router`` can route among N models (it has ``quality(prompts, models)``)."""
    return callable(getattr(router, "quality", None))
