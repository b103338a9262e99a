"""Drift: a threshold calibrated offline vs a target share held online.

Calibrate a fixed threshold for 30% strong calls on MT-Bench prompts, then serve a
stream of GSM8K and MMLU prompts (shuffled, seeded) and report the realised strong share
after 100, 200, 500 and 1000 prompts, for the fixed threshold and for the online
controller (warm-started from the same calibrated threshold).

    python benchmarks/online_share.py [--router mf] [--target 0.3]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    from routellm_integrations import load_router, threshold_for_strong_fraction
    from routellm_integrations.evaluation.benchmarks import load_benchmark
    from routellm_integrations.online import OnlineShareController

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--router", default="mf")
    ap.add_argument("--target", type=float, default=0.3)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    router = load_router(args.router)
    calib = list(load_benchmark("mt-bench").prompts)
    fixed = threshold_for_strong_fraction(router.score(calib), args.target)
    rng = np.random.default_rng(args.seed)
    pool = list(load_benchmark("gsm8k").prompts) + list(rng.choice(load_benchmark("mmlu").prompts, 2000, replace=False))
    stream = [pool[i] for i in rng.permutation(len(pool))[: args.n]]
    scores = np.concatenate([router.score(stream[i:i + 256]) for i in range(0, len(stream), 256)])

    online = OnlineShareController(args.target, warm_threshold=fixed)
    fixed_strong, online_strong = [], []
    for s in scores:
        fixed_strong.append(s >= fixed)
        t = online.threshold()
        online_strong.append(s >= t)
        online.observe(s, s >= t)
    print(f"router {args.router}; threshold calibrated for {args.target:.0%} strong on {len(calib)} MT-Bench "
          f"prompts: {fixed:.4f}; serving {len(stream)} GSM8K+MMLU prompts")
    print(f"{'after':>6}  {'fixed threshold':>16}  {'online target':>14}")
    for k in (100, 200, 500, 1000):
        if k <= len(stream):
            print(f"{k:6d}  {np.mean(fixed_strong[:k]):16.1%}  {np.mean(online_strong[:k]):14.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
