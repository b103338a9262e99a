"""What the LiteLLM routing plug-in adds per request, in one run over one local backend.

    python benchmarks/litellm_plugin.py                    # mf, 200 requests per arm, 50 ms backend
    python benchmarks/litellm_plugin.py --router length --requests 500 --delay 0.02
    python benchmarks/litellm_plugin.py --pending-memory 40000   # memory of never-collected decisions

The backend is the local OpenAI-format server (``OpenAICompatServer``, answering after
``--delay`` seconds) in its own process. Requests go one at a time, the arms interleaved
request by request (so drift on a shared machine hits every arm alike), same prompts:

(a) in process, a LiteLLM ``Router``: a plain model group (``simple-shuffle``, one
    deployment) against the plug-in's alias over the same groups: the plug-in's cost,
    split by a third arm, the same complexity-router marker with a classifier that answers
    at once, into LiteLLM's strategy and ours (scoring, the metadata hooks);
(b) over HTTP: the ``litellm`` proxy with the plug-in (its alias) against our own
    routing server (``routellm serve``, same router and threshold) and against the plain
    group on the same proxy, each also against calling the backend directly.

Printed: p50 / p99 / mean latency of each arm and the added p50 / p99 / mean of each
comparison. ``--pending-memory N`` instead classifies N requests that never reach a call
(half of them identical, as LiteLLM dropping them after classifying would leave them) and
prints the memory traced after 1/4, 1/2 and all of them: it should level off once the
plug-in's store of waiting decisions (and the policy's memory of turns) is full. The strong model group and the weak one are the same backend, so the route
taken does not change the backend's time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_load import (  # the shared prompts, backend and percentiles
    PROMPTS,
    pct,
    wait_health,
)

from routellm_integrations.testing.processes import stop_process  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROXY_KEY = "sk-bench-litellm-master-0123456789"
SERVER_KEY = "rk-bench-client-key-0001"
ALIAS = "routellm-router"

PLUGIN = """
from pathlib import Path
from routellm_integrations.litellm import RouteLLMPlugin
routing = RouteLLMPlugin.from_proxy_config(Path(__file__).with_name("config.yaml"), router={router!r}, threshold=0.5)
"""

CONFIG = """
model_list:
  - model_name: big
    litellm_params: {{model: openai/gpt-4o, api_base: "{base}", api_key: sk-bench-provider-key}}
  - model_name: small
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: sk-bench-provider-key}}
{marker}router_settings:
  routing_strategy: simple-shuffle
general_settings:
  master_key: {key}
"""


def summary(latencies: list[float]) -> dict[str, float]:
    return {"p50": pct(latencies, 50) * 1000, "p99": pct(latencies, 99) * 1000,
            "mean": statistics.mean(latencies) * 1000}


def added(arm: list[float], base: list[float]) -> dict[str, float]:
    a, b = summary(arm), summary(base)
    return {k: a[k] - b[k] for k in a}


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{PROMPTS[i % len(PROMPTS)]} (#{i})"}]


class _Constant:
    """A classifier plug-in that always answers ``weak``, without scoring."""

    async def classify(self, context: Any) -> str:
        return "weak"


async def in_process(base: str, router_name: str, n: int) -> dict[str, list[float]]:
    """(a): the same litellm Router process, a plain group against the plug-in's alias."""
    import litellm

    from routellm_integrations.litellm import RouteLLMPlugin, proxy_deployment

    model_list = [{"model_name": name, "litellm_params": {"model": f"openai/{model}", "api_base": base,
                                                          "api_key": "sk-bench-provider-key"}}
                  for name, model in (("big", "gpt-4o"), ("small", "gpt-4o-mini"))]
    plugin = RouteLLMPlugin(model_list=model_list, strong="big", weak="small", router=router_name, threshold=0.5)
    # LiteLLM's own part of the cost: the same complexity-router marker, whose classifier
    # answers at once without scoring
    constant = proxy_deployment(strong="big", weak="small", model_name="constant-router",
                                classifier_plugin=_Constant())
    router = litellm.Router(model_list=[*model_list, plugin.deployment(), constant], routing_strategy="simple-shuffle")
    arms: dict[str, list[float]] = {"plain": [], "constant": [], "plugin": []}
    for i in range(-10, n):  # 10 warm-up rounds, not timed
        for arm, model in (("plain", "small"), ("constant", "constant-router"), ("plugin", ALIAS)):
            start = time.perf_counter()
            await router.acompletion(model=model, messages=messages(i), max_tokens=64)
            if i >= 0:
                arms[arm].append(time.perf_counter() - start)
    return arms


