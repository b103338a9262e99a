"""Does a router send the prompts a new user tries to the right model?

``benchmarks/probe_prompts.jsonl`` holds 105 hand-written prompts (not benchmark prompts),
each labelled ``strong`` (proofs, system design, hard code, multi-step maths, deep
analysis) or ``weak`` (greetings, chit-chat, one-line facts, simple translations,
trivial arithmetic, simple rewrites). 46 are length-adversarial: short hard prompts
("Prove Fermat's little theorem.") and long easy ones (a rambling friendly message, a
note to translate), so prompt length alone cannot rank them. It is a test set: it was
written before any tuning, and settings are chosen on validation splits of the training
pool, never on it.

For ``length``, the shipped ``mf`` and every router folder (or shipped name) given, this
prints the ranking AUC of strong over weak (overall and on the adversarial subset), the
mean score per category, and the router's MT-Bench APGR (the project's evaluation code;
the data folder from ``--data-dir`` or ``$ROUTELLM_DATA_DIR``; ``--no-mt-bench`` skips it).

    python benchmarks/probe_auc.py [ROUTER_OR_FOLDER ...] [--data-dir DIR] [--probe FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROBE = Path(__file__).with_name("probe_prompts.jsonl")


def read_probe(path: str | Path = PROBE) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def ranking_auc(scores: np.ndarray, strong: np.ndarray) -> float:
    """P(score of a random strong prompt > score of a random weak one), ties count half."""
    s, w = scores[strong], scores[~strong]
    if s.size == 0 or w.size == 0:
        return float("nan")
    diff = s[:, None] - w[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def probe_report(scores: np.ndarray, rows: list[dict]) -> dict:
    scores = np.asarray(scores, dtype=np.float64)
    strong = np.array([r["label"] == "strong" for r in rows])
    adv = np.array([bool(r["adversarial"]) for r in rows])
    cats: dict[str, list[float]] = {}
    for r, s in zip(rows, scores):
        cats.setdefault(f"{r['label']}/{r['category']}", []).append(float(s))
    return {"auc": ranking_auc(scores, strong), "auc_adversarial": ranking_auc(scores[adv], strong[adv]),
            "categories": {k: float(np.mean(v)) for k, v in sorted(cats.items())}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("routers", nargs="*", help="shipped router names or checkpoint folders (default: mf)")
    ap.add_argument("--data-dir", default=None, help="router data folder (default: $ROUTELLM_DATA_DIR)")
    ap.add_argument("--probe", default=str(PROBE), help="probe prompts (JSONL: prompt, label, category, adversarial)")
    ap.add_argument("--no-mt-bench", action="store_true", help="skip the MT-Bench APGR column")
    ap.add_argument("--json", action="store_true", help="print one JSON object per router instead of a table")
    args = ap.parse_args(argv)

    from routellm_integrations import load_router
    from routellm_integrations.evaluation.benchmarks import load_benchmark
    from routellm_integrations.evaluation.run import evaluate_router
    from routellm_integrations.routers.length import LengthRouter

    rows = read_probe(args.probe)
    prompts = [r["prompt"] for r in rows]
    names = ["length", *(args.routers or ["mf"])]
    bench = None if args.no_mt_bench else load_benchmark("mt-bench", args.data_dir)
    results = {}
    for name in names:
        router = LengthRouter() if name == "length" else load_router(name)
        rep = probe_report(router.score(prompts), rows)
        if bench is not None:
            rep["mt_bench_apgr"] = evaluate_router(router, bench, name=name).apgr
        results[name] = rep
    if args.json:
        for name, rep in results.items():
            print(json.dumps({"router": name, **rep}))
        return 0
    n_adv = sum(bool(r["adversarial"]) for r in rows)
    print(f"probe: {len(rows)} prompts ({sum(r['label'] == 'strong' for r in rows)} strong), {n_adv} adversarial")
    print(f"{'router':28} {'AUC':>6} {'AUC adv':>8} {'MT-Bench':>9}")
    for name, rep in results.items():
        mt = f"{rep['mt_bench_apgr']:.3f}" if "mt_bench_apgr" in rep else "-"
        print(f"{name[-28:]:28} {rep['auc']:6.3f} {rep['auc_adversarial']:8.3f} {mt:>9}")
    print("\nmean score per category")
    cats = list(next(iter(results.values()))["categories"])
    print(f"{'category':24}" + "".join(f" {n[-12:]:>12}" for n in results))
    for c in cats:
        print(f"{c:24}" + "".join(f" {results[n]['categories'][c]:12.3f}" for n in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
