"""``routellm evaluate``: score each benchmark with each router, print the table, plot.

Embeddings of benchmark prompts are cached on disk (per embedding space, by text
hash), so re-running an evaluation costs only the routers' arithmetic.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..routers.base import BaseRouter
from .benchmarks import BENCHMARKS, Benchmark, canonical_name, load_benchmark, load_pair_outcomes
from .metrics import EvaluationResult, evaluate_scores, format_table
from .plots import plot_quality_curves


def with_disk_cache(router: BaseRouter) -> BaseRouter:
    """Give a router that embeds prompts an on-disk embedding cache (no-op otherwise)."""
    from ..embedders import CachedEmbedder
    from ..paths import embedding_cache_path

    inner = getattr(router, "embedder", None)
    if inner is not None and not isinstance(inner, CachedEmbedder):
        router.embedder = CachedEmbedder(inner, path=embedding_cache_path())
    return router


def score_in_batches(router: BaseRouter, prompts: Sequence[str], *, batch_size: int = 512,
                     desc: str = "", progress: bool = True) -> np.ndarray:
    from tqdm.auto import tqdm

    out = np.empty(len(prompts), dtype=np.float64)
    with tqdm(total=len(prompts), desc=desc, unit="prompt", disable=not progress, leave=False) as bar:
        for s in range(0, len(prompts), batch_size):
            chunk = list(prompts[s:s + batch_size])
            out[s:s + len(chunk)] = router.score(chunk)
            bar.update(len(chunk))
    return out


def evaluate_router(router: BaseRouter, benchmark: Benchmark, *, name: str | None = None,
                    progress: bool = False) -> EvaluationResult:
    """One router on one benchmark (scores every prompt, then the paper's metrics)."""
    scores = score_in_batches(router, benchmark.prompts, desc=f"{name or router.name} on {benchmark.name}",
                              progress=progress)
    return evaluate_scores(scores, benchmark, name or router.name)


def run_evaluation(routers: Sequence[str], benchmark: str, *, data_dir: str | os.PathLike[str] | None = None,
                   output: Path = Path("evaluation"), pair_file: str | None = None,
                   strong_model: str = "model (column 'strong')", weak_model: str = "model (column 'weak')",
                   progress: bool = True) -> list[EvaluationResult]:
    """Evaluate ``routers`` (names or checkpoint folders) and print/plot per benchmark.
    ``strong_model``/``weak_model`` name the two models of a ``pair_file`` in the table."""
    from ..routers import load_router

    if pair_file:
        benches = [load_pair_outcomes(pair_file, strong_model=strong_model, weak_model=weak_model)]
    elif benchmark == "all":
        benches = [load_benchmark(b, data_dir) for b in BENCHMARKS]
    else:
        benches = [load_benchmark(canonical_name(benchmark), data_dir)]
    output.mkdir(parents=True, exist_ok=True)
    results: list[EvaluationResult] = []
    for bench in benches:
        # loaded afresh per benchmark so a seeded router (random) scores each one reproducibly
        per_bench = [evaluate_router(with_disk_cache(load_router(r)), bench, name=Path(r).name if os.sep in str(r)
                                     else str(r), progress=progress) for r in routers]
        results.extend(per_bench)
        print(f"\n{bench.name}: {len(bench)} prompts, strong {bench.strong_model} = {bench.strong_quality:.3f}, "
              f"weak {bench.weak_model} = {bench.weak_quality:.3f} ({bench.outcome_kind})")
        print(format_table(per_bench))
        path = plot_quality_curves(per_bench, output / f"{bench.name}.png")
        print(f"plot: {path}")
    return results
