"""Overhead of RoutedChat over calling the chosen backend directly, against the local
OpenAI-format test server (both backends are real ChatOpenAI clients over HTTP).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/routedchat_overhead.py [--calls 300]

For each prompt: one RoutedChat.invoke, then the same prompt sent directly to the backend
that answered, interleaved so both see the same server and machine state. Prints the
median per-call latency of each, the median overhead and the ratio, per router, with and
without a (far) dollar budget, whose reservations and settlement the overhead includes.
"""

from __future__ import annotations

import argparse
import statistics
import time


from langchain_openai import ChatOpenAI  # noqa: E402

from langchain_routellm import RoutedChat  # noqa: E402
from routellm_integrations import Budget  # noqa: E402
from routellm_integrations.testing.openai_compat import OpenAICompatServer  # noqa: E402

PROMPTS = [
    "Hi! How are you today?", "What is the capital of Australia?", "Write a haiku about autumn leaves.",
    "Prove that there are infinitely many primes p such that p = 3 (mod 4).",
    "Implement an LRU cache in Rust with O(1) get and put, and explain the ownership issues.",
    "Summarise the causes of the French Revolution in two sentences.",
    "Solve for x: 3x^2 - 12x + 9 = 0, and explain each step.", "Translate 'good morning' into French.",
]


def measure(router: str, server: OpenAICompatServer, calls: int, budget: bool = False) -> dict[str, float]:
    strong = ChatOpenAI(model="gpt-4o", base_url=server.base_url, api_key="sk-bench", max_retries=0)
    weak = ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-bench", max_retries=0)
    llm = RoutedChat(strong=strong, weak=weak, router=router, threshold=0.5,
                     budget=Budget(max_usd=1e6) if budget else None)
    backends = {"gpt-4o": strong, "gpt-4o-mini": weak}
    for p in PROMPTS * 3:  # warm up: HTTP keep-alive, router load (mf: embedder), caches
        llm.invoke(p)
        strong.invoke(p)
        weak.invoke(p)
    routed, direct, routing = [], [], []
    for i in range(calls):
        p = PROMPTS[i % len(PROMPTS)] + f" (#{i})"
        t0 = time.perf_counter()
        msg = llm.invoke(p)
        t1 = time.perf_counter()
        backends[msg.response_metadata["routellm"]["model"]].invoke(p)
        t2 = time.perf_counter()
        routed.append((t1 - t0) * 1e3)
        direct.append((t2 - t1) * 1e3)
        routing.append(msg.response_metadata["routellm"]["latency_ms"])
    r, d = statistics.median(routed), statistics.median(direct)
    return {"routed_ms": r, "direct_ms": d, "overhead_ms": r - d, "ratio": r / d,
            "routing_ms": statistics.median(routing),
            "paired_overhead_ms": statistics.median(a - b for a, b in zip(routed, direct))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--routers", nargs="+", default=["random", "mf"])
    args = ap.parse_args()
    print(f"RoutedChat overhead vs the chosen backend called directly ({args.calls} calls per router, "
          "local OpenAI-format server, ChatOpenAI backends, medians)")
    print(f"{'router':13} {'direct ms':>10} {'routed ms':>10} {'overhead ms':>12} {'ratio':>6} {'scoring ms':>11}")
    with OpenAICompatServer() as server:
        for router, budget in ((r, b) for r in args.routers for b in (False, True)):
            name = router + ("+budget" if budget else "")
            try:
                m = measure(router, server, args.calls, budget)
            except Exception as exc:  # noqa: BLE001 - e.g. mf checkpoint missing
                print(f"{name:13} unavailable: {exc}")
                continue
            print(f"{name:13} {m['direct_ms']:10.3f} {m['routed_ms']:10.3f} {m['overhead_ms']:12.3f} "
                  f"{m['ratio']:6.3f} {m['routing_ms']:11.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
