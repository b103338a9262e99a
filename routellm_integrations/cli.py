"""The routellm command: route, demo, calibrate, evaluate, train, adapt, label, rescore, serve.

Built on typer (click). Every error a user can cause is one line on stderr: a bad invocation
(unknown option, missing argument, a value of the wrong type or out of range, a missing input
file) is a usage error, exit status 2; a problem found while working (an unknown router, a
malformed file, a bad training option, a missing API key) is "error: <message>", exit status 1.
Set ROUTELLM_DEBUG=1 to see the traceback of the latter. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer
from typer.core import TyperCommand

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

#: below this many prompts a calibrated share says little about the traffic it stands for
MIN_CALIBRATION_PROMPTS = 100

#: a trainer config's field -> its flag, where the flag is older than the field's name
_FLAG_OF_FIELD = {"n_tiers": "tiers"}


def _expected_errors() -> tuple[type[BaseException], ...]:
    from pydantic import ValidationError

    from .errors import RouteLLMError

    return RouteLLMError, ValidationError, OSError


def _one_line(exc: BaseException) -> str:
    """An error as one printable line (a lone surrogate from argv is shown escaped)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        text = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
    elif isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split()).encode("utf-8", "backslashreplace").decode("utf-8")


def _spread_lists(args: Sequence[str], list_options: set[str]) -> list[str]:
    """``--routers a b c`` (argparse's nargs='+', which the README uses) as click takes it:
    ``--routers a --routers b --routers c``. Values run to the next option, as in argparse."""
    out: list[str] = []
    option, first = None, False
    for i, arg in enumerate(args):
        if arg == "--":
            out += args[i:]
            break
        if arg.startswith("-") and arg != "-":
            name, eq, _ = arg.partition("=")
            option = name if name in list_options else None
            first = option is not None and not eq
        elif option is not None and not first:
            out.append(option)
        else:
            first = False
        out.append(arg)
    return out


class Command(TyperCommand):
    """A subcommand whose list options take several values after one flag, and whose
    expected errors end in one ``error:`` line and exit status 1."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        ctx.meta["routellm.argv"] = list(args)
        lists = {o for p in self.params if getattr(p, "multiple", False) and not getattr(p, "is_flag", False)
                 for o in p.opts}
        return super().parse_args(ctx, _spread_lists(args, lists))

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _expected_errors() as exc:
            if isinstance(exc, BrokenPipeError) or os.environ.get("ROUTELLM_DEBUG"):
                raise
            typer.echo(f"error: {_one_line(exc)}", err=True)
            raise typer.Exit(1) from None


def _unit_interval(value: Any) -> float:
    """A float in [0, 1]; NaN is refused (a min/max range lets it through)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise typer.BadParameter(f"{value!r} is not a number") from None
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise typer.BadParameter(f"{value!r} is not in [0, 1]")
    return number


UNIT: dict[str, Any] = {"parser": _unit_interval, "metavar": "FLOAT"}


def _help(summary: str, *examples: str) -> dict[str, str]:
    """A command's help: the summary, then an Examples block click prints as written."""
    return {"short_help": summary.split("\n")[0],
            "help": summary + "\n\n\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples)}


app = typer.Typer(name="routellm", rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False,
                  no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"routellm-integrations {__version__}")
        raise typer.Exit()


@app.callback(**_help(
    "Route each prompt to a strong or a weak LLM (RouteLLM, Ong et al. 2024).\n\n"
    "Routers score P(the strong model's answer wins); a prompt goes strong when its score is at "
    "least the threshold. Run COMMAND --help for a command's options.",
    "routellm demo",
    'routellm route "What is 2+2?" --router mf',
    "routellm calibrate --router mf --strong-fraction 0.3 --prompts my_prompts.txt",
    "routellm --version"))
def _root(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                 help="Print the version and exit.")] = False) -> None:
    pass


# --- options several commands share -------------------------------------------------

Router = Annotated[str, typer.Option("--router", help="A router name (random, length, mf, mf_minilm, sw_ranking, "
                                                      "bert, causal_llm) or a checkpoint folder.")]
