"""Throughput of ``rescore_log`` on this machine: the local engine against Ray Data actors.

Synthetic prompts of mixed length (no shared data needed) are written as a JSONL log and
re-scored end to end (read, score, write, two-pass strong_fraction=0.3), per router and
engine. Ray's cluster start is done once up front and not counted; starting the actors
and loading the router in each is counted, as a real run pays it.

    python benchmarks/rescore_throughput.py [--n 20000] [--mf-n N] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = ("route the prompt to a strong or weak model depending on how hard the question looks "
         "prove implement explain summarise translate compute design debug optimise").split()


def write_log(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            k = rng.choice([3, 8, 15, 30, 60, 120, 250])
            fh.write(json.dumps({"id": f"req-{i}", "prompt": " ".join(rng.choice(WORDS) for _ in range(k))}) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000, help="prompts in the log (default 20000)")
    ap.add_argument("--mf-n", type=int, default=None, help="prompts for the mf router (default: --n)")
    ap.add_argument("--workers", type=int, default=2, help="Ray actors (default 2)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--routers", nargs="+", default=["length", "mf"])
    ap.add_argument("--engines", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    args = ap.parse_args()

    from routellm_integrations.scale import rescore_log
    from routellm_integrations.scale.engines import ensure_ray

    if "ray" in args.engines:
        t0 = time.perf_counter()
        ensure_ray(args.workers)
        print(f"ray: local cluster of {args.workers} CPUs started in {time.perf_counter() - t0:.1f} s (not counted)")
    print(f"{'router':8} {'engine':6} {'prompts':>8} {'seconds':>8} {'prompts/s':>10}  strong share")
    with tempfile.TemporaryDirectory() as tmp:
        for router in args.routers:
            n = args.mf_n if router == "mf" and args.mf_n else args.n
            log = write_log(Path(tmp) / f"log_{n}.jsonl", n)
            for engine in args.engines:
                s = rescore_log(router, log, Path(tmp) / f"{router}_{engine}.jsonl", engine=engine,
                                strong_fraction=0.3, batch_size=args.batch_size,
                                num_workers=args.workers if engine == "ray" else None, progress=False)
                print(f"{router:8} {engine:6} {s.n_prompts:8d} {s.seconds:8.2f} {s.prompts_per_second:10.0f}  "
                      f"{s.strong_share:.3f}", flush=True)


if __name__ == "__main__":
    main()
