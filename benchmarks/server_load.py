"""Bounded load test of ``routellm serve``: what the routing server adds over calling the
backend directly, and whether its ledger is exact.

    python benchmarks/server_load.py                       # 200 clients, mf, 1 worker, memory://
    python benchmarks/server_load.py --router length --workers 2 --state sqlite:///tmp/bench.sqlite
    python benchmarks/server_load.py --rate 300            # open loop: 300 requests/s offered
    python benchmarks/server_load.py --workers 2 --state redis://127.0.0.1:6379/0 --budget-usd 0.5
                                                           # one cap shared by 2 workers through Redis

Three processes: the local OpenAI-format backend (``OpenAICompatServer`` with
``chat.delay_s = 0.2``, i.e. 200 ms per answer), the routing server, and this load
generator. ``--clients`` concurrent clients (half of them streaming) each send
``--requests`` requests, first straight to the backend, then through the router (same
prompts, same concurrency). Printed: throughput, latency percentiles of both runs, the
added p50/p99, and the ledger check (the server's ``/v1/routing/usage`` calls and tokens
against what the backend recorded). Exit status 1 when the ledger is off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import aiohttp

REPO = Path(__file__).resolve().parents[1]
KEY = "rk-bench-client-key-0001"
PROMPTS = [
    "Hi! How are you today?", "What is the capital of Australia?", "Write a haiku about autumn leaves.",
    "A train leaves at 3:15 pm and travels 210 km at 84 km/h. When does it arrive? Show your work.",
    "Prove that there are infinitely many primes p such that p = 3 (mod 4).",
    "Implement an LRU cache in Rust with O(1) get and put, and explain the ownership issues.",
    "Summarise the causes of the French Revolution in two sentences.",
    "Design a distributed rate limiter for an API gateway handling 1M requests/s.",
]


# -- the backend process ---------------------------------------------------------------------

def start_backend(delay_s: float) -> Any:
    """The local OpenAI-format backend answering after ``delay_s``, with ``GET /_usage``
    (calls and tokens it answered) and ``POST /_reset``, keeping no request log (a long
    run would hold every body)."""
    from routellm_integrations.testing.openai_compat import OpenAICompatServer, Response

    server = OpenAICompatServer().start()
    server.chat.delay_s = delay_s
    server._httpd.handle_error = lambda *a: None  # type: ignore[union-attr]  # clients closing at exit

    def usage(_req):  # type: ignore[no-untyped-def]
        totals = server.chat.usage_totals()
        return Response(200, {k: sum(t[k] for t in totals.values()) for k in ("calls", "input_tokens", "output_tokens")})

    def reset(_req):  # type: ignore[no-untyped-def]
        server.chat.reset()
        server.chat.delay_s = delay_s
        with server._lock:
            server.requests.clear()
        return Response(200, {})

    server.routes[("GET", "/_usage")] = usage
    server.routes[("POST", "/_reset")] = reset
    original = server._dispatch

    def dispatch(req):  # type: ignore[no-untyped-def]
        resp = original(req)
        with server._lock:
            server.requests.clear()
        return resp

    server._dispatch = dispatch  # type: ignore[method-assign]
    return server


def run_backend(delay_s: float) -> None:
    """``--role backend``: serve until stdin closes; print the base URL first."""
    server = start_backend(delay_s)
    print(server.base_url, flush=True)
    sys.stdin.read()
    server.stop()


# -- load -------------------------------------------------------------------------------------

async def one(http: "aiohttp.ClientSession", url: str, model: str, prompt: str, stream: bool,
              headers: dict[str, str]) -> float | None:
    """One request; its latency in seconds, or None when the server refused it for budget (429)."""
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 64}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    start = time.perf_counter()
    async with http.post(url, json=body, headers=headers) as resp:
        if resp.status == 429:
            await resp.read()
            return None
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {(await resp.read())[:300]!r}")
        if stream:
            async for line in resp.content:
                if line.startswith(b"data: [DONE]"):
                    break
        else:
            await resp.read()
    return time.perf_counter() - start


async def load(url: str, model: str, clients: int, requests: int, rate: float | None, headers: dict[str, str],
               seed: int) -> tuple[list[float], float, int]:
    """Latencies of the answered requests, the wall time, and how many were refused (429).

    The load generator is aiohttp, not httpx: with 200 connections open, httpx's pool spends
    milliseconds of CPU per request scanning them, and on 2 shared cores that CPU would be
    taken from the server under test."""
    import aiohttp

    latencies: list[float] = []
    refused = 0
    rng = random.Random(seed)
    plan = [(c, r, rng.choice(PROMPTS)) for c in range(clients) for r in range(requests)]

    def note(latency: float | None) -> None:
        nonlocal refused
        if latency is None:
            refused += 1
        else:
            latencies.append(latency)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http:
        # warm the connections and the server's first-call paths
        for latency in await asyncio.gather(*(one(http, url, model, "warm up", i % 2 == 1, headers)
                                              for i in range(min(clients, 20)))):
            refused += latency is None
        start = time.perf_counter()
        if rate is None:  # closed loop: each client sends its next request when the last one ended
            async def client(c: int) -> None:
                for _c, _r, prompt in (p for p in plan if p[0] == c):
                    note(await one(http, url, model, prompt, c % 2 == 1, headers))
            await asyncio.gather(*(client(c) for c in range(clients)))
        else:  # open loop at `rate` requests/s, at most `clients` in flight
            gate = asyncio.Semaphore(clients)

            async def fire(i: int, prompt: str) -> None:
                async with gate:
                    note(await one(http, url, model, prompt, i % 2 == 1, headers))
            tasks = []
            t0 = time.perf_counter()
            for i, (_c, _r, prompt) in enumerate(plan):
                tasks.append(asyncio.ensure_future(fire(i, prompt)))
                await asyncio.sleep(max(0.0, t0 + (i + 1) / rate - time.perf_counter()))
            await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
    return latencies, wall, refused


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children so far (psutil; 0 without it)."""
    try:
        import psutil
    except ImportError:
        return 0.0
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def wait_health(url: str, proc: subprocess.Popen, timeout: float = 180, *, path: str = "/health",
                what: str = "the routing server") -> None:
    """Until the local process at ``url`` answers 200 on ``path`` (never through an
    environment proxy); exits the benchmark when it dies first or does not answer in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", choices=["load", "backend"], default="load", help=argparse.SUPPRESS)
    ap.add_argument("--router", choices=["mf", "mf_minilm", "length"], default="mf")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--state", default="memory://", help="memory://, sqlite:///path or redis://host:port/db")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--requests", type=int, default=5, help="requests per client")
    ap.add_argument("--rate", type=float, default=None, help="open loop: requests/s offered (default closed loop)")
    ap.add_argument("--delay", type=float, default=0.2, help="backend latency in seconds")
    ap.add_argument("--port", type=int, default=6061)
    ap.add_argument("--budget-usd", type=float, default=None,
                    help="one shared cap for the client key; checks spend stays within one call of it")
    ap.add_argument("--transport", choices=["auto", "httpx", "aiohttp"], default="auto",
                    help="the server's HTTP layer to the backend")
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = ap.parse_args()
    if args.role == "backend":
        run_backend(args.delay)
        return 0
    if args.workers > 1 and args.state.startswith("memory"):
        ap.error("--workers > 1 needs a shared --state (sqlite:///path or redis://...): memory:// is per worker")

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    backend = subprocess.Popen([sys.executable, __file__, "--role", "backend", "--delay", str(args.delay)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    base = backend.stdout.readline().strip()  # type: ignore[union-attr]
    root = base.rsplit("/v1", 1)[0]
    server_env = {**env, "OPENAI_BASE_URL": base, "OPENAI_API_KEY": "sk-bench-provider-key",
                  "ROUTELLM_SERVER_API_KEYS": f"bench={KEY}"}
    threshold = 0.5
    config = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="server-load-", delete=False)
    json.dump({"transport": args.transport, **({"budget": {"max_usd": args.budget_usd}} if args.budget_usd else {})},
              config)
    config.close()
    server = subprocess.Popen([sys.executable, "-m", "routellm_integrations", "serve", "--config", config.name,
                               "--strong", "openai:gpt-4o",
                               "--weak", "openai:gpt-4o-mini", "--router", args.router, "--threshold", str(threshold),
                               "--port", str(args.port), "--workers", str(args.workers), "--state", args.state,
                               "--no-access-log", "--log-level", "warning"], cwd=REPO, env=server_env)
    url = f"http://127.0.0.1:{args.port}"
    try:
        wait_health(url, server)
        n = args.clients * args.requests
        cpu0 = (self_cpu(), cpu_seconds(backend.pid))
        direct, direct_wall, _ = asyncio.run(load(base + "/chat/completions", "gpt-4o-mini", args.clients, args.requests,
                                               args.rate, {"authorization": "Bearer sk-bench-provider-key"}, 1))
        cpu1 = (self_cpu(), cpu_seconds(backend.pid), cpu_seconds(server.pid))
        httpx.post(root + "/_reset", timeout=10)
        routed, routed_wall, refused = asyncio.run(load(url + "/v1/chat/completions", f"router-{args.router}-{threshold}",
                                               args.clients, args.requests, args.rate,
                                               {"authorization": f"Bearer {KEY}"}, 1))
        cpu2 = (self_cpu(), cpu_seconds(backend.pid), cpu_seconds(server.pid))
        backend_usage = httpx.get(root + "/_usage", timeout=10).json()
        usage = httpx.get(url + "/v1/routing/usage", headers={"authorization": f"Bearer {KEY}"}, timeout=30).json()
    finally:
        server.terminate()
        server.wait(timeout=60)
        backend.stdin.close()  # type: ignore[union-attr]
        backend.wait(timeout=30)
        os.unlink(config.name)
    ledger = usage["total"]
    warm = min(args.clients, 20)
    answered = n + warm - refused
    exact = (ledger["calls"] == backend_usage["calls"] == answered and
             ledger["input_tokens"] == backend_usage["input_tokens"] and
             ledger["output_tokens"] == backend_usage["output_tokens"] and ledger["estimated_calls"] == 0)
    cap = None
    if args.budget_usd:
        from routellm_integrations.costs import PriceTable, Usage
        from routellm_integrations.testing.openai_compat import count_tokens

        # the dearest call that can be admitted: the strong model, the longest prompt, max_tokens out
        dearest = PriceTable.default().cost("gpt-4o", Usage(input_tokens=max(count_tokens(p) for p in PROMPTS),
                                                            output_tokens=64), "openai") or 0.0
        spent = ledger["cost_usd"]
        cap = {"cap_usd": args.budget_usd, "spent_usd": round(spent, 6), "refused": refused,
               "over_usd": round(spent - args.budget_usd, 6), "dearest_call_usd": round(dearest, 6),
               "within_one_call": spent <= args.budget_usd + dearest}
    figures = {
        "router": args.router, "transport": args.transport, "cap": cap, "workers": args.workers, "state": args.state, "clients": args.clients,
        "requests": n, "rate": args.rate, "backend_delay_s": args.delay,
        "direct_rps": round(n / direct_wall, 1), "routed_rps": round(n / routed_wall, 1),
        "direct_p50_ms": round(pct(direct, 50) * 1000, 1), "direct_p99_ms": round(pct(direct, 99) * 1000, 1),
        "routed_p50_ms": round(pct(routed, 50) * 1000, 1), "routed_p99_ms": round(pct(routed, 99) * 1000, 1),
        "added_p50_ms": round((pct(routed, 50) - pct(direct, 50)) * 1000, 1),
        "added_p99_ms": round((pct(routed, 99) - pct(direct, 99)) * 1000, 1),
        "added_mean_ms": round((statistics.mean(routed) - statistics.mean(direct)) * 1000, 1),
        # CPU per request (ms) of each process during each run (warm-up included; needs psutil)
        "router_cpu_ms_per_request": round((cpu2[2] - cpu1[2]) * 1000 / (n + warm), 2),
        "loadgen_cpu_ms_per_request": {"direct": round((cpu1[0] - cpu0[0]) * 1000 / (n + warm), 2),
                                       "routed": round((cpu2[0] - cpu1[0]) * 1000 / (n + warm), 2)},
        "backend_cpu_ms_per_request": {"direct": round((cpu1[1] - cpu0[1]) * 1000 / (n + warm), 2),
                                       "routed": round((cpu2[1] - cpu1[1]) * 1000 / (n + warm), 2)},
        "ledger_exact": exact, "ledger_calls": ledger["calls"], "backend_calls": backend_usage["calls"],
        "strong_share": round(usage["total"]["by_route"].get("strong", {}).get("calls", 0) / max(1, ledger["calls"]),
                              3),
    }
    print(f"{n} requests from {args.clients} clients (half streaming), backend {args.delay * 1000:.0f} ms, "
          f"router {args.router}, {args.workers} worker(s), state {args.state}"
          + (f", offered {args.rate:g} req/s" if args.rate else ", closed loop"))
    print(f"  direct : {figures['direct_rps']:8.1f} req/s   p50 {figures['direct_p50_ms']:7.1f} ms   "
          f"p99 {figures['direct_p99_ms']:7.1f} ms")
    print(f"  routed : {figures['routed_rps']:8.1f} req/s   p50 {figures['routed_p50_ms']:7.1f} ms   "
          f"p99 {figures['routed_p99_ms']:7.1f} ms")
    print(f"  added  : p50 {figures['added_p50_ms']:+.1f} ms   p99 {figures['added_p99_ms']:+.1f} ms   "
          f"mean {figures['added_mean_ms']:+.1f} ms   (strong share {figures['strong_share']:.0%})")
    print(f"  cpu    : router {figures['router_cpu_ms_per_request']:.2f} ms/request; load generator "
          f"{figures['loadgen_cpu_ms_per_request']['direct']:.2f} (direct) / "
          f"{figures['loadgen_cpu_ms_per_request']['routed']:.2f} (routed); backend "
          f"{figures['backend_cpu_ms_per_request']['direct']:.2f} / {figures['backend_cpu_ms_per_request']['routed']:.2f}"
          f" ms/request ({os.cpu_count()} cores)")
    print(f"  ledger : {'exact' if exact else 'MISMATCH'} (store {ledger['calls']} calls, {ledger['input_tokens']}/"
          f"{ledger['output_tokens']} tokens; backend {backend_usage['calls']} calls, {backend_usage['input_tokens']}/"
          f"{backend_usage['output_tokens']} tokens)")
    if cap is not None:
        print(f"  cap    : {'held' if cap['within_one_call'] else 'BROKEN'}: spent ${cap['spent_usd']:.4f} of "
              f"${cap['cap_usd']:g} ({cap['over_usd']:+.4f}; the dearest call is ${cap['dearest_call_usd']:.4f}), "
              f"{refused} requests refused with 429")
    if args.json:
        print(json.dumps(figures))
    return 0 if exact and (cap is None or cap["within_one_call"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
