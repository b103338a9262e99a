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

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage

from routellm_integrations.costs import PriceTable, Usage
from routellm_integrations.decision import RoutingDecision
from routellm_integrations.errors import InvalidUsageError
from routellm_integrations.policy import RoutingPolicy, StepPolicy

from .messages import backend_model_name as _backend_model_name
from .messages import backend_provider as _provider
from .messages import turn_of_messages

__all__ = ["RoutingMiddleware"]



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
        if isinstance(strong, BaseChatModel) and isinstance(weak, BaseChatModel):  # score the pair it routes
            self.policy.score_pair(_backend_model_name(strong), _backend_model_name(weak))
        self.prices = prices

    @property
    def name(self) -> str:
        return "RoutingMiddleware"

    def _decide(self, request: ModelRequest) -> RoutingDecision:
        turn = turn_of_messages(request.messages)
        return self.policy.decide(turn.text, turn_key=turn.key, followup=turn.followup).decision

    async def _adecide(self, request: ModelRequest) -> RoutingDecision:
        """Score off the event loop (a neural router takes milliseconds of CPU)."""
        if self.policy.scores_inline():
            return self._decide(request)
        return await asyncio.to_thread(self._decide, request)

    def _choose(self, request: ModelRequest, d: RoutingDecision
                ) -> tuple[ModelRequest, RoutingDecision, BaseChatModel, BaseChatModel]:
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
                try:
                    usage = Usage.from_dict(msg.usage_metadata) if msg.usage_metadata else None
                except InvalidUsageError:  # a corrupt usage report: unpriced, never a crash
                    usage = None
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
        new_request, d, chosen, strong = self._choose(request, self._decide(request))
        try:
            dispatch_custom_event("routellm_route", self._event(d, chosen))
        except RuntimeError:  # no parent run (called outside a graph)
            pass
        return self._stamp(handler(new_request), d, chosen, strong)

    async def awrap_model_call(self, request: ModelRequest,
                               handler: Callable[[ModelRequest], Awaitable[ModelResponse]]) -> Any:
        new_request, d, chosen, strong = self._choose(request, await self._adecide(request))
        try:
            await adispatch_custom_event("routellm_route", self._event(d, chosen))
        except RuntimeError:
            pass
        return self._stamp(await handler(new_request), d, chosen, strong)


_PRICES: PriceTable | None = None


def _default_prices() -> PriceTable:
    global _PRICES
    if _PRICES is None:
        _PRICES = PriceTable.default()
    return _PRICES
