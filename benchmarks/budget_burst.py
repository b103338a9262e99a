"""Does a dollar budget hold under a burst of concurrent calls? RoutedChat over two real
ChatOpenAI clients and the local OpenAI-format server (which answers after a delay, so
the calls overlap): one cheap call, then 200 concurrent ``ainvoke`` calls of mixed cheap
(short) and dear (long) prompts, the case where reserving "the dearest call seen so far"
admits a burst of dear calls after a cheap one.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/budget_burst.py [--calls 200] [--runs 5]

Prints, for each ``on_exhausted`` mode, the spend against the cap over ``--runs`` bursts
and the overshoot (spend minus cap, in units of the dearest single call of the burst;
<= 0 means the cap held), then the strong share under a far cap next to no budget (a
budget that is nowhere near exhausted must change no decision).
"""

from __future__ import annotations

import argparse
import asyncio
import random

from langchain_openai import ChatOpenAI

from langchain_routellm import RoutedChat
from routellm_integrations import Budget
from routellm_integrations.errors import BudgetExceeded
from routellm_integrations.testing.openai_compat import OpenAICompatServer

MAX_TOKENS = 1024


def prompts(n: int, seed: int) -> list[str]:
    """Mixed traffic: ~70% short questions, ~30% long, dear requests."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if rng.random() < 0.3:
            out.append(f"#{i} Please review this design document in depth. " + "details " * rng.randint(200, 600))
        else:
            out.append(f"#{i} What is {rng.randint(2, 99)} times {rng.randint(2, 99)}?" + " ok" * rng.randint(0, 8))
    return out


def routed(server: OpenAICompatServer, budget: Budget | None) -> RoutedChat:
    strong = ChatOpenAI(model="gpt-4o", base_url=server.base_url, api_key="sk-bench", max_retries=0)
    weak = ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-bench", max_retries=0)
    return RoutedChat(strong=strong, weak=weak, router="length", router_options={"midpoint": 120},
                      threshold=0.5, max_tokens=MAX_TOKENS, budget=budget)


async def burst(llm: RoutedChat, batch: list[str]) -> tuple[list[dict | None], int]:
    async def one(p: str) -> dict | None:
        try:
            return (await llm.ainvoke(p)).response_metadata["routellm"]
        except BudgetExceeded:
            return None
    records = await asyncio.gather(*(one(p) for p in batch))
    return list(records), sum(r is None for r in records)


async def main_async(args: argparse.Namespace) -> int:
    with OpenAICompatServer() as server:
        server.chat.delay_s = args.delay
        print(f"{args.calls} concurrent calls per burst, {args.runs} bursts per mode, server delay {args.delay}s, "
              f"max_tokens={MAX_TOKENS}")
        print(f"{'mode':6} {'run':>3} {'cap $':>9} {'spent $':>9} {'admitted':>8} {'refused':>7} "
              f"{'dearest $':>9} {'overshoot (calls)':>17}")
        worst: dict[str, float] = {}
        for mode in ("weak", "raise"):
            for run in range(args.runs):
                batch = prompts(args.calls, seed=run)
                free, _ = await burst(routed(server, None), batch)
                total = sum(r["cost_usd"] for r in free)
                dearest = max(r["cost_usd"] for r in free)
                cap = total * args.cap_share
                llm = routed(server, Budget(max_usd=cap, on_exhausted=mode))
                first = (await llm.ainvoke("What is 2 + 2?")).response_metadata["routellm"]["cost_usd"]
                records, refused = await burst(llm, batch)
                spent = first + sum(r["cost_usd"] for r in records if r is not None)
                over = (spent - cap) / dearest
                worst[mode] = max(worst.get(mode, float("-inf")), over)
                print(f"{mode:6} {run:3d} {cap:9.5f} {spent:9.5f} {args.calls - refused:8d} {refused:7d} "
                      f"{dearest:9.5f} {over:17.3f}")
        for mode, over in worst.items():
            print(f"max overshoot, on_exhausted={mode!r}: {over:.3f} dearest calls ({'held' if over <= 0 else 'PASSED THE CAP'})")
        batch = prompts(args.calls, seed=99)
        free, _ = await burst(routed(server, None), batch)
        far, _ = await burst(routed(server, Budget(max_usd=1000.0)), batch)
        share = lambda rs: sum(r["route"] == "strong" for r in rs) / len(rs)  # noqa: E731
        same = [a["route"] for a in free] == [b["route"] for b in far]
        print(f"strong share: no budget {share(free):.3f}, Budget(max_usd=1000) {share(far):.3f} "
              f"(identical decisions: {same})")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--delay", type=float, default=0.05, help="seconds the server waits before each answer")
    ap.add_argument("--cap-share", type=float, default=0.05, help="the cap, as a share of the burst's unbudgeted cost")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
