"""The ``routellm`` command: route, demo, train, evaluate, calibrate, label, adapt, rescore, serve."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

DEMO_PROMPTS = [
    "Hi! How are you today?",
    "What is the capital of Australia?",
    "Translate 'good morning' into French.",
    "Write a haiku about autumn leaves.",
    "Give me three tips for a job interview.",
    "A train leaves at 3:15 pm and travels 210 km at 84 km/h. When does it arrive? Show your work.",
    "Prove that there are infinitely many primes p such that p = 3 (mod 4).",
    "Write a Python function that returns the longest palindromic substring of a string in O(n^2) time, with tests.",
    "Implement an LRU cache in Rust with O(1) get and put, and explain the ownership issues.",
    "Solve for x: 3x^2 - 12x + 9 = 0, and explain each step.",
    "Summarise the causes of the French Revolution in two sentences.",
    "Design a distributed rate limiter for an API gateway handling 1M requests/s; discuss consistency trade-offs.",
]


#: the base adaptation starts from: MiniLM's space carries more within-task signal for the
#: head than the default mf's static one (GSM8K 0.677 against 0.619 at 650 labels)
ADAPT_BASE = "mf_minilm"


def _add_router_args(p: argparse.ArgumentParser, default: str = "mf") -> None:
    p.add_argument("--router", default=default, help=f"router name or checkpoint folder (default: {default})")
    p.add_argument("--strong-model", default=None, help="strong model identity known to the checkpoint")
    p.add_argument("--weak-model", default=None, help="weak model identity known to the checkpoint")


def _load(args: argparse.Namespace):
    from .routers import load_router

    options = {}
    if args.strong_model:
        options["strong_model"] = args.strong_model
    if args.weak_model:
        options["weak_model"] = args.weak_model
    return load_router(args.router, **options)


def _model_names(router) -> tuple[str, str]:
    return (getattr(router, "strong_model", "strong"), getattr(router, "weak_model", "weak"))


def cmd_route(args: argparse.Namespace) -> int:
    router = _load(args)
    strong, weak = _model_names(router)
    for d in router.route_batch(args.prompts, args.threshold):
        out = d.model_dump()
        out["model"] = strong if d.route == "strong" else weak
        print(json.dumps(out))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .calibration import threshold_for_strong_fraction

    print(f"Loading the {args.router!r} router (bundled checkpoint and embedding model, offline)...", flush=True)
    router = _load(args)
    strong, weak = _model_names(router)
    scores = router.score(DEMO_PROMPTS)
    threshold = args.threshold if args.threshold is not None else threshold_for_strong_fraction(scores, 0.5)
    print(f"router={router.name} strong={strong} weak={weak} threshold={threshold:.3f}\n")
    print(f"{'route':6}  {'score':>5}  {'model':28}  prompt")
    n_strong = 0
    for prompt, d in zip(DEMO_PROMPTS, router.route_batch(DEMO_PROMPTS, threshold)):
        n_strong += d.route == "strong"
        model = strong if d.route == "strong" else weak
        text = prompt if len(prompt) <= 70 else prompt[:67] + "..."
        print(f"{d.route:6}  {d.score:5.3f}  {model:28}  {text}")
    print(f"\n{n_strong}/{len(DEMO_PROMPTS)} prompts routed to {strong}.")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibration import strong_share, threshold_for_strong_fraction

    prompts = read_prompts(Path(args.prompts))
    router = _load(args)
    scores = router.score(prompts)
    t = threshold_for_strong_fraction(scores, args.strong_fraction)
    print(json.dumps({"router": router.name, "strong_fraction": args.strong_fraction, "threshold": t,
                      "realised_strong_fraction": strong_share(scores, t), "n_prompts": len(prompts)}))
    return 0


def read_prompts(path: Path) -> list[str]:
    """One prompt per line (.txt), or a JSONL file with a ``prompt`` field per line."""
    from .errors import DataError

    if not path.is_file():
        raise DataError(f"prompts file {str(path)!r} does not exist")
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".jsonl":
        prompts = []
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                prompts.append(json.loads(line)["prompt"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(f"{path}:{i}: expected a JSON object with a 'prompt' field ({exc})") from exc
        return prompts
    return [line for line in lines if line.strip()]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.run import run_evaluation

    run_evaluation(args.routers, args.benchmark, data_dir=args.data_dir, output=Path(args.output),
                   pair_file=args.outcomes)
    return 0


def _training_config(cls, **options):
    """A trainer's pydantic config, with bad values reported as a typed DataError."""
    from pydantic import ValidationError

    from .errors import DataError

    try:
        return cls(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"--{'-'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors())
        raise DataError(f"invalid training option(s): {problems}") from None


def cmd_train(args: argparse.Namespace) -> int:
    from .training.pipeline import DEFAULT_SOURCES

    sources = DEFAULT_SOURCES if args.sources is None else [s for s in args.sources if s != "none"]
    common = dict(out=Path(args.out), data_dir=args.data_dir, sources=sources, seed=args.seed,
                  max_prompts_per_source=args.max_prompts_per_source, evaluate=not args.no_evaluate,
                  battles_files=args.battles or (), progress=not args.quiet)
    if args.router != "mf":
        common["validate"] = not args.no_validate
    if args.router == "sw_ranking":
        from .training.sw_ranking import SWRankingConfig, train_sw_ranking_command

        cfg = _training_config(SWRankingConfig, n_tiers=args.tiers, top_k=args.top_k, tiering=args.tiering,
                               balance=args.balance)
        train_sw_ranking_command(config=cfg, embedder=args.embedder or "minilm-onnx-int8", **common)
        return 0
    if args.router == "bert":
        from .training.bert import BertTrainingConfig, train_bert_command

        cfg = _training_config(BertTrainingConfig, epochs=args.epochs, hidden=args.hidden, encoder=args.encoder,
                               n_tiers=args.tiers)
        train_bert_command(config=cfg, embedder=args.embedder or "minilm-onnx-int8", **common)
        return 0
    if args.router == "causal_llm":
        from .training.causal_llm import CausalLLMTrainingConfig, train_causal_llm_command

        cfg = _training_config(CausalLLMTrainingConfig, epochs=args.epochs, hidden=args.hidden, n_tiers=args.tiers)
        train_causal_llm_command(config=cfg, device=args.device, **common)
        return 0
    from .training.pipeline import train_mf_command

    train_mf_command(epochs=args.epochs, dim=args.dim, hidden=args.hidden, embedder=args.embedder or "wordllama",
                     **common)
    return 0


def cmd_adapt(args: argparse.Namespace) -> int:
    from .adaptation import adapt_router

    if not (args.outcomes or args.battles or args.from_store):
        from .errors import DataError
        raise DataError("give your labels: --outcomes FILE, --battles FILE and/or --from-store PATH")
    result = adapt_router(_load(args), outcomes=args.outcomes, battles=args.battles, store=args.from_store,
                          strong_model=args.strong_model, weak_model=args.weak_model, folds=args.folds,
                          confidence=args.confidence, base_confidence=args.base_confidence, seed=args.seed,
                          progress=not args.quiet)
    command = "routellm adapt " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else [])
    out = result.save(Path(args.out), command=command.strip())
    print(result.report.summary(), file=sys.stderr)
    print(json.dumps({"out": str(out), "serves": result.report.serves, "n_labels": result.report.n_labels,
                      "candidates": [c.model_dump() for c in result.report.candidates],
                      "seconds": round(result.report.seconds, 2)}))
    return 0


