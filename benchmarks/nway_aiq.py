"""N-way routing on held-out prompts: AIQ of the quality router against single models,
the zero router and the oracle, per task of RouterBench and LLMRouter.

    .venv/bin/python benchmarks/nway_aiq.py --data-dir DATA \\
        [--source routerbench|llmrouter|both] [--folds 5] [--epochs 40] [--plot out.png]

What it does, per source:

1. Loads the golden labels (``load_outcomes``) and drops every prompt that is a
   benchmark prompt or a near-duplicate of one (cosine >= 0.95 under the MiniLM
   reference embedder the training pipeline uses, or an exact match), printing the
   counts per task. Prompts without an outcome for every model are dropped too (counted).
2. Actual cost per (prompt, model): RouterBench's recorded ``<model>|total_cost`` (USD,
   joined to the outcome prompts by the same parsed question text). LLMRouter has no
   costs and no responses: ``list price x (chars(prompt)/4 + OUTPUT_TOKENS)`` tokens, at
   the per-token prices LLMRouter's own candidate file records (service NVIDIA NIM;
   ``--llmrouter-prices together``: Together AI's size tiers, :data:`LLMROUTER_PRICES`).
3. K folds by prompt (a seeded hash of the text, so a prompt is in the same fold in every
   task). For each held-out fold: ``fit_quality`` (``QualityTrainingConfig`` defaults
   but ``--epochs`` etc.) on the other folds' rows -- once per task on that task alone
   (``nway``, in-domain), and once on all tasks of the source (``nway-all``, tasks
   balanced) -- predicts P(correct) per model on the held-out prompts. ``nway-sel`` is
   ``nway`` with its predictions shrunk towards each model's training-fold accuracy,
   ``prior + alpha * (predicted - prior)``, alpha in {1, .75, .5, .25, 0} chosen per fold
   by an inner ``--inner-folds`` cross-validation of the *training* folds (highest inner
   AIQ); see :func:`select_shrinkage`. Expected cost per model: a per-model linear fit of
   actual cost on prompt length (characters) over the training folds
   (``LengthCostModel``; ``--expected-cost mean``: the per-model mean instead). Nothing
   of the held-out fold is used before scoring.
4. On the pooled held-out predictions of a task: sweep cost weight 0 and ``--weights``
   log-spaced weights (``choose`` maximises predicted quality - weight x expected cost),
   score each choice with the actual outcome and actual cost, and compute the AIQ (area
   under the non-decreasing convex hull / cost range; see
   ``routellm_integrations.evaluation.cost_quality`` for the conventions: zero left of a
   hull's first point, flat right of its last, range = cheapest..dearest single model on
   the task, the same for every router). The weights span the range where the router's
   own choices change (``weight_grid(..., quality=predictions)``: predictions and
   expected costs only, no labels); the oracle's span its own (from the labels).

Main table (one row per task; AIQ in quality points, higher is better):

* ``n``: held-out prompts of the task (all folds pooled).
* ``nway`` / ``nway-sel`` / ``nway-all``: AIQ of the three router variants above.
* ``zero``: AIQ of the zero router (hull of the single models: a prompt-blind random mix).
* ``oracle``: AIQ of choosing with the true labels (the ceiling).
* ``single*`` / ``(model)``: the best AIQ of any single model, and which (a single model
  scores ``q * (cost_max - c) / (cost_max - cost_min)``, so cheap models win this).
* ``d <variant>``: the variant's AIQ minus the zero router's.

Second table (costs in mean USD per prompt):

* ``best model`` / ``q_best`` / ``c_best``: the single model of highest quality, its
  quality and cost.
* ``q@w0 <variant>``: quality at cost weight 0 (the variant's best-quality point).
* ``c@q_best <variant>``: the lowest cost on the variant's hull reaching ``q_best``
  (``-`` when it never does), and that as a share of ``c_best``.
* ``alpha``: the shrinkage ``nway-sel`` chose in each outer fold.

Then every single model's AIQ per task, the expected-cost error, and per variant
whether it beats the zero router on every task. Seeded and deterministic (hash folds,
``QualityTrainingConfig.seed``, fixed torch threads). About 2-3 minutes on 2 cores for
both sources (the MiniLM decontamination embeddings come from the on-disk cache after
the first run).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from routellm_integrations.evaluation.cost_quality import (  # noqa: E402
    CostQualityPoint, LengthCostModel, aiq, best_single, cost_range, cost_to_reach, non_decreasing_convex_hull,
    oracle_points, single_model_points, sweep, weight_grid)

# --- LLMRouter prices --------------------------------------------------------------------
# USD per 1M tokens (input and output priced the same). Source: Together AI's published
# serverless list prices for open chat/language/code models by parameter count, as of
# 2024-2025 (together.ai/pricing: up to 4B $0.10, 4.1B-8B $0.20, 8.1B-21B $0.30,
# 21.1B-41B $0.80, 41.1B-80B $0.90). One provider and one rule for all nine models,
# because no single provider hosts all of them by name (the Nemotron 49B/51B and ChatQA
# models are NVIDIA's). These are list prices, not what any particular call was billed;
# they could not be re-checked from this machine (no network). The data's own
# ``example_data__llm_candidates__default_llm.json`` ("service": "NVIDIA") gives the same
# prices except gemma-2-9b-it at $0.10 (its text calls it a 2.9B model); the script
# prints that comparison.
TOGETHER_SIZE_TIERS = ((4.0, 0.10), (8.0, 0.20), (21.0, 0.30), (41.0, 0.80), (80.0, 0.90))
LLMROUTER_SIZES_B = {  # parameters (billions), as the LLMRouter candidate file states them
    "qwen2.5-7b-instruct": 7.0, "codegemma-7b": 7.0, "gemma-2-9b-it": 9.0, "llama-3.1-8b-instruct": 8.0,
    "llama3-chatqa-1.5-8b": 8.0, "mistral-7b-instruct-v0.3": 7.0, "llama-3.3-nemotron-super-49b-v1": 49.0,
    "llama-3.1-nemotron-51b-instruct": 51.0, "llama3-chatqa-1.5-70b": 70.0,
}


def tier_price(size_b: float) -> float:
    for limit, price in TOGETHER_SIZE_TIERS:
        if size_b <= limit:
            return price
    raise ValueError(f"no price tier for a {size_b}B model")


LLMROUTER_PRICES = {m: tier_price(s) for m, s in LLMROUTER_SIZES_B.items()}
#: LLMRouter records neither responses nor token counts: every call is assumed to write
#: this many output tokens (the same for every model, so it scales costs, not their order).
OUTPUT_TOKENS = 200
CHARS_PER_TOKEN = 4.0


@dataclass
class Task:
    """One task's dense matrices: prompts x models."""

    source: str
    prompts: list[str]
    outcomes: np.ndarray  # (n, m) scores in [0, 1]
    costs: np.ndarray  # (n, m) actual USD per call
    dropped_incomplete: int = 0


