"""The SDKs' aiohttp transport (``httpx-aiohttp``), handing over what arrived before a cut.

Why: aiohttp's ``StreamReader`` raises a connection cut (``ClientPayloadError``) on the next
read even while bytes that arrived before the cut are still in its buffer. A provider stream
cut after three words then reached the engine as a stream cut before any word: the call
settled ``failed`` at $0, where over httpx the same stream delivers its three words and
settles ``cut``, billed for its input and those words. This transport yields the buffered
bytes first, then raises the cut as ``httpx-aiohttp`` does (``httpx.ReadError``).

The buffer is aiohttp's own (``StreamReader._read_nowait``, private): if a later aiohttp
changes it, nothing extra is handed over and the cut is raised as before; a test with a real
cut stream over aiohttp fails then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp.transport import AiohttpResponseStream, AiohttpTransport, map_aiohttp_exceptions


def _buffered(reader: Any) -> bytes:
    """The bytes ``reader`` received before its error, or ``b""`` where aiohttp keeps none
    (or keeps them where this does not know to look)."""
    try:
        return reader._read_nowait(-1) if getattr(reader, "_buffer", None) else b""
    except Exception:  # an aiohttp whose internals moved: hand over nothing, as before
        return b""


class KeepReceivedStream(AiohttpResponseStream):
    """A response body that yields what was received before raising a cut."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._aiohttp_response.content
        with map_aiohttp_exceptions():
            try:
                async for chunk in content.iter_chunked(self.CHUNK_SIZE):
                    yield chunk
            except aiohttp.ClientPayloadError:
                rest = _buffered(content)
                if rest:
                    yield rest
                raise


class KeepReceivedTransport(AiohttpTransport):
    """``httpx-aiohttp``'s transport whose response bodies are :class:`KeepReceivedStream`."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        stream = response.stream
        if isinstance(stream, AiohttpResponseStream):
            response.stream = KeepReceivedStream(stream._aiohttp_response)
        return response


def aiohttp_client(sdk: Any) -> Any:
    """The SDK's ``DefaultAioHttpClient`` over :class:`KeepReceivedTransport`, with the
    connection limits the SDK gives its default aiohttp transport."""
    limits = getattr(getattr(sdk, "_constants", None), "DEFAULT_CONNECTION_LIMITS", None)
    transport = KeepReceivedTransport(**({"limits": limits} if isinstance(limits, httpx.Limits) else {}))
    return sdk.DefaultAioHttpClient(transport=transport)
