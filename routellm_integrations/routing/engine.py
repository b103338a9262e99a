"""The cascade engine: the one loop around a routed call, for every integration.

    answer = engine.run(call, hooks)                     # a whole answer
    answer = await engine.arun(call, hooks)
    stream = engine.stream(call, hooks, engine.open_stream(call, hooks))     # a generator
    stream = engine.astream(call, hooks, await engine.aopen_stream(call, hooks))

"Call the backend, review the answer, escalate, hold a stream while a model above could
take over, finish, stamp the record" is written here once; ``RoutedChat``, ``RoutedLLM``
and the routed client (hence the server) supply :class:`Hooks`: how to call the chosen
backend (``send``/``asend``, ``open``/``aopen``), what an answer's usage, model and text
are, how a record is stamped into an answer, how an answer is reviewed, how a stream's
chunks are counted and sent on (:class:`Tally`).

Every call settles exactly once, in its own block, however it ends: an answer
(``ok``), an exception (``failed``; ``cut`` when a stream had delivered text; the
exception is tagged with the route, :func:`tag`), ``CancelledError`` (``cancelled``), a
consumer that stops reading a stream (``abandoned``, charged for the text delivered).
With a review (the escalation checks), an answer that fails goes to the next model up:
``review`` settles the call as ``escalated`` and returns the handle on the model up,
whose own block then runs the backend again. A stream is held back while a model above
could still take over (``held``): its chunks are buffered, the whole answer reviewed,
and only an answer that stays is released (after its call settled), so no chunk of an
escalated answer ever reaches the consumer. The top model streams live.

**A second cheap answer** (an agreement check,
:func:`~routellm_integrations.routing.answer_checks.agreement`): a check that needs one
raises :class:`~.escalation.SampleNeeded` from the review; the engine then makes that
one more call (:meth:`RoutedCall.sample`: admitted by the budget, sent through the same
``send``/``asend`` hook with the check's parameters, settled and recorded with reason
``second_sample``) and reviews again, the second answer in ``Answer.samples``. It is
made only when the checks before it passed, and only while the answer is reviewed (a
model above could take over); a stream is held meanwhile (the second call is a whole
one, made after the first stream ended). A second call that fails or does not fit the
budget settles as such and gives the check no answer (``None``): the check does not
escalate on it, and the checked call's record says why (``no_verdict``).

An answer in hand is billed however the review ends: a caller cancelled (or an error
raised) while the second call is in flight settles the first call with its answer's usage
(``ok``, not ``cancelled``: the provider answered and bills it) and the second as
``cancelled`` (no response arrived, so nothing is known to charge: its reservation is
released). A second call sent ahead (``parallel=True``) is cancelled when the first call
fails or is cancelled; one that already answered stays settled with its cost.

Framework-free: this module imports neither LangChain nor LlamaIndex.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeVar

from ..errors import RouteLLMError
from .call import CallRecord, RoutedCall
from .escalation import SampleNeeded

T = TypeVar("T")

__all__ = ["Hooks", "Tally", "aopen_stream", "areview", "arun", "astream", "describe", "holds", "open_stream",
           "review", "run", "stream", "tag"]


class Tally:
    """One call's stream as it arrives: what each chunk sends on (:meth:`add`), the
    answer the whole stream makes (:meth:`end`, what ``review`` and the settlement see)
    and what follows the released chunks once the call settled (:meth:`tail`).

    The default suits a framework whose every chunk is a response (the last one the
    whole answer, e.g. LlamaIndex): chunks pass unchanged, the last one is the answer."""

    def __init__(self, call: RoutedCall, held: bool) -> None:
        self.call, self.held = call, held
        self.last: Any = None

    def add(self, chunk: Any) -> Iterable[Any]:
        self.last = chunk
        return (chunk,)

    def end(self, stream: Any) -> Any:
        """The answer, once ``stream`` ended (raise for a stream that gave none)."""
        return self.last

    def tail(self, record: CallRecord, escalated: list[CallRecord]) -> Iterable[Any]:
        """Chunks sent after the answer's own (e.g. one carrying the record)."""
        return ()