# --- loading ------------------------------------------------------------------------------
def decontaminated_outcomes(root: Path, family: str) -> tuple[Any, Any]:
    from routellm_integrations.data.decontaminate import decontaminate
    from routellm_integrations.data.sources import load_outcomes
    from routellm_integrations.evaluation.benchmarks import all_benchmark_prompts
    from routellm_integrations.training.embedding import cached_embedder

    outcomes = load_outcomes(root, [family])
    return decontaminate(outcomes, all_benchmark_prompts(root), cached_embedder("minilm"))


def routerbench_costs(root: Path) -> dict[tuple[str, str], dict[str, float]]:
    """``{(task, question text): {model: mean USD}}`` from the CSVs' ``<model>|total_cost``
    columns, keyed by the same parsed text and task name the outcome loader uses (rows
    with identical text are averaged)."""
    from routellm_integrations.data.models import canonical_model_name
    from routellm_integrations.data.sources import routerbench_question
    from routellm_integrations.data.sources.routerbench import FILES, NAME

    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    sums: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for fname in FILES:
        with (root / "train" / NAME / fname).open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            cost_cols = [c for c in (reader.fieldnames or []) if c.endswith("|total_cost")]
            names = {c: canonical_model_name(c.rsplit("|", 1)[0]) for c in cost_cols}
            for row in reader:
                key = (f"{NAME}/" + row["eval_name"].strip().lower().replace("-", "_"),
                       routerbench_question(row["prompt"]))
                for c in cost_cols:
                    if row[c].strip():
                        sums[key][names[c]].append(float(row[c]))
    return {k: {m: float(np.mean(v)) for m, v in d.items()} for k, d in sums.items()}


