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
    "routellm evaluate --routers length mf --outcomes my_pair.csv --strong-model gpt-4o --weak-model gpt-4o-mini",
    "routellm evaluate --routers length mf --benchmark gsm8k --cascade checks --price-ratio 4 16",
    "routellm evaluate --routers length my-router --outcomes answers.csv --cascade my-router"))
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
             cascade: Annotated[Optional[str], typer.Option(
                 help="Evaluate, beside the routers, a cascade that checks the cheap model's answer: 'checks' "
                      "(the zero-label checks) or a folder `routellm adapt` wrote with a verifier. Needs answers: --outcomes with a "
                      "weak_answer column, or --benchmark gsm8k, mt-bench or routerbench/<arc_challenge|mbpp|"
                      "winogrande>. Prints, per set, one table of the routers, the cascade and the hybrids against "
                      "the strong share and against total cost (the cheap call always paid), instead of the "
                      "router table and plots.", metavar="checks|DIR",
                 show_default=False)] = None,
             price_ratio: Annotated[list[float], typer.Option(
                 help="With --cascade: strong/weak price ratios to report cost-normalised APGR at.",
                 metavar="R...")] = [4.0, 16.0],
             quiet: Quiet = False) -> None:
    from ..evaluation.benchmarks import canonical_name
    from ..evaluation.run import run_evaluation

    if outcomes is None and (strong_model or weak_model):
        raise _usage("'--strong-model' / '--weak-model'",
                     "they name the models of an --outcomes file; a benchmark's models are fixed")
    if cascade is not None:
        _check_router_names(routers)
        _evaluate_cascade(cascade, routers, benchmark, outcomes, data_dir, price_ratio, strong_model, weak_model,
                          quiet)
        return
    if outcomes is None and benchmark != "all":
        canonical_name(benchmark)
    _check_router_names(routers)

    names = {k: v for k, v in (("strong_model", strong_model), ("weak_model", weak_model)) if v}
    run_evaluation(routers, benchmark, data_dir=data_dir, output=output,
                   pair_file=None if outcomes is None else str(outcomes), progress=_bars(quiet), **names)


def _evaluate_cascade(check: str, routers: Sequence[str], benchmark: str, outcomes: Optional[Path],
                      data_dir: Optional[Path], ratios: Sequence[float], strong_model: Optional[str],
                      weak_model: Optional[str], quiet: bool) -> None:
    """The cascade's table beside the routers' (see evaluation.cascade_run)."""
    import os

    from ..evaluation.answers import load_answer_outcomes, load_answer_set
    from ..evaluation.cascade_run import cascade_report, print_cascade_report
    from ..evaluation.run import score_in_batches, with_disk_cache
    from ..routers import load_router

    bad = [r for r in ratios if not r > 1.0]
    if bad:
        raise _usage("'--price-ratio'", f"a strong/weak price ratio must exceed 1 (the strong call dearer), got {bad}")
    if check != "checks" and not Path(check).is_dir():
        raise _usage("'--cascade'", f"{check!r} is neither 'checks' nor a folder (a verifier `routellm adapt` wrote)")
    if outcomes is not None:
        names = {k: v for k, v in (("strong_model", strong_model), ("weak_model", weak_model)) if v}
        sets = [load_answer_outcomes(outcomes, **names)]
    elif benchmark == "all":
        sets = [load_answer_set(b, data_dir) for b in ("gsm8k", "mt-bench")]  # the paper's sets with answers
    else:
        sets = [load_answer_set(benchmark, data_dir)]
    for answers in sets:
        prompts = list(answers.prompts)
        scores = {(Path(r).name if os.sep in str(r) else str(r)): score_in_batches(
            with_disk_cache(load_router(r)), prompts, desc=f"{r} on {answers.name}", progress=_bars(quiet))
            for r in routers}
        print_cascade_report(answers, cascade_report(answers, scores, check=check, ratios=ratios))
