"""Reading server-sent events from an ``httpx`` response: ``(event, data)`` pairs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

try:  # orjson is several times faster on the per-chunk hot path; json works the same
    import orjson as _orjson

    def loads(data: "str | bytes") -> Any:
        return _orjson.loads(data)

    def dumps(obj: Any) -> bytes:
        return _orjson.dumps(obj)
except ImportError:  # pragma: no cover - orjson is optional
    import json as _json

    def loads(data: "str | bytes") -> Any:
        return _json.loads(data)

    def dumps(obj: Any) -> bytes:
        return _json.dumps(obj, separators=(",", ":")).encode()

__all__ = ["aiter_sse", "dumps", "loads", "parse_sse_lines"]


def _flush(event: str | None, data: list[str]) -> tuple[str | None, str] | None:
    return (event, "\n".join(data)) if data else None


async def aiter_sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str | None, str]]:
    """Events of an SSE body given its lines; comments and ids are skipped."""
    event: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            item = _flush(event, data)
            event, data = None, []
            if item is not None:
                yield item
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    item = _flush(event, data)
    if item is not None:
        yield item


def parse_sse_lines(lines: Iterable[str]) -> list[tuple[str | None, str]]:
    """The same as :func:`aiter_sse`, for a body already read (tests, tools)."""
    out: list[tuple[str | None, str]] = []
    event: str | None = None
    data: list[str] = []
    for line in list(lines) + [""]:
        if not line:
            if data:
                out.append((event, "\n".join(data)))
            event, data = None, []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
    return out
