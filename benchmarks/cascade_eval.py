"""Route on the answer too: cascades against routers on held-out halves, with learning curves.

For each set with recorded answers (GSM8K: Mixtral's answers; MT-Bench: the turn-1
answers in the judgements; the pool's RouterBench tasks: GPT-4-1106 vs Mixtral-8x7B
chat, GPT-3.5-turbo-1106 as the second cheap opinion), a seeded 50/50 split: labels are
drawn from the *fitting* half, everything is scored on the *other* half, never fitted on.
Direction: the first half fits and the second scores (``--both-directions`` adds the
swap and reports both).

Per held-out half, on the same prompts and bootstrap resamples (95% intervals, paired
differences):

* N = 0: prompt length, the generic router (``mf`` as shipped), the zero-label checks
  (``zero_label_score``, a cascade) and, where a second cheap answer exists, agreement
  (a cascade paying two cheap calls);
* N = 100, 300, all labels of the fitting half (one seeded draw per N): the prompt head
  ``adapt_router`` fits on those labels (unguarded head, and what its guard serves), the
  verifier ``fit_verifier`` fits on the same labels plus the weak answers (unguarded,
  and "guarded": the verifier cascade where its guard serves it, else the guarded
  prompt router, which is what ``routellm adapt`` with answers serves);
* the hybrid: the prompt router's top 10/20/30% straight to the strong model (a priori
  shares, not tuned here), the rest cascaded with the check;
* cost: quality against total cost at strong/weak price ratios 4 and 16 (the cheap call
  is always paid; see ``routellm_integrations.evaluation.cascade``);
* latency a check adds to an escalated call: its compute per answer (the escalated call
  also waits for the whole cheap answer, which no recorded data times).

    python benchmarks/cascade_eval.py --both-directions --json out.json   # every set (~10 min on 2 busy cores)
    python benchmarks/cascade_eval.py --sets gsm8k                        # one set, one direction (~2 min)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The fits are thousands of small ridge solves: BLAS threads fight over a shared machine's
# cores instead of helping (measured here on 2 busy cores: one thread ~4-8x faster).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from routellm_integrations.evaluation.answers import ANSWER_SETS, AnswerSet, load_answer_set  # noqa: E402
from routellm_integrations.evaluation.cascade import PRICE_RATIOS, bootstrap, policy  # noqa: E402
from routellm_integrations.evaluation.cascade_run import agreement_scores  # noqa: E402

STRAIGHT_SHARES = (0.1, 0.2, 0.3)
BAR = {"gsm8k verifier (all labels)": 0.72, "gsm8k zero-label": 0.68}


def _embedder():
    from routellm_integrations.embedders import CachedEmbedder, get_embedder
    from routellm_integrations.paths import embedding_cache_path

    return CachedEmbedder(get_embedder("minilm-onnx-int8"), path=embedding_cache_path())


def prompt_head(base, fit: AnswerSet, test: AnswerSet, embedder) -> tuple[np.ndarray | None, np.ndarray, str, float]:
    """(unguarded head scores, guarded served scores, what is served, seconds) on ``test``."""
    from routellm_integrations.adaptation import adapt_router
    from routellm_integrations.labels import LabelSet
    from routellm_integrations.routers.ridge_head import compute_blocks

    t0 = time.perf_counter()
    result = adapt_router(base, labels=LabelSet.from_benchmark(fit.bench), embedder=embedder, progress=False)
    seconds = time.perf_counter() - t0
    router = result.router
    prompts = list(test.prompts)
    guarded = np.asarray(router.score(prompts), dtype=float)
    head = None
    if router.head is not None:
        blocks = compute_blocks(prompts, embedder, base if router.head.w_prior is not None else None)
        head = np.asarray(router.head.predict(blocks), dtype=float)
    return head, guarded, router.serves, seconds


def verifier(fit: AnswerSet, test: AnswerSet, embedder) -> tuple[np.ndarray, bool, Any, float, float]:
    """(verifier scores on ``test``, served by its guard, report, fit seconds, score ms per answer)."""
    from routellm_integrations.verification import fit_verifier

    t0 = time.perf_counter()
    vf = fit_verifier(list(fit.prompts), list(fit.weak_answers), fit.bench, embedder=embedder)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = np.asarray(vf.verifier.score(list(test.prompts), list(test.weak_answers)), dtype=float)
    ms = (time.perf_counter() - t0) * 1000 / len(test)
    return scores, bool(vf.served), vf.report, seconds, ms


def _row(boot, name: str, ratios) -> dict:
    res = boot.full[name]
    lo, hi = boot.interval(name)
    return {"apgr": res.apgr, "lo": lo, "hi": hi, "kind": res.kind, "cheap_calls": res.cheap_calls,
            "cost_apgr": {str(r): res.cost_apgr[r] for r in ratios},
            "cost_interval": {str(r): boot.interval(name, r) for r in ratios}}


def run_half(data: AnswerSet, fit_idx: np.ndarray, test_idx: np.ndarray, *, ns: list[str], base, base_name: str,
             generic, embedder, ratios, n_boot: int, seed: int, direction: str) -> dict:
    from routellm_integrations.verification.signals import zero_label_score

    fit, test = data.subset(fit_idx), data.subset(test_idx)
    prompts = list(test.prompts)
    scores: dict[str, tuple[str, np.ndarray, float]] = {}  # name -> (kind, scores, cheap calls)
    scores["length"] = ("router", np.array([len(p) for p in prompts], dtype=float), 0.0)
    # the shipped routers were trained on the pool's RouterBench prompts: a reference there, not a baseline
    generic_name = "generic (mf, in-sample)" if data.name.startswith("routerbench/") else "generic (mf)"
    scores[generic_name] = ("router", np.asarray(generic.score(prompts), dtype=float), 0.0)
    t0 = time.perf_counter()
    zero = np.asarray(zero_label_score(prompts, list(test.weak_answers)), dtype=float)
    zero_ms = (time.perf_counter() - t0) * 1000 / len(test)
    scores["zero-label"] = ("cascade", zero, 1.0)
    if test.second_answers is not None:
        scores["agreement"] = ("cascade", agreement_scores(prompts, test.weak_answers, test.second_answers), 2.0)
    info: dict[str, Any] = {"served": {}, "fit_seconds": {}, "verifier_ms_per_answer": {},
                            "zero_label_ms_per_answer": zero_ms, "verifier_report": {}}
    rng = np.random.default_rng(seed + 7)
    order = rng.permutation(len(fit))
    sizes = []
    for n in ns:
        size = len(fit) if n == "all" else int(n)
        if size > len(fit) or size in sizes:
            continue
        sizes.append(size)
        tag = "all" if size == len(fit) else str(size)
        sub = fit.subset(order[:size])
        if sub.bench.strong_quality == sub.bench.weak_quality or np.sum(sub.bench.strong_outcome
                                                                        != sub.bench.weak_outcome) < 4:
            continue
        head, guarded, serves, head_s = prompt_head(base, sub, test, embedder)
        if head is not None:
            scores[f"prompt head N={tag}"] = ("router", head, 0.0)
        scores[f"prompt router (guarded) N={tag}"] = ("router", guarded, 0.0)
        info["served"][f"prompt N={tag}"] = serves
        info["fit_seconds"][f"prompt N={tag}"] = head_s
        try:
            ver, served, report, ver_s, ver_ms = verifier(sub, test, embedder)
        except ImportError as e:  # the verifier is not there yet: the harness still reports the rest
            info["verifier_missing"] = str(e)
            continue
        scores[f"verifier N={tag}"] = ("cascade", ver, 1.0)
        scores[f"answers guarded N={tag}"] = (("cascade", ver, 1.0) if served else ("router", guarded, 0.0))
        info["served"][f"verifier N={tag}"] = served
        info["fit_seconds"][f"verifier N={tag}"] = ver_s
        info["verifier_ms_per_answer"][f"N={tag}"] = ver_ms
        info["verifier_report"][f"N={tag}"] = report.model_dump() if hasattr(report, "model_dump") else str(report)
    policies = {name: policy(kind, s, cheap_calls=c, ratios=ratios, name=name)
                for name, (kind, s, c) in scores.items()}
    # route, then verify: the best prompt router we have with the best check we have
    router_name = next((k for k in reversed(scores) if k.startswith("prompt head")), "length")
    check_name = next((k for k in reversed(scores) if k.startswith("verifier")), "zero-label")
    for h in STRAIGHT_SHARES:
        label = f"hybrid {h:.0%}: {router_name} + {check_name}"
        policies[label] = policy("hybrid", scores[router_name][1], scores[check_name][1], straight_share=h,
                                 ratios=ratios, name=label)
        if check_name != "zero-label":
            label0 = f"hybrid {h:.0%}: {router_name} + zero-label"
            policies[label0] = policy("hybrid", scores[router_name][1], zero, straight_share=h, ratios=ratios,
                                      name=label0)
        if "agreement" in scores:  # a second cheap call on every cascaded prompt
            label2 = f"hybrid {h:.0%}: {router_name} + agreement"
            policies[label2] = policy("hybrid", scores[router_name][1], scores["agreement"][1], straight_share=h,
                                      cheap_calls=2.0, ratios=ratios, name=label2)
    t0 = time.perf_counter()
    boot = bootstrap(policies, test.bench, n_boot=n_boot, seed=seed)
    info["bootstrap_seconds"] = time.perf_counter() - t0
    rows = {name: _row(boot, name, ratios) for name in policies}
    paired = {}
    for tag in [k.split("N=")[1] for k in scores if k.startswith("verifier N=")]:
        head_name = f"prompt head N={tag}" if f"prompt head N={tag}" in scores else f"prompt router (guarded) N={tag}"
        paired[f"verifier - prompt head N={tag}"] = boot.paired(f"verifier N={tag}", head_name)
        paired[f"answers guarded - prompt guarded N={tag}"] = boot.paired(f"answers guarded N={tag}",
                                                                          f"prompt router (guarded) N={tag}")
        for r in ratios:
            paired[f"verifier - prompt head N={tag} @{r:g}x"] = boot.paired(f"verifier N={tag}", head_name, r)
    paired["zero-label - length"] = boot.paired("zero-label", "length")
    if "agreement" in scores:
        paired["agreement - length"] = boot.paired("agreement", "length")
    return {"set": data.name, "direction": direction, "n_fit": len(fit), "n_test": len(test), "prompt_base": base_name,
            "strong_quality": test.bench.strong_quality, "weak_quality": test.bench.weak_quality,
            "rows": rows, "paired": paired, **info}


def print_half(res: dict, ratios) -> None:
    print(f"\n== {res['set']} ({res['direction']}): fit on {res['n_fit']}, scored on {res['n_test']} held-out; "
          f"prompt head adapts {res['prompt_base']}; "
          f"strong {res['strong_quality']:.2f}, weak {res['weak_quality']:.2f}")
    w = max(len(k) for k in res["rows"])
    head = "".join(f"  cost APGR @{r:g}x          " for r in ratios)
    print(f"{'policy':{w}}  kind     calls  APGR (share) [95%]    {head}")
    for name, row in res["rows"].items():
        cost = "".join(f"  {row['cost_apgr'][str(r)]:.3f} [{row['cost_interval'][str(r)][0]:.3f}, "
                       f"{row['cost_interval'][str(r)][1]:.3f}]" for r in ratios)
        print(f"{name:{w}}  {row['kind']:7}  {row['cheap_calls']:5.2f}  {row['apgr']:.3f} [{row['lo']:.3f}, "
              f"{row['hi']:.3f}]{cost}")
    for name, d in res["paired"].items():
        print(f"  paired {name}: {d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}], P(better) {d['p_a_better']:.2f}")
    print(f"  served: {res['served']}")
    print("  fit seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in res["fit_seconds"].items()))
    print(f"  check compute per answer: zero-label {res['zero_label_ms_per_answer']:.3f} ms; verifier "
          + ", ".join(f"{k} {v:.3f} ms" for k, v in res["verifier_ms_per_answer"].items()))
    if "verifier_missing" in res:
        print(f"  verifier not evaluated: {res['verifier_missing']}")


def bar(results: list[dict]) -> dict:
    """The issue's bar, per set and direction."""
    out: dict[str, Any] = {}
    for res in results:
        rows, where = res["rows"], f"{res['set']} {res['direction']}"
        if res["set"] == "gsm8k":
            if "verifier N=all" in rows:
                out[f"{where}: verifier (all labels) >= 0.72"] = {"apgr": rows["verifier N=all"]["apgr"],
                                                                  "ok": rows["verifier N=all"]["apgr"] >= 0.72}
            out[f"{where}: zero-label >= 0.68"] = {"apgr": rows["zero-label"]["apgr"],
                                                   "ok": rows["zero-label"]["apgr"] >= 0.68}
        key = "answers guarded - prompt guarded N=all"
        if key in res["paired"]:
            d = res["paired"][key]
            out[f"{where}: adapting with answers not worse than without (guarded, all labels)"] = {
                "diff": d["diff"], "lo": d["lo"], "hi": d["hi"], "verifier served": res["served"].get("verifier N=all"),
                "ok": d["hi"] >= 0.0}
    return out