class Hooks:
    """What an integration supplies to the engine. Override what applies; the defaults
    review nothing, hold nothing and stamp nothing."""

    # -- calling the backend ------------------------------------------------------------
    def send(self, call: RoutedCall) -> Any:
        """The backend of ``call`` answers (a whole answer)."""
        raise NotImplementedError

    async def asend(self, call: RoutedCall) -> Any:
        raise NotImplementedError

    def open(self, call: RoutedCall) -> Any:
        """The backend of ``call`` opens its stream (an iterable of chunks)."""
        raise NotImplementedError

    async def aopen(self, call: RoutedCall) -> Any:
        raise NotImplementedError

    def close(self, stream: Any) -> None:
        """Let the backend drop its connection (a stream ended or was left)."""
        close = getattr(stream, "close", None)
        if close is not None:
            close()

    async def aclose(self, stream: Any) -> None:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()

    # -- what an answer is --------------------------------------------------------------
    def usage_of(self, answer: Any) -> Any:
        """The provider's usage (None: estimated from the text)."""
        return None

    def model_of(self, answer: Any) -> str | None:
        """The model name the provider answered with (None: the backend's)."""
        return None

    def text_of(self, answer: Any) -> str | None:
        """A whole answer's text (a stream's was counted chunk by chunk)."""
        return None

    def delta_of(self, chunk: Any) -> str | None:
        """The text a stream's chunk adds (counted on the call as delivered)."""
        return getattr(chunk, "delta", None)

    def tally(self, call: RoutedCall, held: bool) -> Tally:
        return Tally(call, held)

    # -- the cascade --------------------------------------------------------------------
    def review(self, call: RoutedCall, answer: Any, streamed: bool) -> RoutedCall | None:
        """The call one model up when ``answer`` failed a check (``call`` then settled as
        escalated); None keeps it (``call`` still open, or finished when no model was up)."""
        return None

    def rescue(self, call: RoutedCall, exc: Exception) -> RoutedCall | None:
        """``send`` raised ``exc``: the call one model up when that counts as a failed
        answer (``call`` settled as escalated), else None (the exception propagates)."""
        return None

    def held(self, call: RoutedCall) -> bool:
        """Hold ``call``'s stream back until its answer passed the review."""
        return False

    def samples_ahead(self, call: RoutedCall) -> list[SampleNeeded]:
        """Second calls to send at the same time as ``call`` (an agreement check with
        ``parallel=True``); the async whole-answer driver sends them."""
        return []

    def review_blocks(self, call: RoutedCall) -> bool:
        """The review does CPU work worth a worker thread on an event loop (a verifier
        embeds the prompt and the answer): the async drivers then review off the loop."""
        return False

    def escalating(self, call: RoutedCall, up: RoutedCall) -> None:
        """``call``'s answer failed; ``up`` answers next."""

    # -- reporting ----------------------------------------------------------------------
    def finished(self, call: RoutedCall, record: CallRecord) -> None:
        """An answer that stays settled ``call`` (e.g. offer it to a shadow sampler)."""

    def stamp(self, answer: Any, record: CallRecord, escalated: list[CallRecord]) -> Any:
        """The whole answer as the caller gets it, the record stamped in."""
        return answer

    def backend_label(self, call: RoutedCall) -> str | None:
        """How the failing backend is named in an exception's note (e.g. its class)."""
        return None

    def tag(self, exc: BaseException, call: RoutedCall, record: CallRecord) -> None:
        """Say on an exception a backend raised where the call was routed."""
        tag(exc, call, record, self.backend_label(call))


def holds(call: RoutedCall, checks: Any) -> bool:
    """Whether ``call``'s answer is reviewed before it is released: there are escalation
    ``checks`` and a model above could take over (a stream is held back meanwhile)."""
    return bool(checks) and call.next_up is not None


