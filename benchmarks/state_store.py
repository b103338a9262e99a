"""What a shared routing state costs per call, and whether the cap holds across processes.

    python benchmarks/state_store.py [--calls 2000] [--procs 4] [--threads 50]

For each store (memory, SQLite, Redis on a redis-server this script starts on 127.0.0.1):
- the median and p99 time of one reserve + settle (with its ledger entry), on one thread;
- ``--procs`` processes x ``--threads`` threads spending one budget at once: calls admitted,
  the spend against the cap (in dearest calls over it), and whether the ledger's count and
  dollars equal the budget's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from routellm_integrations.budgets import Budget  # noqa: E402
from routellm_integrations.errors import BudgetExceeded  # noqa: E402
from routellm_integrations.state import LedgerEntry, open_store  # noqa: E402
from routellm_integrations.testing.redis_server import RedisServer  # noqa: E402

BOUNDS = {"strong": 0.004, "weak": 0.0004}


def one_call(store, budget: Budget, scope: str, cost: float) -> bool:
    try:
        r, _ = store.reserve(budget, scope, "strong", BOUNDS)
    except BudgetExceeded:
        return False
    entry = LedgerEntry(call_id=r.id, scope=scope, route=r.route, model="m", status="ok", input_tokens=100,
                        output_tokens=50, cost_usd=cost)
    store.settle(budget, r, cost, succeeded=True, entry=entry)
    return True


def latency(url: str, calls: int) -> tuple[float, float]:
    store = open_store(url)
    budget = Budget(max_usd=1e9)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        one_call(store, budget, "latency", 0.001)
        times.append((time.perf_counter() - t) * 1000)
    store.close()
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))]


def spend(url: str, scope: str, cap: float, threads: int, calls: int, out: "mp.Queue[int]") -> None:
    store = open_store(url)
    budget = Budget(max_usd=cap, on_exhausted="raise")
    with ThreadPoolExecutor(threads) as pool:
        out.put(sum(pool.map(lambda i: one_call(store, budget, scope, BOUNDS["strong"] * (0.5 + (i % 5) / 10)),
                             range(calls))))


def shared_cap(url: str, procs: int, threads: int) -> str:
    scope, cap = f"cap-{uuid.uuid4().hex[:6]}", 0.2
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=spend, args=(url, scope, cap, threads, threads, out)) for _ in range(procs)]
    for w in workers:
        w.start()
    admitted = sum(out.get() for _ in workers)
    for w in workers:
        w.join()
    store = open_store(url)
    state = store.budget_state(Budget(max_usd=cap), scope)
    entries = [e for e in store.entries() if e.scope == scope]
    exact = len(entries) == admitted and abs(sum(e.cost_usd for e in entries) - state.spent_usd) < 1e-9
    over = (state.spent_usd - cap) / BOUNDS["strong"]
    return (f"{admitted} of {procs * threads} admitted, spent ${state.spent_usd:.4f} of ${cap:.2f} "
            f"({over:+.2f} dearest calls over), in flight {state.in_flight}, ledger exact: {exact}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as redis:
        urls = {"memory": "memory://", "sqlite": f"sqlite:///{tmp}/state.db", "redis": redis.url}
        for name, url in urls.items():
            p50, p99 = latency(url, args.calls)
            line = f"{name:7s} reserve+settle: median {p50:.3f} ms, p99 {p99:.3f} ms"
            if name != "memory":
                line += f" | {args.procs} procs x {args.threads} threads: {shared_cap(url, args.procs, args.threads)}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
