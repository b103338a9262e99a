"""Running the routing server: uvicorn over the app, one process or N workers.

The ``routellm serve`` command (``routellm_integrations.cli.serve``) reads the flags and the
config file into a :class:`~.config.ServerConfig` and calls :func:`serve`.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from .config import CONFIG_ENV, ServerConfig

__all__ = ["serve"]


def serve(config: ServerConfig) -> None:
    """Run the server until SIGINT/SIGTERM (then shut down gracefully)."""
    from ..extras import require

    uvicorn, _ = require("uvicorn", "fastapi", extra="server", feature="routellm serve")

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