StrongModel = Annotated[Optional[str], typer.Option(
    "--strong-model", help="Strong model: one the checkpoint was trained on; for random/length, the name "
                           "printed.", show_default="the router's own, else gpt-4-1106-preview")]
WeakModel = Annotated[Optional[str], typer.Option(
    "--weak-model", help="Weak model: one the checkpoint was trained on; for random/length, the name printed.",
    show_default="the router's own, else mixtral-8x7b-instruct-v0.1")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars or progress messages.")]
InputFile = dict(exists=True, dir_okay=False, readable=True)


def _bars(quiet: bool) -> bool:
    """Progress bars go to stderr, and only to a terminal."""
    return not quiet and sys.stderr.isatty()


def _router_options(name: str, strong_model: str | None, weak_model: str | None) -> dict[str, str]:
    from .routers.registry import is_model_free

    if is_model_free(name):  # nothing to choose between: the names only label the output
        return {}
    return {k: v for k, v in (("strong_model", strong_model), ("weak_model", weak_model)) if v}


def _load(name: str, strong_model: str | None = None, weak_model: str | None = None):
    from .routers import load_router

    return load_router(name, **_router_options(name, strong_model, weak_model))


def _model_names(router, strong_model: str | None = None, weak_model: str | None = None) -> tuple[str, str]:
    """The pair a router decides between; a model-free router (random, length) has none of
    its own, so it reports the names given, else the pair the shipped routers were trained on."""
    from .data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL

    return (getattr(router, "strong_model", None) or strong_model or DEFAULT_STRONG_MODEL,
            getattr(router, "weak_model", None) or weak_model or DEFAULT_WEAK_MODEL)


def _usage(flags: str, message: str) -> typer.BadParameter:
    """A usage error (exit status 2) about ``flags``, found after parsing."""
    return typer.BadParameter(message, param_hint=flags)


# --- route, demo, calibrate -------------------------------------------------------------

def _stdin_lines() -> Iterator[str]:
    """Non-blank lines of stdin, decoded as argv is (a byte that is not UTF-8 becomes a lone
    surrogate, routed like any other character, rather than a decoding error)."""
    raw = getattr(sys.stdin, "buffer", None)
    lines = (b.decode("utf-8", "surrogateescape") for b in raw) if raw is not None else sys.stdin
    for line in lines:
        line = line.rstrip("\r\n")
        if line.strip():
            yield line


@app.command(cls=Command, **_help(
    "Score prompts and print one JSON decision per prompt.\n\n"
    "Each decision has the route, the score, the model it picks and latency_ms, the time that "
    "prompt's own scoring took. A PROMPT of '-' reads prompts from stdin, one per line (blank lines "
    "are skipped); a prompt that starts with '-' goes after '--'.",
    'routellm route "What is 2+2?" --router mf',
    'routellm route "What is 2+2?" --router mf --threshold 0.6',
    'routellm route --router length "Hi!" "Prove that sqrt(2) is irrational."',
    "cat prompts.txt | routellm route - --router mf",
    'routellm route --router mf -- "-1 squared is?"'))
def route(prompts: Annotated[list[str], typer.Argument(help="The prompts; '-' reads them from stdin.",
                                                       show_default=False, metavar="PROMPT")],
          router: Router = "mf", strong_model: StrongModel = None, weak_model: WeakModel = None,
          threshold: Annotated[Optional[float], typer.Option(
              **UNIT, help="Route strong when score >= this (0 to 1).",
              show_default="the threshold that sends 30% of the reference mix strong")] = None) -> None:
    from .calibration import reference_threshold
    from .errors import InvalidPromptError
    from .policy import DEFAULT_STRONG_FRACTION
    from .routers.registry import is_model_free

    for i, p in enumerate(prompts, 1):
        if p != "-" and not p.strip():
            raise InvalidPromptError(f"prompt {i} is empty")
    r = _load(router, strong_model, weak_model)
    strong, weak = _model_names(r, strong_model, weak_model)
    if not is_model_free(router):
        r.score(["warm up"])  # embedders load lazily: the first prompt's latency is its own, not the load's
    if threshold is None:
        threshold = reference_threshold(r, DEFAULT_STRONG_FRACTION)
    n = 0
    for prompt in (line for p in prompts for line in (_stdin_lines() if p == "-" else [p])):
        d = r.route(prompt, threshold)
        print(json.dumps({**d.model_dump(), "model": strong if d.route == "strong" else weak}), flush=True)
        n += 1
    if n == 0:
        raise InvalidPromptError("no prompts: stdin held only blank lines")


@app.command(cls=Command, **_help(
    "Route a dozen sample prompts offline and print the decisions.",
    "routellm demo", "routellm demo --router length --threshold 0.3"))
def demo(router: Router = "mf", strong_model: StrongModel = None, weak_model: WeakModel = None,
         threshold: Annotated[Optional[float], typer.Option(
             **UNIT, help="Route strong when score >= this.",
             show_default="the threshold that sends 30% of the reference mix strong")] = None) -> None:
    from .calibration import reference_threshold
    from .policy import DEFAULT_STRONG_FRACTION

    print(f"Loading the {router!r} router (bundled checkpoint and embedding model, offline)...", flush=True)
    r = _load(router, strong_model, weak_model)
    strong, weak = _model_names(r, strong_model, weak_model)
    scores = r.score(DEMO_PROMPTS)
    t = threshold if threshold is not None else reference_threshold(r, DEFAULT_STRONG_FRACTION)
    print(f"router={r.name} strong={strong} weak={weak} threshold={t:.3f}\n")
    print(f"{'route':6}  {'score':>5}  {'model':28}  prompt")
    n_strong = 0
    for prompt, d in zip(DEMO_PROMPTS, r.route_batch(DEMO_PROMPTS, t)):
        n_strong += d.route == "strong"
        model = strong if d.route == "strong" else weak
        text = prompt if len(prompt) <= 70 else prompt[:67] + "..."
        print(f"{d.route:6}  {d.score:5.3f}  {model:28}  {text}")
    print(f"\n{n_strong}/{len(DEMO_PROMPTS)} prompts routed to {strong}.")


PromptsFile = Annotated[Path, typer.Option("--prompts", help="A .txt file (one prompt per line) or a .jsonl file "
                                                             "with a 'prompt' field per line.", **InputFile)]


@app.command(cls=Command, **_help(
    "Print the threshold that sends a given fraction of your prompts strong.\n\n"
    "Scores every prompt of the file (in batches, with a progress bar) and prints the threshold, "
    "the share it realises and the number of prompts as JSON. Warns when the file holds fewer "
    f"than {MIN_CALIBRATION_PROMPTS} prompts.",
    "routellm calibrate --router mf --strong-fraction 0.3 --prompts my_prompts.txt",
    "routellm calibrate --router my_router/ --strong-fraction 0.5 --prompts traffic.jsonl --quiet"))
def calibrate(strong_fraction: Annotated[float, typer.Option(**UNIT, show_default=False,
                                                             help="Share of prompts to send strong (0 to 1).")],
              prompts: PromptsFile, router: Router = "mf", strong_model: StrongModel = None,
              weak_model: WeakModel = None, quiet: Quiet = False) -> None:
    from .calibration import strong_share, threshold_for_strong_fraction
    from .evaluation.run import score_in_batches

    texts = read_prompts(prompts)
    r = _load(router, strong_model, weak_model)
    scores = score_in_batches(r, texts, desc="scoring", progress=_bars(quiet))
    t = threshold_for_strong_fraction(scores, strong_fraction)
    share = strong_share(scores, t)
    if len(texts) < MIN_CALIBRATION_PROMPTS:
        typer.echo(f"warning: the realised strong share {share:.3f} comes from only {len(texts)} prompts; with "
                   f"fewer than {MIN_CALIBRATION_PROMPTS} it may not hold on your traffic", err=True)
    print(json.dumps({"router": r.name, "strong_fraction": strong_fraction, "threshold": t,
                      "realised_strong_fraction": share, "n_prompts": len(texts)}))


def read_prompts(path: Path) -> list[str]:
    """One prompt per line (.txt; blank lines skipped), or a JSONL file with a non-empty
    "prompt" text per line. A missing, binary, non-UTF-8 or empty file is a DataError."""
    from .errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"prompts file {str(path)!r} " + ("is not a file" if path.exists() else "does not exist"))
    data = path.read_bytes()
    if b"\x00" in data:
        raise DataError(f"prompts file {str(path)!r} is binary (it holds NUL bytes); give UTF-8 text")
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"prompts file {str(path)!r} is not UTF-8 text (byte {data[exc.start]:#04x} at offset "
                        f"{exc.start})") from None
    prompts = [line for line in lines if line.strip()]
    if path.suffix.lower() == ".jsonl":
        prompts = [_jsonl_prompt(path, i, line) for i, line in enumerate(lines, 1) if line.strip()]
    if not prompts:
        raise DataError(f"prompts file {str(path)!r} holds no prompts (it is empty or blank)")
    return prompts