def describe(call: RoutedCall) -> str:
    """Why ``call`` went where it went, in words."""
    d = call.decision
    if d.escalated_from is not None:
        why = f"escalated from {d.escalated_from}"
    elif d.threshold is not None:
        why = f"score {d.score}, threshold {d.threshold:.3f}"
    elif d.forced:
        why = "forced"
    else:  # among N models: quality against expected cost
        why = f"quality {d.score}, cost weight {d.cost_weight}"
    return f"the {d.route} route ({call.backend.model}) failed ({why}; router {d.router}, {call.reason})"


def tag(exc: BaseException, call: RoutedCall, record: CallRecord, backend: str | None = None, *,
        note: bool = True) -> None:
    """A backend's own exception propagates unchanged, with a note naming the route and
    the settled record as ``routellm_route``/``routellm_model``/``routellm_record``."""
    if note and not isinstance(exc, RouteLLMError):
        by = f"; raised by the {call.route} backend ({backend})" if backend else ""
        exc.add_note(f"routellm: {describe(call)}{by}")
    try:
        exc.routellm_route = call.route  # type: ignore[attr-defined]
        exc.routellm_model = call.backend.model  # type: ignore[attr-defined]
        exc.routellm_record = record.metadata()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - some exception types refuse attributes
        pass


class _settling:
    """Settle ``call`` by how the block ended (a no-op when it settled inside; with
    ``on_success=False`` only when it raised), tagging an exception (not a cancellation
    or a closed generator) with the route. A class, not a generator: it is on every
    call's path."""

    __slots__ = ("call", "hooks", "on_success")

    def __init__(self, call: RoutedCall, hooks: Hooks, on_success: bool = True) -> None:
        self.call, self.hooks, self.on_success = call, hooks, on_success

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is not None:
            open_ = not self.call.settled
            record = self.call.settle_on_exit(exc)
            if isinstance(exc, Exception):
                if open_:  # the backend (or its stream) failed: name the route
                    self.hooks.tag(exc, self.call, record)
                else:  # raised after the call settled (a check, a parser): the record only
                    tag(exc, self.call, record, note=False)
        elif self.on_success:
            self.call.settle_on_exit(None)
        return False


class _asettling:
    """:class:`_settling` for the async drivers: over a store that does I/O (SQLite,
    Redis) the settlement runs in a worker thread, so a store that stalls holds no event
    loop (it still settles, bounded by the store's timeouts; a cancelled caller does not
    stop it)."""

    __slots__ = ("sync",)

    def __init__(self, call: RoutedCall, hooks: Hooks, on_success: bool = True) -> None:
        self.sync = _settling(call, hooks, on_success)

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if not self.sync.call.store_io or (exc is None and self.sync.call.settled):
            return self.sync.__exit__(exc_type, exc, tb)
        return await asyncio.to_thread(self.sync.__exit__, exc_type, exc, tb)


