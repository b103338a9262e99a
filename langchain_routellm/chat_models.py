"""``RoutedChat``: a LangChain chat model that sends each call to a strong or a weak model.

    llm = RoutedChat(strong=ChatOpenAI(model="gpt-4o"),
                     weak=ChatAnthropic(model="claude-3-5-haiku-latest"),
                     router="mf", threshold=0.3)

How a call flows (see ``shared/notes/framework-internals.md``): the public entry points
(``invoke``/``generate``, ``stream``, ``astream``, ``stream_events(version="v3")``, their
async twins) score the routing text *before* the LLM run starts, then run the normal
``BaseChatModel`` path with the decision in the run's tags (``routellm:strong``), metadata
(``routellm_*`` keys) and ``_get_ls_params`` (the backend's provider and model). Inside
that one run, ``_generate``/``_stream`` call the chosen backend's own ``_generate``/
``_stream`` with ``run_manager=None``: exactly one LLM run per call, so usage is counted
once, under the backend's model name.
"""

from __future__ import annotations

import asyncio
import json
import hashlib
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import (AsyncCallbackManagerForLLMRun, BaseCallbackManager,
                                      CallbackManagerForLLMRun)
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import add_usage
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.outputs import ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from routellm_integrations.budgets import Budget
from routellm_integrations.costs import PriceTable, Usage
from routellm_integrations.errors import InvalidPromptError, InvalidThresholdError
from routellm_integrations.policy import RoutingPolicy, StepPolicy, Ticket

__all__ = ["RoutedChat", "ROUTE_KWARG", "routing_text"]

#: the call kwarg that carries the decision from the entry point to ``_generate``/``_stream``
ROUTE_KWARG = "routellm_route"
#: routers cheap enough to score on the event loop
_INLINE_ROUTERS = {"random", "length"}
_TOOL_OPTIONS = ("tool_choice", "strict", "parallel_tool_calls")
_DEFAULT_PRICES: PriceTable | None = None
_DEFAULT_PRICES_LOCK = threading.Lock()


def _default_prices() -> PriceTable:
    global _DEFAULT_PRICES
    with _DEFAULT_PRICES_LOCK:
        if _DEFAULT_PRICES is None:
            _DEFAULT_PRICES = PriceTable.default()
        return _DEFAULT_PRICES


@dataclass(frozen=True)
class _Route:
    """One call's routing decision, as carried through the run."""

    route: Literal["strong", "weak"]
    score: float | None
    threshold: float
    router: str
    latency_ms: float
    reason: str  # "scored", "forced" (model= override) or "no_text"
    step_policy: str | None = None
    budget: dict[str, Any] | None = None
    ticket: Ticket | None = None  # settled with the call's cost (budgets)

    @classmethod
    def of(cls, ticket: Ticket, reason: str) -> "_Route":
        d = ticket.decision
        return cls(d.route, d.score, float(d.threshold), d.router, float(d.latency_ms or 0.0), reason,
                   d.step_policy, d.budget, ticket)

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("ticket")
        return out


def _message_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n".join(parts)


def routing_text(messages: Sequence[BaseMessage], route_on: str = "last_human") -> str:
    """The text a router scores: the last human message (the default; the paper's routers
    were trained on first turns), or the whole conversation. Raises
    :class:`InvalidPromptError` when there are no messages or no human message."""
    if not messages:
        raise InvalidPromptError("RoutedChat got no messages: give at least one human message to route on")
    if route_on == "conversation":
        return "\n\n".join(t for t in (_message_text(m) for m in messages if m.type in ("human", "system", "ai")) if t)
    for m in reversed(messages):
        if m.type == "human":
            return _message_text(m)
    raise InvalidPromptError("RoutedChat found no human message to route on (route_on='last_human'); "
                             "add one, use route_on='conversation', or force a route with model='strong'|'weak'")


def turn_of(messages: Sequence[BaseMessage]) -> tuple[str, bool]:
    """The user turn a call belongs to (a digest of the conversation up to its last human
    message) and whether the call continues it (a tool result or the model's own message
    follows): the steps of one agent turn then share a backend (``steps="per_turn"``)."""
    last_human = max((i for i, m in enumerate(messages) if m.type == "human"), default=-1)
    digest = hashlib.sha1()
    for m in messages[: last_human + 1]:
        digest.update(f"{m.type}\x00{_message_text(m)}\x01".encode())
    return digest.hexdigest(), last_human < len(messages) - 1


