"""Embedder speed on real prompts: load time, single-prompt latency, batched throughput.

Why: routing must add < 15 ms p50 per prompt and sustain > 200 prompts/s batched on
a 2-core machine, and the embedder is where that time goes. Prompts are a fixed-seed mix
of MT-Bench, GSM8K and MMLU (plus a few long GSM8K answers) so lengths are realistic.

    python benchmarks/embedder_speed.py [--n 500] [--embedders minilm,minilm-onnx-int8,...]
    python benchmarks/embedder_speed.py --fidelity    # cosine of each ONNX variant vs torch
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
csv.field_size_limit(sys.maxsize)

from routellm_integrations.embedders import get_embedder  # noqa: E402
from routellm_integrations.paths import default_data_dir  # noqa: E402


def sample_prompts(n: int = 500, seed: int = 0, data_dir: Path | None = None) -> list[str]:
    """A reproducible mix: all MT-Bench first turns, then GSM8K and MMLU evenly, and
    ~4% long texts (GPT-4's GSM8K answers) to exercise truncation and padding."""
    root = (data_dir or default_data_dir()) / "benchmarks" / "routellm"
    rng = random.Random(seed)
    mt = [json.loads(line)["turns"][0] for line in (root / "mt_bench" / "question.jsonl").open()]
    with (root / "gsm8k" / "gsm8k_responses.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    gsm = [r["prompt"] for r in rows]
    long = [r["prompt"] + "\n\n" + r["gpt-4-1106-preview_response"] for r in rows]
    mmlu: list[str] = []
    for path in sorted((root / "mmlu" / "responses").glob("*.csv")):
        with path.open(newline="") as f:
            mmlu.extend(r["prompt"] for r in csv.DictReader(f))
    n_long = max(1, n // 25)
    n_mt = min(len(mt), n // 6)
    rest = n - n_long - n_mt
    out = rng.sample(mt, n_mt) + rng.sample(gsm, rest // 2) + rng.sample(mmlu, rest - rest // 2)
    out += rng.sample(long, n_long)
    rng.shuffle(out)
    return out


def bench(name: str, prompts: list[str], singles: int = 200) -> dict[str, float]:
    t0 = time.perf_counter()
    emb = get_embedder(name)
    emb.embed(["warm up"])  # load + first run (export happens here if not cached)
    load_s = time.perf_counter() - t0
    emb.embed(prompts[:16])
    lat = []
    for p in prompts[:singles]:
        t = time.perf_counter()
        emb.embed([p])
        lat.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    emb.embed(prompts)
    tput = len(prompts) / (time.perf_counter() - t)
    return {"load_s": load_s, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "batch_per_s": tput}


def fidelity(prompts: list[str]) -> None:
    ref = get_embedder("minilm-torch").embed(prompts)
    for name in ("minilm-onnx", "minilm-onnx-int8"):
        vec = get_embedder(name).embed(prompts)
        cos = np.sum(ref * vec, axis=1)
        print(f"{name:18s} vs torch: mean cos {cos.mean():.7f}  min {cos.min():.7f}  "
              f"p01 {np.percentile(cos, 1):.6f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--embedders", default="minilm-torch,minilm,minilm-onnx-int8,wordllama")
    ap.add_argument("--fidelity", action="store_true")
    ap.add_argument("--in-process", action="store_true",
                    help="run all embedders in this process (torch's idle OpenMP threads then "
                         "slow onnxruntime down; the default isolates each in a subprocess)")
    args = ap.parse_args(argv)
    prompts = sample_prompts(args.n)
    words = np.array([len(p.split()) for p in prompts])
    print(f"{len(prompts)} prompts; words p50 {np.median(words):.0f}, p90 "
          f"{np.percentile(words, 90):.0f}, max {words.max()}; cpus {os.cpu_count()}")
    if args.fidelity:
        fidelity(prompts)
        return
    print(f"{'embedder':20s} {'load s':>7s} {'p50 ms':>7s} {'p99 ms':>7s} {'batch/s':>8s}")
    names = [n.strip() for n in args.embedders.split(",") if n.strip()]
    if len(names) > 1 and not args.in_process:
        import subprocess
        for name in names:
            out = subprocess.run([sys.executable, __file__, "--n", str(args.n), "--embedders", name],
                                 capture_output=True, text=True)
            rows = [line for line in out.stdout.splitlines() if line.startswith(name + " ")]
            print(rows[-1] if rows else f"{name:20s} failed: {out.stderr.strip().splitlines()[-1:]}",
                  flush=True)
        return
    for name in names:
        r = bench(name, prompts)
        print(f"{name:20s} {r['load_s']:7.2f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {r['batch_per_s']:8.1f}",
              flush=True)


if __name__ == "__main__":
    main()