async def _off_loop(call: RoutedCall, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, in a worker thread when it may wait on the store (it settles or
    begins a call over SQLite/Redis), else right here."""
    if call.store_io:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)


async def _settle_shielded(call: RoutedCall, fn: Callable[[], T]) -> T:
    """``fn()``, which settles ``call`` billing an answer in hand. Over a store that does
    I/O it runs in a worker thread, and a cancellation arriving meanwhile waits for it:
    the cancelled block's own settlement (``cancelled``, nothing charged) must not win
    the race and lose the answer's cost."""
    if not call.store_io:
        return fn()
    task = asyncio.ensure_future(asyncio.to_thread(fn))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


def _bill(call: RoutedCall, hooks: Hooks, answer: Any, streamed: bool) -> None:
    """The review of an answer in hand ended otherwise than with a verdict (the caller
    was cancelled while a second call was in flight, a check or a store raised): the
    provider answered, so the call settles with the answer's usage (a no-op when the
    review settled it)."""
    if not call.settled:
        call.finish(hooks.usage_of(answer), model=hooks.model_of(answer),
                    text=None if streamed else hooks.text_of(answer))


def _finish(call: RoutedCall, hooks: Hooks, answer: Any, streamed: bool) -> CallRecord:
    """Settle an answered call. A call the review already finished (its answer failed a
    check with no model up) keeps that record."""
    record = call.record if call.settled else call.finish(
        hooks.usage_of(answer), model=hooks.model_of(answer), text=None if streamed else hooks.text_of(answer))
    hooks.finished(call, record)  # type: ignore[arg-type]
    return record  # type: ignore[return-value]


def _sample_call(call: RoutedCall, need: SampleNeeded) -> RoutedCall | None:
    """The handle of the second call ``need`` asks for (None: no model is up, so nothing
    could be escalated, or it does not fit the budget: the check gets no second answer)."""
    if need.key in call.samples:
        raise RouteLLMError(f"an escalation check asked twice for the second answer {need.key!r}: a check must "
                            "read Answer.samples[key] once it is there (None: the second call failed)")
    # at the top no answer can be escalated: a second call could change nothing
    other = None
    if call.next_up is not None:
        try:
            other = call.sample(need.route, need.params)
            if other is None:
                call.no_verdict[need.key] = "the second call did not fit the budget (not made)"
        except RouteLLMError as exc:  # e.g. a store that cannot admit it now: the answer in hand stays reviewable
            warnings.warn(f"routellm: the second call an escalation check asked for was not made "
                          f"({type(exc).__name__}: {exc}); the check gets no second answer", RuntimeWarning,
                          stacklevel=2)
            call.no_verdict[need.key] = f"the second call was not made ({type(exc).__name__})"
    if other is None:
        call.samples[need.key] = None
    return other


def _no_answer(call: RoutedCall, need: SampleNeeded, other: RoutedCall, exc: BaseException | None) -> None:
    """The second call settled without an answer the check can read."""
    call.samples[need.key] = None
    record = other.record
    how = record.status if record is not None else "failed"
    why = f" ({type(exc).__name__})" if exc is not None else ""
    call.no_verdict[need.key] = f"the second call {other.call_id} ended {how}{why}"


def _take_sample(call: RoutedCall, need: SampleNeeded, other: RoutedCall, record: Any, text: str | None) -> None:
    """The settled second call's answer for the check, or why there is none."""
    if record.status == "ok":
        call.samples[need.key] = text or ""
    else:
        _no_answer(call, need, other, None)


async def _admit_second(call: RoutedCall, need: SampleNeeded) -> RoutedCall | None:
    """:func:`_sample_call` off the loop when the store does I/O; cancelled meanwhile, the
    reservation the admitting thread then takes is released (not left to the collector)."""
    if not call.store_io:
        return _sample_call(call, need)
    task = asyncio.ensure_future(asyncio.to_thread(_sample_call, call, need))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_release_admitted)
        raise


def _release_admitted(task: "asyncio.Future[RoutedCall | None]") -> None:
    if not task.cancelled() and task.exception() is None and task.result() is not None:
        task.result().cancel()  # type: ignore[union-attr]


def _whole(hooks: Hooks, other: RoutedCall, answer: Any) -> Any:
    """A backend whose plain call streams (a LlamaIndex ``stream_chat``): the answer its
    chunks make (the :class:`Tally`'s), counted as delivered."""
    if not hasattr(answer, "__next__"):
        return answer
    tally = hooks.tally(other, True)
    try:
        for chunk in answer:
            other.delivered(hooks.delta_of(chunk))
            tally.add(chunk)
    finally:
        hooks.close(answer)
    return tally.end(answer)


async def _awhole(hooks: Hooks, other: RoutedCall, answer: Any) -> Any:
    if not hasattr(answer, "__anext__"):
        return _whole(hooks, other, answer)
    tally = hooks.tally(other, True)
    try:
        async for chunk in answer:
            other.delivered(hooks.delta_of(chunk))
            tally.add(chunk)
    finally:
        await hooks.aclose(answer)
    return tally.end(answer)