def _jsonl_prompt(path: Path, i: int, line: str) -> str:
    from .errors import DataError

    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{i}: not JSON ({exc})") from None
    if not isinstance(record, dict) or "prompt" not in record:
        raise DataError(f"{path}:{i}: expected a JSON object with a 'prompt' field, got {line.strip()[:80]!r}")
    prompt = record["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise DataError(f"{path}:{i}: 'prompt' must be non-empty text, got {prompt!r}")
    return prompt


# --- evaluate -----------------------------------------------------------------------------

def _check_router_names(names: Sequence[str]) -> None:
    """Fail on a misspelt router before any benchmark is loaded."""
    from .errors import UnknownRouterError
    from .routers import available_routers

    unknown = [n for n in names if n not in available_routers() and not Path(n).is_dir()]
    if unknown:
        raise UnknownRouterError(f"unknown router(s) {unknown}: use {available_routers()} or a checkpoint folder")


@app.command(cls=Command, **_help(
    "APGR / CPT table and cost-quality plot on the paper's benchmarks, or on your own outcomes.\n\n"
    "--outcomes takes a CSV/JSONL file with columns prompt, strong, weak (each model's outcome on "
    "the prompt); name the two models with --strong-model and --weak-model.",
    "routellm evaluate --routers random length mf --benchmark all --output evaluation/",
    "routellm evaluate --routers mf --benchmark mt-bench --quiet",
    "routellm evaluate --routers length mf --outcomes my_pair.csv --strong-model gpt-4o --weak-model gpt-4o-mini"))
def evaluate(routers: Annotated[list[str], typer.Option(help="Routers (names or checkpoint folders), one or more "
                                                             "after the flag.", metavar="ROUTER...")] = [
                 "random", "length", "mf"],
             benchmark: Annotated[str, typer.Option(help="mt-bench, mmlu, gsm8k or all.")] = "all",
             outcomes: Annotated[Optional[Path], typer.Option(
                 help="Instead of a benchmark: a CSV/JSONL file of prompt,strong,weak.", show_default=False,
                 **InputFile)] = None,
             data_dir: Annotated[Optional[Path], typer.Option(
                 help="The data folder.", show_default="$ROUTELLM_DATA_DIR", exists=True,
                 file_okay=False)] = None,
             output: Annotated[Path, typer.Option(help="Folder for the plots.", file_okay=False)] = Path("evaluation"),
             strong_model: Annotated[Optional[str], typer.Option(
                 help="With --outcomes: the model of the 'strong' column.", show_default=False)] = None,
             weak_model: Annotated[Optional[str], typer.Option(
                 help="With --outcomes: the model of the 'weak' column.", show_default=False)] = None,
             quiet: Quiet = False) -> None:
    from .evaluation.benchmarks import canonical_name
    from .evaluation.run import run_evaluation

    if outcomes is None and (strong_model or weak_model):
        raise _usage("'--strong-model' / '--weak-model'",
                     "they name the models of an --outcomes file; a benchmark's models are fixed")
    if outcomes is None and benchmark != "all":
        canonical_name(benchmark)
    _check_router_names(routers)

    names = {k: v for k, v in (("strong_model", strong_model), ("weak_model", weak_model)) if v}
    run_evaluation(routers, benchmark, data_dir=data_dir, output=output,
                   pair_file=None if outcomes is None else str(outcomes), progress=_bars(quiet), **names)


# --- train ----------------------------------------------------------------------------------

def _flag(field: str) -> str:
    return "--" + _FLAG_OF_FIELD.get(field, field).replace("_", "-")


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "."


def _train_command(name: str) -> Callable[..., None]:
    """``routellm train NAME``: the common options, then one option per field of the
    trainer's config (its description is the help, its default is shown), so a new
    trainer gets its command from its config alone."""
    from .training.pipeline import DEFAULT_SOURCES
    from .training.registry import TRAINERS

    spec = TRAINERS[name]
    fields = {f: info for f, info in spec.config.model_fields.items() if f != "seed"}
    takes_embedder = isinstance(spec.default_embedder, str)

    def command(**kw: Any) -> None:
        from .training import pipeline

        options = {f: kw.pop(f) for f in fields}
        extra = {k: kw.pop(k) for k in spec.embedder_options if kw.get(k) is not None}
        sources = kw["sources"]
        chosen = DEFAULT_SOURCES if sources is None else tuple(s for s in sources if s != "none")
        config = pipeline.build_config(spec, None, kw["seed"], label=_flag, **options)  # a bad value names its flag
        # train() checks every other argument, then the data folder, before reading any data
        pipeline.train(spec, out=kw["out"], data_dir=kw["data_dir"], sources=chosen, battles_files=kw["battles"] or (),
                       scores_files=kw["scores"] or (),
                       seed=kw["seed"], max_prompts_per_source=kw["max_prompts_per_source"],
                       embedder=kw.get("embedder"), config=config, evaluate=not kw["no_evaluate"],
                       validate=not kw["no_validate"], progress=not kw["quiet"], **extra)

    P = inspect.Parameter
    params = [
        P("out", P.KEYWORD_ONLY, annotation=Annotated[Path, typer.Option(
            help="Checkpoint folder to write.", file_okay=False, show_default=False)]),
        P("data_dir", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[Path], typer.Option(
            help="The data folder.", show_default="$ROUTELLM_DATA_DIR", exists=True, file_okay=False)]),
        P("sources", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[list[str]], typer.Option(
            help="Public training sources, one or more after the flag; add alpaca_eval for judge data; 'none' "
                 "to train on --battles/--scores only.", show_default=" ".join(DEFAULT_SOURCES),
            metavar="SOURCE...")]),
        P("battles", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[list[Path]], typer.Option(
            help="Your own battles: CSV/JSONL files with prompt, model_a, model_b, winner (a|b|tie).",
            show_default=False, metavar="FILE...", **InputFile)]),
        P("scores", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[list[Path]], typer.Option(
            help="Graded answers of your own traffic: CSV/JSONL files with prompt, model, score (0..1); the "
                 "quality router learns which model gets your prompts right, other routers the battles they imply.",
            show_default=False, metavar="FILE...", **InputFile)]),
        P("seed", P.KEYWORD_ONLY, default=0, annotation=Annotated[int, typer.Option(min=0, help="Random seed.")]),
        P("max_prompts_per_source", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[int], typer.Option(
            min=1, help="Subsample each source (for quick runs and tests).", show_default="all")]),
    ]
    if takes_embedder:
        params.append(P("embedder", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[str], typer.Option(
            help="Embedding space the router is trained and served in.", show_default=spec.default_embedder)]))
    for option, default in spec.embedder_options.items():
        params.append(P(option, P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[type(default)],
                        typer.Option(help=f"Option of the default feature extractor ({option}).",
                                     show_default=str(default))]))
    for field, info in fields.items():
        shown = info.default if info.default is not None else "none"
        if isinstance(shown, (list, tuple)):
            shown = " ".join(map(str, shown)) or "none"
        # an option left out is None: the config's own default stands
        params.append(P(field, P.KEYWORD_ONLY, default=None, annotation=Annotated[
            Optional[info.annotation], typer.Option(_flag(field), help=_sentence(info.description or field),
                                                       show_default=str(shown))]))
    params += [
        P("no_evaluate", P.KEYWORD_ONLY, default=False, annotation=Annotated[bool, typer.Option(
            "--no-evaluate", help="Skip the benchmark evaluation in the model card.")]),
        P("no_validate", P.KEYWORD_ONLY, default=False, annotation=Annotated[bool, typer.Option(
            "--no-validate", help="Skip the validation on held-out pool prompts.")]),
        P("quiet", P.KEYWORD_ONLY, default=False, annotation=Quiet),
    ]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = name
    return command


