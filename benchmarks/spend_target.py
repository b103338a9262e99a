"""A target spend per call, held online over N models, against a fixed cost weight.

Pick the cost weight that spends the target per call on MT-Bench prompts (offline, the
way ``cost_weight`` is usually chosen), then serve a shuffled stream of GSM8K and MMLU
prompts, and report the realised spend per call after 100, 300 and 1000 calls, for the
fixed weight and for ``spend_per_call`` (warm-started from the same weight). Calls run
through the real :class:`~routellm_integrations.routing.CallLifecycle` over the shipped
``quality`` router and three priced models; each answer's output length is drawn per model
(seeded: gpt-4o ~350, gpt-4o-mini ~300, claude-3-haiku ~250 tokens, +-50%), so the
expected output lengths are learnt from the calls too.

    python benchmarks/spend_target.py [--target 0.0012] [--n 1000]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODELS = {"gpt-4o": ("gpt-4o", "openai"), "gpt-4o-mini": ("gpt-4o-mini", "openai"),
          "claude-3-haiku": ("claude-3-haiku-20240307", "anthropic")}
OUTPUT = {"gpt-4o": 350, "gpt-4o-mini": 300, "claude-3-haiku": 250}


def main(argv: list[str] | None = None) -> int:
    from routellm_integrations import RoutingPolicy, load_router
    from routellm_integrations.costs import PriceTable, Usage
    from routellm_integrations.evaluation.benchmarks import load_benchmark
    from routellm_integrations.routing import Backend, CallLifecycle, turn_of
    from routellm_integrations.choice import weight_for_spend

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", type=float, default=0.0012, help="USD per call")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=os.environ.get("ROUTELLM_DATA_DIR"))
    args = ap.parse_args(argv)

    prices = PriceTable({"openai": {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)},
                         "anthropic": {"claude-3-haiku-20240307": (0.25, 1.25)}})
    router = load_router("quality")
    names = {k: k if k != "claude-3-haiku" else "claude-3-haiku-20240307" for k in MODELS}
    backends = {k: Backend(k, m, p) for k, (m, p) in MODELS.items()}

    def lifecycle(**opts):
        policy = RoutingPolicy(router, models=names, **opts)
        return CallLifecycle(policy, backends=backends, prices=prices, expected_output_tokens=300)

    # offline: the weight that meets the target on MT-Bench (expected costs at 300 output tokens)
    calib = lifecycle(cost_weight=0.0)
    mt = list(load_benchmark("mt-bench", args.data_dir).prompts)
    q = router.quality(mt, list(names.values()))
    c = np.array([[calib.expected_costs(turn_of([("user", p)]))[k] for k in MODELS] for p in mt])
    weight = weight_for_spend(q, c, args.target)
    print(f"cost weight for ${args.target:.6f}/call on MT-Bench ({len(mt)} prompts): {weight:.1f}")

    rng = np.random.default_rng(args.seed)
    stream = list(load_benchmark("gsm8k", args.data_dir).prompts) + list(load_benchmark("mmlu", args.data_dir).prompts)
    order = rng.permutation(len(stream))[:args.n]
    outs = {k: rng.uniform(0.5, 1.5, size=args.n) * v for k, v in OUTPUT.items()}
    checkpoints = sorted({c for c in (100, 300, 1000, args.n) if c <= args.n})
    rows = {}
    for label, opts in (("fixed cost_weight", {"cost_weight": weight}),
                        ("spend_per_call", {"spend_per_call": args.target, "cost_weight": weight})):
        lc = lifecycle(**opts)
        spent, marks, routes = 0.0, {}, {}
        for i, j in enumerate(order):
            call = lc.begin(turn_of([("user", stream[j])]))
            record = call.finish(Usage(input_tokens=max(1, len(stream[j]) // 4), output_tokens=int(outs[call.route][i])))
            spent += record.cost_usd
            routes[call.route] = routes.get(call.route, 0) + 1
            if i + 1 in checkpoints:
                marks[i + 1] = spent / (i + 1)
        rows[label] = (marks, routes)
    print(f"realised USD per call on GSM8K+MMLU (target {args.target:.6f}):")
    print(f"{'':20}" + "".join(f"{f'after {c}':>14}" for c in checkpoints) + "   routes")
    for label, (marks, routes) in rows.items():
        share = ", ".join(f"{k} {v / args.n:.0%}" for k, v in sorted(routes.items()))
        print(f"{label:20}" + "".join(f"{marks[c]:14.6f}" for c in checkpoints) + f"   {share}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