def _second(call: RoutedCall, hooks: Hooks, need: SampleNeeded) -> None:
    other = _sample_call(call, need)
    if other is None:
        return
    try:
        with _settling(other, hooks):
            raw = hooks.send(other)
            answer = _whole(hooks, other, raw)
            text = hooks.text_of(answer) if answer is raw else other.answer
            record = other.finish(hooks.usage_of(answer), model=hooks.model_of(answer),
                                  text=text if answer is raw else None)
            _take_sample(call, need, other, record, text)
    except Exception as exc:  # noqa: BLE001 - settled (failed) and tagged; the check gets no second answer
        _no_answer(call, need, other, exc)


async def _asecond(call: RoutedCall, hooks: Hooks, need: SampleNeeded) -> None:
    other = await _admit_second(call, need)
    if other is None:
        return
    try:
        async with _asettling(other, hooks):
            raw = await hooks.asend(other)
            answer = await _awhole(hooks, other, raw)
            usage, model = hooks.usage_of(answer), hooks.model_of(answer)
            text = hooks.text_of(answer) if answer is raw else other.answer
            record = await _settle_shielded(other, lambda: other.finish(usage, model=model,
                                                                        text=text if answer is raw else None))
            _take_sample(call, need, other, record, text)
    except Exception as exc:  # noqa: BLE001 - settled (failed) and tagged; the check gets no second answer
        _no_answer(call, need, other, exc)


def review(call: RoutedCall, hooks: Hooks, answer: Any, streamed: bool) -> RoutedCall | None:
    """``hooks.review``, making the second calls its checks ask for (:class:`SampleNeeded`).
    However it ends without a verdict (an exception, an interrupt while a second call is
    in flight), ``call`` is settled with its answer first (:func:`_bill`)."""
    try:
        while True:
            try:
                return hooks.review(call, answer, streamed)
            except SampleNeeded as need:
                _second(call, hooks, need)
    except BaseException:
        _bill(call, hooks, answer, streamed)
        raise


async def _review_in_thread(call: RoutedCall, hooks: Hooks, answer: Any, streamed: bool) -> RoutedCall | None:
    """``hooks.review`` in a worker thread (a verifier's CPU work, a store's I/O). A
    cancellation meanwhile waits for it to end (it cannot be stopped): an escalation it
    made holds a reservation on the model up, which is then released (that call settles
    ``cancelled``) rather than left to the garbage collector."""
    task = asyncio.ensure_future(asyncio.to_thread(hooks.review, call, answer, streamed))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        up = None if task.cancelled() or task.exception() is not None else task.result()
        if up is not None:
            await _off_loop(up, up.cancel)
        raise


async def areview(call: RoutedCall, hooks: Hooks, answer: Any, streamed: bool) -> RoutedCall | None:
    try:
        while True:
            try:
                if hooks.review_blocks(call) or call.store_io:
                    return await _review_in_thread(call, hooks, answer, streamed)
                return hooks.review(call, answer, streamed)
            except SampleNeeded as need:
                await _asecond(call, hooks, need)
    except BaseException:  # cancelled while the second call was in flight: the first one's answer is billed
        await _settle_shielded(call, lambda: _bill(call, hooks, answer, streamed))
        raise


def run(call: RoutedCall, hooks: Hooks) -> Any:
    """The backend of ``call`` answers; reviewed, maybe escalated, until an answer stays."""
    escalated: list[CallRecord] = []
    while True:
        with _settling(call, hooks):
            try:
                answer = hooks.send(call)
            except Exception as exc:
                up = hooks.rescue(call, exc)
                if up is None:
                    raise
            else:
                up = review(call, hooks, answer, False)
                if up is None:
                    return hooks.stamp(answer, _finish(call, hooks, answer, False), escalated)
        escalated.append(call.record)  # type: ignore[arg-type]
        hooks.escalating(call, up)
        call = up


async def _ahead(call: RoutedCall, hooks: Hooks) -> list["asyncio.Task[None]"]:
    """Start the second calls the checks want at the same time as ``call`` (none at the top)."""
    wanted = [n for n in hooks.samples_ahead(call) if n.key not in call.samples] if call.next_up is not None else []
    return [asyncio.ensure_future(_asecond(call, hooks, need)) for need in wanted]


