"""What the defaults send strong, per kind of traffic.

A new user builds ``RoutedChat(strong=..., weak=...)`` with no threshold. This routes
streams of one kind each through the real policy with its defaults (30% of calls strong,
held online, warm-started from the reference mix; the router scoring the backends' pair)
and, beside it, the fixed thresholds the docs used to show (0.5, and the paper's 0.11593),
and prints the share of calls each sends strong after the whole stream:

- MT-Bench first turns (80), GSM8K (1,319) and an MMLU sample (1,000) from ``--data-dir``
  (or ``$ROUTELLM_DATA_DIR``), each shuffled;
- the test suite's synthetic chat / maths / multiple-choice streams (300 each);
- the reference mix (240).

    python benchmarks/default_share.py --data-dir DATA [--strong gpt-4o --weak gpt-4o-mini]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _streams(data_dir: str | None, seed: int) -> dict[str, list[str]]:
    from traffic import STREAMS

    from routellm_integrations.calibration import reference_prompts
    from routellm_integrations.evaluation.benchmarks import load_benchmark

    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {}
    if data_dir or os.environ.get("ROUTELLM_DATA_DIR"):
        for name, n in (("mt-bench", None), ("gsm8k", None), ("mmlu", 1000)):
            prompts = list(load_benchmark(name, data_dir).prompts)
            order = rng.permutation(len(prompts))[: n or len(prompts)]
            out[name] = [prompts[i] for i in order]
    for kind, make in STREAMS.items():
        out[f"synthetic {kind}"] = make(300, seed=seed)
    out["reference mix"] = list(reference_prompts())
    return out


def main(argv: list[str] | None = None) -> int:
    from routellm_integrations import RoutingPolicy

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--router", default="mf")
    ap.add_argument("--strong", default="gpt-4o", help="the strong backend's model name")
    ap.add_argument("--weak", default="gpt-4o-mini", help="the weak backend's model name")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    streams = _streams(args.data_dir, args.seed)
    print(f"router {args.router}, backends {args.strong} / {args.weak}; share of calls sent strong\n")
    print(f"{'traffic':26} {'n':>5} {'default':>8} {'t=0.5':>7} {'t=0.11593':>10}")
    for name, prompts in streams.items():
        row = []
        for options in ({}, {"threshold": 0.5}, {"threshold": 0.11593}):
            policy = RoutingPolicy(args.router, **options)
            policy.score_pair(args.strong, args.weak)
            row.append(np.mean([policy.decide(p).decision.route == "strong" for p in prompts]))
        print(f"{name:26} {len(prompts):5d} {row[0]:8.1%} {row[1]:7.1%} {row[2]:10.1%}")
    print(f"\nscored pair: {policy.scored_pair}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
