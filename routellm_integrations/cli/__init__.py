"""The routellm command: route, demo, calibrate, evaluate, train, adapt, label, rescore, serve.

One module per command (``route.py`` holds route and demo), over :mod:`.common` (the typer
app, its one-line errors, the options several commands share). Importing this package
registers every command on ``app``; :func:`main` is the console script.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from . import adapt, calibrate, evaluate, label, rescore, route, train  # noqa: F401 - each registers its command
from .common import Command, _help, app, read_prompts
from .route import DEMO_PROMPTS
from .serve import SERVE_HELP, serve_command

app.command("serve", cls=Command, **_help(*SERVE_HELP))(serve_command)

__all__ = ["DEMO_PROMPTS", "app", "main", "read_prompts"]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``routellm`` console script; returns the exit status (0 ok, 1 error, 2 usage)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        typer.main.get_command(app)(args=list(sys.argv[1:] if argv is None else argv), prog_name="routellm")
    except SystemExit as exc:  # click's standalone mode always ends in one
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
