"""Learning curves of ``adapt_router``: APGR after N in-domain labels, on a held-out half.

For each set, a seeded 50/50 split: N labels are drawn from one half (the benchmark's
recorded outcomes, the paper's golden-label augmentation), the router is adapted on them
with the real ``adapt_router`` (guard included), and scored on the *other* half, never
trained on. Against it on the same half: the generic router (``mf_minilm`` as shipped) and
prompt length. Each N is repeated over several draws; the interval is a 95% bootstrap
over held-out prompts of the mean over draws. MT-Bench has 72 prompts, so it is scored by
8-fold cross-validation instead (N = 63 labels per fold), over 5 shuffles.

Also: what the judge-labelling path (``routellm label``) would spend per 100 labels for
the default pair at list price (two answers and two judge calls per label).

    python benchmarks/adaptation_curve.py                 # all sets (~10 min on 2 cores)
    python benchmarks/adaptation_curve.py --sets gsm8k --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from routellm_integrations.adaptation import adapt_router  # noqa: E402
from routellm_integrations.embedders import CachedEmbedder, get_embedder  # noqa: E402
from routellm_integrations.evaluation.benchmarks import Benchmark, load_benchmark  # noqa: E402
from routellm_integrations.evaluation.metrics import evaluate_scores  # noqa: E402
from routellm_integrations.labels import LabelSet  # noqa: E402
from routellm_integrations.paths import embedding_cache_path  # noqa: E402
from routellm_integrations.routers import load_router  # noqa: E402

NS = (50, 100, 200, 500, 1000)
POOL_SETS = {  # per-task sets of the training pool, with the pair each one records
    "routerbench/arc_challenge": ("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"),
    "routerbench/winogrande": ("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"),
    "routerbench/mbpp": ("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"),
    "zeroeval/math_l5": ("gpt-4-turbo-2024-04-09", "llama-3-8b-instruct"),  # ZeroEval has no Mixtral
    "zeroeval/crux": ("gpt-4-turbo-2024-04-09", "llama-3-8b-instruct"),
}


def pool_set(name: str) -> Benchmark:
    from routellm_integrations.data.sources import load_outcomes

    strong, weak = POOL_SETS[name]
    t = load_outcomes(sources=[name.split("/")[0]])
    src = t.sources.index(name)
    rows = t.source_idx == src
    by_model: dict[str, dict[int, float]] = {strong: {}, weak: {}}
    for p, m, c in zip(t.prompt_idx[rows], t.model_idx[rows], t.correct[rows]):
        model = t.models[int(m)]
        if model in by_model:
            by_model[model][int(p)] = float(c)
    both = sorted(set(by_model[strong]) & set(by_model[weak]))
    return Benchmark(name, tuple(t.prompts[i] for i in both), np.array([by_model[strong][i] for i in both]) * 100,
                     np.array([by_model[weak][i] for i in both]) * 100, strong, weak, "accuracy")


def base_scores(base, prompts: list[str], emb: np.ndarray) -> np.ndarray:
    if hasattr(base, "scores_from_embeddings"):
        return np.asarray(base.scores_from_embeddings(prompts, emb))
    return np.asarray(base.score(prompts))


def apgr(scores: np.ndarray, b: Benchmark) -> float:
    return 0.5 if np.ptp(scores) == 0 else evaluate_scores(scores, b, "x").apgr


def boot_mean(score_sets: list[np.ndarray], test: Benchmark, n_boot: int, seed: int) -> tuple[float, float]:
    """95% interval of the mean APGR over draws, resampling held-out prompts."""
    rng = np.random.default_rng(seed)
    n = len(test)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        sub = test.subset(idx)
        if sub.strong_quality == sub.weak_quality:
            continue
        vals.append(np.mean([apgr(s[idx], sub) for s in score_sets]))
    return float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))


def run_set(bench: Benchmark, ns: tuple[int, ...], repeats: int, splits: int, embedder: CachedEmbedder,
            base, n_boot: int) -> list[dict]:
    prompts = list(bench.prompts)
    emb = np.asarray(embedder.embed(prompts), dtype=np.float32)
    generic_all = base_scores(base, prompts, emb)
    length_all = np.array([len(p) for p in prompts], dtype=np.float64)
    rows = []
    half = len(bench) // 2
    # the pool's sets are large; the scored half needs no more than a few thousand prompts
    points = [n for n in ns if n <= half]
    if half < max(ns):  # the largest draw the half allows (650 for GSM8K's 653, the paper's scale)
        points.append(650 if 650 <= half else half)
    for n_labels in points:
        per_split = []
        for split in range(splits):
            perm = np.random.default_rng(split).permutation(len(bench))
            train, test_idx = perm[:half], perm[half:half + min(half, 5000)]
            test = bench.subset(test_idx)
            guarded, adapted, served = [], [], []
            t0 = time.perf_counter()
            for r in range(repeats):
                draw = np.random.default_rng(1000 + 17 * split + r).choice(train, n_labels, replace=False)
                labels = LabelSet.from_benchmark(bench.subset(draw))
                if labels.informative < 4 or labels.strong.mean() == labels.weak.mean():
                    continue
                result = adapt_router(base, labels=labels, embedder=embedder, progress=False)
                router = result.router
                t_emb, t_prompts = emb[test_idx], [prompts[i] for i in test_idx]
                guarded.append(router.scores_from_embeddings(t_prompts, t_emb) if router.serves == "adapted" else
                               (generic_all[test_idx] if router.serves == "base" else length_all[test_idx]))
                if router.head is not None:
                    from routellm_integrations.routers.ridge_head import compute_blocks
                    blocks = compute_blocks(t_prompts, embedder, base if router.head.w_prior is not None else None,
                                            embeddings=t_emb)
                    adapted.append(router.head.predict(blocks))
                served.append(router.serves)
            per_split.append({"test": test, "guarded": guarded, "adapted": adapted, "served": served,
                              "generic": apgr(generic_all[test_idx], test), "length": apgr(length_all[test_idx], test),
                              "s_per_adapt": (time.perf_counter() - t0) / max(1, repeats)})
        g = [np.mean([apgr(s, p["test"]) for s in p["guarded"]]) for p in per_split if p["guarded"]]
        a = [np.mean([apgr(s, p["test"]) for s in p["adapted"]]) for p in per_split if p["adapted"]]
        lo, hi = boot_mean(per_split[0]["guarded"], per_split[0]["test"], n_boot, 0) if splits == 1 else (
            float(np.quantile(g, 0.025)), float(np.quantile(g, 0.975)))
        served = [s for p in per_split for s in p["served"]]
        row = {"set": bench.name, "n_labels": n_labels, "generic": float(np.mean([p["generic"] for p in per_split])),
               "length": float(np.mean([p["length"] for p in per_split])), "adapted": float(np.mean(a)),
               "guarded": float(np.mean(g)), "guarded_lo": lo, "guarded_hi": hi,
               "served": {k: served.count(k) for k in sorted(set(served))},
               "s_per_adapt": float(np.mean([p["s_per_adapt"] for p in per_split]))}
        row["bar_ok"] = row["guarded"] >= max(row["generic"], row["length"]) - 0.01
        rows.append(row)
        print(f"{bench.name:26} N={n_labels:5d}  generic {row['generic']:.3f}  length {row['length']:.3f}  "
              f"adapted {row['adapted']:.3f}  guarded {row['guarded']:.3f} [{lo:.3f}, {hi:.3f}]  "
              f"served {row['served']}  {'ok' if row['bar_ok'] else 'BELOW max-0.01'}  "
              f"({row['s_per_adapt']:.1f} s/adapt)", flush=True)
    return rows


def served_scores(router, base, embedder, prompts: list[str], emb: np.ndarray) -> np.ndarray:
    if router.serves == "adapted":
        return router.scores_from_embeddings(prompts, emb)
    if router.serves == "base":
        return base_scores(base, prompts, emb)
    return np.array([len(p) for p in prompts], dtype=np.float64)


def run_kfold(bench: Benchmark, k: int, shuffles: int, embedder: CachedEmbedder, base) -> list[dict]:
    """k-fold over a small set: each fold's router is fitted on the other folds' labels;
    its held-out scores become percentiles of its scores on its own training prompts
    (what calibrating a threshold on one's traffic does), so folds share one scale."""
    prompts = list(bench.prompts)
    emb = np.asarray(embedder.embed(prompts), dtype=np.float32)
    generic = apgr(base_scores(base, prompts, emb), bench)
    length = apgr(np.array([len(p) for p in prompts], dtype=np.float64), bench)
    results, served = [], []
    for shuffle in range(shuffles):
        order = np.random.default_rng(shuffle).permutation(len(bench))
        oof = np.empty(len(bench))
        for f in range(k):
            test_idx = order[f::k]
            train_idx = np.setdiff1d(order, test_idx)
            result = adapt_router(base, labels=LabelSet.from_benchmark(bench.subset(train_idx)), embedder=embedder,
                                  progress=False)
            own = np.sort(served_scores(result.router, base, embedder, [prompts[i] for i in train_idx], emb[train_idx]))
            held = served_scores(result.router, base, embedder, [prompts[i] for i in test_idx], emb[test_idx])
            oof[test_idx] = np.searchsorted(own, held, side="right") / len(own)
            served.append(result.router.serves)
        results.append(apgr(oof, bench))
    row = {"set": bench.name, "n_labels": len(bench) - len(bench) // k, "generic": generic, "length": length,
           "adapted": float("nan"), "guarded": float(np.mean(results)), "guarded_lo": float(np.min(results)),
           "guarded_hi": float(np.max(results)), "served": {s: served.count(s) for s in sorted(set(served))}}
    row["bar_ok"] = row["guarded"] >= row["generic"] - 0.01
    print(f"{bench.name:26} N={row['n_labels']:5d}  generic {generic:.3f}  length {length:.3f}  guarded "
          f"{row['guarded']:.3f} [min {row['guarded_lo']:.3f}, max {row['guarded_hi']:.3f} over {shuffles} "
          f"shuffles of {k}-fold]  served {row['served']}  {'ok' if row['bar_ok'] else 'BELOW generic-0.01'}",
          flush=True)
    return [row]


def judge_cost_per_100(strong: str = "gpt-4o", weak: str = "gpt-4o-mini", judge: str | None = None) -> dict:
    """List-price dollars for 100 judge labels: both answers and two judge calls each, at
    MT-Bench question length and GPT-4-1106 answer length (AlpacaEval's recorded answers)."""
    from routellm_integrations.costs import PriceTable, Usage
    from routellm_integrations.paths import resolve_data_dir

    judge = judge or strong
    root = resolve_data_dir(None)
    q = [len(t["turns"][0]) for t in map(json.loads, open(root / "benchmarks/routellm/mt_bench/question.jsonl"))]
    answers = json.load(open(root / "train/alpaca_eval/model_outputs.gpt4_1106_preview.json"))
    a = [len(x["output"]) for x in answers]
    q_tok, a_tok = np.mean(q) / 4, np.mean(a) / 4
    template, verdict = 250, 200  # the pairwise judge prompt; an explanation then [[A]]/[[B]]/[[C]]
    prices = PriceTable.default()
    per_label = (prices.cost(strong, Usage(int(q_tok), int(a_tok)), warn=False)
                 + prices.cost(weak, Usage(int(q_tok), int(a_tok)), warn=False)
                 + 2 * prices.cost(judge, Usage(int(template + q_tok + 2 * a_tok), verdict), warn=False))
    return {"strong": strong, "weak": weak, "judge": judge, "prompt_tokens": round(q_tok), "answer_tokens":
            round(a_tok), "usd_per_100_labels": round(100 * per_label, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["mt-bench", "gsm8k", "mmlu", *POOL_SETS])
    ap.add_argument("--repeats", type=int, default=3, help="label draws per N")
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    ap.add_argument("--base", default="mf_minilm", help="the generic router adapted (its embedder is the head's)")
    args = ap.parse_args()
    base = load_router(args.base)
    own = getattr(base, "embedder", None)
    embedder = CachedEmbedder(own if own is not None else get_embedder("minilm-onnx-int8"), path=embedding_cache_path())
    if own is not None:
        base.embedder = embedder
    rows = []
    for name in args.sets:
        if name in POOL_SETS:
            bench = pool_set(name)
            print(f"({name} is in the generic router's training pool: its 'generic' figure is in-sample)")
            if hasattr(base, "with_pair"):  # the generic router scoring this set's own pair
                rows += run_set(bench, NS, args.repeats, 1, embedder, base.with_pair(*POOL_SETS[name]), args.n_boot)
                continue
        else:
            bench = load_benchmark(name)
        if name == "mt-bench":
            rows += run_kfold(bench, 8, 5, embedder, base)
        else:
            rows += run_set(bench, NS, args.repeats, 1, embedder, base, args.n_boot)
    cost = judge_cost_per_100()
    print(f"\njudge labelling at list price: ${cost['usd_per_100_labels']:.2f} per 100 labels "
          f"(strong {cost['strong']}, weak {cost['weak']}, judge {cost['judge']}; ~{cost['prompt_tokens']} prompt and "
          f"~{cost['answer_tokens']} answer tokens, both orders judged)")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"rows": rows, "judge_cost": cost}, fh, indent=2, default=str)


if __name__ == "__main__":
    main()