def _scope_of(metadata: dict[str, Any] | None) -> str | None:
    """A LangGraph thread (``thread_id`` in the run metadata) is a budget/sticky scope."""
    thread = (metadata or {}).get("thread_id")
    return f"thread:{thread}" if thread is not None else None


def _backend_model_name(backend: BaseChatModel) -> str:
    for attr in ("model_name", "model", "model_id", "deployment_name"):
        v = getattr(backend, attr, None)
        if isinstance(v, str) and v:
            return v
    try:
        name = backend._get_ls_params().get("ls_model_name")
    except Exception:  # noqa: BLE001 - a backend without ls params still works
        name = None
    return name or type(backend).__name__


def _to_chunk(message: BaseMessage) -> AIMessageChunk:
    """A whole AIMessage as one chunk (for backends that cannot stream)."""
    if isinstance(message, AIMessageChunk):
        return message
    tool_call_chunks = [{"name": tc["name"], "args": json.dumps(tc["args"]), "id": tc.get("id"), "index": i,
                         "type": "tool_call_chunk"} for i, tc in enumerate(getattr(message, "tool_calls", []) or [])]
    return AIMessageChunk(content=message.content, additional_kwargs=dict(message.additional_kwargs),
                          response_metadata=dict(message.response_metadata), id=message.id,
                          usage_metadata=getattr(message, "usage_metadata", None),
                          tool_call_chunks=tool_call_chunks)


