"""The routing event LlamaIndex event handlers receive: one per routed call."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from llama_index.core.instrumentation.events.base import BaseEvent

from routellm_integrations.routing import CallRecord


class RoutingDecisionEvent(BaseEvent):
    """Sent once per call when it settles (after the chosen backend answered, so tokens and
    cost are known; or failed, was cancelled, cut, abandoned or escalated: ``status`` says
    which), inside the call's span; each call of an escalation cascade sends its own.
    Handlers see it with ``dispatcher.add_event_handler``."""

    route: str
    model: str
    provider: Optional[str] = None
    call_id: Optional[str] = None
    status: str = "ok"
    estimated: bool = False
    score: Optional[float] = None
    #: None among N models (the choice weighs quality against cost, no threshold)
    threshold: Optional[float] = None
    router: str
    forced: bool = False
    reason: Optional[str] = None
    latency_ms: Optional[float] = None
    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cost_usd: Optional[float] = None
    step_policy: Optional[str] = None
    budget: Optional[Dict[str, Any]] = None
    #: N-way: the candidates' keys, their predicted qualities and expected costs, the weight
    models: Optional[List[str]] = None
    qualities: Optional[Dict[str, float]] = None
    expected_costs_usd: Optional[Dict[str, float]] = None
    cost_weight: Optional[float] = None
    #: the route whose answer failed a check, when this call is an escalation
    escalated_from: Optional[str] = None
    #: why this call's answer was escalated (status ``escalated``)
    escalation_reason: Optional[str] = None

    @classmethod
    def class_name(cls) -> str:
        return "RoutingDecisionEvent"

    @classmethod
    def of(cls, record: CallRecord, span_id: Optional[str] = None) -> "RoutingDecisionEvent":
        """The event of a settled call, in the span the call began in (a stream may settle
        later, outside it)."""
        fields = record.metadata()
        return cls(**{k: fields[k] for k in cls.model_fields if k in fields}, span_id=span_id)
