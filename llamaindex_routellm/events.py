"""The routing event LlamaIndex event handlers receive: one per routed call."""

from __future__ import annotations

from typing import Any, Optional

from llama_index.core.instrumentation.events.base import BaseEvent

from routellm_integrations.routing import CallRecord

#: the record's fields the event read as its own before it carried the record (still readable so)
_RECORD_FIELDS = ("route", "model", "provider", "call_id", "status", "estimated", "score", "threshold", "router",
                  "forced", "reason", "latency_ms", "input_tokens", "output_tokens", "cost_usd", "step_policy",
                  "budget", "models", "qualities", "expected_costs_usd", "cost_weight", "escalated_from",
                  "escalation_reason")


def _from_record(name: str) -> Any:
    return property(lambda self: getattr(self.record, name), doc=f"``event.record.{name}``")


class RoutingDecisionEvent(BaseEvent):
    """Sent once per call when it settles (after the chosen backend answered, so tokens and
    cost are known; or failed, was cancelled, cut, abandoned or escalated: ``status`` says
    which), inside the call's span; each call of an escalation cascade sends its own.
    Handlers see it with ``dispatcher.add_event_handler``.

    ``event.record`` is the call's one :class:`~routellm_integrations.routing.CallRecord`
    (the record the ledger and the other integrations get); ``event.route``,
    ``event.cost_usd``, ... read its fields."""

    record: CallRecord

    route = _from_record("route")
    model = _from_record("model")
    provider = _from_record("provider")
    call_id = _from_record("call_id")
    status = _from_record("status")
    estimated = _from_record("estimated")
    score = _from_record("score")
    #: None among N models (the choice weighs quality against cost, no threshold)
    threshold = _from_record("threshold")
    router = _from_record("router")
    forced = _from_record("forced")
    reason = _from_record("reason")
    latency_ms = _from_record("latency_ms")
    input_tokens = _from_record("input_tokens")
    output_tokens = _from_record("output_tokens")
    cost_usd = _from_record("cost_usd")
    step_policy = _from_record("step_policy")
    budget = _from_record("budget")
    #: N-way: the candidates' keys, their predicted qualities and expected costs, the weight
    models = _from_record("models")
    qualities = _from_record("qualities")
    expected_costs_usd = _from_record("expected_costs_usd")
    cost_weight = _from_record("cost_weight")
    #: the route whose answer failed a check, when this call is an escalation
    escalated_from = _from_record("escalated_from")
    #: why this call's answer was escalated (status ``escalated``)
    escalation_reason = _from_record("escalation_reason")

    @classmethod
    def class_name(cls) -> str:
        return "RoutingDecisionEvent"

    @classmethod
    def of(cls, record: CallRecord, span_id: Optional[str] = None) -> "RoutingDecisionEvent":
        """The event of a settled call, in the span the call began in (a stream may settle
        later, outside it)."""
        return cls(record=record, span_id=span_id)
