"""``RoutedLLM``: one LlamaIndex LLM over a strong and a weak LLM (or N LLMs), choosing per call.

A whole call (chat, completion, a tool-calling turn, their streaming and async forms)
goes to exactly one backend, through the backend's own public method, so the backend
emits the one LLM event LlamaIndex handlers count tokens from. All entry points share
one dispatch: the turn (:mod:`.turns`), a :class:`~routellm_integrations.routing.RoutedCall`
begun by the core lifecycle (decide and reserve; scoring off the event loop in async
calls), and the core cascade engine (:mod:`routellm_integrations.routing.engine`, with
this package's hooks in :mod:`.dispatch`), which settles on every exit. The call's one record
is stamped into ``response.additional_kwargs["routellm"]`` and sent as a
:class:`~.events.RoutingDecisionEvent` when it settles.

Among N models (``models={key: llm}``) each call goes to the model maximising predicted
quality minus ``cost_weight`` x its expected cost. With ``escalate_if``, an answer that
fails a check is sent again to the next model up, inside the same entry point (each call
of the cascade a record and an event); a stream is held back while a model above could
still take over, so no chunk of an escalated answer reaches the consumer.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Union

from llama_index.core.base.llms.types import (ChatMessage, ChatResponse, ChatResponseAsyncGen,
                                              ChatResponseGen, CompletionResponse,
                                              CompletionResponseAsyncGen, CompletionResponseGen, LLMMetadata)
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.span import active_span_id
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection
from pydantic import ConfigDict, Field, PrivateAttr, SerializeAsAny, field_serializer

from routellm_integrations.costs import PriceTable
from routellm_integrations.state import CostLedger
from routellm_integrations.errors import RouteLLMError
from routellm_integrations.policy import RoutingPolicy, SwapReport
from routellm_integrations.errors import InvalidRouteError
from routellm_integrations.routing import Backend, CallLifecycle, RoutedCall, Turn
from routellm_integrations.routing import engine
from routellm_integrations.routing.answer_checks import ahead, blocking
from routellm_integrations.routing.config import RoutedModelConfig, checked, forced_route, pair_or_models, renamed

from . import dispatch
from .answers import answer_of
from .events import RoutingDecisionEvent
from .serialise import backend_settings, escalation_setting, object_or_name, short, without_objects
from .usage import usage_report
from .turns import RouteOnFn, chat_turn, prompt_turn, route_templated_calls_on_the_question, tool_messages, tools_input
from .usage import provider_of

dispatcher = get_dispatcher(__name__)

ROUTE_KWARG = "route"
"""Per-call override: ``llm.chat(messages, route="strong")`` (N-way: a key) forces a backend."""
SCOPE_KWARG = "routellm_scope"
"""Per-call budget/sticky scope: ``llm.chat(messages, routellm_scope=run_id)``."""

Invoke = Callable[[LLM, Dict[str, Any]], Any]
RouteOnSetting = Union[Literal["last_user", "conversation"], RouteOnFn]
UserMsg = Optional[Union[str, ChatMessage]]


@route_templated_calls_on_the_question
class RoutedLLM(FunctionCallingLLM, RoutedModelConfig):
    """Routes each call to ``strong`` or ``weak`` with a RouteLLM router; or among N LLMs.

    ``threshold`` or ``strong_fraction`` (default: 30% of calls strong, held on live
    traffic; ``calibration_prompts`` warm-start it) sets the cut-off; the router scores
    the two backends' models (``metadata.model_name``) when it knows them; ``route_on="last_user"`` (default: the paper's routers saw single
    prompts), ``"conversation"`` or your function of the messages chooses what is
    scored. Inside a query engine (``predict(template, query_str=...)`` and friends) the
    question is scored, not the retrieved context. A message with no text (only images)
    goes where ``on_no_text`` says. A ``budget`` with a dollar cap needs both models
    priced: :class:`~routellm_integrations.errors.BudgetConfigError` at construction.

    N-way: ``models={key: llm, ...}`` instead of ``strong``/``weak``; each call goes to
    the model maximising predicted quality minus ``cost_weight`` x its expected cost
    (``spend_per_call``: a target held online; ``max_cost_per_call``: a cap), scored by a
    router with ``quality(prompts, models)`` (default ``"quality"``). The router knows
    models by its training data's names: a key is looked up as one, or give
    ``router_models={key: name}``; an unknown one is an ``UnknownModelError`` here.
    ``reference_model`` is the key savings count against (default: the dearest).

    ``escalate_if=True`` (the built-in checks: a tool call to a tool not offered or with
    invalid arguments, an empty answer or a refusal), a check ``answer -> reason | None``,
    a check's name (``"final_answer"``, ``"answer_flags"``, ``"agreement"``...), a
    verifier or its folder, or a list of them
    (:mod:`~routellm_integrations.routing.answer_checks`): an answer that fails is sent to
    the next model up (a pair: weak to strong), until one passes or the top model
    answered. With ``strong_fraction`` the share counts the escalations (route, then
    verify).
    """

    strong: Optional[SerializeAsAny[LLM]] = Field(default=None, description="the capable, expensive LLM")
    weak: Optional[SerializeAsAny[LLM]] = Field(default=None, description="the cheap LLM")
    models: Optional[Dict[str, SerializeAsAny[LLM]]] = Field(
        default=None, description="instead of strong/weak: N LLMs by key, chosen per call by quality against cost")
    shadow: Any = Field(default=None, exclude=True, description="a ShadowSampler: records every call (for "
                        "feedback) and shadows a sampled share into a label store, off the critical path")
    # the routing options (router, threshold, strong_fraction, cost_weight, escalate_if,
    # route, route_on, budget, steps, scope, store, ...) are RoutedModelConfig's fields

    model_config = ConfigDict(extra="forbid")  # a misspelt option must not silently mean its default
    _calls: CallLifecycle = PrivateAttr()
    _backends: Dict[str, LLM] = PrivateAttr()
    _checks: tuple = PrivateAttr(default=())

    def __init__(self, strong: Optional[LLM] = None, weak: Optional[LLM] = None, *,
                 models: Optional[Dict[str, LLM]] = None, ledger: Optional[CostLedger] = None,
                 prices: Optional[PriceTable] = None, **options: Any) -> None:
        """``options`` are :class:`RoutedModelConfig`'s (plus LlamaIndex's own, such as
        ``callback_manager``); ``cost_ledger``/``price_table``, the old names of
        ``ledger``/``prices``, still work with a ``DeprecationWarning``."""
        old = renamed({k: options.pop(k) for k in ("cost_ledger", "price_table") if k in options}, "RoutedLLM")
        ledger, prices = old.get("ledger", ledger), old.get("prices", prices)
        backends, nway = pair_or_models(strong, weak, models, what="LlamaIndex LLM")
        wrong = [k for k, b in backends.items() if not isinstance(b, LLM)]
        if wrong:
            raise InvalidRouteError(f"{wrong[0]} must be a LlamaIndex LLM, got {type(backends[wrong[0]]).__name__}")
        shadow = options.get("shadow")
        if shadow is not None:
            from routellm_integrations.labels.shadow import ShadowSampler

            if not isinstance(shadow, ShadowSampler):
                raise TypeError(f"shadow must be a ShadowSampler(...), got {type(shadow).__name__}")
            if nway:
                raise InvalidRouteError("shadow sampling compares a strong/weak pair (the other backend's answer "
                                        "to the same call); it is not available with models=")
        checked(super().__init__, strong=strong, weak=weak, models=models, **options)
        if self.router is None:
            self.router = self.router_or_default(nway)
        self._backends, self._checks = backends, self.checks
        # N-way, the router loads now: a model it does not know is an UnknownModelError here
        policy = self.make_model_policy(list(backends), nway)
        if self.threshold is None and self.strong_fraction is None and policy.strong_fraction is not None:
            self.strong_fraction = policy.strong_fraction  # the policy's default share
        # built now, so a budget that cannot keep its promise fails here, not on the first call
        described = {k: Backend(k, b.metadata.model_name, provider_of(b)) for k, b in backends.items()}
        self._calls = CallLifecycle(policy, prices=ledger.prices if ledger is not None else prices, ledger=ledger,
                                    on_no_text=self.on_no_text, backends=described, **self.lifecycle_options())
        if self.route is not None:
            self._forced(self.route)  # validate early

    def _forced(self, route: str) -> str:
        """The key ``route`` forces (a key, or a backend's model name)."""
        return forced_route(route, {k: b.model for k, b in self._calls.backends.items()})  # type: ignore[return-value]

    @classmethod
    def class_name(cls) -> str:
        return "RoutedLLM"

    # -- serialisation: settings yes, secrets never --------------------------------------
    @field_serializer("strong", "weak")
    def _backend_settings(self, backend: Optional[LLM]) -> Optional[Dict[str, Any]]:
        return None if backend is None else backend_settings(backend)

    @field_serializer("models")
    def _models_settings(self, models: Optional[Dict[str, LLM]]) -> Optional[Dict[str, Any]]:
        return None if models is None else {k: backend_settings(b) for k, b in models.items()}

    @field_serializer("escalate_if")
    def _escalation_setting(self, value: Any) -> Any:
        return escalation_setting(value)

    @field_serializer("router", "route_on")
    def _object_or_name(self, value: Any) -> Any:
        return object_or_name(value)

    def __repr__(self) -> str:
        escalate = "" if not self._checks else f", escalate_if={escalation_setting(self.escalate_if)!r}"
        backends = (f"models={{{', '.join(f'{k!r}: {short(b)}' for k, b in self.models.items())}}}"
                    if self.models is not None else f"strong={short(self.strong)}, weak={short(self.weak)}")
        knobs = "".join(f", {k}={getattr(self, k)!r}" for k in ("threshold", "strong_fraction", "cost_weight",
                                                              "spend_per_call", "max_cost_per_call")
                        if getattr(self, k) is not None)
        return f"RoutedLLM({backends}, router={self.router_name!r}{knobs}{escalate})"

    __str__ = __repr__

    @classmethod
    def from_dict(cls, data: Dict[str, Any], **kwargs: Any) -> "RoutedLLM":
        """Rebuild from :meth:`to_dict` with the backends passed again as objects
        (``RoutedLLM.from_dict(d, strong=..., weak=...)``; N-way ``models={...}``): the
        dict never holds their API keys. A router object, a ``route_on`` function or
        escalation checks of your own are passed again too, and so are the live
        ``ledger``/``prices`` (else the default price table prices)."""
        names = ("strong", "weak", "models", "router", "route_on", "escalate_if")
        return cls(**{**without_objects(data, kwargs, names), **kwargs})

    # -- what LlamaIndex asks of an LLM ---------------------------------------------------
    @property
    def metadata(self) -> LLMMetadata:
        """Honest about the backends: what all of them can do, within the smallest known
        limits (a backend's -1, "unknown", is not a limit)."""
        metas = [b.metadata for b in self._backends.values()]
        return LLMMetadata(
            context_window=_smallest_known(m.context_window for m in metas),
            num_output=_smallest_known(m.num_output for m in metas),
            is_chat_model=all(m.is_chat_model for m in metas),
            is_function_calling_model=all(m.is_function_calling_model for m in metas),
            model_name=f"routed({'|'.join(str(m.model_name) for m in metas)})")

    @property
    def backends(self) -> Dict[str, LLM]:
        """The LLMs by route key (``strong``/``weak``, or the keys of ``models``)."""
        return dict(self._backends)

    @property
    def ledger(self) -> CostLedger:
        """Calls, tokens and dollars per route and per model, however each call ended."""
        return self._calls.ledger

    @property
    def cost_ledger(self) -> CostLedger:
        """The old name of :attr:`ledger` (a ``DeprecationWarning``)."""
        warnings.warn("RoutedLLM.cost_ledger is now called RoutedLLM.ledger", DeprecationWarning, stacklevel=2)
        return self._calls.ledger

    @property
    def policy(self) -> RoutingPolicy:
        return self._calls.policy

    def swap_router(self, router: Any, *, prompts: Sequence[str] | None = None) -> SwapReport:
        """Serve a new router from the next call on, keeping the share of strong calls
        (see ``RoutingPolicy.swap_router``); no need to rebuild the query engine."""
        return self._calls.policy.swap_router(router, prompts=prompts)

    @property
    def router_name(self) -> str:
        return self._calls.policy.router_name

    # -- the one dispatch -------------------------------------------------------------------
    def _turn(self, messages: Sequence[ChatMessage], kwargs: Dict[str, Any], extra_input: str = "") -> Turn:
        return chat_turn(messages, self.route_on, forced=(kwargs.get(ROUTE_KWARG) or self.route) is not None,
                         extra_input=extra_input)

    def _begin_args(self, turn: Turn, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        """The routing options, taken out of the kwargs the backend receives. The output
        bound is the call's ``max_tokens``, else the backends' when all set one."""
        max_tokens = kwargs.get("max_tokens")
        if not isinstance(max_tokens, int):
            known = [getattr(b, "max_tokens", None) for b in self._backends.values()]
            max_tokens = max(known) if all(isinstance(k, int) and k > 0 for k in known) else None
        forced = kwargs.pop(ROUTE_KWARG, None) or self.route
        return {"turn": turn, "force": None if forced is None else self._forced(forced),
                "scope": kwargs.pop(SCOPE_KWARG, None) or self.scope, "max_output_tokens": max_tokens}

    def _reported(self, call: RoutedCall) -> RoutedCall:
        span_id = active_span_id.get()
        call.on_settled(lambda record: dispatcher.event(RoutingDecisionEvent.of(record, span_id)))
        return call

    def _backend(self, call: RoutedCall) -> LLM:
        backend = self._backends[call.route]
        # Settings.llm hands the callback manager to the wrapper only; share it so the
        # backend's one LLM event reaches the handlers attached to this LLM.
        if backend.callback_manager is not self.callback_manager:
            backend.callback_manager = self.callback_manager
        return backend

    def _shadowed(self, call: RoutedCall, plain: Optional[Invoke], kwargs: Dict[str, Any]) -> RoutedCall:
        """Offer the settled call to the shadow sampler (a no-op without one). Tool calls
        are recorded, not shadowed: the other backend would need the same tools."""
        sampler = self.shadow
        if sampler is None:
            return call
        from routellm_integrations.labels.shadow import offer_call

        from .shadow import ThreadedLLMClient, other_answer

        backend = self.weak if call.route == "strong" else self.strong
        other = other_answer(backend, plain, kwargs) if plain is not None and "tools" not in kwargs else None
        judge = sampler.judge or ThreadedLLMClient(self.strong)

        def offer(record: Any) -> None:
            # an escalation hands its listeners on to the call up: each call offers only its own record
            if record.call_id == call.call_id:
                offer_call(sampler, call, record, other=other, judge=judge)
        call.on_settled(offer)
        return call

    # -- escalation ---------------------------------------------------------------------
    def _reviewer(self, plain: Optional[Invoke], kwargs: Dict[str, Any], tools: Optional[Sequence[Any]] = None,
                  tool_required: bool = False) -> Optional[dispatch.Review]:
        """The escalation checks of one call, over the response the backend returned
        (None without ``escalate_if``): the call one model up when the answer failed."""
        if not self._checks:
            return None
        offered = tools if tools is not None else kwargs.get("tools")

        def review(call: RoutedCall, response: Any, streamed: bool) -> Optional[RoutedCall]:
            answer = answer_of(response, self._backends[call.route], tools=offered, route=call.route,
                               tool_required=tool_required)
            up = call.review(self._checks, answer, usage_report(response),
                             text=None if streamed else dispatch.text_of(response))
            return None if up is None else self._shadowed(up, plain, kwargs)
        return review

    def _buffers(self, call: RoutedCall) -> bool:
        """A stream is held back while its answer could still be escalated."""
        return engine.holds(call, self._checks)

    def record_feedback(self, call_id: str, score: float) -> None:
        """Attach a score in [0, 1] (1 = best) to a call, by the ``call_id`` in its
        ``additional_kwargs["routellm"]``; needs ``shadow=`` (which records calls)."""
        if self.shadow is None:
            from routellm_integrations.errors import DataError

            raise DataError("record_feedback needs RoutedLLM(shadow=ShadowSampler(store, ...)) to record calls")
        self.shadow.feedback(call_id, score)

    def _hooks(self, invoke: Invoke, kwargs: Dict[str, Any], plain: Optional[Invoke],
               tools: Optional[Sequence[Any]], tool_required: bool) -> dispatch.LlamaIndexHooks:
        def send(c: RoutedCall, stream: bool) -> Any:
            if c.sample_of is not None:  # a second sample (an agreement check): its own parameters
                return invoke(self._backend(c), {**kwargs, **c.sample_params})
            return invoke(self._backend(c), _stream_kwargs(c, kwargs) if stream else kwargs)
        return dispatch.LlamaIndexHooks(send, self._reviewer(plain, kwargs, tools, tool_required), self._buffers,
                                        blocking(self._checks), ahead(self._checks))

    def _run(self, turn: Turn, invoke: Invoke, kwargs: Dict[str, Any], *, stream: bool = False,
             plain: Optional[Invoke] = None, tools: Optional[Sequence[Any]] = None,
             tool_required: bool = False) -> Any:
        call = self._reported(self._calls.begin(**self._begin_args(turn, kwargs)))
        self._shadowed(call, plain, kwargs)
        hooks = self._hooks(invoke, kwargs, plain, tools, tool_required)
        if not stream:
            return engine.run(call, hooks)
        return engine.stream(call, hooks, engine.open_stream(call, hooks))

    async def _arun(self, turn: Turn, invoke: Invoke, kwargs: Dict[str, Any], *,
                    stream: bool = False, plain: Optional[Invoke] = None,
                    tools: Optional[Sequence[Any]] = None, tool_required: bool = False) -> Any:
        call = self._reported(await self._calls.abegin(**self._begin_args(turn, kwargs)))
        self._shadowed(call, plain, kwargs)
        hooks = self._hooks(invoke, kwargs, plain, tools, tool_required)
        if not stream:
            return await engine.arun(call, hooks)
        return engine.astream(call, hooks, await engine.aopen_stream(call, hooks))

    # -- chat and completion -------------------------------------------------------------
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._run(self._turn(messages, kwargs), lambda b, kw: b.chat(messages, **kw), kwargs,
                         plain=self._plain_chat(messages))

    def _plain_chat(self, messages: Sequence[ChatMessage]) -> Invoke:
        return lambda b, kw: b.chat(messages, **kw)

    def _plain_complete(self, prompt: str, formatted: bool) -> Invoke:
        return lambda b, kw: b.complete(prompt, formatted=formatted, **kw)

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._arun(self._turn(messages, kwargs), lambda b, kw: b.achat(messages, **kw), kwargs,
                                plain=self._plain_chat(messages))

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._run(self._turn(messages, kwargs), lambda b, kw: b.stream_chat(messages, **kw), kwargs,
                         stream=True, plain=self._plain_chat(messages))

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        return await self._arun(self._turn(messages, kwargs),
                                lambda b, kw: b.astream_chat(messages, **kw), kwargs, stream=True,
                                plain=self._plain_chat(messages))

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._run(prompt_turn(prompt), lambda b, kw: b.complete(prompt, formatted=formatted, **kw), kwargs,
                         plain=self._plain_complete(prompt, formatted))

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return await self._arun(prompt_turn(prompt), lambda b, kw: b.acomplete(prompt, formatted=formatted, **kw),
                                kwargs, plain=self._plain_complete(prompt, formatted))

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        return self._run(prompt_turn(prompt), lambda b, kw: b.stream_complete(prompt, formatted=formatted, **kw),
                         kwargs, stream=True, plain=self._plain_complete(prompt, formatted))

    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        return await self._arun(prompt_turn(prompt),
                                lambda b, kw: b.astream_complete(prompt, formatted=formatted, **kw), kwargs,
                                stream=True, plain=self._plain_complete(prompt, formatted))

    # -- tools: a whole tool-calling turn goes to one backend ----------------------------
    def _tool_call(self, name: str, tools: Sequence[Any], user_msg: UserMsg,
                   chat_history: Optional[List[ChatMessage]], options: Dict[str, Any],
                   kwargs: Dict[str, Any]) -> tuple[Turn, Invoke]:
        """The turn of a tool-calling call (its tool schemas sized as input) and the
        backend's own ``name`` method to invoke."""
        turn = self._turn(tool_messages(user_msg, chat_history), kwargs, tools_input(tools))
        return turn, lambda b, kw: getattr(b, name)(tools, user_msg=user_msg, chat_history=chat_history,
                                                    **options, **kw)

    def chat_with_tools(self, tools: Sequence[Any], user_msg: UserMsg = None,
                        chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                        allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                        **kwargs: Any) -> ChatResponse:
        return self._run(*self._tool_call("chat_with_tools", tools, user_msg, chat_history, _options(
            verbose, allow_parallel_tool_calls, tool_required), kwargs), kwargs, tools=tools, tool_required=tool_required)

    async def achat_with_tools(self, tools: Sequence[Any], user_msg: UserMsg = None,
                               chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                               allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                               **kwargs: Any) -> ChatResponse:
        return await self._arun(*self._tool_call("achat_with_tools", tools, user_msg, chat_history, _options(
            verbose, allow_parallel_tool_calls, tool_required), kwargs), kwargs, tools=tools, tool_required=tool_required)

    def stream_chat_with_tools(self, tools: Sequence[Any], user_msg: UserMsg = None,
                               chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                               allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                               **kwargs: Any) -> ChatResponseGen:
        return self._run(*self._tool_call("stream_chat_with_tools", tools, user_msg, chat_history, _options(
            verbose, allow_parallel_tool_calls, tool_required), kwargs), kwargs, stream=True, tools=tools,
                                                 tool_required=tool_required)

    async def astream_chat_with_tools(self, tools: Sequence[Any], user_msg: UserMsg = None,
                                      chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                                      allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                      **kwargs: Any) -> ChatResponseAsyncGen:
        return await self._arun(*self._tool_call("astream_chat_with_tools", tools, user_msg, chat_history,
                                                 _options(verbose, allow_parallel_tool_calls, tool_required),
                                                 kwargs), kwargs, stream=True, tools=tools,
                                                 tool_required=tool_required)

    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: UserMsg = None,
                                 chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                                 allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                 **kwargs: Any) -> dict:
        """Only reached by code that prepares tools without calling chat_with_tools: the
        strong (N-way: the reference) backend's format is used, since the route is not
        known yet."""
        return self._backends[self._calls.strong.route]._prepare_chat_with_tools(  # type: ignore[attr-defined]
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs)

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> List[ToolSelection]:
        """Parsed by the backend that produced the response (formats differ per provider)."""
        info = response.additional_kwargs.get("routellm") if response.additional_kwargs else None
        if not info or info.get("route") not in self._backends:
            raise RouteLLMError("this response was not produced by this RoutedLLM (no routing stamp), "
                                "so it is unknown which backend's tool-call format it uses")
        backend = self._backends[info["route"]]
        return backend.get_tool_calls_from_response(  # type: ignore[attr-defined]
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs)


def _options(verbose: bool, allow_parallel_tool_calls: bool, tool_required: bool) -> Dict[str, Any]:
    return {"verbose": verbose, "allow_parallel_tool_calls": allow_parallel_tool_calls,
            "tool_required": tool_required}


def _stream_kwargs(call: RoutedCall, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """OpenAI streams report usage only when asked (``stream_options.include_usage``);
    ask, so a streamed call is counted and priced like any other."""
    if call.backend.provider in ("openai", "azure"):
        return {"stream_options": {"include_usage": True}, **kwargs}
    return kwargs


def _smallest_known(values: Any) -> int:
    known = [v for v in values if isinstance(v, int) and v > 0]
    return min(known) if known else -1
