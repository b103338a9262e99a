"""How long ``adapt_router`` takes for N labels on this machine, embeddings excluded
(they are cached on disk after the first run; the first pass below warms the cache).

    python benchmarks/adapt_speed.py            # N = 250, 500, 1000, 2000 MMLU labels, base mf
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from routellm_integrations.adaptation import adapt_router  # noqa: E402
from routellm_integrations.embedders import CachedEmbedder  # noqa: E402
from routellm_integrations.evaluation.benchmarks import load_benchmark  # noqa: E402
from routellm_integrations.labels import LabelSet  # noqa: E402
from routellm_integrations.paths import embedding_cache_path  # noqa: E402
from routellm_integrations.routers import load_router  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ns", type=int, nargs="+", default=[250, 500, 1000, 2000])
    ap.add_argument("--base", default="mf_minilm")
    args = ap.parse_args()
    bench = load_benchmark("mmlu")
    base = load_router(args.base)
    if getattr(base, "embedder", None) is not None:
        base.embedder = CachedEmbedder(base.embedder, path=embedding_cache_path())
    for n in args.ns:
        idx = np.random.default_rng(n).choice(len(bench), n, replace=False)
        sub = bench.subset(idx)
        labels = LabelSet.from_benchmark(sub)
        base.embedder.embed(list(sub.prompts)) if getattr(base, "embedder", None) is not None else None  # warm
        start = time.perf_counter()
        result = adapt_router(base, labels=labels, progress=False)
        seconds = time.perf_counter() - start
        print(f"N={n:5d}  adapt {seconds:5.1f} s (embeddings cached)  serves {result.report.serves}", flush=True)


if __name__ == "__main__":
    main()