train_app = typer.Typer(name="train", rich_markup_mode=None, no_args_is_help=True)
app.add_typer(train_app, name="train", **_help(
    "Train a router from the preference data and write its checkpoint folder.\n\n"
    "One command per trainable router; its options come from the trainer's config. "
    "Every option is checked before any data is read. Progress goes to stderr, one line per stage "
    "(--quiet: none).\n\n"
    "The training data is decontaminated against the ~15,400 benchmark prompts with exact MiniLM "
    "(the paper's rule). The first run on a machine embeds them once: about 600 CPU-seconds, 5-6 "
    "minutes on 2 cores, whatever the options. They go to the embedding cache ($ROUTELLM_CACHE_DIR, "
    "else the user's cache folder) 512 at a time, so an interrupted run keeps what it finished and "
    "later runs skip it. The sw_ranking example below is the quick one: seconds once that cache is "
    "warm.",
    "routellm train mf --out my_router/", "routellm train mf --out my_router/ --battles my_battles.csv",
    "routellm train quality --out mine/ --sources none --scores graded.csv",
    "routellm train sw_ranking --out sw/ --sources routerbench --max-prompts-per-source 200 --no-evaluate"
    "   # quick",
    "routellm train bert --out bert/ --epochs 3 --no-validate"))


def _add_train_commands() -> None:
    from .routers.registry import trainable_routers

    for name in trainable_routers():
        train_app.command(name, cls=Command, **_help(
            f"Train the {name} router and write its checkpoint folder.\n\n"
            "Every option is checked before any data is read.",
            f"routellm train {name} --out my_router/",
            f"routellm train {name} --out my_router/ --battles my_battles.csv",
            f"routellm train {name} --out quick/ --sources routerbench --max-prompts-per-source 200 --no-evaluate"),
        )(_train_command(name))


