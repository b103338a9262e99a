"""Answer checks (issue 26): what a check, an escalation and an agreement check add to a
call's latency.

    python benchmarks/escalation_latency.py                      # 60 calls per case, provider latency 0 and 150 ms
    python benchmarks/escalation_latency.py --calls 100 --provider-ms 0 300

The routed client (``RoutedClient``, sync) over real HTTP to the local OpenAI-format
server (``routellm_integrations.testing.openai_compat``), whose answers are scripted and
which waits ``--provider-ms`` before each answer (a provider's latency). Every call goes
to the weak model first (``threshold=1.0``), on a GSM8K-like prompt. Cases:

- ``no checks``: the baseline (one call);
- ``zero-label, passes``: ``escalate_if=["final_answer", "answer_flags"]``, a right answer
  (the review's own cost);
- ``escalated``: the same checks, an answer with no final answer: weak, then strong;
- ``agreement, agrees``: ``escalate_if="agreement"``: one more cheap call, answers agree;
- ``agreement, disagrees``: then the strong call too (three calls);
- ``agreement parallel, ...``: ``agreement(parallel=True)``: the second cheap call is
  sent with the first (the routed client runs on the async path);
- ``verifier, passes``: a verifier on WordLlama features (the review embeds the prompt
  and the answer in process).

Printed per case: the median and 90th percentile wall time of a call, and the median
added to the baseline. Timings depend on the machine; the provider latency dominates
every case that makes more than one call (an escalation or an agreement check adds one
full provider round trip each, sequentially).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT = "Tom has 12 boxes with 7 pens in each box. How many pens does Tom have?"
RIGHT = "Each box holds 7 pens and there are 12 boxes: 12 * 7 = 84. So the answer is 84."
NONE = "Let me think about the boxes and the pens."
WRONG = "12 * 7 = 84 pens, minus none. The answer is 82."


def _verifier_folder(tmp: str) -> str:
    """A verifier on WordLlama (prompt, answer) features, fitted by ``fit_verifier`` on
    synthetic slips (what the review costs does not depend on the fit); its threshold is
    set so the benchmark's right answer passes."""
    from routellm_integrations.embedders import get_embedder
    from routellm_integrations.verification import fit_verifier

    rng = np.random.default_rng(0)
    prompts, answers, weak_right = [], [], []
    for _ in range(80):
        a, b = int(rng.integers(3, 20)), int(rng.integers(3, 20))
        wrong = rng.uniform() < 0.4
        c = a * b + (int(rng.integers(1, 9)) if wrong else 0)
        prompts.append(f"Tom has {a} boxes with {b} pens in each box. How many pens does Tom have?")
        answers.append(f"{a} * {b} = {c}. So the answer is {c}.")
        weak_right.append(0.0 if wrong else 1.0)
    fit = fit_verifier(prompts, answers, np.column_stack([np.ones(80), weak_right]),
                       embedder=get_embedder("wordllama"), prompt_scores=rng.normal(0.5, 0.01, 80), folds=3,
                       n_boot=50)
    fit.verifier.threshold = 0.999
    fit.verifier.save(tmp)
    return tmp


def _case(server: Any, escalate_if: Any, replies: list[str], calls: int) -> list[float]:
    from routellm_integrations.client import RouteConfig, RoutedClient
    from routellm_integrations.costs import PriceTable
    from routellm_integrations.testing.openai_compat import Reply

    prices = PriceTable.default().with_prices({"openai": {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}})
    route = RouteConfig(router="random", threshold=1.0, escalate_if=escalate_if)
    times = []
    with RoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", openai_base_url=server.base_url,
                      openai_api_key="sk-bench-0123456789", prices=prices, max_retries=0,
                      routes={"auto": route}) as client:
        for i in range(calls + 3):  # 3 warm-up calls
            server.chat.push(*(Reply(text=t) for t in replies), model="gpt-4o-mini")
            t = time.perf_counter()
            client.chat.completions.create(model="auto", messages=[{"role": "user", "content": PROMPT}])
            if i >= 3:
                times.append((time.perf_counter() - t) * 1000.0)
    return times


def main() -> None:
    import tempfile

    from routellm_integrations.routing.answer_checks import agreement
    from routellm_integrations.testing.openai_compat import OpenAICompatServer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--provider-ms", type=float, nargs="+", default=[0.0, 150.0])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, OpenAICompatServer() as server:
        folder = _verifier_folder(tmp)
        cases = [("no checks", None, [RIGHT]),
                 ("zero-label, passes", ["final_answer", "answer_flags"], [RIGHT]),
                 ("escalated", ["final_answer", "answer_flags"], [NONE]),
                 ("agreement, agrees", "agreement", [RIGHT, RIGHT]),
                 ("agreement, disagrees", "agreement", [RIGHT, WRONG]),
                 ("agreement parallel, agrees", [agreement(parallel=True)], [RIGHT, RIGHT]),
                 ("agreement parallel, disagrees", [agreement(parallel=True)], [RIGHT, WRONG]),
                 ("verifier, passes", folder, [RIGHT])]
        for delay in args.provider_ms:
            server.chat.delay_s = delay / 1000.0
            print(f"\nprovider latency {delay:.0f} ms, {args.calls} calls per case (ms per call)")
            print(f"{'case':30s} {'median':>8s} {'p90':>8s} {'added':>8s}")
            base = None
            for name, checks, replies in cases:
                times = _case(server, checks, replies, args.calls)
                med = statistics.median(times)
                p90 = float(np.percentile(times, 90))
                base = med if base is None else base
                print(f"{name:30s} {med:8.1f} {p90:8.1f} {med - base:+8.1f}")
            server.chat.reset()


if __name__ == "__main__":
    main()
