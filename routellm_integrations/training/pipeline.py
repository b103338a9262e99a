"""``routellm train mf``: data -> decontamination -> embeddings -> MF -> checkpoint + card.

Seeded end to end: the same data, seed and embedder give the same checkpoint.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.battles import BattleTable
from ..embedders.base import Embedder
from ..data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL
from .card import render_model_card
from .mf import MFTrainingConfig, train_mf


#: Golden-label sources only: AlpacaEval's judge (GPT-4 Turbo judging against GPT-4 Turbo)
#: rewards its own style on open-ended prompts, and its data is non-commercial. Add
#: ``alpaca_eval`` with ``--sources`` to train on it anyway.
DEFAULT_SOURCES = ("routerbench", "zeroeval", "llmrouter")


def subsample_prompts(table: BattleTable, per_source: int, seed: int) -> BattleTable:
    """Keep at most ``per_source`` prompts of each source (chosen by a seeded hash)."""
    sources = np.array(table.prompt_sources())
    keep = np.zeros(len(table.prompts), dtype=bool)
    order = np.argsort(split_hash(table.prompts, seed))
    for s in np.unique(sources):
        idx = order[sources[order] == s][:per_source]
        keep[idx] = True
    return table.select(keep[table.prompt_idx])


def split_hash(prompts: Sequence[str], seed: int) -> np.ndarray:
    import hashlib

    salt = f"sub{seed}".encode()
    return np.array([int.from_bytes(hashlib.blake2b(salt + p.encode(), digest_size=8).digest(), "little")
                     for p in prompts], dtype=np.uint64)


def pair_validation_benchmark(table: BattleTable, val_prompts: np.ndarray, strong: str, weak: str):
    """Held-out prompts with a strong-vs-weak battle, as a benchmark: outcome 1 for the winner,
    0.5 each for a tie (only the outcome difference matters for APGR)."""
    from ..evaluation.benchmarks import Benchmark

    s, w = table.models.index(strong), table.models.index(weak)
    is_pair = ((table.model_a == s) & (table.model_b == w)) | ((table.model_a == w) & (table.model_b == s))
    rows = np.flatnonzero(is_pair & val_prompts[table.prompt_idx])
    if rows.size == 0:
        return None
    strong_first = table.model_a[rows] == s
    strong_won = np.where(table.winner[rows] == 2, 0.5, (table.winner[rows] == 0) == strong_first)
    prompts, inverse = np.unique(table.prompt_idx[rows], return_inverse=True)
    strong_out = np.bincount(inverse, weights=strong_won) / np.bincount(inverse)
    return Benchmark(name="pool-validation", prompts=tuple(table.prompts[p] for p in prompts),
                     strong_outcome=strong_out, weak_outcome=1.0 - strong_out, strong_model=strong,
                     weak_model=weak, outcome_kind="score")


def train_mf_command(*, out: Path, data_dir: str | os.PathLike[str] | None = None,
                     sources: Sequence[str] | None = DEFAULT_SOURCES, seed: int = 0, epochs: int | None = None,
                     dim: int | None = None, hidden: int | None = None,
                     embedder: "str | Embedder" = "wordllama", reference_embedder: "str | Embedder" = "minilm",
                     max_prompts_per_source: int | None = None, evaluate: bool = True,
                     battles_files: Sequence[str | os.PathLike[str]] = (),
                     progress: bool = True) -> Path:
    from ..evaluation.benchmarks import BENCHMARKS, load_benchmark
    from ..evaluation.metrics import evaluate_scores
    from ..routers.length import LengthRouter
    from ..routers.random import RandomRouter
    from .common import cached_embedder, pool_card, prepare_pool

    say = print if progress else (lambda *a, **k: None)
    # near-duplicates are judged in the paper's space (exact MiniLM, cosine 0.95) whatever
    # embedder the router itself is trained with
    pool = prepare_pool(data_dir=data_dir, sources=sources, battles_files=battles_files,
                        max_prompts_per_source=max_prompts_per_source, seed=seed,
                        reference_embedder=reference_embedder, progress=progress)
    clean, root = pool.table, pool.root
    emb = cached_embedder(embedder)
    inner = emb.inner
    say(f"embedding {len(clean.prompts):,} training prompts with {inner.name} ...")
    embeddings = embed_with_progress(emb, clean.prompts, progress)

    cfg_kwargs: dict[str, Any] = {"seed": seed}
    for key, value in (("epochs", epochs), ("dim", dim), ("hidden", hidden)):
        if value is not None:
            cfg_kwargs[key] = value
    cfg = MFTrainingConfig(**cfg_kwargs)
    strong, weak = DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL
    router, report, val_mask = train_mf(clean, embeddings, embedder_name=inner.name, strong_model=strong,
                                        weak_model=weak, config=cfg, progress=progress)
    router.embedder = emb
    say(f"trained in {report.seconds:.0f} s; held-out pair accuracy {report.val_pair_accuracy}")

    card: dict[str, Any] = {**pool_card(pool), "training_report": report.model_dump()}
    val_bench = pair_validation_benchmark(clean, val_mask, strong, weak)
    if val_bench is not None:
        val_emb = emb.embed(list(val_bench.prompts))
        rows = [evaluate_scores(router.scores_from_embeddings(val_bench.prompts, val_emb), val_bench, "mf"),
                evaluate_scores(LengthRouter().score(val_bench.prompts), val_bench, "length")]
        card["validation"] = [{"router": r.router, "apgr": r.apgr, "cpt50": r.cpt50, "n_prompts": r.n_prompts}
                              for r in rows]
        for r in rows:
            say(f"validation ({len(val_bench)} held-out prompts): {r.router} APGR {r.apgr:.3f}")
    if evaluate:
        card["benchmarks"] = []
        for name in BENCHMARKS:
            bench = load_benchmark(name, root)
            bench_emb = embed_with_progress(emb, list(bench.prompts), progress)
            for label, scores in (("mf", router.scores_from_embeddings(bench.prompts, bench_emb)),
                                  ("length", LengthRouter().score(bench.prompts)),
                                  ("random", RandomRouter(seed=0).score(bench.prompts))):
                r = evaluate_scores(scores, bench, label)
                card["benchmarks"].append({"benchmark": name, "router": label, "apgr": r.apgr,
                                           "cpt50": r.cpt50, "cpt80": r.cpt80})
                say(f"{name:9} {label:7} APGR {r.apgr:.3f}  CPT(50%) {r.cpt50:5.1f}%")

    router.config_data["card"] = card
    command = ("routellm " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("routellm")
               else f"routellm train mf --out {out} --seed {seed} --embedder {inner.name}")
    router.embedder = inner
    router.save_pretrained(out, model_card=render_model_card(router.config_data, command))
    say(f"saved {out}")
    return out


def embed_with_progress(embedder, texts: Sequence[str], progress: bool, batch_size: int = 256) -> np.ndarray:
    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=len(texts), desc="embedding", unit="prompt", disable=not progress, leave=False) as bar:
        for s in range(0, len(texts), batch_size):
            chunk = list(texts[s:s + batch_size])
            parts.append(embedder.embed(chunk))
            bar.update(len(chunk))
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, embedder.dim), dtype=np.float32)
