"""Training the matrix-factorization router on a battle table (torch, CPU).

The objective is RouteLLM's: a pairwise logistic loss on ``s_a(x) - s_b(x)`` with the
battle's winner as the label. Ties are kept as soft 0.5 targets (a tie on an easy prompt
is evidence that the strong model buys nothing there), at ``tie_weight``. Each source is
re-weighted to the same total weight so that the largest golden-label source (all pairs
of ~48 models per prompt) does not drown the others.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..data.battles import BattleTable
from ..errors import DataError
from ..routers.features import FEATURES, structural_features
from ..routers.mf import MatrixFactorizationRouter, MFWeights
from .embedding import PlaceholderEmbedder
from .pool import balanced_battle_weights, prompt_hash
from .registry import TrainerSpec, TrainingRun
from .validation import pair_validation_benchmark


class MFTrainingConfig(BaseModel):
    """Hyper-parameters; all have defaults that produced the shipped checkpoint."""

    model_config = ConfigDict(extra="forbid")  # a misspelt option must not silently mean its default

    dim: int = Field(64, ge=1, description="width of model vectors and the prompt projection")
    hidden: int = Field(0, ge=0, description="0: linear projection as in the paper; >0: one ReLU layer")
    epochs: int = Field(4, ge=1, description="passes over the training battles")
    batch_size: int = Field(8192, ge=1, description="battles per optimiser step")
    lr: float = Field(3e-3, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay on everything but the own parts")
    tie_weight: float = Field(0.5, ge=0, description="weight of a tie relative to a win")
    balance: Literal["source", "family", "none"] = Field(
        "source", description="give each source (or each family: the part before '/') the same total weight")
    features: list[str] = Field(default_factory=lambda: list(FEATURES),
                                description="prompt-structure features joined to the embedding")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="share of prompts held out to validate on")
    share_families: bool = Field(True, description="model vector = own part + a part shared by its family "
                                 "(e.g. all GPT-4 snapshots), so data on one snapshot informs the others")
    own_weight_decay: float = Field(1.0, ge=0, description="decay on the own parts: strength is shared "
                                    "within a family unless the data says otherwise")
    seed: int = Field(0, ge=0, description="seeds initialisation, batch order and the validation split")
    everyday_prior: bool = Field(True, description="also fit the everyday prior P(task) on the hand-written "
                                 "everyday/task prompts and pool prompts; the score is multiplied by "
                                 "P(task)**everyday_beta (training.everyday)")
    everyday_beta: float = Field(0.5, gt=0, le=4, description="how strongly the everyday prior discounts a score")
    everyday_c: float = Field(0.3, gt=0, description="inverse L2 strength of the everyday prior's logistic "
                              "regression")
    everyday_pool_prompts: int = Field(2000, ge=0, description="pool training prompts the everyday prior "
                                       "takes as task examples")


class MFTrainingReport(BaseModel):
    n_battles: int
    n_train_battles: int
    n_val_battles: int
    n_prompts: int
    n_models: int
    epochs: int
    final_train_loss: float
    val_loss: float | None = None
    val_pair_accuracy: float | None = Field(None, description="accuracy on non-tie held-out battles")
    seconds: float
    everyday_prior: dict[str, Any] | None = Field(None, description="what the everyday prior was fitted on")


def split_prompts(prompts: list[str], val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation prompts, stable under reordering (hash of the text)."""
    if val_fraction <= 0:
        return np.zeros(len(prompts), dtype=bool)
    return (prompt_hash(prompts, str(seed)) % np.uint64(10_000)).astype(np.int64) < int(val_fraction * 10_000)


def battle_weights(table: BattleTable, cfg: MFTrainingConfig) -> np.ndarray:
    """Per-battle weights (mean 1): ties at ``cfg.tie_weight``, groups balanced per ``cfg.balance``."""
    return balanced_battle_weights(table, balance=cfg.balance, tie_weight=cfg.tie_weight)


