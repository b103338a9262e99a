"""Server-sent events of a routed stream, settled on every exit.

Starlette's ``StreamingResponse`` leaves an iterator unclosed when the client goes away
while a chunk is being sent; this response always closes the routed stream (so the call
settles: finished, cancelled, abandoned or cut) and watches for the client's disconnect
itself, cancelling the pump when it comes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..client.errors import BackendError
from ..client.routed import RoutedAsyncStream
from ..client.sse import dumps
from .errors import error_for

__all__ = ["SSEResponse"]

log = logging.getLogger("routellm.server")


class SSEResponse(Response):
    media_type = "text/event-stream"

    def __init__(self, stream: RoutedAsyncStream, headers: dict[str, str],
                 on_done: Callable[[int], Any] | None = None) -> None:
        self.stream = stream
        self.status_code = 200
        self.background = None
        self.on_done = on_done
        self.init_headers({**headers, "cache-control": "no-cache", "x-accel-buffering": "no"})
        self._disconnected = False

    async def _watch(self, receive: Receive, pump: "asyncio.Task[None]") -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._disconnected = True
                pump.cancel()
                return

    async def _pump(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        tail = b"data: [DONE]\n\n"
        try:
            async for chunk in self.stream:
                await send({"type": "http.response.body", "body": b"data: " + dumps(chunk) + b"\n\n",
                            "more_body": True})
        except BackendError as exc:  # the provider failed mid-stream: an error event, as OpenAI sends
            log.warning("routed stream failed: %s", exc)
            tail = b"data: " + dumps(error_for(exc).body()) + b"\n\n"
        except Exception as exc:  # noqa: BLE001 - reported to the client as an error event
            log.error("routed stream failed: %s: %s", type(exc).__name__, exc)
            tail = b"data: " + dumps(error_for(exc).body()) + b"\n\n"
        finally:
            await asyncio.shield(self.stream.aclose())
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.ensure_future(self._pump(send))
        watch = asyncio.ensure_future(self._watch(receive, pump))
        try:
            await pump
        except asyncio.CancelledError:
            if not self._disconnected:  # the server itself is cancelling this request
                pump.cancel()
                raise
        finally:
            watch.cancel()
            if not pump.done():
                pump.cancel()
            await asyncio.gather(pump, watch, return_exceptions=True)
            if self.on_done is not None:
                self.on_done(499 if self._disconnected else 200)