def _cell(rows: dict, name: str, ratio: str | None = None) -> str:
    row = rows.get(name)
    if row is None:
        return "-"
    if ratio is None:
        return f"{row['apgr']:.3f} [{row['lo']:.2f}, {row['hi']:.2f}]"
    lo, hi = row["cost_interval"][ratio]
    return f"{row['cost_apgr'][ratio]:.3f} [{lo:.2f}, {hi:.2f}]"


def summary_table(results: list[dict], ratios) -> str:
    """The headline figures as a markdown table (what docs/cascade_evaluation.md shows)."""
    out = [("| set (fit -> scored) | length | generic mf | zero-label | agreement | prompt head N=100 / 300 / all | "
            "verifier N=100 / 300 / all | served with answers (all) |"),
           "|---|---|---|---|---|---|---|---|"]
    for res in results:
        rows = res["rows"]
        generic = next(k for k in rows if k.startswith("generic"))
        heads = " / ".join(f"{rows[k]['apgr']:.3f}" if k in rows else "-"
                           for k in ("prompt head N=100", "prompt head N=300", "prompt head N=all"))
        vers = " / ".join(f"{rows[k]['apgr']:.3f}" if k in rows else "-"
                          for k in ("verifier N=100", "verifier N=300", "verifier N=all"))
        served = res["served"].get("verifier N=all")
        guarded = (f"{'verifier' if served else 'prompt router'}: {_cell(rows, 'answers guarded N=all')}"
                   if "answers guarded N=all" in rows else "-")
        out.append(f"| {res['set']} ({res['direction']}) | {_cell(rows, 'length')} | {_cell(rows, generic)}"
                   f"{' (in-sample)' if 'in-sample' in generic else ''} | {_cell(rows, 'zero-label')} | "
                   f"{_cell(rows, 'agreement')} | {heads} | {vers} | {guarded} |")
    out += ["", ("| set (fit -> scored) | price ratio | prompt head (all) | zero-label cascade | agreement (2 cheap "
                 "calls) | verifier cascade (all) | hybrid 20% + verifier | hybrid 20% + zero-label |"),
            "|---|---|---|---|---|---|---|---|"]
    for res in results:
        rows = res["rows"]
        hybrid_v = next((k for k in rows if k.startswith("hybrid 20%") and "verifier" in k), None)
        hybrid_z = next((k for k in rows if k.startswith("hybrid 20%") and k.endswith("zero-label")), None)
        for r in ratios:
            key = str(r)
            out.append(f"| {res['set']} ({res['direction']}) | {r:g} | {_cell(rows, 'prompt head N=all', key)} | "
                       f"{_cell(rows, 'zero-label', key)} | {_cell(rows, 'agreement', key)} | "
                       f"{_cell(rows, 'verifier N=all', key)} | {_cell(rows, hybrid_v or '', key)} | "
                       f"{_cell(rows, hybrid_z or '', key)} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=list(ANSWER_SETS), help=f"of {ANSWER_SETS}")
    ap.add_argument("--ns", nargs="+", default=["100", "300", "all"], help="label counts drawn from the fitting half")
    ap.add_argument("--base", default="mf_minilm", help="the router the prompt head adapts (routellm adapt's default)")
    ap.add_argument("--pool-base", default="length",
                    help="the base the prompt head adapts on the pool's RouterBench tasks: the shipped routers were "
                         "trained on those very prompts, so an mf prior (or fallback) there would be in-sample")
    ap.add_argument("--generic", default="mf", help="the generic router as shipped")
    ap.add_argument("--ratios", nargs="+", type=float, default=list(PRICE_RATIOS))
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--both-directions", action="store_true", help="also fit on the second half, score the first")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--json", default=None, help="write every figure here")
    args = ap.parse_args()

    from routellm_integrations.evaluation.run import with_disk_cache
    from routellm_integrations.routers import load_router

    t_start = time.perf_counter()
    embedder = _embedder()
    bases = {"benchmark": with_disk_cache(load_router(args.base)), "pool": with_disk_cache(load_router(args.pool_base))}
    generic = with_disk_cache(load_router(args.generic))
    results = []
    for name in args.sets:
        data = load_answer_set(name, args.data_dir)
        perm = np.random.default_rng(args.seed).permutation(len(data))
        half = len(data) // 2
        a, b = perm[:half], perm[half:]
        splits = [("A->B", a, b)] + ([("B->A", b, a)] if args.both_directions else [])
        for direction, fit_idx, test_idx in splits:
            t0 = time.perf_counter()
            pool = data.name.startswith("routerbench/")
            res = run_half(data, fit_idx, test_idx, ns=args.ns, base=bases["pool" if pool else "benchmark"],
                           base_name=args.pool_base if pool else args.base, generic=generic, embedder=embedder,
                           ratios=args.ratios, n_boot=args.n_boot, seed=args.seed, direction=direction)
            res["seconds"] = time.perf_counter() - t0
            print_half(res, args.ratios)
            print(f"  ({res['seconds']:.1f} s)", flush=True)
            results.append(res)
    print("\n" + summary_table(results, args.ratios))
    verdict = bar(results)
    print("\nBar:")
    for k, v in verdict.items():
        print(f"  {k}: {json.dumps(v)}")
    print(f"total {time.perf_counter() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"results": results, "bar": verdict, "args": vars(args)}, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
