"""Training the quality router (``routellm train quality``) on golden labels (torch, CPU).

The head is fitted with a per-row logistic loss on "was model m right on prompt x",
every source re-weighted to the same total weight (ZeroEval's ~48 models per prompt would
otherwise drown the rest). A share of the prompts (``val_fraction``, by a hash of the
text) is held out; on them each model's logits get a Platt scaling ``(a_m, c_m)``, so the
shipped probabilities are calibrated on prompts the head never saw, and the card
reports log loss, Brier score and expected calibration error there, before and after.

:func:`fit_quality` is the whole fit on arrays; the benchmark and your own adaptation
code call it directly with in-domain labels (per prompt and model: 0/1 or a partial
score in [0, 1]).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..data.battles import BattleTable
from ..errors import DataError
from ..routers.features import FEATURES, structural_features
from ..routers.quality import QualityRouter, QualityWeights
from .embedding import PlaceholderEmbedder
from .mf import split_prompts
from .pool import prompt_hash
from .registry import TrainerSpec, TrainingRun


class QualityTrainingConfig(BaseModel):
    """Hyper-parameters; the defaults produced the shipped checkpoint."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(16, ge=1, description="width of the low-rank model x prompt interaction")
    epochs: int = Field(40, ge=1, description="passes over the training rows")
    batch_size: int = Field(8192, ge=1, description="rows per optimiser step")
    lr: float = Field(5e-3, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(1e-3, ge=0, description="AdamW weight decay")
    balance: Literal["source", "none"] = Field("source", description="give each source the same total weight")
    features: list[str] = Field(default_factory=lambda: list(FEATURES),
                                description="prompt-structure features joined to the embedding")
    val_fraction: float = Field(0.15, gt=0, lt=1, description="share of prompts held out to calibrate and "
                                "validate on")
    min_calibration_rows: int = Field(30, ge=2, description="a model with fewer held-out rows keeps (a, c) = (1, 0)")
    calibration_folds: int = Field(0, ge=0, description="0: calibrate on the val_fraction held out; k >= 2: on "
                                   "cross-fitted logits of all rows (k extra fits; the head is trained on all "
                                   "rows), for small in-domain label sets")
    seed: int = Field(0, ge=0, description="seeds initialisation, batch order and the held-out split")


class QualityReport(BaseModel):
    n_rows: int
    n_prompts: int
    n_models: int
    n_val_rows: int
    epochs: int
    final_train_loss: float
    val_log_loss_raw: float | None = None
    val_log_loss: float | None = None
    val_brier: float | None = None
    val_ece_raw: float | None = Field(None, description="expected calibration error before Platt scaling")
    val_ece: float | None = Field(None, description="expected calibration error of the shipped probabilities")
    seconds: float


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Mean |predicted - observed| over equal-width probability bins, weighted by count."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    n = np.bincount(idx, minlength=bins)
    gap = np.abs(np.bincount(idx, weights=p, minlength=bins) - np.bincount(idx, weights=y, minlength=bins))
    return float(gap.sum() / max(n.sum(), 1))


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def platt(z: np.ndarray, y: np.ndarray, *, prior: float = 1.0, steps: int = 50) -> tuple[float, float]:
    """``(a, c)`` minimising log loss of ``sigmoid(a z + c)`` plus an L2 pull of ``prior``
    towards (1, 0) (so a model with few held-out rows stays near its fit), by damped
    Newton steps: a step that does not lower the objective is halved, and (1, 0) is kept
    when scaling does not beat it (overconfident logits would otherwise run away)."""
    z, y = np.asarray(z, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def objective(a: float, c: float) -> float:
        t = a * z + c
        return float(np.sum(np.logaddexp(0.0, t) - y * t) + 0.5 * prior * ((a - 1.0) ** 2 + c ** 2))

    a, c = 1.0, 0.0
    best = start = objective(a, c)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(a * z + c, -40, 40)))
        g = np.array([np.sum((p - y) * z) + prior * (a - 1.0), np.sum(p - y) + prior * c])
        w = p * (1 - p)
        h = np.array([[np.sum(w * z * z) + prior, np.sum(w * z)], [np.sum(w * z), np.sum(w) + prior]])
        step = np.linalg.solve(h, g)
        t = 1.0
        while t > 1e-4 and objective(a - t * step[0], c - t * step[1]) > best:
            t /= 2
        if t <= 1e-4:
            break
        a, c = a - t * step[0], c - t * step[1]
        best = objective(a, c)
        if np.abs(t * step).max() < 1e-8:
            break
    return (float(a), float(c)) if best < start else (1.0, 0.0)


