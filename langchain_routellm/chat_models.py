"""``RoutedChat``: a LangChain chat model that sends each call to a strong or a weak model.

    llm = RoutedChat(strong=ChatOpenAI(model="gpt-4o"),
                     weak=ChatAnthropic(model="claude-3-5-haiku-latest"),
                     router="mf")      # 30% of calls strong, held online (strong_fraction=0.3)

    # or among N models, by predicted quality against expected cost, with a cascade
    llm = RoutedChat(models={"gpt-4o": ChatOpenAI(model="gpt-4o"),
                             "gpt-4o-mini": ChatOpenAI(model="gpt-4o-mini"),
                             "claude-3-haiku": ChatAnthropic(model="claude-3-haiku-20240307")},
                     cost_weight=200, escalate_if=True)

How a call flows: each public entry point (``invoke``/``generate``, ``stream``,
``astream``, ``stream_events(version="v3")``, their async twins) begins a
:class:`~routellm_integrations.routing.RoutedCall` *before* the LLM run starts (the
router scores, off the event loop in async paths, and the budget reserves the most the
call can cost) and carries the handle through the run in the ``routellm_route`` kwarg.
The run's tags (``routellm:strong``), metadata (``routellm_*``) and ``_get_ls_params``
(the backend's provider and model) read it. Inside that one run ``_generate``/``_stream``
call the chosen backend's own ``_generate``/``_stream`` with ``run_manager=None``:
exactly one LLM run per call, so usage is counted once, under the backend's model name.
The handle settles on every exit (answer, exception, cancellation, a stream the consumer
stops reading or the provider cuts, a cache hit) and its one record is what
``response_metadata["routellm"]``, events and the cost tracker report.

With ``escalate_if``, an answer that fails a check is re-sent, inside the same run, to
the next model up (each call a record; the tracker and the budget see both). A stream
is buffered while a model above could still take over, so no chunk of an answer that is
then escalated is ever released: escalation happens before the first chunk.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from operator import itemgetter
from typing import Any, Literal

from langchain_core.callbacks import (AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import add_usage
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from routellm_integrations.costs import PriceTable
from routellm_integrations.state import CostLedger
from routellm_integrations.decision import Route, RoutingDecision
from routellm_integrations.errors import InvalidPromptError, InvalidRouteError
from routellm_integrations.policy import RoutingPolicy, SwapReport
from routellm_integrations.routing import Backend, CallLifecycle, CallRecord, RoutedCall, Turn, turn_of
from routellm_integrations.routing import engine
from routellm_integrations.routing.answer_checks import ahead, blocking
from routellm_integrations.routing.engine import Hooks, Tally
from routellm_integrations.routing.config import (RENAMED, RoutedModelConfig, checked, forced_route, pair_or_models,
                                                  renamed)
from routellm_integrations.routing.escalation import response_schema

from .answers import answer_of
from .records import aemit, emit, route_tags_metadata, scope_of, watch

from .messages import (backend_model_name, backend_provider, chunk_text, message_pairs, routing_text, to_chunk,
                       turn_of_messages)

__all__ = ["RoutedChat", "ROUTE_KWARG", "routing_text"]

#: the call kwarg that carries the :class:`RoutedCall` from the entry point into the run
ROUTE_KWARG = "routellm_route"
_TOOL_OPTIONS = ("tool_choice", "strict", "parallel_tool_calls")


class RoutedChat(BaseChatModel, RoutedModelConfig):
    """A chat model over two chat models: each call is scored by a RouteLLM router and
    sent to ``strong`` when ``score >= threshold``, else to ``weak``. Given no threshold,
    30% of calls go strong (``strong_fraction=0.3``, held on live traffic, whatever its
    mix). The router scores the two backends' models (their ``model_name``) when its
    checkpoint knows them, and its default pair otherwise (warned once); each record's
    ``scored_pair`` says which. Or over N
    (``models={key: chat_model}``): each call goes to the model maximising predicted
    quality minus ``cost_weight`` x its expected cost (``spend_per_call``: a target held
    online; ``max_cost_per_call``: a cap), scored by a router with
    ``quality(prompts, models)`` (default ``"quality"``). The router knows models by the
    names its training data used: a key is looked up as such, or give
    ``router_models={key: name}`` (``"claude-3-5-haiku": "claude-3-haiku-20240307"``).

    The answer is the backend's own message, plus ``response_metadata["routellm"]`` (the
    call's :class:`~routellm_integrations.routing.CallRecord`: route, model, provider,
    score, threshold, router, latency_ms, reason, status, cost_usd, budget, ...) and
    ``response_metadata["model_name"]`` set to the model that answered.

    Per call, ``route="strong"`` / ``"weak"`` (N-way: a key; or any backend's model name)
    forces a route; set ``route=`` at construction to force every call. Every routing
    option is a field of :class:`~routellm_integrations.routing.config.RoutedModelConfig`
    (the same names and checks as RoutedLLM, the client and the server).
    ``escalate_if=True`` (the built-in checks: structured output that does not parse or
    validate, a tool call to an unknown tool or with invalid arguments, an empty answer
    or a refusal), a check ``answer -> reason | None``, a check's name (``"final_answer"``,
    ``"answer_flags"``, ``"agreement"``...), a verifier or its folder, or a list of them
    re-sends a failed answer to the next model up
    (:mod:`~routellm_integrations.routing.answer_checks`; with ``strong_fraction`` the
    share counts the escalations: route, then verify). ``bind_tools`` keeps the
    tools provider-neutral and each backend formats them for its own API at call time.
    ``with_structured_output(method="function_calling")`` (the default) uses tool calling,
    the one mechanism both backends share; ``"json_schema"``/``"json_mode"`` route
    between the backends' own ``with_structured_output`` so each provider's native
    structured output is used.

    Backends are called through their ``_generate``/``_stream`` inside RoutedChat's run:
    a backend's own callbacks, cache and rate limiter are not used (give them to
    RoutedChat); its client settings (keys, base URL, timeout, retries) are.

    **How it meets LangChain.** The documented extension points carry the call:
    ``_generate``/``_agenerate``/``_stream``/``_astream`` (each runs the core cascade
    engine, :mod:`routellm_integrations.routing.engine`, with this module's hooks),
    ``_llm_type``, ``_identifying_params``, ``_get_ls_params`` (LangSmith prices the
    backend that answered), ``bind_tools``, ``with_structured_output``. The design
    decides *before* the run starts (so the run's tags and metadata name the route and a
    budget reservation exists before any callback fires), which no documented hook
    allows; so these are still overridden, each for that reason only:

    - ``generate``/``agenerate``: every non-streaming path (``invoke``, ``batch``,
      ``generate_prompt``) passes here before the run starts: decide and reserve, add
      the route's tags and metadata, emit the routing event, then the base class's run.
    - ``stream``/``astream``, ``stream_events``/``astream_events`` (``version="v3"``,
      which does not go through ``stream``): the same for streams.
    - ``_generate_with_cache``/``_agenerate_with_cache``: the only place a cache hit is
      visible; the call reserved before the run settles as ``cached``, costing nothing.
    - ``_get_invocation_params``/``_get_llm_string``: the call in flight travels in a
      call kwarg (``routellm_route``); they put its route, not the handle, into the
      traced invocation params and the cache key (one cache entry per backend).
    - ``_convert_input`` is only called (to route a runnable's input before its run).
    """

    strong: BaseChatModel | None = Field(default=None, description="the model for calls the router scores as hard")
    weak: BaseChatModel | None = Field(default=None, description="the model for the other calls")
    models: dict[str, BaseChatModel] | None = Field(default=None, description="instead of strong/weak: N chat "
                                                    "models by key, chosen per call by quality against cost")
    temperature: float | None = Field(default=None, description="sent to whichever backend answers")
    max_tokens: int | None = Field(default=None, description="sent to whichever backend answers; bounds the "
                                   "budget's reservation for a call")
    stop: list[str] | None = Field(default=None, alias="stop_sequences", description="default stop sequences")
    streaming: bool = False
    request_timeout: float | None = Field(default=None, alias="timeout",
                                          description="not applied: set timeouts on the backends' clients")
    max_retries: int | None = Field(default=None, description="not applied: set retries on the backends' clients")
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False,
                                      description="not applied: each backend holds its own provider key")
    prices: PriceTable | None = Field(default=None, exclude=True, repr=False,
                                      description="price table for cost_usd (default: genai-prices over the "
                                      "shipped table)")
    emit_routing_events: bool = Field(default=True, description="dispatch a 'routellm_route' custom event "
                                      "to the parent run, when there is one")
    shadow: Any = Field(default=None, exclude=True, description="a ShadowSampler: records every call (for "
                        "feedback) and, for a sampled share, has the other backend answer and a judge compare, "
                        "off the critical path, into a label store")

    # the routing options (router, threshold, strong_fraction, cost_weight, escalate_if,
    # route, route_on, budget, steps, scope, store, ...) are RoutedModelConfig's fields.
    # extra="forbid": a misspelt option (``thresold=0.3``) is an error, not a silent default
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=(),
                              extra="forbid")

    _policy: RoutingPolicy = PrivateAttr()
    _calls: CallLifecycle = PrivateAttr()
    _backends: dict[str, BaseChatModel] = PrivateAttr()
    _checks: tuple[Any, ...] = PrivateAttr(default=())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """A misuse raises the same typed error as on every other surface (e.g.
        :class:`~routellm_integrations.errors.InvalidThresholdError`), not pydantic's
        ``ValidationError`` wrapping it. ``model=`` (a forced route, before it was called
        ``route=``) still works, with a ``DeprecationWarning``."""
        kwargs = renamed(kwargs, "RoutedChat", {"model": "route", "model_name": "route", **RENAMED})
        checked(super().__init__, *args, **kwargs)

    @model_validator(mode="after")
    def _check(self) -> "RoutedChat":
        self._backends, nway = pair_or_models(self.strong, self.weak, self.models, what="chat model")
        if self.router is None:
            object.__setattr__(self, "router", self.router_or_default(nway))
        if self.shadow is not None and nway:
            raise InvalidRouteError("shadow sampling compares a strong/weak pair; it is not available with models=")
        keys = list(self._backends)
        self._policy = self.make_model_policy(keys, nway)
        backends = {k: Backend(k, backend_model_name(m), backend_provider(m)) for k, m in self._backends.items()}
        self._calls = CallLifecycle(self._policy, prices=self.prices, on_no_text=self.on_no_text,
                                    backends=backends, **self.lifecycle_options())
        self._checks = self.checks
        if self.shadow is not None:
            from routellm_integrations.labels.shadow import ShadowSampler

            if not isinstance(self.shadow, ShadowSampler):
                raise TypeError(f"shadow must be a ShadowSampler(...), got {type(self.shadow).__name__}")
            self.shadow.check_prices((self._calls.strong.model, self._calls.strong.provider),
                                     (self._calls.weak.model, self._calls.weak.provider))
        if self.route is not None:
            self._forced(self.route)  # validate early
        if self.request_timeout is not None or self.max_retries is not None or self.api_key is not None:
            # LangChain's standard parameters: accepted (its test suite passes them), never silently
            warnings.warn("RoutedChat does not own HTTP clients: timeout/max_retries/api_key are not applied; set "
                          "them on the strong and weak models", UserWarning, stacklevel=2)
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
        return {"router": self.router_name, "threshold": self.threshold,
                "strong_fraction": self._policy.strong_fraction, "route_on": self.route_on,
                "strong_model": self._calls.strong.model, "weak_model": self._calls.weak.model,
                "models": {k: b.model for k, b in self._calls.backends.items()},
                "cost_weight": self.cost_weight, "spend_per_call": self.spend_per_call}

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        call = kwargs.pop(ROUTE_KWARG, None)
        params = super()._get_invocation_params(stop=stop, **kwargs)
        if isinstance(call, RoutedCall):
            params[ROUTE_KWARG] = call.route
        return params

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        call = kwargs.pop(ROUTE_KWARG, None)
        if isinstance(call, RoutedCall):  # cache per backend, not per score
            kwargs[ROUTE_KWARG] = call.route
        return super()._get_llm_string(stop=stop, **kwargs)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """The provider and model of the backend that answers this call (LangSmith prices
        the run by them). Before a decision exists, the strong backend's."""
        call = kwargs.get(ROUTE_KWARG)
        override = kwargs.get("route", kwargs.get("model"))
        backend, name_override = self._backend(self._calls.strong.route), None
        if isinstance(call, RoutedCall):
            backend = self._backend(call.route)
        elif isinstance(override, str) and override:
            forced = self._forced(override, strict=False)
            if forced is None:
                name_override = override
            else:
                backend = self._backend(forced)
        elif self.route is not None:
            backend = self._backend(self._forced(self.route))
        try:
            params = LangSmithParams(**backend._get_ls_params(stop=stop))
        except Exception:  # noqa: BLE001
            params = LangSmithParams(ls_provider=type(backend).__name__.lower(), ls_model_type="chat")
        params.setdefault("ls_model_name", backend_model_name(backend))
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
        return self._backends[route]

    def _forced(self, route: str, strict: bool = True) -> str | None:
        """The key ``route`` forces (a key, or a backend's model name)."""
        return forced_route(route, {k: b.model for k, b in self._calls.backends.items()}, strict=strict)

    @property
    def policy(self) -> RoutingPolicy:
        """The core policy: threshold or target share, budgets, step routing."""
        return self._policy

    @property
    def ledger(self) -> CostLedger:
        """Every call this model made, however it ended (priced once, at settlement)."""
        return self._calls.ledger

    def swap_router(self, router: Any, *, prompts: Sequence[str] | None = None) -> SwapReport:
        """Serve a new router (an object, a name or a folder, e.g. one ``routellm adapt``
        wrote) from the next call on, without rebuilding the chain; the threshold is re-set
        so the share of strong calls stays what it was (see ``RoutingPolicy.swap_router``)."""
        report = self._policy.swap_router(router, prompts=prompts)
        object.__setattr__(self, "router", self._policy.router)
        return report

    def get_router(self) -> Any:
        """The router object (loaded on first use: ``mf`` loads its embedder then)."""
        return self._policy.router

    def get_threshold(self) -> float:
        """The base threshold now in force (held online when ``strong_fraction`` is set)."""
        return self._policy.threshold

    def _turn(self, messages: Sequence[BaseMessage], forced: Route | None, kwargs: dict[str, Any]) -> Turn:
        if not messages:
            raise InvalidPromptError("RoutedChat got no messages: give at least one human message to route on")
        try:
            return turn_of_messages(messages, self.route_on, tools=kwargs.get("tools"))
        except InvalidPromptError:
            if forced is None:  # nothing says what the call is for; a forced call needs no text
                raise
            return turn_of(message_pairs(messages), text="")

    def _route_args(self, messages: Sequence[BaseMessage], route: str | None, scope: str | None,
                    kwargs: dict[str, Any]) -> dict[str, Any]:
        forced_name = route if route is not None else self.route
        forced = self._forced(forced_name) if forced_name is not None else None
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        return {"turn": self._turn(list(messages), forced, kwargs), "force": forced, "scope": scope or self.scope,
                "max_output_tokens": max_tokens if isinstance(max_tokens, int) else None}

    def decide(self, messages: LanguageModelInput, route: str | None = None,
               scope: str | None = None) -> RoutingDecision:
        """Where a call with this input (a string, messages or a prompt value, as
        ``invoke`` takes) would go now. A preview: it reserves no budget, moves no online
        threshold and remembers no turn."""
        return self._calls.preview(**self._route_args(self._convert_input(messages).to_messages(), route, scope, {}))

    async def adecide(self, messages: LanguageModelInput, route: str | None = None,
                      scope: str | None = None) -> RoutingDecision:
        return await asyncio.to_thread(self.decide, messages, route, scope)

    def _watch(self, call: RoutedCall, callbacks: Any) -> None:
        """Report the settled call to the handlers of this run that take records (the cost
        tracker), whichever way the call ends."""
        watch(call, callbacks, self.callbacks)

    def _begin(self, messages: Sequence[BaseMessage], kwargs: dict[str, Any], metadata: dict[str, Any] | None,
               callbacks: Any) -> RoutedCall:
        call = self._calls.begin(**self._route_args(messages, self._take_route(kwargs), scope_of(metadata), kwargs))
        self._watch(call, callbacks)
        return call

    async def _abegin(self, messages: Sequence[BaseMessage], kwargs: dict[str, Any],
                      metadata: dict[str, Any] | None, callbacks: Any) -> RoutedCall:
        args = self._route_args(messages, self._take_route(kwargs), scope_of(metadata), kwargs)
        call = await self._calls.abegin(**args)
        self._watch(call, callbacks)
        return call

    # -- for runnables that route with RoutedChat outside its own LLM run (structured output) --
    @property
    def backends(self) -> dict[str, BaseChatModel]:
        """The chat models by route key (``strong``/``weak``, or the keys of ``models``)."""
        return dict(self._backends)

    @property
    def escalation_checks(self) -> tuple[Any, ...]:
        """The escalation checks ``escalate_if`` set (empty: answers are not reviewed)."""
        return self._checks

    def begin_call(self, input: LanguageModelInput, config: RunnableConfig | None = None
                   ) -> tuple[list[BaseMessage], RoutedCall]:
        """Decide and reserve for a call that a runnable of yours makes on the chosen
        backend (not through this model's run): the messages and the call in flight, which
        must be settled (run it with :func:`routellm_integrations.routing.engine.run`).
        The run's ``thread_id`` scopes it; the config's callbacks hear its record."""
        config = ensure_config(config)
        messages = self._convert_input(input).to_messages()
        return messages, self._begin(messages, {}, config.get("metadata"), config.get("callbacks"))

    async def abegin_call(self, input: LanguageModelInput, config: RunnableConfig | None = None
                          ) -> tuple[list[BaseMessage], RoutedCall]:
        """:meth:`begin_call`, the router scoring off the event loop."""
        config = ensure_config(config)
        messages = self._convert_input(input).to_messages()
        return messages, await self._abegin(messages, {}, config.get("metadata"), config.get("callbacks"))

    def call_config(self, call: RoutedCall, config: RunnableConfig | None = None) -> RunnableConfig:
        """``config`` with the call's route in its tags and ``routellm_*`` metadata (what
        this model's own runs carry), for the backend's run."""
        return self._config_for(call, ensure_config(config))

    def _tags_metadata(self, call: RoutedCall, tags: list[str] | None, metadata: dict[str, Any] | None
                       ) -> tuple[list[str], dict[str, Any]]:
        return route_tags_metadata(call, tags, metadata)

    def _config_for(self, call: RoutedCall, config: RunnableConfig) -> RunnableConfig:
        tags, metadata = self._tags_metadata(call, config.get("tags"), config.get("metadata"))
        return {**config, "tags": tags, "metadata": metadata}  # type: ignore[typeddict-item]

    def _emit(self, callbacks: Any, call: RoutedCall) -> None:
        if self.emit_routing_events:
            emit(callbacks, call)

    async def _aemit(self, callbacks: Any, call: RoutedCall) -> None:
        if self.emit_routing_events:
            await aemit(callbacks, call)

    def _take_route(self, kwargs: dict[str, Any]) -> str | None:
        """The call's forced route: ``route=`` (a key or a backend's model name), or
        LangChain's model override ``model=`` naming a backend's model (``model="strong"``,
        a route key there, still works with a ``DeprecationWarning``)."""
        route, model = kwargs.pop("route", None), kwargs.pop("model", None)
        if model is not None and route is not None:
            raise InvalidRouteError("give route= (a route key or a backend's model name) or model=, not both")
        if model is not None:
            if not isinstance(model, str):
                raise InvalidRouteError(f"model must be a backend's model name, got {model!r}")
            if model in self._backends and model not in {b.model for b in self._calls.backends.values()}:
                warnings.warn(f"model={model!r} names a route: force a route with route={model!r}",
                              DeprecationWarning, stacklevel=4)
            route = model
        if route is not None and not isinstance(route, str):
            raise InvalidRouteError(f"route must be a string ('strong', 'weak', a model key or a backend's model "
                                    f"name), got {route!r}")
        return route

    # -- entry points: begin the call before the run starts ---------------------------------
    def generate(self, messages: list[list[BaseMessage]], stop: list[str] | None = None, callbacks: Any = None,
                 *, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                 run_name: str | None = None, run_id: Any = None, **kwargs: Any) -> LLMResult:
        run = {"tags": tags, "metadata": metadata, "run_name": run_name}
        if isinstance(kwargs.get(ROUTE_KWARG), RoutedCall):
            return super().generate(messages, stop, callbacks, run_id=run_id, **run, **kwargs)
        if len(messages) != 1:
            return _merge_results([self.generate([m], stop, callbacks, **run, **kwargs) for m in messages])
        kwargs = dict(kwargs)
        call = kwargs[ROUTE_KWARG] = self._begin(messages[0], kwargs, metadata, callbacks)
        with call:
            tags, metadata = self._tags_metadata(call, tags, metadata)
            self._emit(callbacks, call)
            return super().generate(messages, stop, callbacks, tags=tags, metadata=metadata, run_name=run_name,
                                    run_id=run_id, **kwargs)

    async def agenerate(self, messages: list[list[BaseMessage]], stop: list[str] | None = None, callbacks: Any = None,
                        *, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                        run_name: str | None = None, run_id: Any = None, **kwargs: Any) -> LLMResult:
        run = {"tags": tags, "metadata": metadata, "run_name": run_name}
        if isinstance(kwargs.get(ROUTE_KWARG), RoutedCall):
            return await super().agenerate(messages, stop, callbacks, run_id=run_id, **run, **kwargs)
        if len(messages) != 1:
            results = await asyncio.gather(*(self.agenerate([m], stop, callbacks, **run, **kwargs) for m in messages))
            return _merge_results(list(results))
        kwargs = dict(kwargs)
        call = kwargs[ROUTE_KWARG] = await self._abegin(messages[0], kwargs, metadata, callbacks)
        async with call:
            tags, metadata = self._tags_metadata(call, tags, metadata)
            await self._aemit(callbacks, call)
            return await super().agenerate(messages, stop, callbacks, tags=tags, metadata=metadata,
                                           run_name=run_name, run_id=run_id, **kwargs)

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        config = ensure_config(config)
        if isinstance(kwargs.get(ROUTE_KWARG), RoutedCall):
            yield from super().stream(input, config, stop=stop, **kwargs)
            return
        call = kwargs[ROUTE_KWARG] = self._begin(self._convert_input(input).to_messages(), kwargs,
                                                 config.get("metadata"), config.get("callbacks"))
        with call:
            config = self._config_for(call, config)
            self._emit(config.get("callbacks"), call)
            yield from super().stream(input, config, stop=stop, **kwargs)

    async def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        config = ensure_config(config)
        if isinstance(kwargs.get(ROUTE_KWARG), RoutedCall):
            async for chunk in super().astream(input, config, stop=stop, **kwargs):
                yield chunk
            return
        call = kwargs[ROUTE_KWARG] = await self._abegin(self._convert_input(input).to_messages(), kwargs,
                                                        config.get("metadata"), config.get("callbacks"))
        async with call:
            await self._aemit(config.get("callbacks"), call)
            async for chunk in super().astream(input, self._config_for(call, config), stop=stop, **kwargs):
                yield chunk

    def stream_events(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      version: Literal["v1", "v2", "v3"] = "v2", stop: list[str] | None = None,
                      **kwargs: Any) -> Any:
        if version == "v3" and not isinstance(kwargs.get(ROUTE_KWARG), RoutedCall):
            config = ensure_config(config)
            call = kwargs[ROUTE_KWARG] = self._begin(self._convert_input(input).to_messages(), kwargs,
                                                     config.get("metadata"), config.get("callbacks"))
            try:
                config = self._config_for(call, config)
                self._emit(config.get("callbacks"), call)
                return super().stream_events(input, config, version=version, stop=stop, **kwargs)
            except BaseException as exc:  # the stream never started: nothing will settle it
                call.settle_on_exit(exc)
                raise
        return super().stream_events(input, config, version=version, stop=stop, **kwargs)

    def astream_events(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                       version: Literal["v1", "v2", "v3"] = "v2", stop: list[str] | None = None,
                       **kwargs: Any) -> Any:
        if version != "v3" or isinstance(kwargs.get(ROUTE_KWARG), RoutedCall):
            return super().astream_events(input, config, version=version, stop=stop, **kwargs)
        parent = super()

        async def _start() -> Any:  # v3 returns an awaitable: the router scores off the loop inside it
            cfg = ensure_config(config)
            call = kwargs[ROUTE_KWARG] = await self._abegin(self._convert_input(input).to_messages(), kwargs,
                                                            cfg.get("metadata"), cfg.get("callbacks"))
            try:
                await self._aemit(cfg.get("callbacks"), call)
                return await parent.astream_events(input, self._config_for(call, cfg), version="v3", stop=stop,
                                                   **kwargs)
            except BaseException as exc:
                call.settle_on_exit(exc)
                raise
        return _start()

    # -- the backend call, inside the one LLM run -------------------------------------------
    def _call_of(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> RoutedCall:
        call = kwargs.pop(ROUTE_KWARG, None)
        if isinstance(call, RoutedCall):
            return call
        # _generate/_stream called directly (a subclass, a test): this method settles it
        return self._calls.begin(**self._route_args(messages, self._take_route(kwargs), None, kwargs))

    def _prepare(self, call: RoutedCall, stop: list[str] | None, kwargs: dict[str, Any]
                 ) -> tuple[BaseChatModel, list[str] | None, dict[str, Any]]:
        kwargs.pop("route", None)
        kwargs.pop("model", None)
        backend = self._backend(call.route)
        params = dict(kwargs)
        if self.temperature is not None:
            params.setdefault("temperature", self.temperature)
        if self.max_tokens is not None:
            params.setdefault("max_tokens", self.max_tokens)
        if "tools" in params:
            tools = params.pop("tools")
            options = {k: params.pop(k) for k in _TOOL_OPTIONS if k in params}
            options = {k: v for k, v in options.items() if v is not None}
            try:
                bound = backend.bind_tools(tools, **options)
            except NotImplementedError as exc:
                raise NotImplementedError(f"the {call.route} backend ({type(backend).__name__}) does not support "
                                          "tool calling (no bind_tools)") from exc
            bound_kwargs = getattr(bound, "kwargs", None)
            if not isinstance(bound_kwargs, dict):
                raise TypeError(f"{type(backend).__name__}.bind_tools returned {type(bound).__name__}, "
                                "not a binding with kwargs")
            params = {**bound_kwargs, **params}
        stop = stop if stop is not None else self.stop
        return backend, (list(stop) if stop else None), params

    # -- escalation ---------------------------------------------------------------------
    def _review(self, call: RoutedCall, message: BaseMessage | None, kwargs: dict[str, Any], usage: Any,
                model: str | None, finish_reason: str | None = None) -> RoutedCall | None:
        """Run the escalation checks on a finished answer: the call one model up when it
        failed (this one then settled as escalated), else None."""
        if not self._checks or message is None:
            return None
        answer = answer_of(message, tools=kwargs.get("tools"), response_schema=_response_schema(kwargs),
                           route=call.route, tool_choice=kwargs.get("tool_choice"))
        if finish_reason and answer.finish_reason is None:
            answer = replace(answer, finish_reason=finish_reason)
        return call.review(self._checks, answer, usage, model=model, text=chunk_text(message))

    def _buffers(self, call: RoutedCall) -> bool:
        """A stream is held back while its answer could still be escalated."""
        return engine.holds(call, self._checks)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        call = self._call_of(messages, kwargs)
        return engine.run(call, _ChatHooks(self, messages, stop, kwargs))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        call = self._call_of(messages, kwargs)
        return await engine.arun(call, _ChatHooks(self, messages, stop, kwargs))

    # a cache hit returns without calling _generate: the call settles as cached, costing nothing
    def _generate_with_cache(self, messages: list[BaseMessage], stop: list[str] | None = None,
                             run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        result = super()._generate_with_cache(messages, stop=stop, run_manager=run_manager, **kwargs)
        return self._if_cached(result, kwargs.get(ROUTE_KWARG))

    async def _agenerate_with_cache(self, messages: list[BaseMessage], stop: list[str] | None = None,
                                    run_manager: AsyncCallbackManagerForLLMRun | None = None,
                                    **kwargs: Any) -> ChatResult:
        result = await super()._agenerate_with_cache(messages, stop=stop, run_manager=run_manager, **kwargs)
        return self._if_cached(result, kwargs.get(ROUTE_KWARG))

    def _if_cached(self, result: ChatResult, call: Any) -> ChatResult:
        if not isinstance(call, RoutedCall) or call.settled:
            return result
        record = call.cached()
        generations = [ChatGeneration(message=g.message.model_copy(update={"response_metadata": {
            **(g.message.response_metadata or {}), "routellm": record.metadata()}}), generation_info=g.generation_info)
            for g in result.generations]
        return ChatResult(generations=generations, llm_output=result.llm_output)

    def _offer_shadow(self, call: RoutedCall, record: CallRecord, messages: list[BaseMessage],
                      params: dict[str, Any]) -> None:
        """Hand a finished call to the shadow sampler (a no-op without one). Tool-calling
        steps are recorded but not shadowed: the other backend would need the same tools."""
        if self.shadow is None:
            return
        from routellm_integrations.labels.shadow import offer_call

        from .labelling import LangChainChatClient
        from .shadow import other_answer

        other = None if "tools" in params else other_answer(
            self._backend("weak" if call.route == "strong" else "strong"), messages)
        judge = self.shadow.judge or LangChainChatClient(self.strong, name=self._calls.strong.model, threaded=True)
        offer_call(self.shadow, call, record, other=other, judge=judge)

    def record_feedback(self, call_id: str, score: float) -> None:
        """Attach a score in [0, 1] (1 = best) to a call this model made, by the
        ``call_id`` in its ``response_metadata["routellm"]``; ``routellm adapt
        --from-store`` turns it into a label. Needs ``shadow=`` (which records calls)."""
        if self.shadow is None:
            from routellm_integrations.errors import DataError

            raise DataError("record_feedback needs RoutedChat(shadow=ShadowSampler(store, ...)) to record calls")
        self.shadow.feedback(call_id, score)

    def _closing_chunk(self, record: CallRecord, seen_model: str | None, list_content: bool) -> ChatGenerationChunk:
        meta: dict[str, Any] = {"routellm": record.metadata()}
        if seen_model is None:
            meta["model_name"] = record.model
        return ChatGenerationChunk(message=AIMessageChunk(content=[] if list_content else "",
                                                          response_metadata=meta, chunk_position="last"))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        # the engine's generator itself: a consumer that stops reading closes it, and it settles
        return engine.stream(self._call_of(messages, kwargs), _ChatHooks(self, messages, stop, kwargs))

    def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,  # type: ignore[override]
                 run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any
                 ) -> AsyncIterator[ChatGenerationChunk]:
        return engine.astream(self._call_of(messages, kwargs), _ChatHooks(self, messages, stop, kwargs))

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
        if schema is None and method != "json_mode":
            raise ValueError(f"RoutedChat.with_structured_output(method={method!r}) needs a schema")
        if method != "function_calling":
            from .structured import native_structured_output
            return native_structured_output(self, schema, method=method, include_raw=include_raw, strict=strict)
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


class _Seen(Tally):
    """What a stream has delivered so far: usage, the model's own name, whether content
    is a list; the chunks themselves while the answer may still be escalated. Once the
    call settled, a closing chunk carries the record."""

    def __init__(self, call: RoutedCall, held: bool, chat: RoutedChat) -> None:
        super().__init__(call, held)
        self.chat = chat
        self.usage: Any = None
        self.model: str | None = None
        self.list_content = False
        self.chunks: list[ChatGenerationChunk] = []

    def message(self) -> AIMessageChunk | None:
        """The chunks so far as one message (tool-call fragments joined and parsed)."""
        parts = [c.message for c in self.chunks if isinstance(c.message, AIMessageChunk)]
        if not parts:
            return None
        merged = parts[0]
        for part in parts[1:]:
            merged = merged + part
        return merged

    def add(self, chunk: ChatGenerationChunk) -> tuple[ChatGenerationChunk]:
        msg = chunk.message
        if isinstance(msg, AIMessageChunk):
            msg.chunk_position = None  # "last" goes on our closing chunk only
            if msg.usage_metadata:
                self.usage = add_usage(self.usage, msg.usage_metadata)
        name = (msg.response_metadata or {}).get("model_name") or (chunk.generation_info or {}).get("model_name")
        if name and self.model is None:
            self.model = name
        self.list_content = isinstance(msg.content, list)
        if self.held:
            self.chunks.append(chunk)
        return (chunk,)

    def end(self, stream: Any) -> "_Seen":
        return self

    def tail(self, record: CallRecord, escalated: list[CallRecord]) -> list[ChatGenerationChunk]:
        return [self.chat._closing_chunk(record, self.model, self.list_content)]


class _ChatHooks(Hooks):
    """RoutedChat's hooks into the cascade engine, for one call inside its LLM run: the
    chosen backend's own ``_generate``/``_stream`` (``run_manager=None``: one LLM run, the
    usage counted once), LangChain messages and chunks, ``response_metadata`` stamps."""

    def __init__(self, chat: RoutedChat, messages: list[BaseMessage], stop: list[str] | None,
                 kwargs: dict[str, Any]) -> None:
        self.chat, self.messages, self.stop, self.kwargs = chat, messages, stop, kwargs
        self.params: dict[str, Any] = {}

    def _prepared(self, call: RoutedCall) -> tuple[BaseChatModel, dict[str, Any]]:
        if call.sample_of is not None:  # a second sample (an agreement check): its own parameters
            backend, stop, params = self.chat._prepare(call, self.stop, {**self.kwargs, **call.sample_params})
            return backend, {"stop": stop, "run_manager": None, **params}
        backend, stop, self.params = self.chat._prepare(call, self.stop, self.kwargs)
        return backend, {"stop": stop, "run_manager": None, **self.params}

    def send(self, call: RoutedCall) -> ChatResult:
        backend, args = self._prepared(call)
        return backend._generate(self.messages, **args)

    async def asend(self, call: RoutedCall) -> ChatResult:
        backend, args = self._prepared(call)
        return await backend._agenerate(self.messages, **args)

    def open(self, call: RoutedCall) -> Iterator[ChatGenerationChunk]:
        backend, args = self._prepared(call)
        if type(backend)._stream is BaseChatModel._stream:  # it cannot stream: one chunk
            return iter(_whole(backend._generate(self.messages, **args)))
        return backend._stream(self.messages, **args)

    async def aopen(self, call: RoutedCall) -> AsyncIterator[ChatGenerationChunk]:
        backend, args = self._prepared(call)
        if type(backend)._astream is BaseChatModel._astream and type(backend)._stream is BaseChatModel._stream:
            return _aiter(_whole(await backend._agenerate(self.messages, **args)))
        return backend._astream(self.messages, **args)

    @staticmethod
    def _first(answer: Any) -> BaseMessage | None:
        if isinstance(answer, _Seen):
            return answer.message()
        return answer.generations[0].message if answer.generations else None

    def usage_of(self, answer: Any) -> Any:
        return answer.usage if isinstance(answer, _Seen) else getattr(self._first(answer), "usage_metadata", None)

    def model_of(self, answer: Any) -> str | None:
        if isinstance(answer, _Seen):
            return answer.model
        first = self._first(answer)
        return (first.response_metadata or {}).get("model_name") if first is not None else None

    def text_of(self, answer: ChatResult) -> str:
        return "".join(chunk_text(g.message) for g in answer.generations)

    def delta_of(self, chunk: ChatGenerationChunk) -> str:
        return chunk_text(chunk.message)

    def tally(self, call: RoutedCall, held: bool) -> Tally:
        return _Seen(call, held, self.chat)

    def held(self, call: RoutedCall) -> bool:
        return self.chat._buffers(call)

    def review_blocks(self, call: RoutedCall) -> bool:
        return blocking(self.chat._checks)

    def samples_ahead(self, call: RoutedCall) -> list[Any]:
        return ahead(self.chat._checks)

    @staticmethod
    def _finish_reason(answer: Any) -> str | None:
        """Why the backend stopped: LangChain moves ``generation_info`` into the message's
        metadata only after ``_generate`` returns, so it is read from there (a stream: its
        chunks')."""
        infos = [c.generation_info for c in answer.chunks] if isinstance(answer, _Seen) else \
            [g.generation_info for g in answer.generations[:1]]
        found = [i.get("finish_reason") or i.get("stop_reason") for i in infos if i]
        found = [f for f in found if isinstance(f, str)]
        return found[-1] if found else None

    def review(self, call: RoutedCall, answer: Any, streamed: bool) -> RoutedCall | None:
        return self.chat._review(call, self._first(answer), self.kwargs, self.usage_of(answer), self.model_of(answer),
                                 self._finish_reason(answer))

    def finished(self, call: RoutedCall, record: CallRecord) -> None:
        self.chat._offer_shadow(call, record, self.messages, self.params)

    def stamp(self, result: ChatResult, record: CallRecord, escalated: list[CallRecord]) -> ChatResult:
        model = self.chat._calls.backend(record.route).model
        for gen in result.generations:
            gen.message.response_metadata = {"model_name": model, **(gen.message.response_metadata or {}),
                                             "routellm": record.metadata()}
        return result

    def backend_label(self, call: RoutedCall) -> str:
        return type(self.chat._backend(call.route)).__name__


def _response_schema(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a call's ``response_format`` asks for: a pydantic class bound as
    ``response_format``, or the OpenAI-format dict (``{}``: any JSON object)."""
    fmt = kwargs.get("response_format")
    if isinstance(fmt, type):
        from .answers import schema_of

        return schema_of(fmt)
    return response_schema(kwargs)


def _whole(result: ChatResult) -> list[ChatGenerationChunk]:
    """A backend that cannot stream answers in one chunk."""
    return [ChatGenerationChunk(message=to_chunk(g.message), generation_info=g.generation_info)
            for g in result.generations[:1]]


async def _aiter(chunks: list[ChatGenerationChunk]) -> AsyncIterator[ChatGenerationChunk]:
    for c in chunks:
        yield c


def _merge_results(results: list[LLMResult]) -> LLMResult:
    generations = [g for r in results for g in r.generations]
    runs = [ri for r in results for ri in (r.run or [])]
    return LLMResult(generations=generations, llm_output=None, run=runs or None)
