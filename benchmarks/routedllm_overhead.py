"""Overhead of RoutedLLM over calling the chosen LlamaIndex LLM directly.

Both paths talk HTTP to the local OpenAI-format test server (so network and model time
are the same and tiny); the difference is routing (scoring the prompt), stamping,
pricing and the routing event, and with a budget the reservation and its settlement.
Prints median per-call times and their ratio.

    python benchmarks/routedllm_overhead.py [--router random|mf] [--n 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    from llama_index.core.base.llms.types import ChatMessage, MessageRole
    from llama_index.llms.openai import OpenAI
    from routellm_integrations.testing.openai_compat import OpenAICompatServer

    from llamaindex_routellm import RoutedLLM
    from routellm_integrations import Budget

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routers", nargs="+", default=["random", "mf"])
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args(argv)
    messages = [ChatMessage(role=MessageRole.USER, content="What is the capital of France? Answer briefly.")]
    with OpenAICompatServer() as server:
        strong = OpenAI(model="gpt-4o", api_key="sk-local", api_base=server.base_url, max_retries=0)
        weak = OpenAI(model="gpt-4o-mini", api_key="sk-local", api_base=server.base_url, max_retries=0)
        for _ in range(20):
            weak.chat(messages)  # warm the HTTP connection pool
        direct = median_ms(lambda: weak.chat(messages), args.n)
        print(f"direct backend call: {direct:.2f} ms median over {args.n} calls")
        for router in args.routers:
            for budget in (None, Budget(max_usd=1000.0)):
                # threshold 1: always weak, the same backend as the direct call
                llm = RoutedLLM(strong=strong, weak=weak, router=router, threshold=1.0, budget=budget)
                for _ in range(20):
                    llm.chat(messages)
                routed = median_ms(lambda: llm.chat(messages), args.n)
                label = f"{router}, {'budget' if budget else 'no budget'}"
                print(f"RoutedLLM ({label:17}): {routed:.2f} ms median, overhead {routed - direct:+.2f} ms, "
                      f"ratio {routed / direct:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
