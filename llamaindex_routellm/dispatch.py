"""Running one routed call to its end, whatever the end; with ``escalate_if``, a cascade.

The backend answers (priced from its usage, or estimated from its text when it reported
none or nonsense), raises (``failed``; ``cut`` when a stream had delivered text), the
caller's task is cancelled (``cancelled``, e.g. ``asyncio.wait_for`` timing out), or the
caller stops reading a stream (``abandoned``, charged for the text delivered). Each path
is one ``with call:`` block (in a generator too, so ``close()`` settles), so no exit can
skip the settlement and leave a budget reservation behind.

With a ``review`` (the escalation checks), an answer that fails goes to the next model
up: ``review(call, response, streamed)`` settles the call as ``escalated`` and returns
the handle on the model up, whose own ``with`` block then runs the backend again. A
stream is held back while a model above could still take over (``held(call)``): its
chunks are buffered, the whole answer reviewed, and only an answer that stays is
released, so no chunk of an escalated answer ever reaches the consumer. The top model
streams live. Every call of a cascade settles exactly once, in its own block.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, AsyncGenerator, Awaitable, Callable, Dict, Generator, Iterator, List, Optional

from routellm_integrations.errors import RouteLLMError
from routellm_integrations.routing import RoutedCall

from .usage import usage_report

#: ``review(call, response, streamed) -> call up | None``: None keeps the answer (the call
#: is still open, or already finished when there was no model up)
Review = Callable[[RoutedCall, Any, bool], Optional[RoutedCall]]
Held = Callable[[RoutedCall], bool]


def describe(call: RoutedCall) -> str:
    d = call.decision
    if d.escalated_from is not None:
        why = f"escalated from {d.escalated_from}"
    elif d.threshold is not None:
        why = f"score {d.score}, threshold {d.threshold:.3f}"
    elif d.forced:
        why = "forced"
    else:  # among N models: quality against expected cost
        why = f"quality {d.score}, cost weight {d.cost_weight}"
    return f"the {d.route} route ({call.backend.model}) failed ({why})"


@contextmanager
def named(call: RoutedCall) -> Iterator[None]:
    """A backend's own exception propagates unchanged, with a note naming the route."""
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, RouteLLMError):
            exc.add_note(f"routellm: {describe(call)}")
        raise


def run(call: RoutedCall, invoke: Callable[[RoutedCall], Any], review: Optional[Review] = None) -> Any:
    """The backend of ``call`` answers; reviewed, maybe escalated, until an answer stays."""
    while True:
        with call, named(call):
            response = invoke(call)
            up = review(call, response, False) if review is not None else None
            if up is None:
                return finish(call, response)
        call = up


async def arun(call: RoutedCall, invoke: Callable[[RoutedCall], Awaitable[Any]],
               review: Optional[Review] = None) -> Any:
    while True:
        async with call:
            with named(call):
                response = await invoke(call)
                up = review(call, response, False) if review is not None else None
                if up is None:
                    return finish(call, response)
        call = up


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


def relay(call: RoutedCall, stream: Any, reopen: Optional[Callable[[RoutedCall], Any]] = None,
          review: Optional[Review] = None, held: Optional[Held] = None) -> Generator[Any, None, None]:
    """The backend's chunks, each counted as delivered and stamped with the decision
    (``status="in_flight"``); the last one is stamped with the settled record. A held
    stream (``held(call)``) is buffered and reviewed first; escalated, ``reopen(up)``
    opens the next model's stream."""
    while True:
        hold = review is not None and held is not None and held(call)
        in_flight, last, kept = call.preview_record().metadata(), None, []  # type: ignore[var-annotated]
        with call, named(call):
            if stream is None:
                stream = reopen(call)  # type: ignore[misc]
            try:
                for last in stream:
                    call.delivered(getattr(last, "delta", None))
                    if hold:
                        kept.append(stamp(last, in_flight))
                    else:
                        yield stamp(last, in_flight)
            finally:  # a stream the caller stopped reading: let the backend drop its connection
                _close(stream)
            up = _reviewed(call, last, review) if hold else None
            if up is None:
                _finish_stream(call, last)
        if up is not None:
            call, stream = up, None
            continue
        # a held answer that stays was settled whole before its chunks are released
        yield from kept
        return


async def arelay(call: RoutedCall, stream: Any, reopen: Optional[Callable[[RoutedCall], Awaitable[Any]]] = None,
                 review: Optional[Review] = None, held: Optional[Held] = None) -> AsyncGenerator[Any, None]:
    while True:
        hold = review is not None and held is not None and held(call)
        in_flight, last, kept = call.preview_record().metadata(), None, []  # type: ignore[var-annotated]
        async with call:
            with named(call):
                if stream is None:
                    stream = await reopen(call)  # type: ignore[misc]
                try:
                    async for last in stream:
                        call.delivered(getattr(last, "delta", None))
                        if hold:
                            kept.append(stamp(last, in_flight))
                        else:
                            yield stamp(last, in_flight)
                finally:
                    await _aclose(stream)
                up = _reviewed(call, last, review) if hold else None
                if up is None:
                    _finish_stream(call, last)
        if up is not None:
            call, stream = up, None
            continue
        for chunk in kept:
            yield chunk
        return


def _reviewed(call: RoutedCall, last: Any, review: Optional[Review]) -> Optional[RoutedCall]:
    if last is None or review is None:
        return None  # _finish_stream raises for a stream that ended without a response
    return review(call, last, True)


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        close()


async def _aclose(stream: Any) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def _finish_stream(call: RoutedCall, last: Any) -> None:
    if last is None:
        raise RouteLLMError(f"the {call.route} backend's stream ended without a response")
    finish(call, last, streamed=True)


def finish(call: RoutedCall, response: Any, *, streamed: bool = False) -> Any:
    """Settle an answered call and stamp its record into the response. A streamed
    call's text was counted chunk by chunk. A call the review already finished (its
    answer failed a check with no model up) keeps that record."""
    record = call.record if call.settled else call.finish(
        usage_report(response), text=None if streamed else text_of(response))
    return stamp(response, record.metadata())  # type: ignore[union-attr]


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


__all__: List[str] = ["aopen_stream", "arelay", "arun", "finish", "named", "open_stream", "relay", "run", "stamp",
                      "text_of"]
