"""Cost of each router on this machine's CPU: load time, single-prompt p50/p99 latency,
batched throughput and resident memory, each router measured in a fresh process.

    python benchmarks/router_costs.py [--routers random length sw_ranking mf bert causal_llm] [--n 300]

Prompts are real benchmark prompts of mixed length (MT-Bench, GSM8K, MMLU). The embedding
cache is off: every call embeds (or runs SmolLM2), as a router serving new traffic does.
``causal_llm`` runs a 135M-parameter language model per prompt, so it is measured on
``--n-slow`` prompts. The paper's figures (GPU for the learned routers) are printed
alongside: sw_ranking 2.9 requests/s, mf 155, bert 69.6, causal_llm 42.5.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from routing_latency import measure, sample_prompts  # noqa: E402  (the same prompts and timing as the mf figures)

PAPER_RPS = {"sw_ranking": 2.9, "mf": 155.0, "bert": 69.6, "causal_llm": 42.5}
SLOW = {"causal_llm"}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def worker(name: str, n: int, batch_size: int) -> dict[str, float]:
    prompts = sample_prompts(n)
    base = rss_mb()
    m = measure(name, prompts, batch_size)
    return {"router": name, "n": len(prompts), **m, "rss_mb": rss_mb(), "rss_router_mb": rss_mb() - base,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routers", nargs="+", default=["random", "length", "sw_ranking", "mf", "bert", "causal_llm"])
    ap.add_argument("--n", type=int, default=300, help="prompts per router")
    ap.add_argument("--n-slow", type=int, default=40, help="prompts for causal_llm")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.batch_size)))
        return 0
    print(f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}; each router in a fresh process")
    print(f"{'router':11} {'n':>4} {'load s':>7} {'p50 ms':>8} {'p99 ms':>8} {'batched /s':>10} "
          f"{'RSS MB':>7} {'paper /s':>9}")
    for name in args.routers:
        n = args.n_slow if name in SLOW else args.n
        out = subprocess.run([sys.executable, __file__, "--worker", name, "--n", str(n),
                              "--batch-size", str(args.batch_size)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{name:11} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
            continue
        m = json.loads(out.stdout.strip().splitlines()[-1])
        paper = f"{PAPER_RPS[name]:9.1f}" if name in PAPER_RPS else f"{'-':>9}"
        print(f"{name:11} {m['n']:4d} {m['load_s']:7.2f} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f} "
              f"{m['prompts_per_s']:10.1f} {m['rss_mb']:7.0f} {paper}")
    print("RSS: resident memory of the whole process after serving (Python, numpy, the router and its model).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
