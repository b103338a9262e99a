"""Bounded routing text (issue 25): what ``routing.turn.MAX_ROUTING_CHARS`` changes.

Prints:

- the longest prompt of each benchmark set (MT-Bench, GSM8K, MMLU) and how many prompts
  the bound shortens;
- routing decisions changed by the bound on those sets: the ``mf`` router's scores of the
  raw prompts vs of the routing text a Turn keeps (``turn_of_prompt(p).text``), compared
  at the 11 decile thresholds the evaluation sweeps and at 0.5;
- the time to score one 1 MB / 5 MB prompt (benchmark prompts repeated) before the bound
  (the raw prompt, as the router scored it until now) and after it (``turn_of_prompt``
  plus scoring the bounded text), with the ``mf`` router (static WordLlama embedder);
- the characters the policy's recent-prompts memory keeps after 60 prompts of 1 MB.

    ROUTELLM_DATA_DIR=/path/to/data python benchmarks/long_prompts.py [--skip-5mb]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MB = 1_000_000


def _timed(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-5mb", action="store_true", help="time the 1 MB prompt only")
    args = parser.parse_args()

    from routellm_integrations import RoutingPolicy, load_router
    from routellm_integrations.evaluation.benchmarks import load_benchmark
    from routellm_integrations.routing.turn import MAX_ROUTING_CHARS, turn_of_prompt

    router = load_router("mf")
    router.score(["warm-up"])
    print(f"MAX_ROUTING_CHARS = {MAX_ROUTING_CHARS:,}; router mf ({router.embedder.name})")
    all_prompts: list[str] = []
    changed_total = 0
    decisions_total = 0
    for name in ("mt-bench", "gsm8k", "mmlu"):
        prompts = list(load_benchmark(name).prompts)
        all_prompts += prompts
        bounded = [turn_of_prompt(p).text for p in prompts]
        shortened = sum(len(b) < len(p) for p, b in zip(prompts, bounded))
        raw_scores = router.score(prompts)
        bound_scores = router.score(bounded)
        thresholds = np.unique(np.append(np.quantile(raw_scores, np.linspace(0, 1, 11)), 0.5))
        changed = int(sum(np.sum((raw_scores >= t) != (bound_scores >= t)) for t in thresholds))
        decisions = len(prompts) * len(thresholds)
        changed_total += changed
        decisions_total += decisions
        print(f"{name:9s} prompts {len(prompts):6d}  max length {max(map(len, prompts)):6,d} chars  "
              f"shortened by the bound {shortened}  max |score change| "
              f"{float(np.max(np.abs(raw_scores - bound_scores))):.2e}  decisions changed {changed} / {decisions}")
    print(f"max prompt length in the benchmark sets: {max(map(len, all_prompts)):,} chars")
    print(f"decisions changed = {changed_total} (of {decisions_total}: every prompt at 12 thresholds)")

    filler = "\n\n".join(all_prompts[:5000])
    sizes = [1 * MB] + ([] if args.skip_5mb else [5 * MB])
    print(f"{'prompt':>8s} {'before (raw) s':>15s} {'after (bounded) s':>18s} {'speed-up':>9s}")
    for size in sizes:
        prompt = (filler * (size // len(filler) + 1))[:size]
        before = _timed(lambda p=prompt: router.score([p]), 1 if size > MB else 2)
        after = _timed(lambda p=prompt: router.score([turn_of_prompt(p).text]), 5)
        print(f"{size // MB:6d}MB {before:15.3f} {after:18.4f} {before / after:8.0f}x")

    policy = RoutingPolicy("random", threshold=0.5)
    for i in range(60):
        policy.decide(turn_of_prompt(f"{i}:" + filler[: MB - 2]).text)
    kept = sum(len(t) for t in policy._recent)
    print(f"recent-prompts memory after 60 x 1 MB prompts: {len(policy._recent)} texts, {kept:,} chars "
          f"(unbounded: {60 * MB:,})")


if __name__ == "__main__":
    main()
