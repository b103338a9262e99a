"""Similarity-weighted ranking router (RouteLLM's ``sw_ranking``), fast.

For a prompt ``x``, every training battle is weighted by how similar its prompt is to
``x`` (the paper: ``w = 10 * 10 ** (cos / max cos)``, the maximum taken over the
training prompts), Bradley-Terry ratings with ties are fitted over model **tiers** with
those weights, and the score is ``P(strong tier beats weak tier)``.

The reference refits a logistic regression over every battle for every prompt (2.9
requests/s on a GPU). Here the same maximum-likelihood problem is solved exactly but
cheaply:

* all battles of one training prompt share that prompt's similarity weight, so the
  weighted tier win matrix is ``sum_p w_p * T_p``: one ``(P,) @ (P, T*T)`` product over
  per-prompt tier win matrices ``T_p`` precomputed at build time (the cost no longer
  depends on the number of battles);
* the fit then has ``T`` (10) parameters: a few Newton steps, vectorised over the batch
  and warm-started from the unweighted global fit, reach the optimum to ~1e-9;
* ``top_k`` (optional) keeps only the ``k`` most similar training prompts, the speed-up
  the issue suggests; the default (``None``) keeps every prompt, as the paper does.

Nothing is approximated beyond the stored index precision (int8 embeddings, float16 tier
matrices): ``tests/test_sw_ranking.py`` checks the fast path against a direct refit with
:func:`~routellm_integrations.data.elo.fit_bradley_terry` over the individual battles.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..embedders.base import Embedder
from ..errors import CheckpointError, UnknownModelError
from .base import BaseRouter
from .checkpoint import (CONFIG_FILE, optional_number, positive_int, read_config, read_tensors, resolve_embedder,
                         save_checkpoint)

INDEX_FILE = "index.safetensors"
FORMAT_VERSION = 1
DEFAULT_L2 = 1e-3
DEFAULT_NEWTON_STEPS = 8
NEWTON_TOL = 1e-9


def similarity_weights(sims: np.ndarray, top_k: int | None = None) -> np.ndarray:
    """The paper's weights ``10 * 10 ** (cos / max cos)`` per row of ``sims`` (queries x
    training prompts). ``top_k`` zeroes all but the ``k`` largest per row."""
    sims = np.asarray(sims, dtype=np.float64)
    max_sim = np.maximum(sims.max(axis=1, keepdims=True), 1e-6)
    w = 10.0 * np.power(10.0, sims / max_sim)
    if top_k is not None and top_k < sims.shape[1]:
        cut = np.argpartition(-sims, top_k - 1, axis=1)[:, top_k - 1:top_k]
        kth = np.take_along_axis(sims, cut, axis=1)
        w = np.where(sims >= kth, w, 0.0)
    return w


def newton_bradley_terry(wins: np.ndarray, theta0: np.ndarray, l2: float = DEFAULT_L2,
                         steps: int = DEFAULT_NEWTON_STEPS, tol: float = NEWTON_TOL) -> np.ndarray:
    """Batched penalised Bradley-Terry MLE. ``wins[q, i, j]`` = weighted wins of i over j
    (ties counted half to each side); returns natural-log strengths ``(Q, T)``.

    Same objective as :func:`~routellm_integrations.data.elo.fit_bradley_terry`
    (log-likelihood minus ``l2 * |theta|^2 / 2``), which is strictly concave; steps are
    damped to at most 1 nat per coordinate so a far start cannot overshoot.
    """
    wins = np.asarray(wins, dtype=np.float64)
    q, t, _ = wins.shape
    games = wins + wins.transpose(0, 2, 1)
    row_wins = wins.sum(axis=2)
    theta = np.broadcast_to(np.asarray(theta0, dtype=np.float64), (q, t)).copy()
    eye = np.eye(t)
    lam = l2 if l2 > 0 else 1e-9
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(theta[:, None, :] - theta[:, :, None]))  # P(i beats j)
        grad = row_wins - (games * p).sum(axis=2) - lam * theta
        h = games * p * (1.0 - p)
        hess = eye * (h.sum(axis=2) + lam)[:, :, None] - h
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        biggest = np.abs(step).max(axis=1, keepdims=True)
        step = step / np.maximum(biggest, 1.0)
        theta += step
        if float(biggest.max()) < tol:
            break
    return theta


class SWRankingIndex:
    """The battle index: training-prompt embeddings and per-prompt tier win matrices.

    Stored compactly (int8 embeddings with a per-row scale; float16 tier wins) and used
    as float32/float64 after loading; the router always scores with the dequantised
    arrays, so a saved and reloaded index gives bit-identical scores.
    """

    def __init__(self, tensors: Mapping[str, np.ndarray], n_tiers: int, embedding_dim: int) -> None:
        need = {"embeddings_int8": None, "embedding_scale": None, "tier_wins": None, "global_theta": (n_tiers,)}
        for name, shape in need.items():
            if name not in tensors:
                raise CheckpointError(f"sw_ranking index is missing tensor {name!r}")
        q, scale = np.asarray(tensors["embeddings_int8"]), np.asarray(tensors["embedding_scale"])
        tw = np.asarray(tensors["tier_wins"])
        n = q.shape[0] if q.ndim == 2 else -1
        checks = {"embeddings_int8": (q.shape, (n, embedding_dim)), "embedding_scale": (scale.shape, (n,)),
                  "tier_wins": (tw.shape, (n, n_tiers, n_tiers)),
                  "global_theta": (np.asarray(tensors["global_theta"]).shape, (n_tiers,))}
        for name, (got, want) in checks.items():
            if n <= 0 or got != want:
                raise CheckpointError(f"sw_ranking tensor {name!r} has shape {got}, expected {want}")
        if q.dtype != np.int8:
            raise CheckpointError(f"sw_ranking embeddings must be int8, got {q.dtype}")
        floats = (scale, tw, np.asarray(tensors["global_theta"]))
        if not all(np.isfinite(np.asarray(a, dtype=np.float64)).all() for a in floats):
            raise CheckpointError("sw_ranking index holds NaN or infinite values")
        if (np.asarray(tw, dtype=np.float64) < 0).any():
            raise CheckpointError("sw_ranking tier_wins must be non-negative")
        self.tensors = {"embeddings_int8": q, "embedding_scale": scale.astype(np.float32),
                        "tier_wins": tw.astype(np.float16),
                        "global_theta": np.asarray(tensors["global_theta"], dtype=np.float64)}
        emb = q.astype(np.float32) * (self.tensors["embedding_scale"][:, None] / 127.0)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        self.embeddings = emb / np.where(norms > 0, norms, 1.0)
        self.tier_wins = self.tensors["tier_wins"].astype(np.float64).reshape(n, n_tiers * n_tiers)
        self.global_theta = self.tensors["global_theta"]
        self.n_tiers = n_tiers

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    @classmethod
    def build(cls, embeddings: np.ndarray, tier_wins: np.ndarray, l2: float = DEFAULT_L2) -> "SWRankingIndex":
        """Quantise float arrays into an index; the warm start is the unweighted global fit."""
        emb = np.asarray(embeddings, dtype=np.float32)
        scale = np.abs(emb).max(axis=1)
        scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        q = np.clip(np.rint(emb / scale[:, None] * 127.0), -127, 127).astype(np.int8)
        tw16 = np.asarray(tier_wins, dtype=np.float16)
        n_tiers = tw16.shape[1]
        total = tw16.astype(np.float64).sum(axis=0)[None]
        theta = newton_bradley_terry(total, np.zeros(n_tiers), l2=l2, steps=100)[0]
        return cls({"embeddings_int8": q, "embedding_scale": scale, "tier_wins": tw16, "global_theta": theta},
                   n_tiers, emb.shape[1])


class SWRankingRouter(BaseRouter):
    """``P(strong tier beats weak tier)`` from a similarity-weighted Bradley-Terry fit.

    ``load_router("sw_ranking")`` loads the shipped index; any two models with a tier in
    the checkpoint can be paired (``strong_model=``, ``weak_model=``), as long as they
    are in different tiers.
    """

    name = "sw_ranking"

    def __init__(self, index: SWRankingIndex, config: Mapping[str, Any], embedder: Embedder,
                 strong_model: str | None = None, weak_model: str | None = None,
                 top_k: int | None = None, newton_steps: int | None = None, path: Path | None = None) -> None:
        self.index = index
        self.config_data = dict(config)
        self.embedder = embedder
        self.tiers: dict[str, int] = {str(k): int(v) for k, v in config["tiers"].items()}
        self.l2 = float(config.get("l2", DEFAULT_L2))
        self.top_k = _check_top_k(top_k if top_k is not None else config.get("top_k"))
        steps = newton_steps if newton_steps is not None else config.get("newton_steps", DEFAULT_NEWTON_STEPS)
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise CheckpointError(f"newton_steps must be a positive integer, got {steps!r}")
        self.newton_steps = int(steps)
        self.path = path
        self.strong_model = self._check_model(strong_model or config["default_strong_model"], "strong")
        self.weak_model = self._check_model(weak_model or config["default_weak_model"], "weak")
        self.strong_tier, self.weak_tier = self.tiers[self.strong_model], self.tiers[self.weak_model]
        if self.strong_tier == self.weak_tier:
            raise UnknownModelError(f"{self.strong_model!r} and {self.weak_model!r} are both in tier "
                                    f"{self.strong_tier}: sw_ranking can only compare models in different tiers")

    @property
    def models(self) -> list[str]:
        return sorted(self.tiers, key=lambda m: (self.tiers[m], m))

    def _check_model(self, model: str, role: str) -> str:
        from ..data.models import canonical_model_name

        if model in self.tiers:
            return model
        canonical = canonical_model_name(model)
        if canonical in self.tiers:
            return canonical
        close = difflib.get_close_matches(canonical, list(self.tiers), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownModelError(f"{role} model {model!r} has no tier in this checkpoint "
                                f"({len(self.tiers)} models, see .tiers).{hint}")

    def with_pair(self, strong_model: str, weak_model: str) -> "SWRankingRouter":
        return SWRankingRouter(self.index, self.config_data, self.embedder, strong_model, weak_model,
                               self.top_k, self.newton_steps, self.path)

    # -- scoring --------------------------------------------------------------------
    def tier_strengths(self, embeddings: np.ndarray, chunk: int = 256) -> np.ndarray:
        """Fitted natural-log tier strengths ``(Q, T)`` for query embeddings (unit rows)."""
        emb = np.asarray(embeddings, dtype=np.float32)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        emb = emb / np.where(norms > 0, norms, 1.0)
        t = self.index.n_tiers
        out = np.empty((emb.shape[0], t))
        for s in range(0, emb.shape[0], chunk):
            sims = emb[s:s + chunk] @ self.index.embeddings.T
            w = similarity_weights(sims, self.top_k)
            wins = (w @ self.index.tier_wins).reshape(-1, t, t)
            out[s:s + chunk] = newton_bradley_terry(wins, self.index.global_theta, self.l2, self.newton_steps)
        return out

    def scores_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        theta = self.tier_strengths(embeddings)
        return 1.0 / (1.0 + np.exp(theta[:, self.weak_tier] - theta[:, self.strong_tier]))

    def _score(self, prompts: list[str]) -> np.ndarray:
        return self.scores_from_embeddings(prompts, np.asarray(self.embedder.embed(prompts), dtype=np.float32))

    def config(self) -> dict[str, Any]:
        return {"strong_model": self.strong_model, "weak_model": self.weak_model, "top_k": self.top_k,
                "embedder": self.embedder.name}

    # -- persistence ----------------------------------------------------------------
    def save_pretrained(self, path: str | Path, model_card: str | None = None) -> Path:
        """Write ``index.safetensors`` + ``config.json`` (+ a model card) to a folder, atomically."""
        tensors = {INDEX_FILE: (self.index.tensors, {"format": "routellm-sw-ranking", "version": str(FORMAT_VERSION)})}
        return save_checkpoint(path, self.config_data, tensors=tensors, card=model_card)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, strong_model: str | None = None, weak_model: str | None = None,
                        embedder: Embedder | str | None = None, top_k: int | None = None,
                        newton_steps: int | None = None) -> "SWRankingRouter":
        folder = Path(path)
        config = read_config(folder, expected_router="sw_ranking")
        for key in ("tiers", "n_tiers"):
            if key not in config:
                raise CheckpointError(f"{folder / CONFIG_FILE} lacks the key {key!r}")
        optional_number(config, "l2", folder / CONFIG_FILE, DEFAULT_L2, minimum=0.0)
        index = read_index(folder, config)
        return cls(index, config, resolve_embedder(embedder, config), strong_model, weak_model,
                   top_k, newton_steps, path=folder)


def _check_top_k(top_k: Any) -> int | None:
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise CheckpointError(f"top_k must be a positive integer or None, got {top_k!r}")
    return int(top_k)


def read_index(folder: Path, config: Mapping[str, Any]) -> SWRankingIndex:
    tensors = read_tensors(folder / INDEX_FILE)
    tiers = config["tiers"]
    n_tiers = positive_int(config, "n_tiers", folder / CONFIG_FILE)
    if not isinstance(tiers, dict) or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n_tiers
                                          for v in tiers.values()):
        raise CheckpointError(f"{folder / CONFIG_FILE}: 'tiers' must map model names to tiers 0..{n_tiers - 1}")
    return SWRankingIndex(tensors, n_tiers, int(config["embedding_dim"]))
