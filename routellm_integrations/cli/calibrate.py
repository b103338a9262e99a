"""``routellm calibrate``: the threshold that sends a share of your prompts strong."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .common import (
    UNIT,
    Command,
    PromptsFile,
    Quiet,
    Router,
    StrongModel,
    WeakModel,
    _bars,
    _help,
    _load,
    app,
    read_prompts,
)

#: below this many prompts a calibrated share says little about the traffic it stands for
MIN_CALIBRATION_PROMPTS = 100


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
    from ..calibration import strong_share, threshold_for_strong_fraction
    from ..evaluation.run import score_in_batches

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