def fit_quality(prompts: Sequence[str], embeddings: np.ndarray, prompt_idx: np.ndarray, model_idx: np.ndarray,
                correct: np.ndarray, models: Sequence[str], *, source_idx: np.ndarray | None = None,
                config: QualityTrainingConfig | None = None, embedder_name: str = "unknown",
                strong_model: str | None = None, weak_model: str | None = None, progress: bool = False,
                ) -> tuple[QualityRouter, QualityReport]:
    """Fit a quality head: row ``i`` says ``models[model_idx[i]]`` scored ``correct[i]`` on
    ``prompts[prompt_idx[i]]``, whose embedding is ``embeddings[prompt_idx[i]]``.
    ``source_idx`` groups rows for balancing (one group when None)."""
    cfg = config or QualityTrainingConfig()
    prompt_idx, model_idx = np.asarray(prompt_idx, dtype=np.int64), np.asarray(model_idx, dtype=np.int64)
    y_all = np.asarray(correct, dtype=np.float32)
    if len(y_all) == 0:
        raise DataError("no labelled rows to train the quality head on")
    if embeddings.shape[0] != len(prompts):
        raise DataError(f"{embeddings.shape[0]} embeddings for {len(prompts)} prompts")
    if not (len(prompt_idx) == len(model_idx) == len(y_all)):
        raise DataError("prompt_idx, model_idx and correct must have one entry per row")
    if not np.isfinite(y_all).all() or (y_all < 0).any() or (y_all > 1).any():
        raise DataError("correct must hold scores in [0, 1]")
    models = list(models)
    start = time.perf_counter()

    m = len(models)
    feats = structural_features(prompts, cfg.features)
    if cfg.calibration_folds >= 2:
        # cross-fitted: every row's logit comes from a head that never saw its prompt, so the
        # Platt scaling (a shrinkage towards each model's base rate when the head's
        # per-prompt signal is weak) is fitted on all the data; the head shipped sees it all
        folds = (prompt_hash(list(prompts), f"cal{cfg.seed}") % np.uint64(cfg.calibration_folds)).astype(np.int64)
        fit_rows, held = np.arange(len(y_all)), [np.flatnonzero(folds[prompt_idx] == f)
                                                 for f in range(cfg.calibration_folds)]
    else:
        val_row = split_prompts(list(prompts), cfg.val_fraction, cfg.seed)[prompt_idx]
        fit_rows, held = np.flatnonzero(~val_row), [np.flatnonzero(val_row)]
    if fit_rows.size == 0:
        raise DataError("the held-out split left no training rows; lower val_fraction")
    used = np.unique(prompt_idx[fit_rows])
    mean, std = feats[used].mean(0), feats[used].std(0)
    std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
    x_all = np.concatenate([np.asarray(embeddings, dtype=np.float32), (feats - mean) / std], axis=1)
    groups = np.zeros(len(y_all), dtype=np.int64) if source_idx is None or cfg.balance == "none" \
        else np.unique(np.asarray(source_idx), return_inverse=True)[1]
    data = _Rows(x_all, prompt_idx, model_idx, y_all, groups, m)

    tensors, last = _train_head(data, fit_rows, cfg, progress)
    tensors = {"feature_mean": mean.astype(np.float32), "feature_std": std, **tensors,
               "calib_scale": np.ones(m, dtype=np.float32), "calib_bias": np.zeros(m, dtype=np.float32)}
    val_idx = np.sort(np.concatenate(held)) if cfg.calibration_folds >= 2 else held[0]
    report: dict[str, Any] = {}
    if val_idx.size:
        z = np.empty(len(y_all))
        if cfg.calibration_folds >= 2:
            for rows in held:
                fold_tensors, _ = _train_head(data, np.setdiff1d(fit_rows, rows), cfg, False)
                z[rows] = _logits(fold_tensors, data, rows)
        else:
            z[val_idx] = _logits(tensors, data, val_idx)
        z, y_val = z[val_idx], y_all[val_idx].astype(np.float64)
        for col in range(m):
            sel = model_idx[val_idx] == col
            if sel.sum() >= cfg.min_calibration_rows:
                tensors["calib_scale"][col], tensors["calib_bias"][col] = platt(z[sel], y_val[sel])
        raw = _sigmoid(z)
        cal = _sigmoid(z * tensors["calib_scale"][model_idx[val_idx]] + tensors["calib_bias"][model_idx[val_idx]])
        report = {"val_log_loss_raw": _log_loss(raw, y_val), "val_log_loss": _log_loss(cal, y_val),
                  "val_brier": float(np.mean((cal - y_val) ** 2)),
                  "val_ece_raw": expected_calibration_error(raw, y_val), "val_ece": expected_calibration_error(cal, y_val)}
    weights = QualityWeights(tensors, m, int(embeddings.shape[1]), len(cfg.features))

    # the default pair: the pool's strongest and a mid model, unless given
    acc = np.bincount(model_idx, weights=y_all, minlength=m) / np.maximum(np.bincount(model_idx, minlength=m), 1)
    strong = strong_model if strong_model in models else models[int(np.argmax(acc))]
    weak = weak_model if weak_model in models and weak_model != strong else \
        next(models[i] for i in np.argsort(acc) if models[i] != strong)
    config_data: dict[str, Any] = {
        "router": "quality", "format_version": 1, "models": models, "features": list(cfg.features),
        "embedder": embedder_name, "embedding_dim": int(embeddings.shape[1]),
        "default_strong_model": strong, "default_weak_model": weak, "training": cfg.model_dump(),
        "model_accuracy": {mm: float(a) for mm, a in zip(models, acc)},
    }
    router = QualityRouter(weights, config_data, PlaceholderEmbedder(embedder_name, embeddings.shape[1]))
    return router, QualityReport(n_rows=len(y_all), n_prompts=len(prompts), n_models=m, n_val_rows=int(val_idx.size),
                                 epochs=cfg.epochs, final_train_loss=last, seconds=time.perf_counter() - start,
                                 **report)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