def _label_spec(provider: str, model: str, base_url: str | None, key_env: str | None, *,
                temperature: float | None = None):
    from .scale.label import ClientSpec

    return ClientSpec(provider, model, base_url, key_env, temperature)  # type: ignore[arg-type]


def cmd_label(args: argparse.Namespace) -> int:
    """Judge-label prompts into the label store; print the report as JSON. Exit status 1
    when some prompts failed (they are in the report; a rerun retries only them)."""
    from .budgets import Budget
    from .errors import BudgetConfigError, DataError
    from .labelling import export_battles, label_prompts
    from .labels import LabelStore

    if args.max_usd is not None and not (args.max_usd > 0 and args.max_usd != float("inf")):
        raise BudgetConfigError(f"--max-usd must be a positive number of USD, got {args.max_usd}")
    if args.concurrency < 1:
        raise DataError(f"--concurrency must be at least 1, got {args.concurrency}")
    specs = [_label_spec(args.provider, args.strong_model, args.base_url, args.api_key_env),
             _label_spec(args.provider, args.weak_model, args.base_url, args.api_key_env),
             _label_spec(args.provider, args.judge or args.strong_model, args.base_url, args.api_key_env,
                         temperature=0.0)]  # MT-Bench judges at temperature 0
    strong, weak, judge = (spec.build() for spec in specs)  # a missing key fails here, before any work
    with LabelStore(args.store) as store:
        if args.engine == "ray":  # a large log: Ray Data workers label batches into the same store
            from .scale.label import label_log

            report = label_log(args.prompts, store=args.store, strong=specs[0], weak=specs[1], judge=specs[2],
                               engine="ray", num_workers=args.workers, max_usd=args.max_usd,
                               concurrency=args.concurrency, max_answer_tokens=args.max_answer_tokens)
        else:
            budget = Budget(max_usd=args.max_usd) if args.max_usd is not None else None
            report = label_prompts(read_prompts(Path(args.prompts)), strong=strong, weak=weak, judge=judge,
                                   store=store, budget=budget, concurrency=args.concurrency,
                                   max_answer_tokens=args.max_answer_tokens, progress=not args.quiet)
        print(report.model_dump_json(indent=2))
        if args.battles_out:
            n = export_battles(store, args.battles_out, args.strong_model, args.weak_model)
            if not args.quiet:
                print(f"routellm label: wrote {n} battles to {args.battles_out}", file=sys.stderr)
    return 1 if report.n_failed else 0