def llmrouter_cost(prompt: str, model: str, prices: dict[str, float] | None = None) -> float:
    tokens = math.ceil(len(prompt) / CHARS_PER_TOKEN) + OUTPUT_TOKENS
    return (prices or LLMROUTER_PRICES)[model] * tokens / 1e6


def llmrouter_prices(root: Path, which: str) -> dict[str, float]:
    """USD per 1M tokens per model: ``"nvidia"``, the prices LLMRouter's own candidate file
    records (service NVIDIA NIM, shipped with the data: checkable), or ``"together"``, the
    size-tier table above."""
    if which == "together":
        return dict(LLMROUTER_PRICES)
    theirs = llmrouter_candidate_prices(root)
    missing = [m for m in LLMROUTER_PRICES if m not in theirs]
    if missing:
        raise SystemExit(f"LLMRouter's candidate file has no price for {missing}: use --llmrouter-prices together")
    return {m: theirs[m] for m in LLMROUTER_PRICES}


def dense_tasks(table: Any, family: str, root: Path, prices: dict[str, float] | None = None) -> dict[str, Task]:
    """Per task: prompts with an outcome (and a cost) for every model, as matrices."""
    models = list(table.models)
    m = len(models)
    rb_costs = routerbench_costs(root) if family == "routerbench" else None
    tasks: dict[str, Task] = {}
    for s_code, source in enumerate(table.sources):
        rows = np.flatnonzero(table.source_idx == s_code)
        if rows.size == 0:
            continue
        pids = np.unique(table.prompt_idx[rows])
        pos = {int(p): i for i, p in enumerate(pids)}
        y = np.full((len(pids), m), np.nan)
        y[[pos[int(p)] for p in table.prompt_idx[rows]], table.model_idx[rows]] = table.correct[rows]
        prompts = [table.prompts[int(p)] for p in pids]
        c = np.full((len(pids), m), np.nan)
        for i, p in enumerate(prompts):
            if rb_costs is not None:
                known = rb_costs.get((source, p), {})
                c[i] = [known.get(mm, np.nan) for mm in models]
            else:
                c[i] = [llmrouter_cost(p, mm, prices) for mm in models]
        ok = np.isfinite(y).all(axis=1) & np.isfinite(c).all(axis=1)
        tasks[source] = Task(source, [p for p, k in zip(prompts, ok) if k], y[ok], c[ok], int((~ok).sum()))
    return tasks


def folds_of(prompts: Sequence[str], k: int, seed: int) -> np.ndarray:
    from routellm_integrations.training.pool import prompt_hash

    return (prompt_hash(prompts, f"nway-aiq-fold{seed}") % np.uint64(k)).astype(np.int64)


# --- fitting ------------------------------------------------------------------------------
def fit_and_predict(train: list[tuple[Task, np.ndarray, np.ndarray]], test: list[tuple[Task, np.ndarray, np.ndarray]],
                    models: list[str], config: Any) -> list[np.ndarray]:
    """Fit one quality head on the ``train`` (task, prompt mask, embeddings) parts and
    predict P(correct) (n_test, m) for each ``test`` part."""
    from routellm_integrations.training.quality import fit_quality

    prompts: list[str] = []
    embs, pidx, midx, ys, sidx = [], [], [], [], []
    m = len(models)
    for code, (task, mask, emb) in enumerate(train):
        sel = np.flatnonzero(mask)
        base = len(prompts)
        prompts += [task.prompts[i] for i in sel]
        embs.append(emb[sel])
        pidx.append(np.repeat(base + np.arange(sel.size), m))
        midx.append(np.tile(np.arange(m), sel.size))
        ys.append(task.outcomes[sel].reshape(-1))
        sidx.append(np.full(sel.size * m, code))
    router, _ = fit_quality(prompts, np.concatenate(embs), np.concatenate(pidx), np.concatenate(midx),
                            np.concatenate(ys), models, source_idx=np.concatenate(sidx), config=config,
                            embedder_name="benchmark")
    out = []
    for task, mask, emb in test:
        sel = np.flatnonzero(mask)
        out.append(router.quality_from_embeddings([task.prompts[i] for i in sel], emb[sel]))
    return out


def expected_costs(task: Task, train_mask: np.ndarray, test_mask: np.ndarray, how: str) -> np.ndarray:
    lengths = np.array([len(p) for p in task.prompts], dtype=np.float64)
    if how == "mean":
        return np.broadcast_to(task.costs[train_mask].mean(axis=0), (int(test_mask.sum()), task.costs.shape[1]))
    model = LengthCostModel.fit(lengths[train_mask], task.costs[train_mask])
    return model.predict(lengths[test_mask])