@dataclass(frozen=True)
class _Rows:
    """The labelled rows a head is fitted on (``rows`` select among them)."""

    x: np.ndarray
    prompt_idx: np.ndarray
    model_idx: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    n_models: int


def _train_head(data: _Rows, rows: np.ndarray, cfg: QualityTrainingConfig, progress: bool
                ) -> tuple[dict[str, np.ndarray], float]:
    """The head's tensors after ``cfg.epochs`` over ``rows`` (seeded: the same rows give the
    same tensors), and the last batch loss."""
    from ..extras import require

    torch = require("torch", extra="train", feature="training a router")

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    m, r, d_in = data.n_models, cfg.rank, data.x.shape[1]
    per_group = np.bincount(data.groups[rows], minlength=data.groups.max() + 1).astype(np.float64)
    w_all = (1.0 / np.maximum(per_group, 1.0))[data.groups]
    w_all = (w_all / w_all[rows].mean()).astype(np.float32)
    difficulty = torch.nn.Linear(d_in, 1, bias=False)
    proj = torch.nn.Linear(d_in, r, bias=False)
    vectors = torch.nn.Embedding(m, r)
    torch.nn.init.normal_(vectors.weight, std=0.1)
    prior = np.bincount(data.model_idx[rows], weights=data.y[rows], minlength=m) / np.maximum(
        np.bincount(data.model_idx[rows], minlength=m), 1)
    prior = np.clip(prior, 0.02, 0.98)
    bias = torch.nn.Parameter(torch.from_numpy(np.log(prior / (1 - prior)).astype(np.float32)))
    opt = torch.optim.AdamW([*difficulty.parameters(), *proj.parameters(), *vectors.parameters(), bias],
                            lr=cfg.lr, weight_decay=cfg.weight_decay)
    X, P, M = torch.from_numpy(data.x), torch.from_numpy(data.prompt_idx), torch.from_numpy(data.model_idx)
    Y, W = torch.from_numpy(data.y), torch.from_numpy(w_all)
    last = float("nan")
    for epoch in range(cfg.epochs):
        order = rng.permutation(rows)
        for s in range(0, order.size, cfg.batch_size):
            i = torch.from_numpy(order[s:s + cfg.batch_size])
            x = X[P[i]]
            z = difficulty(x).squeeze(-1) + (proj(x) * vectors(M[i])).sum(-1) + bias[M[i]]
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(z, Y[i], reduction="none") * W[i]).sum() \
                / W[i].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            last = float(loss.detach())
        if progress and (epoch + 1) % 10 == 0:
            print(f"quality head epoch {epoch + 1}/{cfg.epochs}: train loss {last:.4f}")
    with torch.no_grad():
        return {"difficulty": difficulty.weight.numpy()[0].copy(), "prompt_proj": proj.weight.numpy().copy(),
                "model_vectors": vectors.weight.numpy().copy(), "model_bias": bias.numpy().copy()}, last


