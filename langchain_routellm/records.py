"""A routed call as LangChain surfaces report it, one shape for all of them.

``RoutedChat`` (``chat_models``), the branch helper (``runnables``) and the agent
middleware (``middleware``) each run a call through the core lifecycle
(:class:`~routellm_integrations.routing.RoutedCall`); what they report about it is built
here from the call and its :class:`~routellm_integrations.routing.CallRecord`:

- :func:`route_tags_metadata`: the ``routellm:<route>`` tag and the ``routellm_*`` run
  metadata the chosen backend's run carries (the cost tracker reads ``routellm_call_id``
  and counts the call from its record, not from the run);
- :func:`event_data`: the ``routellm_route`` custom event's payload, the call's record
  before it ends (``status="in_flight"``);
- :func:`watch`: the run's handlers that take records (``on_routed_call``, the cost
  tracker) hear the settled record, however the call ended;
- :func:`stamp_message`: ``response_metadata["routellm"]``, the settled record.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import BaseCallbackManager, CallbackManager
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.messages import BaseMessage

from routellm_integrations.routing import CallRecord, RoutedCall

__all__ = ["EVENT", "aemit", "emit", "event_data", "route_tags_metadata", "scope_of", "stamp_message", "watch"]

#: the custom event every LangChain surface dispatches when it routed a call
EVENT = "routellm_route"


def scope_of(metadata: dict[str, Any] | None) -> str | None:
    """A LangGraph thread (``thread_id`` in the run metadata) is a budget/sticky scope."""
    thread = (metadata or {}).get("thread_id")
    return f"thread:{thread}" if thread is not None else None


def route_tags_metadata(call: RoutedCall, tags: list[str] | None, metadata: dict[str, Any] | None
                        ) -> tuple[list[str], dict[str, Any]]:
    """``tags`` plus ``routellm:<route>``, ``metadata`` plus the call's ``routellm_*``
    fields (the ones ``RoutedChat``'s runs carry)."""
    d = call.decision
    new_meta = {**(metadata or {}), "routellm_route": d.route, "routellm_model": call.backend.model,
                "routellm_score": d.score, "routellm_threshold": d.threshold, "routellm_router": d.router,
                "routellm_latency_ms": d.latency_ms, "routellm_reason": call.reason,
                "routellm_step_policy": d.step_policy, "routellm_call_id": call.call_id}
    if d.budget is not None:  # the scope's budget at admission (traces show it beside the route)
        new_meta["routellm_budget"] = d.budget
    return [*(tags or []), f"routellm:{d.route}"], new_meta


def event_data(call: RoutedCall) -> dict[str, Any]:
    """The ``routellm_route`` event's payload: the call's record as it starts."""
    return call.preview_record().metadata()


def _has_parent(callbacks: Any) -> bool:
    return isinstance(callbacks, BaseCallbackManager) and callbacks.parent_run_id is not None


def emit(callbacks: Any, call: RoutedCall) -> None:
    """Dispatch the routing event to the run ``callbacks`` belong to (none: no event)."""
    if _has_parent(callbacks):
        dispatch_custom_event(EVENT, event_data(call), config={"callbacks": callbacks})


async def aemit(callbacks: Any, call: RoutedCall) -> None:
    if _has_parent(callbacks):
        await adispatch_custom_event(EVENT, event_data(call), config={"callbacks": callbacks})


def watch(call: RoutedCall, callbacks: Any, local: Any = None) -> None:
    """Hand the settled record to the handlers of ``callbacks`` that take records (the
    cost tracker's ``on_routed_call``), whichever way the call ends."""
    for handler in CallbackManager.configure(callbacks, local).handlers:
        listener = getattr(handler, "on_routed_call", None)
        if callable(listener):
            call.on_settled(listener)


def stamp_message(message: Any, record: CallRecord) -> Any:
    """``response_metadata["routellm"]``: the settled record (a message only; anything
    else is returned as it is)."""
    if isinstance(message, BaseMessage):
        message.response_metadata = {**(message.response_metadata or {}), "routellm": record.metadata()}
    return message
