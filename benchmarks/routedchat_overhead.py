"""What RoutedChat adds per call over calling the backend directly, when the backend takes
200 ms (so every routing decision comes after an idle wait, as in production).

    python benchmarks/routedchat_overhead.py                       # random, mf, mf_minilm; 200 calls each
    python benchmarks/routedchat_overhead.py --routers mf --calls 600 --delay 0.2

The backend is the local OpenAI-format server in its own process, answering every chat
call after ``--delay`` seconds. Each router is measured in a fresh process, which for each
prompt calls, in an order rotated per prompt: the plain ``openai`` SDK, ``ChatOpenAI``, and
``RoutedChat`` over two ``ChatOpenAI`` backends. Printed per router: median latency of each,
the medians of the per-prompt differences (RoutedChat - ChatOpenAI, ChatOpenAI - SDK), the
decision's own p50/p99 (``latency_ms`` in the routing metadata), the import time of
``langchain_routellm``, import + first routed call (the backend's delay subtracted), and
the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPTS = [
    "Hi! How are you today?", "What is the capital of Australia?", "Write a haiku about autumn leaves.",
    "Prove that there are infinitely many primes p such that p = 3 (mod 4).",
    "Implement an LRU cache in Rust with O(1) get and put, and explain the ownership issues.",
    "Summarise the causes of the French Revolution in two sentences.",
    "Solve for x: 3x^2 - 12x + 9 = 0, and explain each step.", "Translate 'good morning' into French.",
]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))]


def child(router: str, base_url: str, calls: int, delay_s: float) -> None:
    """``--role child``: one router, measured from a cold start; prints one JSON line."""
    import resource

    t0 = time.perf_counter()
    import langchain_routellm  # noqa: F401  (the import users pay)

    t_import = time.perf_counter() - t0
    from langchain_openai import ChatOpenAI
    from openai import OpenAI

    from langchain_routellm import RoutedChat

    def chat(model: str) -> ChatOpenAI:
        return ChatOpenAI(model=model, base_url=base_url, api_key="sk-bench", max_retries=0)

    strong, weak = chat("gpt-4o"), chat("gpt-4o-mini")
    llm = RoutedChat(strong=strong, weak=weak, router=router, threshold=0.5)
    t1 = time.perf_counter()
    llm.invoke("What is the capital of Australia?")
    first_call = time.perf_counter() - t1
    startup = t_import + first_call - delay_s
    sdk = OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    direct = {"gpt-4o": strong, "gpt-4o-mini": weak}
    for p in PROMPTS:  # keep-alive connections and first-call paths of all three
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": p}])
        weak.invoke(p)
        llm.invoke(p)
    rows: list[dict[str, float]] = []
    for i in range(calls):
        p = PROMPTS[i % len(PROMPTS)] + f" (#{i})"
        model = "gpt-4o-mini"
        times: dict[str, float] = {}
        order = ["sdk", "chat", "routed"]
        order = order[i % 3:] + order[:i % 3]
        decision_ms = float("nan")
        for what in order:
            start = time.perf_counter()
            if what == "sdk":
                sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": p}])
            elif what == "chat":
                direct[model].invoke(p)
            else:
                msg = llm.invoke(p)
                decision_ms = float(msg.response_metadata["routellm"]["latency_ms"])
            times[what] = (time.perf_counter() - start) * 1000
        rows.append({**times, "decision": decision_ms})
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"router": router, "rows": rows, "import_s": t_import, "startup_s": startup,
                      "rss_mb": rss_mb}), flush=True)


def backend(delay_s: float) -> None:
    """``--role backend``: the OpenAI-format server until stdin closes (URL on stdout)."""
    from routellm_integrations.testing.openai_compat import OpenAICompatServer

    server = OpenAICompatServer().start()
    server.chat.delay_s = delay_s
    server._httpd.handle_error = lambda *a: None  # type: ignore[union-attr]  # clients closing at exit
    original = server._dispatch

    def dispatch(req):  # type: ignore[no-untyped-def]  - keep no request log in a long run
        resp = original(req)
        with server._lock:
            server.requests.clear()
        return resp

    server._dispatch = dispatch  # type: ignore[method-assign]
    print(server.base_url, flush=True)
    sys.stdin.read()
    server.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", choices=["main", "child", "backend"], default="main", help=argparse.SUPPRESS)
    ap.add_argument("--routers", nargs="+", default=["random", "mf", "mf_minilm"])
    ap.add_argument("--calls", type=int, default=200, help="prompts per router (each sent three ways)")
    ap.add_argument("--delay", type=float, default=0.2, help="backend latency in seconds")
    ap.add_argument("--router", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--base-url", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help="also print each router's figures as JSON")
    args = ap.parse_args()
    if args.role == "backend":
        backend(args.delay)
        return 0
    if args.role == "child":
        child(args.router, args.base_url, args.calls, args.delay)
        return 0

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    server = subprocess.Popen([sys.executable, __file__, "--role", "backend", "--delay", str(args.delay)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    base_url = server.stdout.readline().strip()  # type: ignore[union-attr]
    print(f"{args.calls} prompts per router, each sent through the openai SDK, ChatOpenAI and RoutedChat "
          f"(order rotated); backend {args.delay * 1000:.0f} ms, in its own process; {os.cpu_count()} cores")
    print(f"{'router':10} {'sdk':>8} {'ChatOpenAI':>10} {'Routed':>8} {'+ms vs Chat':>11} {'Chat-sdk':>9} "
          f"{'decision p50/p99':>17} {'import':>7} {'+1st call':>9} {'RSS':>7}")
    try:
        for router in args.routers:
            out = subprocess.run([sys.executable, __file__, "--role", "child", "--router", router, "--base-url",
                                  base_url, "--calls", str(args.calls), "--delay", str(args.delay)],
                                 cwd=REPO, env=env, capture_output=True, text=True)
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            if out.returncode != 0 or not lines:
                print(f"{router:10} failed: {out.stderr.strip()[-500:]}")
                continue
            r = json.loads(lines[-1])
            rows = r["rows"]
            med = {k: statistics.median(row[k] for row in rows) for k in ("sdk", "chat", "routed")}
            added = statistics.median(row["routed"] - row["chat"] for row in rows)
            chat_over_sdk = statistics.median(row["chat"] - row["sdk"] for row in rows)
            decisions = [row["decision"] for row in rows]
            fig = {"router": router, "calls": len(rows), "sdk_ms": med["sdk"], "chat_openai_ms": med["chat"],
                   "routed_ms": med["routed"], "added_vs_chat_openai_ms": added, "chat_openai_vs_sdk_ms": chat_over_sdk,
                   "decision_p50_ms": pct(decisions, 50), "decision_p99_ms": pct(decisions, 99),
                   "import_s": r["import_s"], "import_and_first_call_s": r["startup_s"], "rss_mb": r["rss_mb"]}
            print(f"{router:10} {med['sdk']:8.1f} {med['chat']:10.1f} {med['routed']:8.1f} {added:+11.2f} "
                  f"{chat_over_sdk:+9.2f} {fig['decision_p50_ms']:8.2f}/{fig['decision_p99_ms']:<8.2f} "
                  f"{r['import_s']:6.2f}s {r['startup_s']:8.2f}s {r['rss_mb']:5.0f}MB")
            if args.json:
                print(json.dumps(fig))
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
