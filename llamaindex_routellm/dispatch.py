"""Running one routed call to its end, whatever the end.

The backend answers (priced from its usage, or estimated from its text when it reported
none or nonsense), raises (``failed``; ``cut`` when a stream had delivered text), the
caller's task is cancelled (``cancelled``, e.g. ``asyncio.wait_for`` timing out), or the
caller stops reading a stream (``abandoned``, charged for the text delivered). Each path
is one ``with call:`` block (in a generator too, so ``close()`` settles), so no exit can
skip the settlement and leave a budget reservation behind.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, AsyncGenerator, Awaitable, Callable, Dict, Generator, Iterator

from routellm_integrations.errors import RouteLLMError
from routellm_integrations.routing import RoutedCall

from .usage import usage_report


@contextmanager
def named(call: RoutedCall) -> Iterator[None]:
    """A backend's own exception propagates unchanged, with a note naming the route."""
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, RouteLLMError):
            d = call.decision
            exc.add_note(f"routellm: the {d.route} route ({call.backend.model}) failed "
                         f"(score {d.score}, threshold {d.threshold:.3f})")
        raise


def run(call: RoutedCall, invoke: Callable[[], Any]) -> Any:
    with call, named(call):
        return finish(call, invoke())


async def arun(call: RoutedCall, invoke: Callable[[], Awaitable[Any]]) -> Any:
    async with call:
        with named(call):
            return finish(call, await invoke())


def open_stream(call: RoutedCall, opener: Callable[[], Any]) -> Any:
    """Open the backend's stream now (inside the caller's span); settle if that fails."""
    try:
        with named(call):
            return opener()
    except BaseException as exc:
        call.settle_on_exit(exc)
        raise


async def aopen_stream(call: RoutedCall, opener: Callable[[], Awaitable[Any]]) -> Any:
    try:
        with named(call):
            return await opener()
    except BaseException as exc:
        call.settle_on_exit(exc)
        raise


def relay(call: RoutedCall, stream: Any) -> Generator[Any, None, None]:
    """The backend's chunks, each counted as delivered and stamped with the decision
    (``status="in_flight"``); the last one is stamped with the settled record."""
    in_flight, last = call.preview_record().metadata(), None
    with call, named(call):
        try:
            for last in stream:
                call.delivered(getattr(last, "delta", None))
                yield stamp(last, in_flight)
        finally:  # a stream the caller stopped reading: let the backend drop its connection
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        _finish_stream(call, last)


async def arelay(call: RoutedCall, stream: Any) -> AsyncGenerator[Any, None]:
    in_flight, last = call.preview_record().metadata(), None
    async with call:
        with named(call):
            try:
                async for last in stream:
                    call.delivered(getattr(last, "delta", None))
                    yield stamp(last, in_flight)
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
            _finish_stream(call, last)


def _finish_stream(call: RoutedCall, last: Any) -> None:
    if last is None:
        raise RouteLLMError(f"the {call.route} backend's stream ended without a response")
    finish(call, last, streamed=True)


def finish(call: RoutedCall, response: Any, *, streamed: bool = False) -> Any:
    """Settle an answered call and stamp its record into the response. A streamed
    call's text was counted chunk by chunk."""
    record = call.finish(usage_report(response), text=None if streamed else text_of(response))
    return stamp(response, record.metadata())


def stamp(response: Any, info: Dict[str, Any]) -> Any:
    response.additional_kwargs["routellm"] = info
    if isinstance(response.raw, dict):
        response.raw["routellm"] = info
    return response


def text_of(response: Any) -> str:
    """What the backend wrote, tool calls included (for an estimate when it reported no
    usage)."""
    message = getattr(response, "message", None)
    if message is None:
        return getattr(response, "text", None) or ""
    tool_calls = (message.additional_kwargs or {}).get("tool_calls")
    return (message.content or "") + (str(tool_calls) if tool_calls else "")
