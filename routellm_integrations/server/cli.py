"""``routellm serve``: run the OpenAI-compatible routing server.

    routellm serve --strong openai:gpt-4o --weak openai:gpt-4o-mini --router mf \\
        --host 127.0.0.1 --port 6060 --db sqlite:///routing.sqlite [--workers 4] [--config server.yaml]

Flags override the config file. ``--workers N`` runs N uvicorn worker processes (each
builds the app from ``ROUTELLM_SERVER_CONFIG``, the configuration as JSON) with
prometheus-client's multiprocess mode, so ``/metrics`` sums every worker; share budgets
and usage between them with ``--db sqlite:///...`` or ``--state redis://...``.
SIGTERM/SIGINT shut down gracefully: requests in flight finish (up to
``--graceful-timeout`` seconds) and their costs are recorded before the store closes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from .config import CONFIG_ENV, ServerConfig, load_config

__all__ = ["add_serve_parser", "cmd_serve", "config_from_args", "main", "serve"]


def add_serve_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to a ``routellm`` sub-parser set (``parser.add_subparsers(...)``)."""
    p = sub.add_parser("serve", help="an OpenAI-compatible routing server (POST /v1/chat/completions)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="a YAML or TOML file: routes, budgets, client keys, providers")
    p.add_argument("--strong", default=None, help="strong backend, provider:model (default openai:gpt-4o)")
    p.add_argument("--weak", default=None, help="weak backend, provider:model (default openai:gpt-4o-mini)")
    p.add_argument("--router", action="append", default=None, dest="routers",
                   help="a router router-<name>-<threshold> may name (repeat for several; default mf)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float, default=None, help="the threshold /v1/models advertises (default 0.5)")
    g.add_argument("--strong-fraction", type=float, default=None,
                   help="instead: advertise router-<name>-share<fraction> (a held share of strong calls)")
    p.add_argument("--host", default=None, help="default 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default 6060")
    p.add_argument("--db", "--state", dest="state", default=None,
                   help="routing state: memory:// (default), sqlite:///routing.sqlite or redis://host:6379/0")
    p.add_argument("--workers", type=int, default=None, help="uvicorn worker processes (default 1)")
    p.add_argument("--log-level", default=None, choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    p.add_argument("--graceful-timeout", type=float, default=None, dest="graceful_timeout_s",
                   help="seconds shutdown waits for requests in flight (default 30)")
    p.set_defaults(func=cmd_serve)
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    overrides = {k: getattr(args, k, None) for k in ("strong", "weak", "routers", "threshold", "strong_fraction",
                                                     "host", "port", "state", "workers", "log_level",
                                                     "graceful_timeout_s")}
    if getattr(args, "no_access_log", False):
        overrides["access_log"] = False
    return load_config(args.config, **overrides)


def serve(config: ServerConfig) -> None:
    """Run the server until SIGINT/SIGTERM (then shut down gracefully)."""
    import uvicorn

    options: dict[str, Any] = dict(host=config.host, port=config.port, log_level=config.log_level,
                                   access_log=config.access_log, timeout_graceful_shutdown=config.graceful_timeout_s)
    if config.workers > 1:
        from .app import build_client

        build_client(config)  # fail here, in the parent, on a bad backend or a missing key
        os.environ[CONFIG_ENV] = config.to_env_json()
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="routellm-metrics-")
        uvicorn.run("routellm_integrations.server.app:create_app_from_env", factory=True, workers=config.workers,
                    **options)
        return
    from .app import create_app

    uvicorn.run(create_app(config), **options)


def cmd_serve(args: argparse.Namespace) -> int:
    """``routellm serve``: configuration errors are reported as ``RouteLLMError`` (exit 2)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    serve(config_from_args(args))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m routellm_integrations.server ...``: ``routellm serve`` with the same flags
    (the ``routellm`` command's entry point, so errors and defaults are the same)."""
    from ..cli import main as routellm

    return routellm(["serve", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