def _logits(tensors: dict[str, np.ndarray], data: _Rows, rows: np.ndarray) -> np.ndarray:
    """Uncalibrated logits of ``rows`` under a head's tensors."""
    x = data.x[data.prompt_idx[rows]]
    v = tensors["model_vectors"][data.model_idx[rows]]
    return (x @ tensors["difficulty"] + ((x @ tensors["prompt_proj"].T) * v).sum(1)
            + tensors["model_bias"][data.model_idx[rows]]).astype(np.float64)


def fit(table: BattleTable, embeddings: np.ndarray, config: QualityTrainingConfig, *, embedder: Any,
        strong_model: str, weak_model: str, progress: bool = False, outcomes: Any = None,
        ) -> tuple[QualityRouter, QualityReport]:
    """:class:`TrainerSpec` ``fit``: the pipeline passes the golden ``outcomes`` of the
    pool's prompts (an :class:`~routellm_integrations.data.sources.OutcomeTable` over
    ``table.prompts``); battles alone cannot say whether an answer was right."""
    if outcomes is None or len(outcomes) == 0:
        raise DataError("the quality router trains on golden labels (routerbench, zeroeval, llmrouter sources); "
                        "these battles have none")
    router, report = fit_quality(table.prompts, embeddings, outcomes.prompt_idx, outcomes.model_idx,
                                 outcomes.correct, outcomes.models, source_idx=outcomes.source_idx, config=config,
                                 embedder_name=embedder.name, strong_model=strong_model, weak_model=weak_model,
                                 progress=progress)
    if progress:
        print(f"trained in {report.seconds:.0f} s; held-out log loss {report.val_log_loss}, ECE {report.val_ece}")
    return router, report


def validate_held_out(run: TrainingRun) -> list[dict[str, Any]]:
    """The pair question on the prompts :func:`fit_quality` held out (no refit), beside the
    length control; the calibration figures are in the training report. Cross-fitted
    (``calibration_folds``), the head saw every prompt: its out-of-fold figures in the
    report are the held-out ones, and no pair validation is claimed."""
    from .mf import validate_held_out_pair

    return [] if run.config.calibration_folds >= 2 else validate_held_out_pair(run)


TRAINER = TrainerSpec(
    name="quality", config=QualityTrainingConfig, fit=fit, default_embedder="wordllama", validate=validate_held_out,
    needs_outcomes=True,
    describe="Quality router: calibrated P(answer correct) of every known model on a prompt, a pointwise head "
             "(shared difficulty + low-rank model fit + per-model ability, Platt-calibrated on held-out prompts) "
             "over a static embedding and structural features; for N-way routing under a cost weight.")
