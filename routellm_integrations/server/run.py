"""Running the routing server: uvicorn over the app, one process or N workers.

The ``routellm serve`` command (``routellm_integrations.cli.serve``) reads the flags and the
config file into a :class:`~.config.ServerConfig` and calls :func:`serve`.

**Bounded reads** (issue 25): a client cannot hold a connection (and a worker's socket) open
by sending slowly. The server speaks HTTP/1.1 through h11 with :class:`BoundedH11Protocol`:

- ``ROUTELLM_HTTP_HEADER_TIMEOUT_S`` (default 10 s): a request's headers must arrive whole
  within this long of the connection opening (or of the previous response); else the
  connection is closed. An idle keep-alive connection is closed after
  ``ROUTELLM_HTTP_KEEP_ALIVE_S`` (default 5 s, uvicorn's ``timeout_keep_alive``).
- ``ROUTELLM_HTTP_BODY_TIMEOUT_S`` (default 60 s): once the headers are in, the body must
  arrive whole within this long; else the connection is closed (the app sees the client
  disconnect; nothing was routed or billed yet).
- ``ROUTELLM_HTTP_MAX_HEADER_BYTES`` (default 64 KiB, h11's ``max_incomplete_event_size``):
  larger request headers are answered 400 and the connection closed.

A response the server is writing (a long stream) is never cut by these: they bound reading
the request only. The environment carries them to every worker.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from typing import Any

from .config import CONFIG_ENV, ServerConfig

__all__ = ["BoundedH11Protocol", "http_limits", "serve"]

log = logging.getLogger("routellm_integrations.server")

_LIMITS = {"header_timeout_s": ("ROUTELLM_HTTP_HEADER_TIMEOUT_S", 10.0),
           "body_timeout_s": ("ROUTELLM_HTTP_BODY_TIMEOUT_S", 60.0),
           "keep_alive_s": ("ROUTELLM_HTTP_KEEP_ALIVE_S", 5.0),
           "max_header_bytes": ("ROUTELLM_HTTP_MAX_HEADER_BYTES", 64 * 1024)}


def http_limits() -> dict[str, float]:
    """The read limits in force (the environment, else the defaults); a value that is not a
    positive number raises ``ValueError`` naming its variable."""
    out: dict[str, float] = {}
    for name, (env, default) in _LIMITS.items():
        raw = os.environ.get(env)
        try:
            value = float(raw) if raw not in (None, "") else float(default)
        except ValueError:
            value = float("nan")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{env} must be a positive number, got {raw!r}")
        out[name] = value
    return out


def _protocol_base() -> type:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


class _Lazy(type):
    """Builds :class:`BoundedH11Protocol` over uvicorn's h11 protocol on first use (this
    module imports without the server extra)."""

    _built: type | None = None

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if _Lazy._built is None:
            _Lazy._built = _build_protocol()
        return _Lazy._built(*args, **kwargs)


class BoundedH11Protocol(metaclass=_Lazy):
    """uvicorn's h11 protocol with a deadline on reading each request's headers and body
    (see the module's documentation). Pass as ``uvicorn.run(..., http=BoundedH11Protocol)``."""


def _build_protocol() -> type:
    base = _protocol_base()
    limits = http_limits()

    class _Bounded(base):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._read_timer: Any = None
            self._reading: str | None = None
            self._armed_for: Any = None
            self._arm("headers", None)

        def _arm(self, what: str, cycle: Any) -> None:
            self._disarm()
            self._reading, self._armed_for = what, cycle
            seconds = limits["header_timeout_s"] if what == "headers" else limits["body_timeout_s"]
            self._read_timer = self.loop.call_later(seconds, self._read_timed_out)

        def _disarm(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
            self._read_timer, self._reading = None, None

        def _read_timed_out(self) -> None:
            self._read_timer = None
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if self._reading == "headers" and cycle is not self._armed_for and cycle is not None:
                return  # a request began meanwhile (read by _after_read)
            if self._reading == "body" and (cycle is None or not cycle.more_body):
                return
            log.warning("routellm: closed a connection from %s: its request %s did not arrive within %g s",
                        (self.client or ("?",))[0], self._reading,
                        limits["header_timeout_s"] if self._reading == "headers" else limits["body_timeout_s"])
            self.transport.close()

        def _after_read(self) -> None:
            cycle = self.cycle
            if self._reading == "headers" and cycle is not None and cycle is not self._armed_for:
                if cycle.more_body:
                    self._arm("body", cycle)
                else:
                    self._disarm()
            elif self._reading == "body" and (cycle is None or not cycle.more_body):
                self._disarm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._after_read()

        def on_response_complete(self) -> None:
            done = self.cycle
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm("headers", done)
                self._after_read()  # a pipelined request that super() started

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    _Bounded.__name__ = _Bounded.__qualname__ = "BoundedH11Protocol"
    return _Bounded


def serve(config: ServerConfig) -> None:
    """Run the server until SIGINT/SIGTERM (then shut down gracefully)."""
    from ..extras import require

    uvicorn, _ = require("uvicorn", "fastapi", extra="server", feature="routellm serve")

    limits = http_limits()  # a bad value fails here, before any worker starts
    options: dict[str, Any] = dict(host=config.host, port=config.port, log_level=config.log_level,
                                   access_log=config.access_log, timeout_graceful_shutdown=config.graceful_timeout_s,
                                   http=BoundedH11Protocol, timeout_keep_alive=limits["keep_alive_s"],
                                   h11_max_incomplete_event_size=int(limits["max_header_bytes"]))
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
