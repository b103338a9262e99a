"""Budgets: spend versus cap, and the quality bought within it, on a simulated agent workload.

Runs of ``--steps`` calls each (GSM8K and MMLU prompts, shuffled, seeded) are served by
the `mf` router between gpt-4-1106-preview and Mixtral, whose recorded correctness gives
the quality. A call's cost is its tokens (prompt words x 1.3 in, the model's recorded
GSM8K answer, or 1 token for an MMLU letter, out) at list prices (Mixtral at $0.60/M in
and out), answers cut at ``--max-tokens``. Each run has a cap of ``--cap`` times what
the run would cost all-strong; each call reserves its upper bound first, as RoutedChat
does (every input byte a token, plus ``--max-tokens`` of output). A call that fits on
neither model is refused (``BudgetExceeded``) and counts as a wrong answer.

Compared: the budgeted policy (base threshold for 50% strong) and a fixed threshold
tuned after the fact to spend the same in total. Prints spend vs cap per run (worst
overshoot) and accuracy / PGR of each.

    python benchmarks/budget_agents.py [--cap 0.4] [--steps 6] [--runs 150] [--max-tokens 300]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PRICES = {"strong": (10.0, 30.0), "weak": (0.6, 0.6)}  # USD per 1M tokens (input, output)


def workload(n: int, seed: int):
    import csv

    from routellm_integrations.evaluation.benchmarks import load_benchmark
    from routellm_integrations.paths import resolve_data_dir

    gsm = load_benchmark("gsm8k")
    answers = {}
    path = resolve_data_dir(None) / "benchmarks" / "routellm" / "gsm8k" / "gsm8k_responses.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            answers[row["prompt"]] = (len(row["gpt-4-1106-preview_response"].split()) * 1.3,
                                      len(row["mistralai/Mixtral-8x7B-Instruct-v0.1_response"].split()) * 1.3)
    mmlu = load_benchmark("mmlu")
    rng = np.random.default_rng(seed)
    items = [(p, s, w, answers.get(p, (1, 1))) for p, s, w in zip(gsm.prompts, gsm.strong_outcome, gsm.weak_outcome)]
    pick = rng.choice(len(mmlu.prompts), len(items), replace=False)
    items += [(mmlu.prompts[i], mmlu.strong_outcome[i], mmlu.weak_outcome[i], (1, 1)) for i in pick]
    return [items[i] for i in rng.permutation(len(items))[:n]]


def cost(prompt: str, out_tokens: float, route: str, max_tokens: int) -> float:
    pin, pout = PRICES[route]
    return (len(prompt.split()) * 1.3 * pin + min(out_tokens, max_tokens) * pout) / 1e6


def bound(prompt: str, route: str, max_tokens: int) -> float:
    """The most a call can cost, as the lifecycle reserves it."""
    pin, pout = PRICES[route]
    return (len(prompt.encode("utf-8")) * pin + max_tokens * pout) / 1e6


def main(argv: list[str] | None = None) -> int:
    from routellm_integrations import Budget, RoutingPolicy, load_router, threshold_for_strong_fraction
    from routellm_integrations.errors import BudgetExceeded

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cap", type=float, default=0.4, help="cap per run, as a fraction of its all-strong cost")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--runs", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=300, help="output bound per call (max_tokens)")
    args = ap.parse_args(argv)

    items = workload(args.steps * args.runs, args.seed)
    router = load_router("mf")
    prompts = [it[0] for it in items]
    scores = np.concatenate([router.score(prompts[i:i + 256]) for i in range(0, len(prompts), 256)])
    base = threshold_for_strong_fraction(scores, 0.5)
    costs = {r: np.array([cost(p, o[0 if r == "strong" else 1], r, args.max_tokens) for p, _, _, o in items])
             for r in PRICES}
    strong_q, weak_q = np.array([it[1] for it in items]), np.array([it[2] for it in items])

    budgeted = np.zeros(len(items), dtype=bool)
    refused = np.zeros(len(items), dtype=bool)
    overshoot, spent_runs = [], []
    for run in range(args.runs):
        idx = range(run * args.steps, (run + 1) * args.steps)
        cap = args.cap * costs["strong"][list(idx)].sum()
        policy = RoutingPolicy(_Replay(scores), threshold=base, budget=Budget(max_usd=cap), steps="every_step")
        spent = 0.0
        for i in idx:
            bounds = {r: bound(prompts[i], r, args.max_tokens) for r in PRICES}
            try:
                ticket = policy.decide(f"{i}|x", scope="run", bounds=bounds)
            except BudgetExceeded:
                refused[i] = True
                continue
            route = ticket.decision.route
            budgeted[i] = route == "strong"
            c = costs[route][i]
            policy.settle(ticket, c)
            spent += c
        spent_runs.append(spent)
        overshoot.append(spent - cap)
    spend_b = float(np.sum(np.where(budgeted, costs["strong"], np.where(refused, 0.0, costs["weak"]))))
    # the fixed threshold that spends the same in total (bisection on the threshold)
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        spend = float(np.sum(np.where(scores >= mid, costs["strong"], costs["weak"])))
        lo, hi = (mid, hi) if spend > spend_b else (lo, mid)
    fixed = scores >= hi

    def quality(strong_mask, refused_mask=None):
        q = np.where(strong_mask, strong_q, weak_q)
        q = np.where(refused_mask, 0.0, q).mean() if refused_mask is not None else q.mean()
        return q, (q - weak_q.mean()) / (strong_q.mean() - weak_q.mean())

    qb, pb = quality(budgeted, refused)
    qf, pf = quality(fixed)
    all_strong = costs["strong"].sum()
    print(f"{args.runs} runs x {args.steps} steps (GSM8K+MMLU), cap per run = {args.cap:.0%} of its all-strong cost")
    print(f"worst overshoot of a run's cap: ${max(overshoot):.6f} (largest single call ${costs['strong'].max():.6f}); "
          f"runs over cap: {sum(o > 1e-12 for o in overshoot)}; calls refused: {int(refused.sum())} of {len(items)}")
    print(f"{'policy':22} {'spend':>10} {'of all-strong':>14} {'strong calls':>13} {'accuracy':>9} {'PGR':>6}")
    print(f"{'budgeted (mf)':22} {spend_b:10.4f} {spend_b / all_strong:14.1%} {budgeted.mean():13.1%} "
          f"{qb:9.2f} {pb:6.3f}")
    print(f"{'fixed, same spend':22} {float(np.sum(np.where(fixed, costs['strong'], costs['weak']))):10.4f} "
          f"{np.sum(np.where(fixed, costs['strong'], costs['weak'])) / all_strong:14.1%} {fixed.mean():13.1%} "
          f"{qf:9.2f} {pf:6.3f}")
    return 0


class _Replay:
    """Stands in for the router: replays precomputed scores (the prompt text is 'index|...')."""

    name = "mf"

    def __init__(self, scores):
        self.scores = scores

    def score(self, batch):
        return np.array([self.scores[int(b.split("|", 1)[0])] for b in batch])


if __name__ == "__main__":
    raise SystemExit(main())