async def _drop(tasks: list["asyncio.Task[None]"]) -> None:
    """The call failed or was cancelled: stop its second calls (each settles as cancelled)."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


async def arun(call: RoutedCall, hooks: Hooks) -> Any:
    escalated: list[CallRecord] = []
    while True:
        async with _asettling(call, hooks):
            seconds = await _ahead(call, hooks)
            try:
                answer = await hooks.asend(call)
            except BaseException as exc:
                await _drop(seconds)
                if not isinstance(exc, Exception):
                    raise
                up = await _off_loop(call, hooks.rescue, call, exc)
                if up is None:
                    raise
            else:
                if seconds:
                    try:  # the second calls sent ahead: a cancellation here cancels them (gather)
                        await asyncio.gather(*seconds)
                    except BaseException:
                        await _drop(seconds)
                        await _settle_shielded(call, lambda: _bill(call, hooks, answer, False))
                        raise
                up = await areview(call, hooks, answer, False)
                if up is None:
                    record = await _settle_shielded(call, lambda: _finish(call, hooks, answer, False))
                    return hooks.stamp(answer, record, escalated)
        escalated.append(call.record)  # type: ignore[arg-type]
        hooks.escalating(call, up)
        call = up


def open_stream(call: RoutedCall, hooks: Hooks) -> Any:
    """Open the backend's stream now (inside the caller's span, so a refusal raises
    here); settle if that fails."""
    with _settling(call, hooks, on_success=False):
        return hooks.open(call)


async def aopen_stream(call: RoutedCall, hooks: Hooks) -> Any:
    async with _asettling(call, hooks, on_success=False):
        return await hooks.aopen(call)


def stream(call: RoutedCall, hooks: Hooks, source: Any = None) -> Iterator[Any]:
    """The backend's chunks (``source``, or ``hooks.open(call)`` when None), each counted
    as delivered and sent on as the call's :class:`Tally` says. A held stream is buffered
    and reviewed first; escalated, the next model's stream is opened."""
    escalated: list[CallRecord] = []
    while True:
        hold = hooks.held(call)
        tally, kept, up = hooks.tally(call, hold), [], None  # type: ignore[var-annotated]
        with _settling(call, hooks):
            if source is None:
                source = hooks.open(call)
            try:
                for chunk in source:
                    call.delivered(hooks.delta_of(chunk))
                    if hold:
                        kept.extend(tally.add(chunk))
                    else:
                        yield from tally.add(chunk)
            finally:  # a stream the caller stopped reading: let the backend drop its connection
                hooks.close(source)
            answer = tally.end(source)
            up = review(call, hooks, answer, True) if hold else None
            if up is None:
                trailing = list(tally.tail(_finish(call, hooks, answer, True), escalated))
        if up is not None:
            escalated.append(call.record)  # type: ignore[arg-type]
            hooks.escalating(call, up)
            call, source = up, None
            continue
        # a held answer that stays was settled whole before its chunks are released: a
        # consumer that stops reading now leaves the call billed in full
        yield from kept
        yield from trailing
        return


async def astream(call: RoutedCall, hooks: Hooks, source: Any = None) -> AsyncIterator[Any]:
    escalated: list[CallRecord] = []
    while True:
        hold = hooks.held(call)
        tally, kept, up = hooks.tally(call, hold), [], None  # type: ignore[var-annotated]
        async with _asettling(call, hooks):
            if source is None:
                source = await hooks.aopen(call)
            try:
                async for chunk in source:
                    call.delivered(hooks.delta_of(chunk))
                    if hold:
                        kept.extend(tally.add(chunk))
                    else:
                        for out in tally.add(chunk):
                            yield out
            finally:
                await hooks.aclose(source)
            answer = tally.end(source)
            up = await areview(call, hooks, answer, True) if hold else None
            if up is None:
                record = await _settle_shielded(call, lambda: _finish(call, hooks, answer, True))
                trailing = list(tally.tail(record, escalated))
        if up is not None:
            escalated.append(call.record)  # type: ignore[arg-type]
            hooks.escalating(call, up)
            call, source = up, None
            continue
        for out in kept:
            yield out
        for out in trailing:
            yield out
        return
