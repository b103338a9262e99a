"""An agent middleware that picks the model per step, for agents built on your own chat
model object:

    agent = create_agent(ChatAnthropic(model="claude-3-5-haiku-latest"), tools,
                         middleware=[RoutingMiddleware(strong=ChatOpenAI(model="gpt-4o"),
                                                       router="mf", threshold=0.3)])

Each model call is scored on its last human message; a missing ``strong``/``weak`` means
"the agent's own model". The chosen model runs with ``routellm:strong|weak`` tags and
``routellm_*`` run metadata (so the cost tracker sees the route), the answer carries
``response_metadata["routellm"]``, and a ``routellm_route`` custom event goes to the
model node's run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage

from routellm_integrations.costs import PriceTable, Usage
from routellm_integrations.decision import RoutingDecision

from routellm_integrations.policy import RoutingPolicy, StepPolicy
from .chat_models import _backend_model_name, _default_prices, routing_text, turn_of

__all__ = ["RoutingMiddleware"]


def _provider(model: BaseChatModel) -> str | None:
    try:
        return model._get_ls_params().get("ls_provider")
    except Exception:  # noqa: BLE001
        return None


class RoutingMiddleware(AgentMiddleware):
    """Swap the agent's model per model call: ``strong`` when the router's score of the
    last human message >= threshold, else ``weak``."""

    def __init__(self, strong: BaseChatModel | None = None, weak: BaseChatModel | None = None, router: Any = "mf",
                 *, threshold: float | None = None, strong_fraction: float | None = None,
                 calibration_prompts: list[str] | None = None, router_options: dict[str, Any] | None = None,
                 prices: PriceTable | None = None, steps: StepPolicy = "per_turn") -> None:
        super().__init__()
        if strong is None and weak is None:
            raise ValueError("RoutingMiddleware needs strong= or weak= (the other defaults to the agent's model)")
        self.strong, self.weak = strong, weak
        self.policy = RoutingPolicy(router, threshold=threshold, strong_fraction=strong_fraction,
                                    calibration_prompts=calibration_prompts, router_options=router_options,
                                    steps=steps)
        self.prices = prices

    @property
    def name(self) -> str:
        return "RoutingMiddleware"

    def _choose(self, request: ModelRequest) -> tuple[ModelRequest, RoutingDecision, BaseChatModel, BaseChatModel]:
        turn_key, followup = turn_of(request.messages)
        d = self.policy.decide(routing_text(request.messages), turn_key=turn_key, followup=followup).decision
        strong = self.strong or request.model
        chosen = strong if d.route == "strong" else (self.weak or request.model)
        meta = {**(chosen.metadata or {}), "routellm_route": d.route, "routellm_model": _backend_model_name(chosen),
                "routellm_score": d.score, "routellm_threshold": d.threshold, "routellm_router": d.router,
                "routellm_strong_model": _backend_model_name(strong), "routellm_strong_provider": _provider(strong)}
        tagged = chosen.model_copy(update={"tags": [*(chosen.tags or []), f"routellm:{d.route}"], "metadata": meta})
        return request.override(model=tagged), d, chosen, strong

    def _stamp(self, response: Any, d: RoutingDecision, chosen: BaseChatModel, strong: BaseChatModel) -> Any:
        messages = response.result if isinstance(response, ModelResponse) else [response]
        for msg in messages:
            if isinstance(msg, AIMessage):
                model = msg.response_metadata.get("model_name") or _backend_model_name(chosen)
                usage = Usage.from_dict(msg.usage_metadata) if msg.usage_metadata else None
                cost = (self.prices or _default_prices()).cost(model, usage, _provider(chosen)) if usage else None
                msg.response_metadata = {**msg.response_metadata, "routellm": {
                    "route": d.route, "model": model, "provider": _provider(chosen), "score": d.score,
                    "threshold": d.threshold, "router": d.router, "latency_ms": d.latency_ms, "reason": "scored",
                    "cost_usd": cost, "strong_model": _backend_model_name(strong),
                    "strong_provider": _provider(strong)}}
        return response

    def _event(self, d: RoutingDecision, chosen: BaseChatModel) -> dict[str, Any]:
        return {**d.model_dump(), "model": _backend_model_name(chosen)}

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> Any:
        new_request, d, chosen, strong = self._choose(request)
        try:
            dispatch_custom_event("routellm_route", self._event(d, chosen))
        except RuntimeError:  # no parent run (called outside a graph)
            pass
        return self._stamp(handler(new_request), d, chosen, strong)

    async def awrap_model_call(self, request: ModelRequest,
                               handler: Callable[[ModelRequest], Awaitable[ModelResponse]]) -> Any:
        new_request, d, chosen, strong = self._choose(request)
        try:
            await adispatch_custom_event("routellm_route", self._event(d, chosen))
        except RuntimeError:
            pass
        return self._stamp(await handler(new_request), d, chosen, strong)