_add_train_commands()


# --- adapt, label, rescore --------------------------------------------------------------------

LabelFiles = dict(show_default=False, **InputFile)


@app.command(cls=Command, **_help(
    "Adapt a router to your own labelled prompts (guarded by cross-validation).\n\n"
    "Give the labels with --outcomes, --battles and/or --from-store; the folder written serves the "
    "adapted router only where it beats the base router on your labels.",
    "routellm adapt --router mf --from-store labels.sqlite --out my_router/",
    "routellm adapt --router mf --outcomes graded.csv --out my_router/",
    "routellm adapt --battles battles.jsonl --out my_router/ --folds 10"))
def adapt(ctx: typer.Context, out: Annotated[Path, typer.Option(help="Router folder to write (load_router(folder) serves it).",
                                            file_okay=False, show_default=False)],
          router: Annotated[str, typer.Option(help="The base router: a name or a checkpoint folder.")] = ADAPT_BASE,
          strong_model: StrongModel = None, weak_model: WeakModel = None,
          outcomes: Annotated[Optional[list[Path]], typer.Option(
              help="CSV/JSONL files of prompt,strong,weak (any scale), one or more.", metavar="FILE...",
              **LabelFiles)] = None,
          battles: Annotated[Optional[list[Path]], typer.Option(
              help="CSV/JSONL files of prompt,model_a,model_b,winner, one or more.", metavar="FILE...",
              **LabelFiles)] = None,
          from_store: Annotated[Optional[Path], typer.Option(
              help="A label store (SQLite) written by routellm label or shadow sampling.", **LabelFiles)] = None,
          folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 5,
          confidence: Annotated[float, typer.Option(
              **UNIT, help="Share of bootstrap resamples the adapted head must win over the fallback to "
                                    "be served.")] = 0.75,
          base_confidence: Annotated[float, typer.Option(
              **UNIT, help="Share of bootstrap resamples the base router must win over prompt length to "
                                    "be the fallback.")] = 0.9,
          seed: Annotated[int, typer.Option(min=0, help="Random seed.")] = 0,
          quiet: Quiet = False) -> None:
    from .adaptation import adapt_router
    from .errors import DataError

    if not (outcomes or battles or from_store):
        raise DataError("give your labels: --outcomes FILE, --battles FILE and/or --from-store PATH")
    result = adapt_router(_load(router, strong_model, weak_model), outcomes=outcomes, battles=battles,
                          store=from_store, strong_model=strong_model, weak_model=weak_model, folds=folds,
                          confidence=confidence, base_confidence=base_confidence, seed=seed, progress=not quiet)
    command = shlex.join(["routellm", "adapt", *ctx.meta.get("routellm.argv", [])])
    saved = result.save(out, command=command)
    print(result.report.summary(), file=sys.stderr)
    print(json.dumps({"out": str(saved), "serves": result.report.serves, "n_labels": result.report.n_labels,
                      "candidates": [c.model_dump() for c in result.report.candidates],
                      "seconds": round(result.report.seconds, 2)}))