@dataclass
class TaskResult:
    task: str
    n: int
    singles: list[CostQualityPoint]
    nway: list[CostQualityPoint]
    nway_sel: list[CostQualityPoint] | None
    nway_all: list[CostQualityPoint] | None
    oracle: list[CostQualityPoint]
    cost_error: float  # mean |expected - actual| / mean actual cost, over all (prompt, model) cells
    alphas: list[float]  # nway-sel's shrinkage per outer fold


def evaluate_source(family: str, root: Path, args: argparse.Namespace, embedder: Any) -> list[TaskResult]:
    from routellm_integrations.training.quality import QualityTrainingConfig

    t0 = time.perf_counter()
    table, report = decontaminated_outcomes(root, family)
    print(f"\n=== {family} ===")
    print(f"decontamination (MiniLM reference embedder, cosine >= {report.threshold}, or exact) against "
          f"{report.n_reference_prompts} benchmark prompts: dropped {report.prompts_dropped} of "
          f"{report.prompts_seen} prompts ({report.exact_matches} exact) [{time.perf_counter() - t0:.0f} s]")
    for s, r in sorted(report.by_source.items()):
        print(f"  {s:32s} dropped {r.prompts_dropped:4d} / {r.prompts_seen:4d} prompts")
    models = list(table.models)
    prices = llmrouter_prices(root, args.llmrouter_prices) if family == "llmrouter" else None
    tasks = dense_tasks(table, family, root, prices)
    for name, t in sorted(tasks.items()):
        if t.dropped_incomplete:
            print(f"  {name}: {t.dropped_incomplete} prompts dropped for a missing outcome or cost")
    if family == "llmrouter":
        source = ("LLMRouter's own candidate file (service NVIDIA NIM)" if args.llmrouter_prices == "nvidia"
                  else "Together AI size-tier list prices")
        print(f"costs: {source}, USD / 1M tokens, x (ceil(chars/{CHARS_PER_TOKEN:g}) of the prompt + {OUTPUT_TOKENS} "
              "assumed output tokens; the data has no responses or token counts)")
        for mm in models:
            other = LLMROUTER_PRICES[mm] if args.llmrouter_prices == "nvidia" else None
            note = "" if other in (None, prices[mm]) else f"  (Together size tier: {other:.2f})"
            print(f"  {mm:34s} {LLMROUTER_SIZES_B[mm]:>4g}B  ${prices[mm]:.2f}{note}")
    else:
        print("costs: RouterBench's recorded per-prompt USD (<model>|total_cost)")
    print(f"expected cost: {'per-model mean' if args.expected_cost == 'mean' else 'per-model linear fit on prompt length'}"
          " over the training folds")

    small = sorted(n for n, t in tasks.items() if len(t.prompts) < args.min_prompts)
    if small:
        print(f"skipped (fewer than {args.min_prompts} prompts after decontamination): {', '.join(small)}")
    names = sorted(n for n in tasks if n not in small)
    all_names = sorted(tasks)  # the all-tasks variant also trains on skipped tasks

    t0 = time.perf_counter()
    emb = {n: np.asarray(embedder.embed(tasks[n].prompts), dtype=np.float32) for n in all_names}
    fold = {n: folds_of(tasks[n].prompts, args.folds, args.seed) for n in all_names}
    cfg = QualityTrainingConfig(epochs=args.epochs, batch_size=args.batch_size, rank=args.rank,
                                weight_decay=args.weight_decay, lr=args.lr, seed=args.seed,
                                calibration_folds=args.calibration_folds)
    plain = cfg.model_copy(update={"calibration_folds": 0})  # nway-sel's inner selection refits many times
    pred = {n: np.zeros_like(tasks[n].outcomes) for n in names}
    pred_sel = {n: np.zeros_like(tasks[n].outcomes) for n in names}
    pred_all = {n: np.zeros_like(tasks[n].outcomes) for n in names}
    exp_cost = {n: np.zeros_like(tasks[n].costs) for n in names}
    alphas: dict[str, list[float]] = {n: [] for n in names}
    for k in range(args.folds):
        for n in names:
            t, tr, te = tasks[n], fold[n] != k, fold[n] == k
            if not te.any():
                continue
            (pred[n][te],) = fit_and_predict([(t, tr, emb[n])], [(t, te, emb[n])], models, cfg)
            exp_cost[n][te] = expected_costs(t, tr, te, args.expected_cost)
            if args.select:
                alpha = select_shrinkage(t, tr, emb[n], models, plain, args)
                alphas[n].append(alpha)
                prior = t.outcomes[tr].mean(axis=0)
                pred_sel[n][te] = prior + alpha * (pred[n][te] - prior)
        if not args.no_all_tasks:
            test_names = [n for n in names if (fold[n] == k).any()]
            outs = fit_and_predict([(tasks[n], fold[n] != k, emb[n]) for n in all_names],
                                   [(tasks[n], fold[n] == k, emb[n]) for n in test_names], models, cfg)
            for n, q in zip(test_names, outs):
                pred_all[n][fold[n] == k] = q
        print(f"  fold {k + 1}/{args.folds} fitted [{time.perf_counter() - t0:.0f} s]", flush=True)

    results = []
    for n in names:
        t = tasks[n]
        singles = single_model_points(t.outcomes, t.costs, models)
        err = float(np.abs(exp_cost[n] - t.costs).mean() / t.costs.mean())

        def curve(q: np.ndarray, label: str) -> list[CostQualityPoint]:
            # the weights come from the router's own predictions and expected costs (no labels)
            return sweep(q, exp_cost[n], t.outcomes, t.costs,
                         weight_grid(exp_cost[n], args.weights, quality=q), label=label)

        results.append(TaskResult(
            n, len(t.prompts), singles, curve(pred[n], "nway"),
            curve(pred_sel[n], "nway-sel") if args.select else None,
            None if args.no_all_tasks else curve(pred_all[n], "nway-all"),
            oracle_points(t.outcomes, t.costs, weight_grid(t.costs, args.weights, quality=t.outcomes)),
            err, alphas[n]))
    return results