class RoutedChat(BaseChatModel):
    """A chat model over two chat models: each call is scored by a RouteLLM router and
    sent to ``strong`` when ``score >= threshold``, else to ``weak``.

    The answer is the backend's own message, plus ``response_metadata["routellm"]``
    (route, model, provider, score, threshold, router, latency_ms, reason, cost_usd) and
    ``response_metadata["model_name"]`` set to the model that answered.

    Per call, ``model="strong"`` / ``"weak"`` (or either backend's model name) forces a
    route; set ``model=`` at construction to force every call. ``bind_tools`` keeps the
    tools provider-neutral and each backend formats them for its own API at call time.
    ``with_structured_output`` uses tool calling for every ``method`` (the one mechanism
    both backends share), so the parsed result is the same whichever backend answers.

    Backends are called through their ``_generate``/``_stream`` inside RoutedChat's run:
    a backend's own callbacks, cache and rate limiter are not used (give them to
    RoutedChat); its client settings (keys, base URL, timeout, retries) are.
    """

    strong: BaseChatModel = Field(description="the model for calls the router scores as hard")
    weak: BaseChatModel = Field(description="the model for the other calls")
    router: Any = Field(default="mf", description="a router name for load_router, or a router object")
    router_options: dict[str, Any] = Field(default_factory=dict, description="options for load_router")
    threshold: float | None = Field(default=None, description="route strong when score >= threshold (default 0.5)")
    strong_fraction: float | None = Field(
        default=None, description="instead of threshold: the share of calls to send strong, held on live traffic "
        "(warm-started from calibration_prompts when given)")
    calibration_prompts: list[str] | None = Field(default=None, description="a sample of your traffic for strong_fraction")
    budget: Budget | None = Field(default=None, description="a spend/strong-call cap per scope (a LangGraph thread, "
                                  "a routing_scope(...) block, or `scope`)")
    steps: StepPolicy = Field(default="per_turn", description="per_turn: one route per user turn, kept for its "
                              "tool-calling steps; every_step; sticky: once strong in a scope, stay strong")
    scope: str | None = Field(default=None, description="budget/sticky scope of calls that name none")
    route_on: Literal["last_human", "conversation"] = "last_human"
    on_no_text: Literal["strong", "weak", "error"] = Field(
        default="strong", description="where a call goes whose routing text is empty (e.g. only images)")
    model_name: str | None = Field(default=None, alias="model",
                                   description="force every call: 'strong', 'weak' or a backend's model name")
    temperature: float | None = Field(default=None, description="sent to whichever backend answers")
    max_tokens: int | None = Field(default=None, description="sent to whichever backend answers")
    stop: list[str] | None = Field(default=None, alias="stop_sequences", description="default stop sequences")
    request_timeout: float | None = Field(default=None, alias="timeout",
                                          description="not applied: set timeouts on the backends' clients")
    max_retries: int | None = Field(default=None, description="not applied: set retries on the backends' clients")
    streaming: bool = False
    prices: PriceTable | None = Field(default=None, exclude=True, repr=False,
                                      description="price table for cost_usd (default: the shipped one)")
    emit_routing_events: bool = Field(default=True, description="dispatch a 'routellm_route' custom event "
                                      "to the parent run, when there is one")

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=())

    _policy: RoutingPolicy = PrivateAttr()

    @model_validator(mode="after")
    def _check(self) -> "RoutedChat":
        from routellm_integrations.routers.base import validate_threshold

        if self.threshold is not None and self.strong_fraction is not None:
            raise InvalidThresholdError("give threshold or strong_fraction, not both")
        if self.threshold is not None:
            validate_threshold(self.threshold)
        if not isinstance(self.router, str):
            if not (hasattr(self.router, "route") and hasattr(self.router, "score")):
                raise TypeError(f"router must be a router name or an object with score()/route(), "
                                f"got {type(self.router).__name__}")
        self._policy = RoutingPolicy(self.router, threshold=self.threshold, strong_fraction=self.strong_fraction,
                                     calibration_prompts=self.calibration_prompts, budget=self.budget,
                                     steps=self.steps, router_options=self.router_options)
        if self.model_name is not None:
            self._forced(self.model_name)  # validate early
        if self.request_timeout is not None or self.max_retries is not None:
            warnings.warn("RoutedChat does not own HTTP clients: timeout/max_retries are not applied; set them "
                          "on the strong and weak models", UserWarning, stacklevel=2)
        return self

    # -- LangChain plumbing --------------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "routellm-routed-chat"

    @property
    def router_name(self) -> str:
        return self.router if isinstance(self.router, str) else str(getattr(self.router, "name", type(self.router).__name__))

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"router": self.router_name, "threshold": self.threshold, "strong_fraction": self.strong_fraction,
                "route_on": self.route_on, "strong_model": _backend_model_name(self.strong),
                "weak_model": _backend_model_name(self.weak)}

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        route = kwargs.pop(ROUTE_KWARG, None)
        params = super()._get_invocation_params(stop=stop, **kwargs)
        if isinstance(route, _Route):
            params[ROUTE_KWARG] = route.route
        return params

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        route = kwargs.pop(ROUTE_KWARG, None)
        if isinstance(route, _Route):  # cache per backend, not per score
            kwargs[ROUTE_KWARG] = route.route
        return super()._get_llm_string(stop=stop, **kwargs)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """The provider and model of the backend that answers this call (LangSmith prices
        the run by them). Before a decision exists, the strong backend's."""
        route = kwargs.get(ROUTE_KWARG)
        override = kwargs.get("model")
        backend = self.strong
        name_override = None
        if isinstance(route, _Route):
            backend = self._backend(route.route)
        elif isinstance(override, str) and override:
            forced = self._forced(override, strict=False)
            if forced is None:
                name_override = override
            else:
                backend = self._backend(forced)
        elif self.model_name is not None:
            backend = self._backend(self._forced(self.model_name))
        try:
            params = backend._get_ls_params(stop=stop)
        except Exception:  # noqa: BLE001
            params = LangSmithParams(ls_provider=type(backend).__name__.lower(), ls_model_type="chat")
        params = LangSmithParams(**params)
        params.setdefault("ls_model_name", _backend_model_name(backend))
        params["ls_model_type"] = "chat"
        if name_override:
            params["ls_model_name"] = name_override
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, (int, float)):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # -- routing ----------------------------------------------------------------------
    def _backend(self, route: str) -> BaseChatModel:
        return self.strong if route == "strong" else self.weak

    def _forced(self, model: str, strict: bool = True) -> Literal["strong", "weak"] | None:
        if model in ("strong", "weak"):
            return model  # type: ignore[return-value]
        if model == _backend_model_name(self.strong):
            return "strong"
        if model == _backend_model_name(self.weak):
            return "weak"
        if strict:
            raise ValueError(f"model={model!r}: RoutedChat forces a route with model='strong' or 'weak' (or a "
                             f"backend's model name: {_backend_model_name(self.strong)!r}, "
                             f"{_backend_model_name(self.weak)!r})")
        return None

    @property
    def policy(self) -> RoutingPolicy:
        """The core policy: threshold or target share, budgets, step routing."""
        return self._policy

    def get_router(self) -> Any:
        """The router object (loaded on first use: ``mf`` loads its embedder then)."""
        return self._policy.router

    def get_threshold(self) -> float:
        """The base threshold now in force (held online when ``strong_fraction`` is set)."""
        return self._policy.threshold

    def decide(self, messages: Sequence[BaseMessage], model: str | None = None, scope: str | None = None) -> _Route:
        """Where a call with these messages goes (without calling a backend). The decision
        holds a budget reservation when a budget is set: a call made with it settles it."""
        messages = list(messages)
        if not messages:
            raise InvalidPromptError("RoutedChat got no messages: give at least one human message to route on")
        scope = scope or self.scope
        forced = model if model is not None else self.model_name
        if forced is not None:
            return _Route.of(self._policy.admit(self._forced(forced), scope=scope, reason="forced"), "forced")
        text = routing_text(messages, self.route_on)
        if not text.strip():
            if self.on_no_text == "error":
                raise InvalidPromptError("the message to route on has no text (only images or other media); "
                                         "force a route with model='strong'|'weak' or set on_no_text")
            return _Route.of(self._policy.admit(self.on_no_text, scope=scope, reason="no_text"), "no_text")
        turn_key, followup = turn_of(messages)
        ticket = self._policy.decide(text, scope=scope, turn_key=turn_key, followup=followup)
        return _Route.of(ticket, "scored")

    async def adecide(self, messages: Sequence[BaseMessage], model: str | None = None,
                      scope: str | None = None) -> _Route:
        if model is not None or self.model_name is not None or self.router_name in _INLINE_ROUTERS:
            return self.decide(messages, model, scope)
        return await asyncio.to_thread(self.decide, list(messages), model, scope)

    def _tags_metadata(self, route: _Route, tags: list[str] | None, metadata: dict[str, Any] | None
                       ) -> tuple[list[str], dict[str, Any]]:
        backend = self._backend(route.route)
        new_tags = [*(tags or []), f"routellm:{route.route}"]
        new_meta = {**(metadata or {}), "routellm_route": route.route, "routellm_model": _backend_model_name(backend),
                    "routellm_score": route.score, "routellm_threshold": route.threshold,
                    "routellm_router": route.router, "routellm_latency_ms": route.latency_ms,
                    "routellm_reason": route.reason, "routellm_step_policy": route.step_policy}
        if route.budget is not None:  # the scope's budget at admission (traces show it beside the route)
            new_meta["routellm_budget"] = route.budget
        return new_tags, new_meta

    def _event_data(self, route: _Route) -> dict[str, Any]:
        return {**route.public(), "model": _backend_model_name(self._backend(route.route))}

    def _emit(self, callbacks: Any, route: _Route) -> None:
        if self.emit_routing_events and isinstance(callbacks, BaseCallbackManager) and callbacks.parent_run_id:
            dispatch_custom_event("routellm_route", self._event_data(route), config={"callbacks": callbacks})

    async def _aemit(self, callbacks: Any, route: _Route) -> None:
        if self.emit_routing_events and isinstance(callbacks, BaseCallbackManager) and callbacks.parent_run_id:
            await adispatch_custom_event("routellm_route", self._event_data(route), config={"callbacks": callbacks})

    def _take_model(self, kwargs: dict[str, Any]) -> str | None:
        model = kwargs.pop("model", None)
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model must be a string ('strong', 'weak' or a backend's model name), got {model!r}")
        return model

    # -- entry points: decide before the run starts ---------------------------------------
    def generate(self, messages: list[list[BaseMessage]], stop: list[str] | None = None, callbacks: Any = None,
                 *, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                 run_name: str | None = None, run_id: Any = None, **kwargs: Any) -> LLMResult:
        if len(messages) != 1 and not isinstance(kwargs.get(ROUTE_KWARG), _Route):
            results = [self.generate([m], stop, callbacks, tags=tags, metadata=metadata, run_name=run_name, **kwargs)
                       for m in messages]
            return _merge_results(results)
        if not isinstance(kwargs.get(ROUTE_KWARG), _Route):
            model = self._take_model(kwargs)
            route = self.decide(messages[0] if messages else [], model, _scope_of(metadata))
            kwargs[ROUTE_KWARG] = route
            tags, metadata = self._tags_metadata(route, tags, metadata)
            self._emit(callbacks, route)
        return super().generate(messages, stop, callbacks, tags=tags, metadata=metadata, run_name=run_name,
                                run_id=run_id, **kwargs)

    async def agenerate(self, messages: list[list[BaseMessage]], stop: list[str] | None = None, callbacks: Any = None,
                        *, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                        run_name: str | None = None, run_id: Any = None, **kwargs: Any) -> LLMResult:
        if len(messages) != 1 and not isinstance(kwargs.get(ROUTE_KWARG), _Route):
            results = await asyncio.gather(*(self.agenerate([m], stop, callbacks, tags=tags, metadata=metadata,
                                                            run_name=run_name, **kwargs) for m in messages))
            return _merge_results(list(results))
        if not isinstance(kwargs.get(ROUTE_KWARG), _Route):
            model = self._take_model(kwargs)
            route = await self.adecide(messages[0] if messages else [], model, _scope_of(metadata))
            kwargs[ROUTE_KWARG] = route
            tags, metadata = self._tags_metadata(route, tags, metadata)
            await self._aemit(callbacks, route)
        return await super().agenerate(messages, stop, callbacks, tags=tags, metadata=metadata, run_name=run_name,
                                       run_id=run_id, **kwargs)

    def _routed_config(self, input: LanguageModelInput, config: RunnableConfig | None, kwargs: dict[str, Any]
                       ) -> tuple[RunnableConfig, _Route]:
        config = ensure_config(config)
        route = kwargs.get(ROUTE_KWARG)
        if not isinstance(route, _Route):
            route = self.decide(self._convert_input(input).to_messages(), self._take_model(kwargs),
                                _scope_of(config.get("metadata")))
            kwargs[ROUTE_KWARG] = route
        tags, metadata = self._tags_metadata(route, config.get("tags"), config.get("metadata"))
        return {**config, "tags": tags, "metadata": metadata}, route  # type: ignore[typeddict-item]

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        fresh = not isinstance(kwargs.get(ROUTE_KWARG), _Route)
        config, route = self._routed_config(input, config, kwargs)
        if fresh:
            self._emit(config.get("callbacks"), route)
        yield from super().stream(input, config, stop=stop, **kwargs)

    async def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        config = ensure_config(config)
        if not isinstance(kwargs.get(ROUTE_KWARG), _Route):
            route = await self.adecide(self._convert_input(input).to_messages(), self._take_model(kwargs),
                                       _scope_of(config.get("metadata")))
            kwargs[ROUTE_KWARG] = route
            await self._aemit(config.get("callbacks"), route)
        config, _ = self._routed_config(input, config, kwargs)
        async for chunk in super().astream(input, config, stop=stop, **kwargs):
            yield chunk

    def stream_events(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      version: Literal["v1", "v2", "v3"] = "v2", stop: list[str] | None = None,
                      **kwargs: Any) -> Any:
        if version == "v3":
            config, route = self._routed_config(input, config, kwargs)
            self._emit(config.get("callbacks"), route)
        return super().stream_events(input, config, version=version, stop=stop, **kwargs)

    def astream_events(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                       version: Literal["v1", "v2", "v3"] = "v2", stop: list[str] | None = None,
                       **kwargs: Any) -> Any:
        if version == "v3":
            config, _ = self._routed_config(input, config, kwargs)
        return super().astream_events(input, config, version=version, stop=stop, **kwargs)

    # -- the backend call, inside the one LLM run -------------------------------------------
    def _prepare(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
                 ) -> tuple[_Route, BaseChatModel, list[str] | None, dict[str, Any]]:
        route = kwargs.pop(ROUTE_KWARG, None)
        model = self._take_model(kwargs)
        if not isinstance(route, _Route):  # _generate called directly (e.g. by a subclass or a test)
            route = self.decide(messages, model)
        backend = self._backend(route.route)
        call = dict(kwargs)
        if self.temperature is not None:
            call.setdefault("temperature", self.temperature)
        if self.max_tokens is not None:
            call.setdefault("max_tokens", self.max_tokens)
        if "tools" in call:
            tools = call.pop("tools")
            options = {k: call.pop(k) for k in _TOOL_OPTIONS if k in call}
            options = {k: v for k, v in options.items() if v is not None}
            try:
                bound = backend.bind_tools(tools, **options)
            except NotImplementedError as exc:
                raise NotImplementedError(f"the {route.route} backend ({type(backend).__name__}) does not support "
                                          "tool calling (no bind_tools)") from exc
            bound_kwargs = getattr(bound, "kwargs", None)
            if not isinstance(bound_kwargs, dict):
                raise TypeError(f"{type(backend).__name__}.bind_tools returned {type(bound).__name__}, "
                                "not a binding with kwargs")
            call = {**bound_kwargs, **call}
        stop = stop if stop is not None else self.stop
        return route, backend, (list(stop) if stop else None), call

    def _annotate(self, exc: BaseException, route: _Route, backend: BaseChatModel) -> None:
        if route.ticket is not None:
            self._policy.settle(route.ticket, None, succeeded=False)
        model = _backend_model_name(backend)
        note = (f"routellm: raised by the {route.route} backend ({type(backend).__name__}, model {model!r}); "
                f"route chosen by {route.router} ({route.reason}, score {route.score}, threshold {route.threshold})")
        if hasattr(exc, "add_note"):
            exc.add_note(note)
        try:
            exc.routellm_route = route.route  # type: ignore[attr-defined]
            exc.routellm_model = model  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - some exception types refuse attributes
            pass

    def _routellm_metadata(self, route: _Route, backend: BaseChatModel, model_name: str | None,
                           usage: dict[str, Any] | None) -> dict[str, Any]:
        model = model_name or _backend_model_name(backend)
        try:
            provider = backend._get_ls_params().get("ls_provider")
        except Exception:  # noqa: BLE001
            provider = None
        u = Usage.from_dict(usage) if usage else None
        prices = self.prices or _default_prices()
        cost = prices.cost(model, u, provider) if u is not None else None
        strong = self.strong
        try:
            strong_provider = strong._get_ls_params().get("ls_provider")
        except Exception:  # noqa: BLE001
            strong_provider = None
        budget = None
        if route.ticket is not None:
            self._policy.settle(route.ticket, cost)
            budget = self._policy.budget_state(route.ticket.decision)
        return {"route": route.route, "model": model, "provider": provider, "score": route.score,
                "threshold": route.threshold, "router": route.router, "latency_ms": route.latency_ms,
                "reason": route.reason, "step_policy": route.step_policy, "budget": budget, "cost_usd": cost,
                "strong_model": _backend_model_name(strong), "strong_provider": strong_provider}

    def _stamp(self, result: ChatResult, route: _Route, backend: BaseChatModel) -> ChatResult:
        for gen in result.generations:
            msg = gen.message
            meta = dict(msg.response_metadata or {})
            meta.setdefault("model_name", _backend_model_name(backend))
            meta["routellm"] = self._routellm_metadata(route, backend, meta.get("model_name"),
                                                       getattr(msg, "usage_metadata", None))
            msg.response_metadata = meta
        return result

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        route, backend, stop, call = self._prepare(messages, stop, kwargs)
        try:
            result = backend._generate(messages, stop=stop, run_manager=None, **call)
        except BaseException as exc:
            self._annotate(exc, route, backend)
            raise
        return self._stamp(result, route, backend)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        route, backend, stop, call = self._prepare(messages, stop, kwargs)
        try:
            result = await backend._agenerate(messages, stop=stop, run_manager=None, **call)
        except BaseException as exc:
            self._annotate(exc, route, backend)
            raise
        return self._stamp(result, route, backend)

    def _final_chunk(self, route: _Route, backend: BaseChatModel, seen_model: str | None, usage: Any,
                     list_content: bool) -> ChatGenerationChunk:
        meta: dict[str, Any] = {}
        if seen_model is None:
            meta["model_name"] = _backend_model_name(backend)
        meta["routellm"] = self._routellm_metadata(route, backend, seen_model, usage)
        return ChatGenerationChunk(message=AIMessageChunk(content=[] if list_content else "",
                                                          response_metadata=meta, chunk_position="last"))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        route, backend, stop, call = self._prepare(messages, stop, kwargs)
        seen_model, usage, list_content = None, None, False
        try:
            if type(backend)._stream is BaseChatModel._stream:
                result = backend._generate(messages, stop=stop, run_manager=None, **call)
                source: Iterator[Any] = iter([ChatGenerationChunk(message=_to_chunk(g.message),
                                                                  generation_info=g.generation_info)
                                              for g in result.generations[:1]])
            else:
                source = backend._stream(messages, stop=stop, run_manager=None, **call)
            for chunk in source:
                msg = chunk.message
                if isinstance(msg, AIMessageChunk):
                    msg.chunk_position = None  # "last" goes on our closing chunk only
                    usage = add_usage(usage, msg.usage_metadata) if msg.usage_metadata else usage
                name = (msg.response_metadata or {}).get("model_name") or (chunk.generation_info or {}).get("model_name")
                if name and seen_model is None:
                    seen_model = name
                list_content = isinstance(msg.content, list)
                yield chunk
        except BaseException as exc:
            self._annotate(exc, route, backend)
            raise
        yield self._final_chunk(route, backend, seen_model, usage, list_content)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any
                       ) -> AsyncIterator[ChatGenerationChunk]:
        route, backend, stop, call = self._prepare(messages, stop, kwargs)
        seen_model, usage, list_content = None, None, False
        try:
            if type(backend)._astream is BaseChatModel._astream and type(backend)._stream is BaseChatModel._stream:
                result = await backend._agenerate(messages, stop=stop, run_manager=None, **call)
                chunks = [ChatGenerationChunk(message=_to_chunk(g.message), generation_info=g.generation_info)
                          for g in result.generations[:1]]

                async def _one() -> AsyncIterator[ChatGenerationChunk]:
                    for c in chunks:
                        yield c
                source: AsyncIterator[Any] = _one()
            else:
                source = backend._astream(messages, stop=stop, run_manager=None, **call)
            async for chunk in source:
                msg = chunk.message
                if isinstance(msg, AIMessageChunk):
                    msg.chunk_position = None
                    usage = add_usage(usage, msg.usage_metadata) if msg.usage_metadata else usage
                name = (msg.response_metadata or {}).get("model_name") or (chunk.generation_info or {}).get("model_name")
                if name and seen_model is None:
                    seen_model = name
                list_content = isinstance(msg.content, list)
                yield chunk
        except BaseException as exc:
            self._annotate(exc, route, backend)
            raise
        yield self._final_chunk(route, backend, seen_model, usage, list_content)

    # -- tools and structured output -----------------------------------------------------------
    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], *,
                   tool_choice: str | dict[str, Any] | bool | None = None, **kwargs: Any
                   ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind provider-neutral (OpenAI-format) tool schemas; the backend that answers a
        call formats them for its own API (``backend.bind_tools``) at call time."""
        formatted = [t if isinstance(t, dict) and t.get("type") not in (None, "function") else convert_to_openai_tool(t)
                     for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(self, schema: dict[str, Any] | type, *, include_raw: bool = False,
                               method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
                               strict: bool | None = None, **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        if kwargs:
            raise ValueError(f"Received unsupported arguments {kwargs}")
        if method not in ("function_calling", "json_schema", "json_mode"):
            raise ValueError(f"method must be 'function_calling', 'json_schema' or 'json_mode', got {method!r}")
        if schema is None:
            raise ValueError("RoutedChat.with_structured_output needs a schema (it uses tool calling)")
        extra = {"strict": strict} if strict is not None else {}
        llm = self.bind_tools([schema], tool_choice="any",
                              ls_structured_output_format={"kwargs": {"method": method, **extra}, "schema": schema},
                              **extra)
        if isinstance(schema, type) and is_basemodel_subclass(schema):
            parser: Runnable = PydanticToolsParser(tools=[schema], first_tool_only=True)
        else:
            key_name = convert_to_openai_tool(schema)["function"]["name"]
            parser = JsonOutputKeyToolsParser(key_name=key_name, first_tool_only=True)
        if include_raw:
            parser_assign = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
            parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
            return RunnableMap(raw=llm) | parser_assign.with_fallbacks([parser_none], exception_key="parsing_error")
        return llm | parser


def _merge_results(results: list[LLMResult]) -> LLMResult:
    generations = [g for r in results for g in r.generations]
    runs = [ri for r in results for ri in (r.run or [])]
    return LLMResult(generations=generations, llm_output=None, run=runs or None)