def _label_spec(provider: str, model: str, base_url: str | None, key_env: str | None, *,
                temperature: float | None = None):
    from .scale.label import ClientSpec

    return ClientSpec(provider, model, base_url, key_env, temperature)  # type: ignore[arg-type]


Engine = Annotated[Literal["local", "ray"], typer.Option(
    help="ray: run on Ray Data workers (the [ray] extra).")]
Workers = Annotated[Optional[int], typer.Option(min=1, help="ray: number of workers.",
                                                show_default="the cluster's CPUs")]


@app.command(cls=Command, **_help(
    "Label your prompts: a judge model compares both backends' answers (both orders), into a label store.\n\n"
    "Prints the report as JSON, and a one-line summary on stderr (judged prompts: parsed verdicts, "
    "ties, unparsable). A judgment without [[A]], [[B]] or [[C]] is never a tie and never stored: the "
    "prompt stays unlabelled. Exit status 1 when some prompts failed or got no readable verdict (they "
    "are in the report, and a rerun retries only them, reusing the answers already paid for); when "
    "most verdicts are unreadable the run stops early with an error showing one example. A missing "
    "API key or an unpriceable --max-usd fails before any call.",
    "routellm label --prompts mine.jsonl --store labels.sqlite --strong-model gpt-4o --weak-model gpt-4o-mini",
    "routellm label --prompts log.jsonl --store labels.sqlite --strong-model gpt-4o --weak-model gpt-4o-mini "
    "--engine ray --workers 8 --max-usd 5"))