#: shrinkage factors tried by ``nway-sel`` (1 = the router as trained, 0 = per-model prior)
ALPHAS = (1.0, 0.75, 0.5, 0.25, 0.0)


def select_shrinkage(task: Task, train: np.ndarray, emb: np.ndarray, models: list[str], cfg: Any,
                     args: argparse.Namespace) -> float:
    """The shrinkage ``alpha`` of ``nway-sel``, chosen on the training folds only.

    ``q = prior + alpha * (predicted - prior)`` pulls each prediction towards the model's
    mean correctness on the training prompts: with a weak prompt signal, picking the
    per-prompt argmax of noisy predictions can pick worse than always sending the prompt
    to the best model on average (the winner's curse). ``alpha`` is the one of
    :data:`ALPHAS` with the highest AIQ under an inner ``--inner-folds`` cross-validation
    of the training prompts (ties: the larger alpha)."""
    idx = np.flatnonzero(train)
    sub = Task(task.source, [task.prompts[i] for i in idx], task.outcomes[idx], task.costs[idx])
    inner = folds_of(sub.prompts, args.inner_folds, args.seed + 1)
    pred, prior, ec = (np.zeros_like(sub.outcomes) for _ in range(3))
    for j in range(args.inner_folds):
        tr, te = inner != j, inner == j
        if not te.any() or not tr.any():
            continue
        (pred[te],) = fit_and_predict([(sub, tr, emb[idx])], [(sub, te, emb[idx])], models, cfg)
        prior[te] = sub.outcomes[tr].mean(axis=0)
        ec[te] = expected_costs(sub, tr, te, args.expected_cost)
    lo, hi = cost_range(single_model_points(sub.outcomes, sub.costs, models))
    best, best_aiq = ALPHAS[0], -np.inf
    for alpha in ALPHAS:
        q = prior + alpha * (pred - prior)
        a = aiq(sweep(q, ec, sub.outcomes, sub.costs, weight_grid(ec, args.weights, quality=q)), lo, hi)
        if a > best_aiq + 1e-12:
            best, best_aiq = alpha, a
    return best


def llmrouter_candidate_prices(root: Path) -> dict[str, float]:
    import json

    from routellm_integrations.data.models import canonical_model_name

    path = root / "train" / "llmrouter" / "example_data__llm_candidates__default_llm.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {canonical_model_name(k): float(v.get("input_price")) for k, v in data.items()
            if isinstance(v, dict) and v.get("input_price") is not None}


