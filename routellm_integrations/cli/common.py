"""What every ``routellm`` command shares: the app and its error handling, the options several
commands take, and the prompts-file reader.

Built on typer (click). Every error a user can cause is one line on stderr: a bad invocation
(unknown option, missing argument, a value of the wrong type or out of range, a missing input
file) is a usage error, exit status 2; a problem found while working (an unknown router, a
malformed file, a bad training option, a missing API key) is "error: <message>", exit status 1.
Set ROUTELLM_DEBUG=1 to see the traceback of the latter. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer
from typer.core import TyperCommand


def _expected_errors() -> tuple[type[BaseException], ...]:
    from pydantic import ValidationError

    from ..errors import RouteLLMError

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
        from .. import __version__

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
    from ..routers.registry import is_model_free

    if is_model_free(name):  # nothing to choose between: the names only label the output
        return {}
    return {k: v for k, v in (("strong_model", strong_model), ("weak_model", weak_model)) if v}


def _load(name: str, strong_model: str | None = None, weak_model: str | None = None):
    from ..routers import load_router

    return load_router(name, **_router_options(name, strong_model, weak_model))


def _model_names(router, strong_model: str | None = None, weak_model: str | None = None) -> tuple[str, str]:
    """The pair a router decides between; a model-free router (random, length) has none of
    its own, so it reports the names given, else the pair the shipped routers were trained on."""
    from ..data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL

    return (getattr(router, "strong_model", None) or strong_model or DEFAULT_STRONG_MODEL,
            getattr(router, "weak_model", None) or weak_model or DEFAULT_WEAK_MODEL)


def _usage(flags: str, message: str) -> typer.BadParameter:
    """A usage error (exit status 2) about ``flags``, found after parsing."""
    return typer.BadParameter(message, param_hint=flags)


PromptsFile = Annotated[Path, typer.Option("--prompts", help="A .txt file (one prompt per line) or a .jsonl file "
                                                             "with a 'prompt' field per line.", **InputFile)]
LabelFiles = dict(show_default=False, **InputFile)
Engine = Annotated[Literal["local", "ray"], typer.Option(
    help="ray: run on Ray Data workers (the [ray] extra).")]
Workers = Annotated[Optional[int], typer.Option(min=1, help="ray: number of workers.",
                                                show_default="the cluster's CPUs")]


def read_prompts(path: Path) -> list[str]:
    """One prompt per line (.txt; blank lines skipped), or a JSONL file with a non-empty
    "prompt" text per line. A missing, binary, non-UTF-8 or empty file is a DataError."""
    from ..errors import DataError

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
    from ..errors import DataError

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
