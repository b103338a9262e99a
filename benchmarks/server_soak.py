"""A bounded fault-injection soak of ``routellm serve``: hostile clients, a faulty backend and a
store that stalls, against 2 workers over a real ``redis-server``.

    python benchmarks/server_soak.py                  # 2,000 requests, 2 workers, Redis, a $ cap per key
    python benchmarks/server_soak.py --requests 4000 --clients 64 --json

Four processes: the local OpenAI-format backend (``OpenAICompatServer``, 50 ms per answer,
with control routes that script faults), ``redis-server``, the routing server (2 uvicorn
workers sharing budgets and the ledger through Redis) and this load generator. Each request
draws a class:

- ``ok``: a plain chat call (a third of them streamed);
- client faults, which must never be a 5xx: ``bad_type`` (``stream_options`` not an object,
  ``messages`` not a list), ``deep`` (a 1,000-deep unknown field, a 300-deep tool schema),
  ``huge`` (a 6 MB prompt), ``n`` (``n=20``), ``slash`` (a trailing slash), ``unknown_model``;
- backend faults, scripted just before the request: ``b429`` (the provider rate-limits),
  ``b500`` (the provider fails), ``cut`` (a stream cut after two events), ``slow`` (a 2 s answer);
- and once, part-way, the store stalls: ``redis-server`` is paused (SIGSTOP) for 3 s.

A poller asks ``/health`` every 50 ms throughout. Printed: requests and status codes per
class, the server 5xx answered to client faults (goal 0), ``/health`` p50/p99 (goal p99 <
100 ms), the ledger against what the backend counted (goal: a row for every call the
backend answered; a stream it cut before its first event reached the server is a
``failed`` row at $0, which the backend's own count still includes), and the spend against
the cap (goal: within one call). Exit status 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_load import pct, start_backend, wait_health  # noqa: E402  (the same harness helpers)

from routellm_integrations.testing.processes import stop_process  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
KEY = "rk-soak-client-key-0001"
PROVIDER_KEY = "sk-soak-provider-key-0001"
PROMPTS = ["Hi! How are you today?", "What is the capital of Australia?",
           "Prove that there are infinitely many primes p such that p = 3 (mod 4).",
           "Implement an LRU cache in Rust with O(1) get and put.", "Write a haiku about autumn leaves."]
CLIENT_FAULTS = ("bad_type", "deep", "huge", "n", "slash", "unknown_model")
BACKEND_FAULTS = ("b429", "b500", "cut", "slow")
WEIGHTS = {"ok": 60, **{c: 3 for c in CLIENT_FAULTS}, **{b: 5 for b in BACKEND_FAULTS}}


# -- the backend process, with fault scripting -------------------------------------------------

def run_backend(delay_s: float) -> None:
    """``--role backend``: ``server_load``'s backend (``/_usage``, no request log) plus
    ``POST /_fault`` scripting the next fault."""
    from routellm_integrations.testing.openai_compat import Reply, Response

    server = start_backend(delay_s)

    def fault(req):  # type: ignore[no-untyped-def]
        kind = json.loads(req.body or b"{}").get("kind")
        if kind in ("b429", "b500"):
            server.fail_next(429 if kind == "b429" else 500, times=1)
        elif kind == "cut":
            for model in ("gpt-4o", "gpt-4o-mini"):
                server.chat.push(Reply(cut_after=2), model=model)
        elif kind == "slow":
            for model in ("gpt-4o", "gpt-4o-mini"):
                server.chat.push(Reply(delay_s=2.0), model=model)
        return Response(200, {})

    server.routes[("POST", "/_fault")] = fault
    print(server.base_url, flush=True)
    sys.stdin.read()
    server.stop()


# -- one request of each class -----------------------------------------------------------------

def _deep(n: int) -> str:
    """JSON text nested ``n`` objects deep (written by hand: ``json.dumps`` recurses)."""
    return '{"x":' * n + "{}" + "}" * n


def _with(body: dict, **raw: str) -> bytes:
    """``body`` as JSON bytes with ``raw`` fields spliced in as JSON text."""
    text = json.dumps(body)[:-1]
    return (text + "".join(f', "{k}": {v}' for k, v in raw.items()) + "}").encode()


def request_of(kind: str, rng: random.Random, model: str) -> tuple[str, dict | bytes, bool]:
    """(path suffix, JSON body or raw bytes, streamed?) of one request of ``kind``."""
    base = {"model": model, "messages": [{"role": "user", "content": rng.choice(PROMPTS)}], "max_tokens": 64}
    stream = kind in ("ok", "cut") and (kind == "cut" or rng.random() < 1 / 3)
    if stream:
        base = {**base, "stream": True, "stream_options": {"include_usage": True}}
    if kind == "bad_type":
        return "", rng.choice([{**base, "stream": True, "stream_options": "yes"}, {**base, "messages": "hi"}]), False
    if kind == "deep":
        tool = ('[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", '
                f'"properties": {{"a": {_deep(300)}}}}}}}}}]')
        return "", rng.choice([_with(base, extra=_deep(1000)), _with(base, tools=tool)]), False
    if kind == "huge":
        return "", {**base, "messages": [{"role": "user", "content": "a" * 6_000_000}]}, False
    if kind == "n":
        return "", {**base, "n": 20}, False
    if kind == "slash":
        return "/", base, False
    if kind == "unknown_model":
        return "", {**base, "model": "router-nope-0.5"}, False
    return "", base, stream


async def one(http: httpx.AsyncClient, url: str, root: str, kind: str, rng: random.Random, model: str,
              statuses: dict[str, collections.Counter]) -> None:
    if kind in BACKEND_FAULTS:
        await http.post(root + "/_fault", json={"kind": kind})
    suffix, body, stream = request_of(kind, rng, model)
    headers = {"authorization": f"Bearer {KEY}"}
    try:
        if stream:
            async with http.stream("POST", url + suffix, json=body, headers=headers) as resp:
                async for _ in resp.aiter_lines():
                    pass
                status = resp.status_code
        elif isinstance(body, bytes):
            status = (await http.post(url + suffix, content=body,
                                      headers={**headers, "content-type": "application/json"})).status_code
        else:
            status = (await http.post(url + suffix, json=body, headers=headers)).status_code
    except httpx.HTTPError as exc:  # a dropped connection counts as its own outcome
        status = f"dropped:{type(exc).__name__}"
    statuses[kind][status] += 1


async def poll_health(http: httpx.AsyncClient, url: str, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        try:
            await http.get(url + "/health", timeout=30)
        except httpx.HTTPError:
            pass
        out.append(time.perf_counter() - start)
        await asyncio.sleep(0.05)


async def soak(url: str, root: str, model: str, n: int, clients: int, seed: int, redis_pid: int,
               stall_s: float) -> tuple[dict[str, collections.Counter], list[float]]:
    rng = random.Random(seed)
    kinds = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=n)
    statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    health: list[float] = []
    stop = asyncio.Event()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for k in kinds:
        queue.put_nowait(k)
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) as http, \
            httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as poller:
        health_task = asyncio.ensure_future(poll_health(poller, url, stop, health))

        async def worker() -> None:
            while not queue.empty():
                await one(http, url, root, queue.get_nowait(), rng, model, statuses)

        async def stall() -> None:  # the store stalls once, a third of the way in
            while queue.qsize() > n * 2 // 3:
                await asyncio.sleep(0.05)
            os.kill(redis_pid, signal.SIGSTOP)
            await asyncio.sleep(stall_s)
            os.kill(redis_pid, signal.SIGCONT)
            statuses["store_stall"]["paused_s=" + str(stall_s)] += 1

        await asyncio.gather(stall(), *(worker() for _ in range(clients)))
        stop.set()
        await health_task
    return statuses, health


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--role", choices=["load", "backend"], default="load", help=argparse.SUPPRESS)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--delay", type=float, default=0.05, help="backend latency in seconds")
    ap.add_argument("--cap-usd", type=float, default=0.5, help="the client key's budget (USD)")
    ap.add_argument("--stall", type=float, default=3.0, help="seconds redis-server is paused, once")
    ap.add_argument("--port", type=int, default=6071)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.role == "backend":
        run_backend(args.delay)
        return 0
    from routellm_integrations.testing.redis_server import RedisServer

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    backend = subprocess.Popen([sys.executable, __file__, "--role", "backend", "--delay", str(args.delay)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    base = backend.stdout.readline().strip()  # type: ignore[union-attr]
    root = base.rsplit("/v1", 1)[0]
    redis = RedisServer().start()
    config = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="server-soak-", delete=False)
    json.dump({"keys": [{"label": "soak", "key": KEY, "budget": {"max_usd": args.cap_usd}}]}, config)
    config.close()
    server_env = {**env, "OPENAI_BASE_URL": base, "OPENAI_API_KEY": PROVIDER_KEY}
    server = subprocess.Popen([sys.executable, "-m", "routellm_integrations", "serve", "--config", config.name,
                               "--strong", "openai:gpt-4o", "--weak", "openai:gpt-4o-mini", "--router", "mf",
                               "--port", str(args.port), "--workers", str(args.workers), "--state", redis.url,
                               "--no-access-log", "--log-level", "error"], cwd=REPO, env=server_env)
    url = f"http://127.0.0.1:{args.port}"
    model = "router-mf-share0.3"
    try:
        wait_health(url, server)
        start = time.perf_counter()
        statuses, health = asyncio.run(soak(url + "/v1/chat/completions", root, model, args.requests, args.clients,
                                            args.seed, redis._proc.pid, args.stall))  # type: ignore[union-attr]
        wall = time.perf_counter() - start
        time.sleep(1.0)  # calls settling after their last byte
        for _ in range(5):  # a fault scripted for the last requests may still be pending: it answers first
            backend_usage = httpx.get(root + "/_usage", timeout=10).json()
            if "calls" in backend_usage:
                break
        usage = httpx.get(url + "/v1/routing/usage", headers={"authorization": f"Bearer {KEY}"}, timeout=30).json()
    finally:
        stop_process(server, timeout=60)
        backend.stdin.close()  # type: ignore[union-attr]
        backend.wait(timeout=30)
        redis.stop()
        os.unlink(config.name)
    ledger = usage.get("total", usage)
    client_5xx = sum(n for kind in CLIENT_FAULTS for status, n in statuses[kind].items()
                     if isinstance(status, int) and status >= 500)
    any_5xx = {kind: sum(n for s, n in c.items() if isinstance(s, int) and s >= 500) for kind, c in statuses.items()}
    from routellm_integrations.costs import PriceTable, Usage

    dearest = PriceTable.default().cost("gpt-4o", Usage(input_tokens=64, output_tokens=64), "openai") or 0.0
    figures = {
        "requests": args.requests, "clients": args.clients, "workers": args.workers, "wall_s": round(wall, 1),
        "per_class": {k: {str(s): n for s, n in sorted(c.items(), key=str)} for k, c in sorted(statuses.items())},
        "client_input_5xx": client_5xx, "5xx_per_class": any_5xx,
        "health_p50_ms": round(pct(health, 50) * 1000, 1), "health_p99_ms": round(pct(health, 99) * 1000, 1),
        "health_max_ms": round(max(health) * 1000, 1), "health_polls": len(health),
        # every call the backend answered has a ledger row: billed (``calls``) or, for a stream
        # the backend cut before its first event reached the server, ``failed`` at $0
        "ledger_calls": ledger.get("calls"), "ledger_failed_calls": ledger.get("failed_calls"),
        "backend_calls": backend_usage["calls"],
        "ledger_minus_backend_calls": (ledger.get("calls") or 0) + (ledger.get("failed_calls") or 0)
        - backend_usage["calls"],
        "ledger_input_tokens": ledger.get("input_tokens"), "backend_input_tokens": backend_usage["input_tokens"],
        "spent_usd": ledger.get("cost_usd"), "cap_usd": args.cap_usd,
        "cap_held_within_one_call": (ledger.get("cost_usd") or 0.0) <= args.cap_usd + dearest,
    }
    print(f"{args.requests} requests, {args.clients} clients, {args.workers} workers over Redis, {wall:.1f} s")
    for kind, counts in figures["per_class"].items():
        print(f"  {kind:14s} {counts}")
    print(f"client input answered with a 5xx: {client_5xx} (goal 0)")
    print(f"/health p50 {figures['health_p50_ms']} ms, p99 {figures['health_p99_ms']} ms, max "
          f"{figures['health_max_ms']} ms over {len(health)} polls (goal p99 < 100 ms)")
    print(f"ledger {figures['ledger_calls']} billed + {figures['ledger_failed_calls']} failed calls vs backend "
          f"{figures['backend_calls']} (difference {figures['ledger_minus_backend_calls']}; goal 0)")
    print(f"spent ${figures['spent_usd']} of a ${args.cap_usd} cap (held within one call: "
          f"{figures['cap_held_within_one_call']})")
    if args.json:
        print(json.dumps(figures))
    ok = (client_5xx == 0 and figures["health_p99_ms"] < 100 and figures["ledger_minus_backend_calls"] == 0
          and figures["cap_held_within_one_call"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