def cmd_rescore(args: argparse.Namespace) -> int:
    """Score every prompt of a traffic log (JSONL/CSV) into a JSONL file; print the summary."""
    from .scale.rescore import rescore_log

    options = {k: v for k, v in (("strong_model", args.strong_model), ("weak_model", args.weak_model)) if v}
    summary = rescore_log(args.router, args.log, args.out, engine=args.engine, threshold=args.threshold,
                          strong_fraction=args.strong_fraction, batch_size=args.batch_size,
                          num_workers=args.workers, progress=not args.quiet, router_options=options)
    print(summary.model_dump_json())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="routellm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("route", help="score prompts and print one JSON decision per prompt")
    _add_router_args(p)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("prompts", nargs="+")
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("demo", help="route a dozen sample prompts offline and print the decisions")
    _add_router_args(p)
    p.add_argument("--threshold", type=float, default=None,
                   help="default: the threshold that sends half of the demo prompts strong")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("calibrate", help="threshold that sends a given fraction of prompts strong")
    _add_router_args(p)
    p.add_argument("--strong-fraction", type=float, required=True)
    p.add_argument("--prompts", required=True, help="a .txt file (one prompt per line) or .jsonl with 'prompt'")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("evaluate", help="APGR / CPT table and cost-quality plot on the paper's benchmarks")
    p.add_argument("--routers", nargs="+", default=["random", "length", "mf"])
    p.add_argument("--benchmark", default="all", help="mt-bench, mmlu, gsm8k or all")
    p.add_argument("--outcomes", default=None, help="instead of a benchmark: CSV/JSONL of prompt,strong,weak")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--output", default="evaluation", help="folder for the plots")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train a router from the preference data")
    p.add_argument("router", choices=["mf", "sw_ranking", "bert", "causal_llm"])
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--sources", nargs="+", default=None,
                   help="public training sources (default: routerbench zeroeval llmrouter; add alpaca_eval for "
                        "judge data; 'none' to train on --battles only)")
    p.add_argument("--battles", nargs="+", default=None,
                   help="your own battles: CSV/JSONL files with prompt, model_a, model_b, winner (a|b|tie)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--dim", type=int, default=None)
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--embedder", default=None,
                   help="embedding space the router is trained and served in (default: wordllama for mf, a "
                        "static table at ~0.05 ms per prompt; int8 MiniLM for sw_ranking and bert)")
    p.add_argument("--max-prompts-per-source", type=int, default=None, help="subsample (for quick runs/tests)")
    p.add_argument("--tiers", type=int, default=None,
                   help="sw_ranking/bert/causal_llm: number of model tiers (default 10)")
    p.add_argument("--top-k", type=int, default=None,
                   help="sw_ranking: weight only the k most similar training prompts (default: all, as the paper)")
    p.add_argument("--tiering", choices=["model", "family"], default=None,
                   help="sw_ranking: rate models individually (default) or model lines together")
    p.add_argument("--balance", choices=["source", "none"], default=None,
                   help="sw_ranking: equal total weight per source (default) or per battle")
    p.add_argument("--encoder", default=None, help="bert: encoder backbone (minilm)")
    p.add_argument("--device", default="cpu", help="causal_llm: torch device for the SmolLM2 features (cpu, cuda)")
    p.add_argument("--no-evaluate", action="store_true", help="skip the benchmark evaluation in the model card")
    p.add_argument("--no-validate", action="store_true",
                   help="sw_ranking/bert/causal_llm: skip the 4-fold validation on held-out pool prompts")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("adapt", help="adapt a router to your own labelled prompts (guarded by cross-validation)")
    _add_router_args(p, default=ADAPT_BASE)
    p.add_argument("--outcomes", nargs="+", default=None, help="CSV/JSONL files of prompt,strong,weak (any scale)")
    p.add_argument("--battles", nargs="+", default=None, help="CSV/JSONL files of prompt,model_a,model_b,winner")
    p.add_argument("--from-store", default=None,
                   help="a label store (SQLite) written by routellm label or shadow sampling")
    p.add_argument("--out", required=True, help="router folder to write (load_router(folder) serves it)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--confidence", type=float, default=0.75,
                   help="share of bootstrap resamples the adapted head must win over the fallback to be served")
    p.add_argument("--base-confidence", type=float, default=0.9,
                   help="share of bootstrap resamples the base router must win over prompt length to be the fallback")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_adapt)
    p = sub.add_parser("label", help="label your prompts: a judge model compares both backends' answers "
                                     "(both orders), into a label store")
    p.add_argument("--prompts", required=True, help="a .txt file (one prompt per line) or .jsonl with 'prompt'")
    p.add_argument("--store", required=True, help="the SQLite label store to write (created if missing)")
    p.add_argument("--strong-model", required=True)
    p.add_argument("--weak-model", required=True)
    p.add_argument("--judge", default=None, help="judge model (default: the strong model)")
    p.add_argument("--base-url", default=None, help="an OpenAI-compatible server (default: the SDK's)")
    p.add_argument("--provider", choices=["openai", "anthropic"], default="openai")
    p.add_argument("--api-key-env", default=None,
                   help="environment variable holding the API key (default OPENAI_API_KEY / ANTHROPIC_API_KEY)")
    p.add_argument("--max-usd", type=float, default=None, help="cap on what this run spends, in USD")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-answer-tokens", type=int, default=1024, help="output cap of each backend answer")
    p.add_argument("--battles-out", default=None, help="also write the pair's labels as a battles .jsonl file")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: label a large .jsonl/.csv log on Ray Data workers (the [ray] extra)")
    p.add_argument("--workers", type=int, default=None, help="ray: number of workers (default: the cluster's CPUs)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_label)
    p = sub.add_parser("rescore", help="score a large traffic log (JSONL/CSV with 'prompt') into a JSONL of "
                                       "row, id, score, route; locally or on Ray")
    _add_router_args(p)
    p.add_argument("--log", required=True, help="the traffic log: .jsonl (one object per line) or .csv (header)")
    p.add_argument("--out", required=True, help="the JSONL file to write")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: Ray Data actors (needs the [ray] extra; starts a local Ray if none runs)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float, default=None, help="route strong when score >= this (default 0.5)")
    g.add_argument("--strong-fraction", type=float, default=None,
                   help="instead: the threshold that sends this share of the log strong")
    p.add_argument("--workers", type=int, default=None, help="ray: number of actors (default: the cluster's CPUs)")
    p.add_argument("--batch-size", type=int, default=256, help="prompts per scoring call")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_rescore)

    from .server.cli import add_serve_parser  # argparse only: the server's own imports wait for the command

    add_serve_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from .errors import RouteLLMError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RouteLLMError as exc:
        print(f"routellm: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
