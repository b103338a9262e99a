"""A classifier head on frozen per-prompt features, with tier labels: the training shared
by ``bert`` (3 classes on MiniLM vectors) and ``causal_llm`` (5 score classes on SmolLM2's
hidden state).

:func:`fit_head_on_table` does it all for a battle table: tiers, soft labels (one per
prompt, the battles of a prompt folded together, each source given the same total
weight), standardised prompt-structure features beside the given ones, and
:func:`train_head` (soft-label cross-entropy, seeded).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..data.battles import BattleTable
from ..errors import DataError
from ..routers.features import FEATURES, structural_features
from .tiers import fit_tiers, tier_soft_labels


class HeadTrainingConfig(BaseModel):
    """The settings every head trainer shares (``bert`` and ``causal_llm`` add their own)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt option must not silently mean its default

    hidden: int = Field(128, ge=0, description="0: a linear head; >0: one ReLU layer of this width")
    epochs: int = Field(60, ge=1, description="passes over the labelled prompts")
    batch_size: int = Field(512, ge=1, description="prompts per optimiser step")
    lr: float = Field(2e-3, gt=0, description="peak learning rate (AdamW, one-cycle schedule)")
    weight_decay: float = Field(1e-2, ge=0, description="AdamW weight decay")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout before each linear layer")
    n_tiers: int = Field(10, ge=2, description="model tiers the labels are drawn between")
    features: list[str] = Field(default_factory=lambda: list(FEATURES),
                                description="prompt-structure features joined to the encoder's vector")
    seed: int = Field(0, ge=0, description="seeds initialisation, dropout and batch order")


def train_head(x: np.ndarray, labels: np.ndarray, weight: np.ndarray, *, hidden: int, epochs: int, batch_size: int,
               lr: float, weight_decay: float, dropout: float, seed: int, progress: bool = False,
               desc: str = "training head", init: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Soft-label cross-entropy, per-row weights (normalised to mean 1); returns tensors
    ``hidden_weight/hidden_bias`` (if ``hidden``) and ``out_weight/out_bias``."""
    from ..extras import require

    torch = require("torch", extra="train", feature="training a router")
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(weight > 0)
    if rows.size == 0:
        raise DataError("no labelled prompts to train the head on")
    X = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    Y = torch.from_numpy(np.asarray(labels, dtype=np.float32))
    W = torch.from_numpy((weight / weight[rows].mean()).astype(np.float32))
    n_classes = labels.shape[1]
    layers: list[Any] = []
    if hidden:
        layers += [torch.nn.Dropout(dropout), torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU()]
    layers += [torch.nn.Dropout(dropout), torch.nn.Linear(hidden or x.shape[1], n_classes)]
    net = torch.nn.Sequential(*layers)
    if init is not None:  # e.g. the LM head's rows for the score tokens (linear heads only)
        if hidden:
            raise DataError("an initial head is only supported for linear heads (hidden=0)")
        with torch.no_grad():
            net[-1].weight.copy_(torch.from_numpy(np.asarray(init["out_weight"], dtype=np.float32)))
            net[-1].bias.copy_(torch.from_numpy(np.asarray(init["out_bias"], dtype=np.float32)))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * int(np.ceil(rows.size / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    with tqdm(total=steps, desc=desc, unit="step", disable=not progress, leave=False) as bar:
        for _ in range(epochs):
            order = rng.permutation(rows)
            for s in range(0, order.size, batch_size):
                i = torch.from_numpy(order[s:s + batch_size])
                logp = torch.log_softmax(net(X[i]), dim=-1)
                loss = -((Y[i] * logp).sum(-1) * W[i]).sum() / W[i].sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
    net.eval()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    out = {"out_weight": linears[-1].weight.detach().numpy().copy(), "out_bias": linears[-1].bias.detach().numpy().copy()}
    if hidden:
        out.update(hidden_weight=linears[0].weight.detach().numpy().copy(),
                   hidden_bias=linears[0].bias.detach().numpy().copy())
    return out


def feature_stats(prompts: Sequence[str], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Structural features of ``prompts`` with their mean and std (std floored at 1 where constant)."""
    feats = structural_features(prompts, names)
    mean = feats.mean(0) if len(feats) else np.zeros(len(names), np.float32)
    std = feats.std(0) if len(feats) else np.ones(len(names), np.float32)
    std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
    return feats, mean.astype(np.float32), std


def fit_head_on_table(table: BattleTable, features: np.ndarray, *, cfg: Any, n_tiers: int, progress: bool = False,
                      desc: str = "training head", pair: tuple[str, str] | None = None,
                      class_map: Sequence[int] | None = None, n_classes: int = 3,
                      init: dict[str, np.ndarray] | None = None) -> tuple[dict[str, np.ndarray], dict[str, int], dict[str, Any]]:
    """Tiers, soft labels and a trained head (tensors incl. feature standardisation) for
    prompts ``table.prompts`` with per-prompt inputs ``features``. ``cfg`` has the head's
    ``hidden, epochs, batch_size, lr, weight_decay, dropout, seed`` and ``features``."""
    start = time.perf_counter()
    _, tiers = fit_tiers(table, n_tiers)
    pair_tiers = None
    if pair is not None:
        missing = [m for m in pair if m not in tiers]
        if missing:
            raise DataError(f"model(s) {missing} have no battles, so no tier to label against")
        pair_tiers = (tiers[pair[0]], tiers[pair[1]])
        if pair_tiers[0] == pair_tiers[1]:
            raise DataError(f"{pair[0]!r} and {pair[1]!r} are in the same tier")
    labels, weight = tier_soft_labels(table, tiers, pair_tiers=pair_tiers)
    if class_map is not None:  # e.g. strong wins / tie / weak wins -> score classes 1 / 4 / 5
        mapped = np.zeros((labels.shape[0], n_classes))
        for src, dst in enumerate(class_map):
            mapped[:, dst] += labels[:, src]
        labels = mapped
    feats, mean, std = feature_stats(table.prompts, cfg.features)
    x = np.concatenate([np.asarray(features, dtype=np.float32), (feats - mean) / std], axis=1)
    if init is not None and init["out_weight"].shape[1] < x.shape[1]:  # structural features start at 0
        pad = np.zeros((init["out_weight"].shape[0], x.shape[1] - init["out_weight"].shape[1]), np.float32)
        init = {**init, "out_weight": np.concatenate([init["out_weight"], pad], axis=1)}
    tensors = train_head(x, labels, weight, hidden=cfg.hidden, epochs=cfg.epochs, batch_size=cfg.batch_size,
                         lr=cfg.lr, weight_decay=cfg.weight_decay, dropout=cfg.dropout, seed=cfg.seed,
                         progress=progress, desc=desc, init=init)
    tensors.update(feature_mean=mean, feature_std=std)
    report = {"n_prompts": int((weight > 0).sum()), "n_battles": len(table),
              "class_shares": [round(float(v), 4) for v in (labels * weight[:, None]).sum(0) / weight.sum()],
              "seconds": round(time.perf_counter() - start, 1)}
    return tensors, tiers, report
