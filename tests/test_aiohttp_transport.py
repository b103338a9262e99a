"""The SDKs' aiohttp transport hands over the bytes that arrived before a cut stream
(``client.aiohttp_transport``): aiohttp raises the cut on the next read while those bytes are
still in its buffer, so a stream cut after three words looked like one cut before any word."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from httpx_aiohttp.transport import AiohttpTransport

from routellm_integrations.client.aiohttp_transport import KeepReceivedTransport, aiohttp_client

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


async def _cut_server(body: bytes):
    """A server that sends the head and ``body`` (chunked, without the last chunk), then
    drops the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD + f"{len(body):x}\r\n".encode() + body + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


async def _read_after_the_cut(transport: httpx.AsyncBaseTransport, url: str) -> bytes:
    got = b""
    async with httpx.AsyncClient(transport=transport) as client:
        async with client.stream("GET", url) as response:
            await asyncio.sleep(0.3)  # the cut arrives before the consumer reads
            with pytest.raises(httpx.ReadError):
                async for chunk in response.aiter_raw():
                    got += chunk
    return got


async def test_the_bytes_before_a_cut_are_handed_over_then_the_cut_raised():
    body = b'data: {"choices": [{"delta": {"content": "Tom has twelve "}}]}\n\n'
    server, url = await _cut_server(body)
    async with server:
        assert await _read_after_the_cut(KeepReceivedTransport(), url) == body
        # the transport it replaces loses them (if httpx-aiohttp stops doing so, this wrapper can go)
        assert await _read_after_the_cut(AiohttpTransport(), url) == b""


def test_the_sdk_client_uses_it_with_the_sdks_limits():
    client = aiohttp_client(openai)
    transport = client._transport
    assert isinstance(transport, KeepReceivedTransport)
    assert transport.limits == openai._constants.DEFAULT_CONNECTION_LIMITS
