"""``routellm rescore``: score a traffic log, locally or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (
    UNIT,
    Command,
    Engine,
    InputFile,
    Quiet,
    Router,
    StrongModel,
    WeakModel,
    Workers,
    _bars,
    _help,
    _router_options,
    _usage,
    app,
)


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
    from ..scale.rescore import rescore_log

    if threshold is not None and strong_fraction is not None:
        raise _usage("'--threshold' / '--strong-fraction'", "give one, not both")
    summary = rescore_log(router, log, out, engine=engine, threshold=threshold, strong_fraction=strong_fraction,
                          batch_size=batch_size, num_workers=workers, progress=_bars(quiet),
                          router_options=_router_options(router, strong_model, weak_model))
    print(summary.model_dump_json())
