"""``routellm evaluate``: APGR / CPT tables and plots on the benchmarks or your outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import Command, InputFile, Quiet, _bars, _help, _usage, app


def _check_router_names(names: Sequence[str]) -> None:
    """Fail on a misspelt router before any benchmark is loaded."""
    from ..errors import UnknownRouterError
    from ..routers import available_routers

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
    from ..evaluation.benchmarks import canonical_name
    from ..evaluation.run import run_evaluation

    if outcomes is None and (strong_model or weak_model):
        raise _usage("'--strong-model' / '--weak-model'",
                     "they name the models of an --outcomes file; a benchmark's models are fixed")
    if outcomes is None and benchmark != "all":
        canonical_name(benchmark)
    _check_router_names(routers)

    names = {k: v for k, v in (("strong_model", strong_model), ("weak_model", weak_model)) if v}
    run_evaluation(routers, benchmark, data_dir=data_dir, output=output,
                   pair_file=None if outcomes is None else str(outcomes), progress=_bars(quiet), **names)
