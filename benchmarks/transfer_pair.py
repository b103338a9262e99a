"""Transfer to a model pair the routers were not trained for (the paper's section 5.3).

The paper trains for GPT-4 vs Mixtral and serves Claude 3 Opus vs Llama 3 8B without
retraining. Here, from the training pool:

1. hold out a quarter of the ZeroEval prompts (MATH level 5 and CRUXEval; fold ``--fold``
   of 4, by a hash of the text) from training, and drop every battle of the evaluation pair
   (``--strong`` vs ``--weak``, default Claude 3 Opus vs Llama 3 8B) from training;
2. retrain ``sw_ranking``, ``mf``, ``bert`` and ``causal_llm`` with their shipped
   settings on what is left (still for the default pair, GPT-4 Turbo vs Mixtral) and save
   them under ``--out``;
3. write the held-out prompts' recorded outcomes for the pair (``pair_outcomes.csv``:
   prompt, strong, weak) and evaluate with ``routellm evaluate --routers ... --outcomes``.

Routers score with their default pair (no retraining, no pair information: the transfer
the paper reports). ``mf`` and ``sw_ranking`` know both models of the pair, so the script
also reports them scoring the actual pair (``strong_model=``/``weak_model=``).

    python benchmarks/transfer_pair.py [--out transfer/] [--strong ... --weak ...]

Needs the embedding/feature caches to be warm to be quick (the shipped checkpoints'
training fills them); SmolLM2 features on a cold cache take ~40 min on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="transfer")
    ap.add_argument("--strong", default="claude-3-opus-20240229")
    ap.add_argument("--weak", default="llama-3-8b-instruct")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--routers", nargs="+", default=["sw_ranking", "mf", "bert", "causal_llm"])
    args = ap.parse_args(argv)

    from routellm_integrations.data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL
    from routellm_integrations.data.sources import load_outcomes
    from routellm_integrations.evaluation.benchmarks import load_pair_outcomes
    from routellm_integrations.evaluation.metrics import evaluate_scores, format_table
    from routellm_integrations.evaluation.run import run_evaluation
    from routellm_integrations.training.common import cached_embedder, compact, prepare_pool, prompt_folds
    from routellm_integrations.training.pipeline import embed_with_progress

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pool = prepare_pool(progress=False)
    table = pool.table
    strong, weak = args.strong, args.weak
    for m in (strong, weak):
        if m not in table.models:
            raise SystemExit(f"{m!r} is not in the training pool")
    # 1. held-out ZeroEval prompts, and no battle of the evaluation pair anywhere in training
    is_zero = np.array([s.startswith("zeroeval/") for s in table.prompt_sources()])
    held = is_zero & (prompt_folds(table.prompts, 4, seed=0) == args.fold)
    s_i, w_i = table.models.index(strong), table.models.index(weak)
    pair_rows = ((table.model_a == s_i) & (table.model_b == w_i)) | ((table.model_a == w_i) & (table.model_b == s_i))
    train = compact(table.select(~held[table.prompt_idx] & ~pair_rows))
    held_prompts = {table.prompts[i] for i in np.flatnonzero(held)}
    print(f"held out {len(held_prompts)} ZeroEval prompts and {int(pair_rows.sum()):,} {strong} vs {weak} battles; "
          f"training on {len(train):,} battles over {len(train.prompts):,} prompts")

    # 3. the pair's recorded outcomes on the held-out prompts
    o = load_outcomes(pool.root, ["zeroeval"])
    res: dict[str, dict[str, float]] = {}
    for p, m, c in zip(o.prompt_idx, o.model_idx, o.correct):
        if o.models[m] in (strong, weak) and o.prompts[p] in held_prompts:
            res.setdefault(o.prompts[p], {})[o.models[m]] = float(c)
    rows = [(p, r[strong], r[weak]) for p, r in res.items() if len(r) == 2]
    pair_file = out / "pair_outcomes.csv"
    with pair_file.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "strong", "weak"])
        w.writerows(rows)
    print(f"wrote {pair_file} ({len(rows)} prompts with both models' outcomes)")

    # 2. retrain with the shipped settings
    emb = cached_embedder("minilm-onnx-int8")
    x = embed_with_progress(emb, train.prompts, False)
    paths = []
    if "sw_ranking" in args.routers:
        from routellm_integrations.training.sw_ranking import build_sw_ranking

        r, _ = build_sw_ranking(train, x, embedder_name=emb.name, strong_model=DEFAULT_STRONG_MODEL,
                                weak_model=DEFAULT_WEAK_MODEL)
        r.embedder = emb.inner
        paths.append(r.save_pretrained(out / "sw_ranking"))
    if "mf" in args.routers:
        from routellm_integrations.training.mf import train_mf

        r, _, _ = train_mf(train, x, embedder_name=emb.name, strong_model=DEFAULT_STRONG_MODEL,
                           weak_model=DEFAULT_WEAK_MODEL, progress=False)
        r.embedder = emb.inner
        paths.append(r.save_pretrained(out / "mf"))
    if "bert" in args.routers:
        from routellm_integrations.training.bert import build_bert

        r, _ = build_bert(train, x, embedder_name=emb.name, strong_model=DEFAULT_STRONG_MODEL,
                          weak_model=DEFAULT_WEAK_MODEL)
        paths.append(r.save_pretrained(out / "bert"))
    if "causal_llm" in args.routers:
        from routellm_integrations.routers.causal_llm import SmolLM2Features
        from routellm_integrations.training.causal_llm import build_causal_llm

        inner = SmolLM2Features()
        feats = embed_with_progress(cached_embedder(inner), train.prompts, True, batch_size=64)
        r, _ = build_causal_llm(train, feats, embedder=inner, strong_model=DEFAULT_STRONG_MODEL,
                                weak_model=DEFAULT_WEAK_MODEL)
        paths.append(r.save_pretrained(out / "causal_llm"))

    cmd = ["random", "length", *map(str, paths)]
    print(f"\n$ routellm evaluate --routers {' '.join(cmd)} --outcomes {pair_file}")
    run_evaluation(cmd, "all", output=out / "plots", pair_file=str(pair_file), progress=False)

    # pair-aware scoring where the router knows both models
    from routellm_integrations import load_router
    from routellm_integrations.evaluation.run import score_in_batches, with_disk_cache

    bench = load_pair_outcomes(pair_file, strong_model=strong, weak_model=weak)
    aware = []
    for name in ("sw_ranking", "mf"):
        if (out / name).is_dir():
            r = with_disk_cache(load_router(out / name, strong_model=strong, weak_model=weak))
            aware.append(evaluate_scores(score_in_batches(r, bench.prompts, progress=False), bench,
                                         f"{name} (pair-aware)"))
    if aware:
        print(f"\nscoring the actual pair ({strong} vs {weak}):")
        print(format_table(aware))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
