"""``RoutedLLM``'s hooks into the cascade engine
(:mod:`routellm_integrations.routing.engine`), which runs every call to its end.

LlamaIndex specifics only: a backend's public method answers (its chat, complete, their
stream and async forms), usage is read back from the response (:mod:`.usage`), and the
record is stamped into ``response.additional_kwargs["routellm"]`` (and ``raw`` when it is
a dict). A stream's chunks each carry the decision (``status="in_flight"``); the last
one the settled record.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from routellm_integrations.errors import RouteLLMError
from routellm_integrations.routing import CallRecord, RoutedCall
from routellm_integrations.routing.engine import Hooks, Tally, describe

from .usage import usage_report

#: ``review(call, response, streamed) -> call up | None``: None keeps the answer (the call
#: is still open, or already finished when there was no model up)
Review = Callable[[RoutedCall, Any, bool], Optional[RoutedCall]]
Held = Callable[[RoutedCall], bool]


class _Stamped(Tally):
    """Each chunk carries the decision; the last one, once settled, the record."""

    def __init__(self, call: RoutedCall, held: bool) -> None:
        super().__init__(call, held)
        self.in_flight = call.preview_record().metadata()

    def add(self, chunk: Any) -> Any:
        self.last = chunk
        return (stamp(chunk, self.in_flight),)

    def end(self, stream: Any) -> Any:
        if self.last is None:
            raise RouteLLMError(f"the {self.call.route} backend's stream ended without a response")
        return self.last

    def tail(self, record: CallRecord, escalated: List[CallRecord]) -> Any:
        stamp(self.last, record.metadata())
        return ()


class LlamaIndexHooks(Hooks):
    """One entry point's call: ``invoke(call, stream)`` runs the chosen backend's method
    (``stream``: the streaming form's kwargs), ``review`` the escalation checks and
    ``held`` whether a stream waits for them."""

    def __init__(self, invoke: Callable[[RoutedCall, bool], Any], review: Optional[Review] = None,
                 held: Optional[Held] = None, blocks: bool = False, ahead: Optional[List[Any]] = None) -> None:
        self.invoke, self._review, self._held, self._blocks = invoke, review, held, blocks
        self._ahead = list(ahead or [])

    def send(self, call: RoutedCall) -> Any:
        return self.invoke(call, False)

    async def asend(self, call: RoutedCall) -> Any:
        return await self.invoke(call, False)

    def open(self, call: RoutedCall) -> Any:
        return self.invoke(call, True)

    async def aopen(self, call: RoutedCall) -> Any:
        return await self.invoke(call, True)

    def usage_of(self, response: Any) -> Any:
        return usage_report(response)

    def text_of(self, response: Any) -> str:
        return text_of(response)

    def tally(self, call: RoutedCall, held: bool) -> Tally:
        return _Stamped(call, held)

    def review(self, call: RoutedCall, response: Any, streamed: bool) -> Optional[RoutedCall]:
        return None if self._review is None else self._review(call, response, streamed)

    def held(self, call: RoutedCall) -> bool:
        return self._review is not None and self._held is not None and self._held(call)

    def review_blocks(self, call: RoutedCall) -> bool:
        """A verifier among the checks: the async entry points review in a worker thread."""
        return self._review is not None and self._blocks

    def samples_ahead(self, call: RoutedCall) -> List[Any]:
        """Second calls sent with the first (``agreement(parallel=True)``)."""
        return self._ahead if self._review is not None else []

    def stamp(self, response: Any, record: CallRecord, escalated: List[CallRecord]) -> Any:
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


__all__: List[str] = ["Held", "LlamaIndexHooks", "Review", "describe", "stamp", "text_of"]
