"""Server-sent events of a routed stream, settled on every exit.

Starlette's ``StreamingResponse`` leaves an iterator unclosed when the client goes away
while a chunk is being sent; this response always closes the routed stream (so the call
settles: finished, cancelled, abandoned or cut) and watches for the client's disconnect
itself, cancelling the pump when it comes.

A stream held back for review (escalation: :attr:`RoutedAsyncStream.holding`) sends its
headers with its first chunk, built then (``headers_of``): they name the call that
answered, after any escalation. A held stream that fails before its first chunk (the
escalated backend refuses or cuts) is answered as an HTTP error, as a whole call is."""

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
                 on_done: Callable[[int], Any] | None = None,
                 headers_of: Callable[[], dict[str, str]] | None = None) -> None:
        self.stream = stream
        self.status_code = 200
        self.background = None
        self.on_done = on_done
        self.headers_of = headers_of
        self.init_headers({**headers, "cache-control": "no-cache", "x-accel-buffering": "no"})
        self._disconnected = False

    async def _watch(self, receive: Receive, pump: "asyncio.Task[None]") -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._disconnected = True
                pump.cancel()
                return

    async def _first(self, send: Send) -> "list[Any] | None":
        """A held stream's first chunk (after its review), then the headers of the call
        that answered; None when it failed first (answered here as an HTTP error)."""
        try:
            first = [await self.stream.__anext__()]
        except StopAsyncIteration:
            first = []
        except Exception as exc:  # noqa: BLE001 - nothing sent yet: an HTTP error, as for a whole call
            err = error_for(exc)
            log.warning("routed stream failed before its first chunk: %s", err.message)
            body = dumps(err.body())
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            named = {**(self.headers_of() if self.headers_of is not None else {}), **err.headers}
            headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in named.items()]
            await send({"type": "http.response.start", "status": err.status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return None
        if self.headers_of is not None:
            self.init_headers({**self.headers_of(), "cache-control": "no-cache", "x-accel-buffering": "no"})
        return first

    async def _pump(self, send: Send) -> None:
        tail = b"data: [DONE]\n\n"
        first: list[Any] = []
        try:
            if getattr(self.stream, "holding", False):
                got = await self._first(send)
                if got is None:
                    return
                first = got
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            for chunk in first:
                await send({"type": "http.response.body", "body": b"data: " + dumps(chunk) + b"\n\n",
                            "more_body": True})
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
