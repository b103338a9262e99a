"""An agent middleware that picks the model per step, for agents built on your own chat
model object:

    agent = create_agent(ChatAnthropic(model="claude-3-5-haiku-latest"), tools,
                         middleware=[RoutingMiddleware(strong=ChatOpenAI(model="gpt-4o"),
                                                       router="mf", threshold=0.3)])

Each model call is scored on its last human message; a missing ``strong``/``weak`` means
"the agent's own model". Each model call runs through the core call lifecycle and
cascade engine, as ``RoutedChat``'s do: it begins a
:class:`~routellm_integrations.routing.RoutedCall` (the router decides; with
``steps="per_turn"`` an agent turn's tool-calling steps keep its model, per LangGraph
thread), the engine (:mod:`routellm_integrations.routing.engine`) runs the model call
(the agent's handler, with the chosen model) and the call settles on every exit: an
answer, an exception, a cancellation. Its one
:class:`~routellm_integrations.routing.CallRecord` is what the step reports: the chosen
model runs with the ``routellm:strong|weak`` tag and the ``routellm_*`` run metadata
``RoutedChat``'s runs carry, the ``routellm_route`` custom event (to the model node's
run) carries the record as the call starts, the answer carries
``response_metadata["routellm"]`` (the settled record, priced from the answer's usage),
and the cost tracker counts the record. ``ledger`` holds every call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables.config import ensure_config
from langchain_core.utils.function_calling import convert_to_openai_tool

from routellm_integrations.costs import PriceTable
from routellm_integrations.policy import RoutingPolicy, StepPolicy
from routellm_integrations.routing import Backend, CallLifecycle, CallRecord, RoutedCall, Turn, engine
from routellm_integrations.routing.engine import Hooks
from routellm_integrations.state import CostLedger

from .messages import backend_model_name as _backend_model_name
from .messages import backend_provider as _provider
from .messages import chunk_text, turn_of_messages
from .records import aemit, emit, route_tags_metadata, scope_of, stamp_message, watch

__all__ = ["RoutingMiddleware"]

#: (strong, weak) pairs a middleware keeps a lifecycle for (the agent's own model fills a gap)
_MAX_PAIRS = 64


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
        # one ledger (one store) for the calls of every pair this middleware routes
        self._ledger = CostLedger(prices)
        self._pairs: OrderedDict[tuple[Backend, Backend], CallLifecycle] = OrderedDict()
        self._lock = threading.Lock()
        if strong is not None and weak is not None:  # the pair is known: score it now
            self._lifecycle(strong, weak)

    @property
    def name(self) -> str:
        return "RoutingMiddleware"

    @property
    def ledger(self) -> CostLedger:
        """Every model call this middleware routed, however it ended (one record each)."""
        return self._ledger

    def _lifecycle(self, strong: BaseChatModel, weak: BaseChatModel) -> CallLifecycle:
        """The lifecycle over this (strong, weak) pair (the agent's model may fill one
        side, so it is known per request); every pair's calls go to one ledger."""
        key = (Backend("strong", _backend_model_name(strong), _provider(strong)),
               Backend("weak", _backend_model_name(weak), _provider(weak)))
        with self._lock:
            calls = self._pairs.get(key)
            if calls is None:
                calls = CallLifecycle(self.policy, strong=key[0], weak=key[1], ledger=self._ledger)
                self._pairs[key] = calls
                if len(self._pairs) > _MAX_PAIRS:
                    self._pairs.popitem(last=False)
            else:
                self._pairs.move_to_end(key)
            return calls

    def _start(self, request: ModelRequest) -> tuple[CallLifecycle, Turn, dict[str, Any]]:
        strong, weak = self.strong or request.model, self.weak or request.model
        return self._lifecycle(strong, weak), turn_of_messages(request.messages, tools=_tools(request)), \
            ensure_config()  # the model node's config (its thread, its callbacks)

    def _models(self, request: ModelRequest) -> dict[str, BaseChatModel]:
        return {"strong": self.strong or request.model, "weak": self.weak or request.model}

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], ModelResponse]) -> Any:
        calls, turn, config = self._start(request)
        call = calls.begin(turn, scope=scope_of(config.get("metadata")))
        with call:  # settles if anything fails before the engine runs the call
            watch(call, config.get("callbacks"))
            emit(config.get("callbacks"), call)
            return engine.run(call, _MiddlewareHooks(self._models(request), request, handler))

    async def awrap_model_call(self, request: ModelRequest,
                               handler: Callable[[ModelRequest], Awaitable[ModelResponse]]) -> Any:
        calls, turn, config = self._start(request)
        call = await calls.abegin(turn, scope=scope_of(config.get("metadata")))
        async with call:
            watch(call, config.get("callbacks"))
            await aemit(config.get("callbacks"), call)
            return await engine.arun(call, _MiddlewareHooks(self._models(request), request, handler))


def _tools(request: ModelRequest) -> list[Any] | None:
    """The request's tools as schemas (they count in the input a call is billed for)."""
    out = []
    for tool in request.tools or []:
        try:
            out.append(tool if isinstance(tool, dict) else convert_to_openai_tool(tool))
        except Exception:  # noqa: BLE001 - a tool without a schema only sizes nothing
            continue
    return out or None


def _messages(response: Any) -> list[BaseMessage]:
    """The messages of what a model call handler returns (a ``ModelResponse``, an
    ``AIMessage``, or an ``ExtendedModelResponse`` around a response)."""
    response = getattr(response, "model_response", response)
    if isinstance(response, ModelResponse):
        return list(response.result)
    return [response] if isinstance(response, BaseMessage) else []


def _answer(response: Any) -> AIMessage | None:
    return next((m for m in _messages(response) if isinstance(m, AIMessage)), None)


class _MiddlewareHooks(Hooks):
    """One agent model call on the engine: the agent's handler runs the request with the
    chosen model (tagged with the call's route and metadata)."""

    def __init__(self, models: dict[str, BaseChatModel], request: ModelRequest, handler: Callable[..., Any]) -> None:
        self.models, self.request, self.handler = models, request, handler

    def _request(self, call: RoutedCall) -> ModelRequest:
        chosen = self.models[call.route]
        tags, metadata = route_tags_metadata(call, chosen.tags, chosen.metadata)
        return self.request.override(model=chosen.model_copy(update={"tags": tags, "metadata": metadata}))

    def send(self, call: RoutedCall) -> Any:
        return self.handler(self._request(call))

    async def asend(self, call: RoutedCall) -> Any:
        return await self.handler(self._request(call))

    def usage_of(self, response: Any) -> Any:
        answer = _answer(response)
        return (answer.usage_metadata or None) if answer is not None else None

    def model_of(self, response: Any) -> str | None:
        answer = _answer(response)
        return (answer.response_metadata or {}).get("model_name") if answer is not None else None

    def text_of(self, response: Any) -> str | None:
        answer = _answer(response)
        return chunk_text(answer) if answer is not None else None

    def stamp(self, response: Any, record: CallRecord, escalated: list[CallRecord]) -> Any:
        for message in _messages(response):
            if isinstance(message, AIMessage):
                stamp_message(message, record)
        return response

    def backend_label(self, call: RoutedCall) -> str:
        return type(self.models[call.route]).__name__