# --- reporting ----------------------------------------------------------------------------
def short(model: str, width: int = 12) -> str:
    return model if len(model) <= width else model[:width - 1] + "~"


def _variants(r: TaskResult) -> list[tuple[str, list[CostQualityPoint]]]:
    out = [("nway", r.nway)]
    if r.nway_sel is not None:
        out.append(("nway-sel", r.nway_sel))
    if r.nway_all is not None:
        out.append(("nway-all", r.nway_all))
    return out


def print_tables(family: str, results: list[TaskResult], models: list[str]) -> bool:
    """Print the tables; True when plain ``nway`` beats the zero router on every task."""
    if not results:
        print(f"{family}: no task to score")
        return False
    names = [v for v, _ in _variants(results[0])]
    print(f"\n{family}: AIQ on the pooled held-out folds (cost range = cheapest..dearest single model)")
    header = (f"{'task':30s} {'n':>5s} " + " ".join(f"{v:>8s}" for v in names)
              + f" {'zero':>8s} {'oracle':>8s} {'single*':>8s} {'(model)':22s} " + " ".join(f"{'d ' + v:>12s}" for v in names))
    print(header)
    print("-" * len(header))
    wins: dict[str, list[bool]] = {v: [] for v in names}
    for r in results:
        lo, hi = cost_range(r.singles)
        zero, orc = aiq(r.singles, lo, hi), aiq(r.oracle, lo, hi)
        vals = [aiq(pts, lo, hi) for _, pts in _variants(r)]
        s_best = max(r.singles, key=lambda p: aiq([p], lo, hi))
        print(f"{r.task:30s} {r.n:5d} " + " ".join(f"{a:8.3f}" for a in vals)
              + f" {zero:8.3f} {orc:8.3f} {aiq([s_best], lo, hi):8.3f} {short(s_best.label, 22):22s} "
              + " ".join(f"{a - zero:+12.3f}" for a in vals))
        for v, a in zip(names, vals):
            wins[v].append(a > zero)

    print(f"\n{family}: best single model (highest quality), and what each router needs to match it "
          "(costs: mean USD per prompt)")
    header = (f"{'task':30s} {'best model':22s} {'q_best':>6s} {'c_best':>8s} "
              + " ".join(f"{'q@w0 ' + v:>13s}" for v in names) + " "
              + " ".join(f"{'c@q_best ' + v:>19s}" for v in names) + "  alpha (nway-sel, per fold)")
    print(header)
    print("-" * len(header))
    for r in results:
        best = best_single(r.singles)

        def reach(points: list[CostQualityPoint]) -> str:
            c = cost_to_reach(points, best.quality)
            return "-" if c is None else f"{c:.2e} ({c / best.cost:4.0%})"

        q0 = [next(p.quality for p in pts if p.cost_weight == 0.0) for _, pts in _variants(r)]
        print(f"{r.task:30s} {short(best.label, 22):22s} {best.quality:6.3f} {best.cost:8.2e} "
              + " ".join(f"{q:13.3f}" for q in q0) + " "
              + " ".join(f"{reach(pts):>19s}" for _, pts in _variants(r))
              + "  " + ",".join(f"{a:g}" for a in r.alphas))

    print(f"\nsingle-model AIQ per task ({family}; a model's cost rank decides most of it)")
    print(f"{'task':30s} " + " ".join(f"{short(m, 9):>9s}" for m in models))
    for r in results:
        lo, hi = cost_range(r.singles)
        print(f"{r.task:30s} " + " ".join(f"{aiq([p], lo, hi):9.3f}" for p in r.singles))
    print(f"\nexpected-cost error (mean |expected - actual| / mean actual, all cells): "
          + ", ".join(f"{r.task.split('/', 1)[1]} {r.cost_error:.1%}" for r in results))
    for v in names:
        losers = [r.task for r, w in zip(results, wins[v]) if not w]
        print(f"{family}: {v} AIQ > zero-router AIQ on every task: {'YES' if not losers else 'NO'} "
              f"({len(results) - len(losers)}/{len(results)})" + (f"; not on: {', '.join(losers)}" if losers else ""))
    return all(wins["nway"])