def label(prompts: PromptsFile,
          store: Annotated[Path, typer.Option(help="The SQLite label store to write (created if missing).",
                                              dir_okay=False, show_default=False)],
          strong_model: Annotated[str, typer.Option(help="The strong model.", show_default=False)],
          weak_model: Annotated[str, typer.Option(help="The weak model.", show_default=False)],
          judge: Annotated[Optional[str], typer.Option(help="The judge model.",
                                                       show_default="the strong model")] = None,
          base_url: Annotated[Optional[str], typer.Option(help="An OpenAI-compatible server.",
                                                          show_default="the SDK's")] = None,
          provider: Annotated[Literal["openai", "anthropic"], typer.Option(
              help="The API the models are called through.")] = "openai",
          api_key_env: Annotated[Optional[str], typer.Option(
              help="Environment variable holding the API key.",
              show_default="OPENAI_API_KEY / ANTHROPIC_API_KEY")] = None,
          max_usd: Annotated[Optional[float], typer.Option(help="Cap on what this run spends, in USD.",
                                                           show_default="no cap")] = None,
          concurrency: Annotated[int, typer.Option(min=1, help="Prompts labelled at once.")] = 8,
          max_answer_tokens: Annotated[int, typer.Option(min=1, help="Output cap of each backend answer.")] = 1024,
          battles_out: Annotated[Optional[Path], typer.Option(
              help="Also write the pair's labels as a battles .jsonl file.", dir_okay=False,
              show_default=False)] = None,
          engine: Engine = "local", workers: Workers = None, quiet: Quiet = False) -> None:
    from .budgets import Budget
    from .errors import BudgetConfigError, JudgeVerdictError
    from .labelling import export_battles, label_prompts
    from .labels import LabelStore

    if max_usd is not None and not (max_usd > 0 and max_usd != float("inf")):
        raise BudgetConfigError(f"--max-usd must be a positive number of USD, got {max_usd}")
    specs = [_label_spec(provider, strong_model, base_url, api_key_env),
             _label_spec(provider, weak_model, base_url, api_key_env),
             _label_spec(provider, judge or strong_model, base_url, api_key_env,
                         temperature=0.0)]  # MT-Bench judges at temperature 0
    strong, weak, judge_client = (spec.build() for spec in specs)  # a missing key fails here, before any work
    texts = read_prompts(prompts) if engine == "local" else None  # a bad file fails before the store is made
    with LabelStore(store) as labels:
        if texts is None:  # a large log: Ray Data workers label batches into the same store
            from .scale.label import label_log

            report = label_log(prompts, store=store, strong=specs[0], weak=specs[1], judge=specs[2],
                               engine="ray", num_workers=workers, max_usd=max_usd,
                               concurrency=concurrency, max_answer_tokens=max_answer_tokens)
        else:
            budget = Budget(max_usd=max_usd) if max_usd is not None else None
            try:
                report = label_prompts(texts, strong=strong, weak=weak, judge=judge_client, store=labels,
                                       budget=budget, concurrency=concurrency, max_answer_tokens=max_answer_tokens,
                                       progress=not quiet)
            except JudgeVerdictError as exc:  # the report still goes out, then the error line
                if exc.report is not None:
                    print(exc.report.model_dump_json(indent=2))  # type: ignore[attr-defined]
                raise
        print(report.model_dump_json(indent=2))
        if not quiet:
            typer.echo(f"routellm label: {report.summary()}", err=True)
        if battles_out:
            n = export_battles(labels, battles_out, strong_model, weak_model)
            if not quiet:
                typer.echo(f"routellm label: wrote {n} battles to {battles_out}", err=True)
    if report.n_failed or report.n_unparsable:
        raise typer.Exit(1)


