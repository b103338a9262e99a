"""Pick a threshold for your own traffic, then see what it buys on a benchmark.

1. Score a sample of *your* prompts and take the threshold that sends a target share
   (here 30%) to the strong model.
2. Evaluate the router on one of the paper's benchmarks (read from the folder in
   $ROUTELLM_DATA_DIR) and save the cost-quality plot, marking where your threshold lands.

    python examples/calibrate_and_evaluate.py [--prompts my_prompts.txt] [--benchmark mt-bench]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from routellm_integrations import load_router, threshold_for_strong_fraction
from routellm_integrations.calibration import strong_share
from routellm_integrations.cli import DEMO_PROMPTS, read_prompts
from routellm_integrations.evaluation.benchmarks import load_benchmark
from routellm_integrations.evaluation.metrics import evaluate_scores
from routellm_integrations.evaluation.plots import plot_quality_curves


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", help="your prompts: one per line, or JSONL with 'prompt' (default: built-in sample)")
    ap.add_argument("--strong-fraction", type=float, default=0.3)
    ap.add_argument("--router", default="mf")
    ap.add_argument("--benchmark", default="mt-bench")
    ap.add_argument("--plot", default="evaluation/calibrated.png")
    args = ap.parse_args(argv)

    router = load_router(args.router)
    mine = read_prompts(Path(args.prompts)) if args.prompts else DEMO_PROMPTS
    threshold = threshold_for_strong_fraction(router.score(mine), args.strong_fraction)
    print(f"{args.router}: threshold {threshold:.4f} sends {strong_share(router.score(mine), threshold):.0%} "
          f"of your {len(mine)} prompts strong (target {args.strong_fraction:.0%})")

    bench = load_benchmark(args.benchmark)
    scores = router.score(list(bench.prompts))
    result = evaluate_scores(scores, bench, args.router)
    on_bench = strong_share(scores, threshold)
    quality = (bench.strong_outcome * (scores >= threshold) + bench.weak_outcome * (scores < threshold)).mean()
    print(f"{bench.name}: APGR {result.apgr:.3f}, CPT(50%) {result.cpt50:.1f}%; at your threshold "
          f"{on_bench:.0%} strong calls give quality {quality:.3f} "
          f"(weak {bench.weak_quality:.3f}, strong {bench.strong_quality:.3f})")
    path = plot_quality_curves([result], args.plot)
    print(f"plot: {path}")
    return {"threshold": threshold, "apgr": result.apgr, "strong_share_on_benchmark": on_bench,
            "quality": float(quality), "plot": str(path)}


if __name__ == "__main__":
    main()
