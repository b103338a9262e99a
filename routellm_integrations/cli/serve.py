"""``routellm serve``: run the OpenAI-compatible routing server.

    routellm serve --strong openai:gpt-4o --weak openai:gpt-4o-mini --router mf \\
        --host 127.0.0.1 --port 6060 --db sqlite:///routing.sqlite [--workers 4] [--config server.yaml]

Flags override the config file. ``--workers N`` runs N uvicorn worker processes (each
builds the app from ``ROUTELLM_SERVER_CONFIG``, the configuration as JSON) with
prometheus-client's multiprocess mode, so ``/metrics`` sums every worker; share budgets
and usage between them with ``--db sqlite:///...`` or ``--state redis://...``.
SIGTERM/SIGINT shut down gracefully: requests in flight finish (up to
``--graceful-timeout`` seconds) and their costs are recorded before the store closes.
``--max-body-bytes`` caps a request body (default 4 MiB; a larger one is a 413, refused
before it is read whole).

:func:`serve_command` is the typer command the ``routellm`` app registers; every flag is
checked by :class:`~routellm_integrations.server.config.ServerConfig` (a bad one is ``error: ...``, exit status 1).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import typer

from ..server.config import ServerConfig, load_config

__all__ = ["SERVE_HELP", "add_serve_parser", "cmd_serve", "config_from_args", "serve_command"]

#: the command's help (summary, then examples), plain text
SERVE_HELP = (
    "An OpenAI-compatible routing server (POST /v1/chat/completions).\n\n"
    "Flags override the config file. --workers N runs N uvicorn worker processes (each builds the app "
    "from ROUTELLM_SERVER_CONFIG, the configuration as JSON) with prometheus-client's multiprocess mode, "
    "so /metrics sums every worker; share budgets and usage between them with --db sqlite:///... or "
    "--db redis://... . SIGTERM/SIGINT shut down gracefully: requests in flight finish (up to "
    "--graceful-timeout seconds) and their costs are recorded before the store closes.",
    "routellm serve --strong openai:gpt-4o --weak openai:gpt-4o-mini --router mf --port 6060",
    "routellm serve --config server.yaml --workers 4 --db sqlite:///routing.sqlite",
    "routellm serve --router mf --router length --strong-fraction 0.3",
)


def serve_command(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option(
        help="A YAML or TOML file: routes, budgets, client keys, providers.", exists=True, dir_okay=False,
        show_default=False)] = None,
    strong: Annotated[Optional[str], typer.Option(help="Strong backend, provider:model.",
                                                  show_default="openai:gpt-4o")] = None,
    weak: Annotated[Optional[str], typer.Option(help="Weak backend, provider:model.",
                                                show_default="openai:gpt-4o-mini")] = None,
    routers: Annotated[Optional[list[str]], typer.Option(
        "--router", help="A router a router-<name>-share<fraction> model may name (repeat for several).",
        show_default="mf", metavar="ROUTER")] = None,
    threshold: Annotated[Optional[float], typer.Option(
        help="Advertise router-<name>-<threshold> in /v1/models instead of the share.",
        show_default=False)] = None,
    strong_fraction: Annotated[Optional[float], typer.Option(
        help="The share of strong calls /v1/models advertises as router-<name>-share<fraction>, held online.",
        show_default="0.3")] = None,
    host: Annotated[Optional[str], typer.Option(help="Address to listen on.", show_default="127.0.0.1")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port to listen on.", show_default="6060")] = None,
    state: Annotated[Optional[str], typer.Option(
        "--db", "--state", help="Routing state: memory://, sqlite:///routing.sqlite or redis://host:6379/0.",
        show_default="memory://")] = None,
    workers: Annotated[Optional[int], typer.Option(help="uvicorn worker processes.", show_default="1")] = None,
    log_level: Annotated[Optional[Literal["critical", "error", "warning", "info", "debug"]], typer.Option(
        help="uvicorn's log level.",
        show_default="info")] = None,
    no_access_log: Annotated[bool, typer.Option("--no-access-log", help="Do not log every request.")] = False,
    graceful_timeout_s: Annotated[Optional[float], typer.Option(
        "--graceful-timeout", help="Seconds shutdown waits for requests in flight.", show_default="30")] = None,
    max_body_bytes: Annotated[Optional[int], typer.Option(
        "--max-body-bytes", help="The largest request body accepted, in bytes (a larger one is a 413).",
        show_default="4194304")] = None,
) -> None:
    cmd_serve(argparse.Namespace(**ctx.params))


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    """``serve`` on an argparse sub-parser set (``parser.add_subparsers(...)``), with the
    typer command's flags, for callers that build their own parser. Values stay text:
    :class:`~routellm_integrations.server.config.ServerConfig` checks and converts them, as it does the command's."""
    app = typer.Typer()
    app.command()(serve_command)
    p = sub.add_parser("serve", help=SERVE_HELP[0].split("\n")[0], description=SERVE_HELP[0])
    for opt in typer.main.get_command(app).params:
        if opt.param_type_name != "option":
            continue
        kw: dict[str, Any] = {"dest": opt.name, "help": opt.help, "default": None if opt.multiple else opt.default}
        kw["action"] = "store_true" if opt.is_flag else "append" if opt.multiple else "store"
        p.add_argument(*opt.opts, **kw)
    p.set_defaults(func=cmd_serve)
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    overrides = {k: getattr(args, k, None) for k in ("strong", "weak", "routers", "threshold", "strong_fraction",
                                                     "host", "port", "state", "workers", "log_level",
                                                     "graceful_timeout_s", "max_body_bytes")}
    overrides["routers"] = overrides["routers"] or None  # no --router: the config's (or the default)
    if getattr(args, "no_access_log", False):
        overrides["access_log"] = False
    return load_config(args.config, **overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    """``routellm serve``: configuration errors are reported as ``RouteLLMError`` (exit 1)."""
    from ..extras import ensure

    # the [server] extra, checked before the config is read (a .yaml one needs pyyaml)
    ensure("fastapi", "uvicorn", "prometheus_client", "yaml", "openai", extra="server", feature="routellm serve")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from ..server.run import serve

    serve(config_from_args(args))
    return 0