def plot(results: list[TaskResult], path: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    cols = min(4, len(results))
    rows = math.ceil(len(results) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, r in zip(axes.flat, results):
        ax.scatter([p.cost for p in r.singles], [p.quality for p in r.singles], c="k", s=14, label="single models")
        for pts, style, name in ((r.singles, "k:", "zero router"), (r.nway, "C0-", "nway"),
                                 (r.nway_sel, "C1-", "nway-sel"), (r.nway_all, "C2--", "nway-all"),
                                 (r.oracle, "C3-.", "oracle")):
            if not pts:
                continue
            h = non_decreasing_convex_hull(pts)
            # the hull is straight in linear cost; sample it densely so it draws true on a log axis
            xs = np.concatenate([np.linspace(a.cost, b.cost, 32) for a, b in zip(h, h[1:])]) if len(h) > 1 \
                else np.array([h[0].cost])
            ax.plot(xs, np.interp(xs, [p.cost for p in h], [p.quality for p in h]), style, label=name)
        ax.set_xscale("log")
        ax.set_title(r.task, fontsize=9)
        ax.set_xlabel("mean USD / prompt", fontsize=8)
        ax.set_ylabel("mean correctness", fontsize=8)
    for ax in list(axes.flat)[len(results):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


def main(argv: Sequence[str] | None = None) -> int:
    from routellm_integrations.training.quality import QualityTrainingConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("ROUTELLM_DATA_DIR"),
                    help="data folder holding benchmarks/ and train/ (default: $ROUTELLM_DATA_DIR)")
    ap.add_argument("--source", choices=["routerbench", "llmrouter", "both"], default="both")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=40)
    defaults = QualityTrainingConfig()
    ap.add_argument("--batch-size", type=int, default=defaults.batch_size, help="QualityTrainingConfig.batch_size")
    ap.add_argument("--rank", type=int, default=defaults.rank, help="QualityTrainingConfig.rank")
    ap.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                    help="QualityTrainingConfig.weight_decay")
    ap.add_argument("--lr", type=float, default=defaults.lr, help="QualityTrainingConfig.lr")
    ap.add_argument("--calibration-folds", type=int, default=4,
                    help="QualityTrainingConfig.calibration_folds (0: calibrate on a held-out share; k: cross-fitted)")
    ap.add_argument("--weights", type=int, default=40, help="log-spaced cost weights besides 0")
    ap.add_argument("--embedder", default="wordllama", help="prompt embedder (the quality router's is wordllama)")
    ap.add_argument("--llmrouter-prices", choices=["nvidia", "together"], default="nvidia",
                    help="LLMRouter's own candidate-file prices (NVIDIA NIM), or Together AI's size tiers")
    ap.add_argument("--expected-cost", choices=["length", "mean"], default="length")
    ap.add_argument("--min-prompts", type=int, default=100, help="tasks with fewer prompts are not scored")
    ap.add_argument("--no-all-tasks", action="store_true", help="skip the variant trained on all tasks")
    ap.add_argument("--no-select", dest="select", action="store_false",
                    help="skip nway-sel (shrinkage chosen by inner cross-validation on the training folds)")
    ap.add_argument("--inner-folds", type=int, default=4, help="inner folds of nway-sel's selection")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--plot", type=Path, default=None, help="write the hulls to this PNG (needs matplotlib)")
    args = ap.parse_args(argv)
    if args.folds < 2:
        ap.error("--folds must be >= 2")

    import torch

    from routellm_integrations.embedders import get_embedder
    from routellm_integrations.paths import resolve_data_dir

    torch.set_num_threads(args.threads)
    root = resolve_data_dir(args.data_dir)
    start = time.perf_counter()
    embedder = get_embedder(args.embedder)
    print(f"nway_aiq: folds={args.folds} epochs={args.epochs} batch_size={args.batch_size} rank={args.rank} "
          f"weight_decay={args.weight_decay} lr={args.lr} weights=1+{args.weights} expected_cost={args.expected_cost} "
          f"seed={args.seed}; prompt embedder {args.embedder}")
    families = ["routerbench", "llmrouter"] if args.source == "both" else [args.source]
    everywhere = True
    for family in families:
        results = evaluate_source(family, root, args, embedder)
        models = [p.label for p in results[0].singles] if results else []
        everywhere &= print_tables(family, results, models)
        if args.plot and results:
            path = args.plot if len(families) == 1 else args.plot.with_name(
                f"{args.plot.stem}_{family}{args.plot.suffix or '.png'}")
            plot(results, path, f"{family}: held-out hulls")
    print(f"\nN-way beats the zero router on every task of {', '.join(families)}: {'YES' if everywhere else 'NO'}")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
