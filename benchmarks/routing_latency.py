"""Routing latency and throughput of the shipped routers on this machine's CPU.

Prints, per router: load time, single-prompt p50/p99 latency (route() on one prompt at
a time, embedding cache off, so every call embeds), and batched throughput. Prompts are
real benchmark prompts of mixed length (MT-Bench, GSM8K, MMLU) from the shared data.

    python benchmarks/routing_latency.py [--routers mf length random] [--n 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def sample_prompts(n: int, seed: int = 0) -> list[str]:
    from routellm_integrations.evaluation.benchmarks import load_benchmark

    rng = np.random.default_rng(seed)
    pool: list[str] = []
    for name, share in (("mt-bench", 0.2), ("gsm8k", 0.4), ("mmlu", 0.4)):
        prompts = load_benchmark(name).prompts
        k = min(len(prompts), max(1, int(n * share)))
        pool += [prompts[i] for i in rng.choice(len(prompts), size=k, replace=False)]
    rng.shuffle(pool)
    return pool[:n]


def measure(name: str, prompts: list[str], batch_size: int) -> dict[str, float]:
    from routellm_integrations import load_router

    t0 = time.perf_counter()
    router = load_router(name)
    router.route("warm-up prompt", 0.5)  # first call loads lazily-built parts (e.g. the ONNX session)
    load_s = time.perf_counter() - t0
    lat = []
    for p in prompts:
        t = time.perf_counter()
        router.route(p, 0.5)
        lat.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    for s in range(0, len(prompts), batch_size):
        router.score(prompts[s:s + batch_size])
    batched = len(prompts) / (time.perf_counter() - t)
    return {"load_s": load_s, "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "prompts_per_s": batched}


def import_time_ms(module: str, repeats: int = 5) -> float:
    """Median wall time of ``import module`` in a fresh interpreter."""
    import subprocess

    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(repeats)]
    return float(np.median(runs) * 1000)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routers", nargs="+", default=["mf", "length", "random"])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args(argv)
    print(f"import routellm_integrations: {import_time_ms('routellm_integrations'):.0f} ms (median of 5)")
    prompts = sample_prompts(args.n)
    lens = np.array([len(p) for p in prompts])
    print(f"{len(prompts)} prompts, length chars p50 {np.median(lens):.0f} / max {lens.max()}, "
          f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    print(f"{'router':8} {'load s':>7} {'p50 ms':>7} {'p99 ms':>7} {'batched prompts/s':>18}")
    for name in args.routers:
        m = measure(name, prompts, args.batch_size)
        print(f"{name:8} {m['load_s']:7.2f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f} {m['prompts_per_s']:18.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