def _build_module(torch: Any, d_in: int, families: np.ndarray, cfg: MFTrainingConfig) -> Any:
    nn = torch.nn

    class MF(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            proj_in = d_in
            if cfg.hidden:
                self.hidden = nn.Linear(d_in, cfg.hidden)
                proj_in = cfg.hidden
            self.text_proj = nn.Linear(proj_in, cfg.dim, bias=False)
            n_models, n_families = len(families), int(families.max()) + 1
            self.register_buffer("family_of", torch.from_numpy(families.astype(np.int64)))
            self.own = nn.Embedding(n_models, cfg.dim)
            self.own_bias = nn.Parameter(torch.zeros(n_models))
            self.family = nn.Embedding(n_families, cfg.dim)
            self.family_bias = nn.Parameter(torch.zeros(n_families))
            nn.init.normal_(self.family.weight, std=0.1)
            nn.init.normal_(self.own.weight, std=0.1 if not cfg.share_families else 0.01)
            self.classifier = nn.Parameter(torch.ones(cfg.dim) / cfg.dim ** 0.5)

        def model_vectors(self) -> Any:
            return self.own.weight + self.family.weight[self.family_of]

        def model_bias(self) -> Any:
            return self.own_bias + self.family_bias[self.family_of]

        def project(self, x: Any) -> Any:
            if cfg.hidden:
                x = torch.relu(self.hidden(x))
            return self.text_proj(x)

        def forward(self, x: Any, a: Any, b: Any) -> Any:
            h = self.project(x) * self.classifier
            vectors, bias = self.model_vectors(), self.model_bias()
            return (h * (vectors[a] - vectors[b])).sum(-1) + bias[a] - bias[b]

    return MF()


def train_mf(table: BattleTable, embeddings: np.ndarray, *, embedder_name: str,
             strong_model: str, weak_model: str, config: MFTrainingConfig | None = None,
             progress: bool = True, extra_config: dict[str, Any] | None = None,
             ) -> tuple[MatrixFactorizationRouter, MFTrainingReport, np.ndarray]:
    """Fit an MF router. ``embeddings[i]`` embeds ``table.prompts[i]`` (unit rows).

    Returns the router (with a placeholder embedder name recorded; attach the real
    embedder with ``router.embedder = ...`` or reload from disk), the report, and the
    validation-prompt mask so callers can evaluate on the same held-out prompts.
    """
    from ..extras import require

    torch = require("torch", extra="train", feature="training a router")
    from tqdm.auto import tqdm

    cfg = config or MFTrainingConfig()
    if len(table) == 0:
        raise DataError("no battles to train on")
    if embeddings.shape[0] != len(table.prompts):
        raise DataError(f"{embeddings.shape[0]} embeddings for {len(table.prompts)} prompts")
    for m in (strong_model, weak_model):
        if m not in table.models:
            raise DataError(f"model {m!r} has no battles in the training data")
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    val_prompt = split_prompts(table.prompts, cfg.val_fraction, cfg.seed)
    val_battle = val_prompt[table.prompt_idx]
    train_idx, val_idx = np.flatnonzero(~val_battle), np.flatnonzero(val_battle)
    if train_idx.size == 0:
        raise DataError("the validation split left no training battles; lower val_fraction")

    feats = structural_features(table.prompts, cfg.features)
    train_prompts = np.unique(table.prompt_idx[train_idx])
    mean = feats[train_prompts].mean(0)
    std = feats[train_prompts].std(0)
    std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
    x_all = np.concatenate([embeddings.astype(np.float32), (feats - mean) / std], axis=1)

    weights = battle_weights(table, cfg)
    targets = np.select([table.winner == 0, table.winner == 1], [1.0, 0.0], 0.5).astype(np.float32)

    X = torch.from_numpy(x_all)
    A, B = torch.from_numpy(table.model_a.astype(np.int64)), torch.from_numpy(table.model_b.astype(np.int64))
    P = torch.from_numpy(table.prompt_idx)
    Y, W = torch.from_numpy(targets), torch.from_numpy(weights)
    if cfg.share_families:
        from ..data.models import model_family

        names = [model_family(m) for m in table.models]
        families = np.unique(names, return_inverse=True)[1]
    else:
        families = np.arange(len(table.models))
    module = _build_module(torch, x_all.shape[1], families, cfg)
    own = [module.own.weight, module.own_bias]
    rest = [p for p in module.parameters() if all(p is not o for o in own)]
    opt = torch.optim.AdamW([{"params": rest, "weight_decay": cfg.weight_decay},
                             {"params": own, "weight_decay": cfg.own_weight_decay if cfg.share_families
                              else cfg.weight_decay}], lr=cfg.lr)
    loss_fn = torch.nn.functional.binary_cross_entropy_with_logits

    def batch_loss(idx: np.ndarray) -> Any:
        i = torch.from_numpy(idx)
        logits = module(X[P[i]], A[i], B[i])
        return (loss_fn(logits, Y[i], reduction="none") * W[i]).sum() / W[i].sum()

    n_steps = cfg.epochs * int(np.ceil(train_idx.size / cfg.batch_size))
    bar = tqdm(total=n_steps, desc="training mf", unit="step", disable=not progress)
    last = float("nan")
    module.train()
    for _ in range(cfg.epochs):
        order = rng.permutation(train_idx)
        for s in range(0, order.size, cfg.batch_size):
            loss = batch_loss(order[s:s + cfg.batch_size])
            opt.zero_grad()
            loss.backward()
            opt.step()
            last = float(loss.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{last:.4f}")
    bar.close()

    module.eval()
    val_loss = val_acc = None
    with torch.no_grad():
        if val_idx.size:
            val_loss = float(batch_loss(val_idx))
            decisive = val_idx[table.winner[val_idx] != 2]
            if decisive.size:
                i = torch.from_numpy(decisive)
                pred = module(X[P[i]], A[i], B[i]).numpy() > 0
                val_acc = float(np.mean(pred == (table.winner[decisive] == 0)))
        tensors = {
            "feature_mean": mean.astype(np.float32), "feature_std": std,
            "text_proj": module.text_proj.weight.numpy().copy(),
            "model_embeddings": module.model_vectors().numpy().copy(),
            "classifier": module.classifier.numpy().copy(),
            "model_bias": module.model_bias().numpy().copy(),
        }
        models = list(table.models)
        if cfg.hidden:
            tensors["hidden_weight"] = module.hidden.weight.numpy().copy()
            tensors["hidden_bias"] = module.hidden.bias.numpy().copy()

    config_data: dict[str, Any] = {
        "router": "mf", "format_version": 1, "models": models, "features": list(cfg.features),
        "embedder": embedder_name, "embedding_dim": int(embeddings.shape[1]),
        "default_strong_model": strong_model, "default_weak_model": weak_model,
        "training": cfg.model_dump(),
    }
    config_data.update(extra_config or {})
    weights_obj = MFWeights(tensors, len(models), int(embeddings.shape[1]), len(cfg.features))
    router = MatrixFactorizationRouter(weights_obj, config_data,
                                       PlaceholderEmbedder(embedder_name, embeddings.shape[1]))
    report = MFTrainingReport(n_battles=len(table), n_train_battles=int(train_idx.size),
                              n_val_battles=int(val_idx.size), n_prompts=len(table.prompts),
                              n_models=len(models), epochs=cfg.epochs, final_train_loss=last,
                              val_loss=val_loss, val_pair_accuracy=val_acc,
                              seconds=time.perf_counter() - start)
    return router, report, val_prompt


def fit(table: BattleTable, embeddings: np.ndarray, config: MFTrainingConfig, *, embedder: Any, strong_model: str,
        weak_model: str, progress: bool = False, everyday: Any = None,
        ) -> tuple[MatrixFactorizationRouter, MFTrainingReport]:
    """:class:`TrainerSpec` ``fit``: :func:`train_mf` without the validation mask, then the
    everyday prior (``config.everyday_prior``) on the training split's prompts and
    ``everyday`` (the hand-written examples; the packaged ones when ``None``)."""
    router, report, val_prompt = train_mf(table, embeddings, embedder_name=embedder.name, strong_model=strong_model,
                                          weak_model=weak_model, config=config, progress=progress)
    if config.everyday_prior:
        router, report = attach_everyday_prior(router, report, table, embeddings, val_prompt, embedder, config,
                                               everyday)
    if progress:
        print(f"trained in {report.seconds:.0f} s; held-out pair accuracy {report.val_pair_accuracy}")
    return router, report


def attach_everyday_prior(router: MatrixFactorizationRouter, report: MFTrainingReport, table: BattleTable,
                          embeddings: np.ndarray, val_prompt: np.ndarray, embedder: Any, config: MFTrainingConfig,
                          everyday: Any = None) -> tuple[MatrixFactorizationRouter, MFTrainingReport]:
    """The router with the everyday prior fitted on the prompts it trained on (the held-out
    ones stay unseen, so validation measures the prior too)."""
    from .everyday import fit_everyday_prior, load_everyday_prompts

    examples = load_everyday_prompts() if everyday is None else list(everyday)
    train = np.flatnonzero(~val_prompt)
    weight, bias, facts = fit_everyday_prior([table.prompts[i] for i in train], embeddings[train], embedder, examples,
                                             c=config.everyday_c, pool_prompts=config.everyday_pool_prompts,
                                             seed=config.seed)
    tensors = {**router.weights.tensors, "everyday_weight": weight,
               "everyday_bias": np.asarray([bias], dtype=np.float32)}
    config_data = {**router.config_data, "everyday_beta": config.everyday_beta}
    weights = MFWeights(tensors, len(router.models), int(config_data["embedding_dim"]), len(router.feature_names))
    prior = MatrixFactorizationRouter(weights, config_data, router.embedder, path=router.path)
    return prior, report.model_copy(update={"everyday_prior": {**facts, "beta": config.everyday_beta}})


def validate_held_out_pair(run: TrainingRun) -> list[dict[str, Any]]:
    """The default pair on the prompts the trainer held out (``config.val_fraction`` by
    :func:`split_prompts`; no refit), the router (named as its trainer) beside the length
    control. mf's validation, and quality's."""
    from ..evaluation.metrics import evaluate_scores
    from ..routers.length import LengthRouter

    table, cfg = run.pool.table, run.config
    if run.strong_model not in table.models or run.weak_model not in table.models:
        return []  # your own data without the default pair: nothing to compare on
    bench = pair_validation_benchmark(table, split_prompts(table.prompts, cfg.val_fraction, cfg.seed),
                                      run.strong_model, run.weak_model)
    if bench is None:
        return []
    val_emb = run.embedder.embed(list(bench.prompts))
    pair = run.router.with_pair(run.strong_model, run.weak_model)
    rows = [evaluate_scores(pair.scores_from_embeddings(bench.prompts, val_emb), bench, run.spec.name),
            evaluate_scores(LengthRouter().score(bench.prompts), bench, "length")]
    if run.progress:
        for r in rows:
            print(f"validation ({len(bench)} held-out prompts): {r.router} APGR {r.apgr:.3f}")
    return [{"router": r.router, "apgr": r.apgr, "cpt50": r.cpt50, "n_prompts": r.n_prompts} for r in rows]


def _describe(checkpoint_config: Any) -> str:
    text = ("Matrix-factorisation router (RouteLLM, Ong et al. 2024): P(strong model beats weak model) from a "
            "prompt's embedding and structural features; any two known models can be paired at serving time.")
    beta = checkpoint_config.get("everyday_beta")
    if beta is not None:
        text += (f" The score served is that probability times P(task)**{beta:g}, the everyday prior: a logistic "
                 "regression on the embedding that tells greetings, small talk, one-line facts, translations and "
                 "simple rewrites (absent from the benchmark-style training pool) from tasks, fitted on the "
                 "hand-written prompts of `routellm_integrations/training/data/everyday_prompts.jsonl` and on "
                 "pool prompts (`routellm_integrations.training.everyday`).")
    return text


TRAINER = TrainerSpec(
    name="mf", config=MFTrainingConfig, fit=fit, default_embedder="wordllama", validate=validate_held_out_pair,
    needs_everyday=True,
    describe=_describe)