@app.command(cls=Command, **_help(
    "Score a large traffic log (JSONL/CSV with 'prompt') into a JSONL of row, id, score, route.\n\n"
    "Locally (streamed, with a progress bar) or on Ray; prints the summary as JSON. The threshold is "
    "--threshold, or the one that sends --strong-fraction of the log strong.",
    "routellm rescore --router mf --log traffic.jsonl --out scores.jsonl --strong-fraction 0.3",
    "routellm rescore --router my_router/ --log traffic.csv --out scores.jsonl --engine ray --workers 8"))
def rescore(log: Annotated[Path, typer.Option(help="The traffic log: .jsonl (one object per line) or .csv (header).",
                                              show_default=False, **InputFile)],
            out: Annotated[Path, typer.Option(help="The JSONL file to write.", dir_okay=False, show_default=False)],
            router: Router = "mf", strong_model: StrongModel = None, weak_model: WeakModel = None,
            engine: Engine = "local",
            threshold: Annotated[Optional[float], typer.Option(**UNIT, help="Route strong when score >= "
                                                               "this.", show_default="0.5")] = None,
            strong_fraction: Annotated[Optional[float], typer.Option(
                **UNIT, help="Instead: the threshold that sends this share of the log strong.",
                show_default=False)] = None,
            workers: Workers = None,
            batch_size: Annotated[int, typer.Option(min=1, help="Prompts per scoring call.")] = 256,
            quiet: Quiet = False) -> None:
    from .scale.rescore import rescore_log

    if threshold is not None and strong_fraction is not None:
        raise _usage("'--threshold' / '--strong-fraction'", "give one, not both")
    summary = rescore_log(router, log, out, engine=engine, threshold=threshold, strong_fraction=strong_fraction,
                          batch_size=batch_size, num_workers=workers, progress=_bars(quiet),
                          router_options=_router_options(router, strong_model, weak_model))
    print(summary.model_dump_json())


# --- serve ----------------------------------------------------------------------------------

def _register_serve() -> None:
    from .server.cli import SERVE_HELP, serve_command

    app.command("serve", cls=Command, **_help(*SERVE_HELP))(serve_command)


_register_serve()


def main(argv: Sequence[str] | None = None) -> int:
    """The ``routellm`` console script; returns the exit status (0 ok, 1 error, 2 usage)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        typer.main.get_command(app)(args=list(sys.argv[1:] if argv is None else argv), prog_name="routellm")
    except SystemExit as exc:  # click's standalone mode always ends in one
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