async def over_http(base: str, proxy: str, server: str, server_model: str, n: int) -> dict[str, list[float]]:
    """(b): one HTTP client, the backend directly, the proxy's plain group, the proxy's
    alias (the plug-in) and our routing server."""
    targets = {
        "direct": (base + "/chat/completions", "gpt-4o-mini", "sk-bench-provider-key"),
        "proxy_plain": (proxy + "/v1/chat/completions", "small", PROXY_KEY),
        "proxy_plugin": (proxy + "/v1/chat/completions", ALIAS, PROXY_KEY),
        "our_server": (server + "/v1/chat/completions", server_model, SERVER_KEY),
    }
    arms: dict[str, list[float]] = {k: [] for k in targets}
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        for i in range(-10, n):
            for arm, (url, model, key) in targets.items():
                start = time.perf_counter()
                resp = await http.post(url, json={"model": model, "messages": messages(i), "max_tokens": 64},
                                       headers={"authorization": f"Bearer {key}"})
                if resp.status_code != 200:
                    raise SystemExit(f"{arm}: HTTP {resp.status_code}: {resp.text[:300]}")
                if i >= 0:
                    arms[arm].append(time.perf_counter() - start)
    return arms


async def pending_memory(n: int, router_name: str) -> None:
    """Memory held by ``n`` classified requests whose calls never come (no backend needed)."""
    import tracemalloc

    from litellm.types.router import RoutingContext

    from routellm_integrations.litellm import RouteLLMPlugin

    model_list = [{"model_name": name, "litellm_params": {"model": f"openai/{model}", "api_base": "http://127.0.0.1:9"}}
                  for name, model in (("big", "gpt-4o"), ("small", "gpt-4o-mini"))]
    plugin = RouteLLMPlugin(model_list=model_list, strong="big", weak="small", router=router_name,
                            strong_fraction=0.3)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(1, n + 1):
        text = "the same question" if i % 2 else f"question {i} " + "q" * 200
        msgs = [{"role": "user", "content": text}]
        await plugin.classify(RoutingContext(raw_messages=msgs, structured_messages=msgs, candidate_models=[]))
        if i in (n // 4, n // 2, n):
            print(f"  after {i:>7} never-collected requests: {(tracemalloc.get_traced_memory()[0] - base) / 2**20:6.1f}"
                  f" MiB traced; {len(plugin._pending)} decisions waiting under {plugin._pending.keys()} messages")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--router", choices=["mf", "length"], default="mf")
    ap.add_argument("--requests", type=int, default=200, help="timed requests per arm")
    ap.add_argument("--delay", type=float, default=0.05, help="backend latency in seconds")
    ap.add_argument("--proxy-port", type=int, default=6071)
    ap.add_argument("--server-port", type=int, default=6072)
    ap.add_argument("--pending-memory", type=int, metavar="N", help="only measure the memory of N classified "
                    "requests that never reach their call")
    args = ap.parse_args()
    if args.pending_memory:
        os.environ.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"})
        print(f"router {args.router}, strong_fraction 0.3, half the requests identical")
        asyncio.run(pending_memory(args.pending_memory, args.router))
        return 0

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "NO_PROXY": "127.0.0.1,localhost"}
    os.environ.update({k: env[k] for k in ("LITELLM_LOCAL_MODEL_COST_MAP", "LITELLM_TELEMETRY", "NO_PROXY")})
    backend = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "server_load.py"), "--role", "backend",
                                "--delay", str(args.delay)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, cwd=REPO, env=env)
    base = backend.stdout.readline().strip()  # type: ignore[union-attr]
    folder = Path(tempfile.mkdtemp(prefix="litellm-plugin-bench-"))
    from routellm_integrations.litellm import proxy_deployment_yaml

    marker = proxy_deployment_yaml(strong="big", weak="small", model_name=ALIAS)
    (folder / "config.yaml").write_text(textwrap.dedent(CONFIG).format(base=base, key=PROXY_KEY, marker=marker))
    (folder / "routellm_plugin.py").write_text(PLUGIN.format(router=args.router))
    procs: list[subprocess.Popen[Any]] = []
    try:
        arms_a = asyncio.run(in_process(base, args.router, args.requests))
        exe = str(Path(sys.executable).parent / "litellm")
        log = open(folder / "proxy.log", "wb")  # noqa: SIM115 - the proxy writes to it until it ends
        procs.append(subprocess.Popen([exe, "--config", str(folder / "config.yaml"), "--host", "127.0.0.1",
                                       "--port", str(args.proxy_port)], cwd=folder, env=env, stdout=log,
                                      stderr=subprocess.STDOUT))
        server_env = {**env, "OPENAI_BASE_URL": base, "OPENAI_API_KEY": "sk-bench-provider-key",
                      "ROUTELLM_SERVER_API_KEYS": f"bench={SERVER_KEY}"}
        procs.append(subprocess.Popen([sys.executable, "-m", "routellm_integrations", "serve",
                                       "--strong", "openai:gpt-4o", "--weak", "openai:gpt-4o-mini",
                                       "--router", args.router, "--threshold", "0.5", "--port", str(args.server_port),
                                       "--no-access-log", "--log-level", "warning"], cwd=REPO, env=server_env))
        proxy, server = f"http://127.0.0.1:{args.proxy_port}", f"http://127.0.0.1:{args.server_port}"
        wait_health(proxy, procs[0], 240, path="/health/liveliness", what="the litellm proxy")
        wait_health(server, procs[1])
        arms_b = asyncio.run(over_http(base, proxy, server, f"router-{args.router}-0.5", args.requests))
    finally:
        for proc in procs:
            stop_process(proc, timeout=30)
        backend.stdin.close()  # type: ignore[union-attr]
        backend.wait(timeout=30)

    def line(name: str, s: dict[str, float], sign: str = "+") -> str:
        return (f"  {name:<38} p50 {s['p50']:{sign}8.2f} ms   p99 {s['p99']:{sign}8.2f} ms   "
                f"mean {s['mean']:{sign}8.2f} ms")

    print(f"{args.requests} requests per arm, one at a time, arms interleaved; router {args.router} "
          f"(threshold 0.5); backend {args.delay * 1000:.0f} ms; {os.cpu_count()} cores")
    print("(a) in process, litellm.Router")
    for arm, values in arms_a.items():
        print(line(f"{arm} latency", summary(values), sign=""))
    print(line("added by the plug-in", added(arms_a["plugin"], arms_a["plain"])))
    print(line("  of which LiteLLM's complexity router", added(arms_a["constant"], arms_a["plain"])))
    print(line("  of which ours (scoring, hooks)", added(arms_a["plugin"], arms_a["constant"])))
    print("(b) over HTTP")
    for arm, values in arms_b.items():
        print(line(f"{arm} latency", summary(values), sign=""))
    print(line("proxy+plug-in over proxy plain group", added(arms_b["proxy_plugin"], arms_b["proxy_plain"])))
    print(line("proxy+plug-in over our server", added(arms_b["proxy_plugin"], arms_b["our_server"])))
    print(line("our server over direct", added(arms_b["our_server"], arms_b["direct"])))
    print(line("proxy+plug-in over direct", added(arms_b["proxy_plugin"], arms_b["direct"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
