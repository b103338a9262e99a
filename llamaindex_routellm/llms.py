"""``RoutedLLM``: one LlamaIndex LLM over a strong and a weak LLM, choosing per call.

A whole call (chat, completion, a tool-calling turn, their streaming and async forms)
goes to exactly one backend, through the backend's own public method, so the backend
emits the one LLM event LlamaIndex handlers count tokens from. Every entry point goes
through one dispatch: begin a :class:`~routellm_integrations.routing.RoutedCall`
(decide and reserve; scoring off the event loop in async calls), call the backend,
settle on whatever exit (answer, exception, cancellation, a stream that is cut or that
the caller stops reading). The call's one record is stamped into
``response.additional_kwargs["routellm"]`` and sent as a
:class:`~.events.RoutingDecisionEvent`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from contextvars import ContextVar
from typing import Any, AsyncGenerator, Callable, Dict, Generator, List, Literal, Optional, Sequence, Union

from llama_index.core.base.llms.types import (ChatMessage, ChatResponse, ChatResponseAsyncGen,
                                              ChatResponseGen, CompletionResponse,
                                              CompletionResponseAsyncGen, CompletionResponseGen,
                                              LLMMetadata, MessageRole)
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.span import active_span_id
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection
from pydantic import Field, PrivateAttr, SecretStr, SerializeAsAny, field_serializer

from routellm_integrations.budgets import Budget
from routellm_integrations.costs import CostLedger, PriceTable
from routellm_integrations.decision import Route
from routellm_integrations.errors import InvalidPromptError, RouteLLMError
from routellm_integrations.policy import RoutingPolicy, StepPolicy
from routellm_integrations.routing import Backend, CallLifecycle, CallRecord, RoutedCall, Turn, turn_of, turn_of_prompt
from routellm_integrations.routing.turn import clean_text

from .events import RoutingDecisionEvent
from .usage import provider_of, usage_report

dispatcher = get_dispatcher(__name__)

ROUTE_KWARG = "route"
"""Per-call override: ``llm.chat(messages, route="strong")`` forces a backend."""
SCOPE_KWARG = "routellm_scope"
"""Per-call budget/sticky scope: ``llm.chat(messages, routellm_scope=run_id)``."""

#: the question of a templated call (a query engine's ``query_str``), routed on instead of
#: the whole prompt with its retrieved context
_QUERY_TEXT: ContextVar[Optional[str]] = ContextVar("routellm_query_text", default=None)
_SECRET_KEY = re.compile(r"(api_?key|secret|token|password|credential|auth)", re.IGNORECASE)
_NOT_SECRET = {"max_tokens", "num_output", "max_new_tokens", "context_window", "tokenizer"}


class RoutedLLM(FunctionCallingLLM):
    """Routes each call to ``strong`` or ``weak`` with a RouteLLM router.

    ``threshold`` (default 0.5) or ``strong_fraction`` with ``calibration_prompts`` sets
    the cut-off; ``route_on="last_user"`` (default: the paper's routers saw single
    prompts), ``"conversation"`` or your function of the messages chooses what is
    scored. Inside a query engine (``predict(template, query_str=...)`` and friends) the
    question is scored, not the retrieved context. A message with no text (only images)
    goes where ``on_no_text`` says.
    """

    strong: SerializeAsAny[LLM] = Field(description="the capable, expensive LLM")
    weak: SerializeAsAny[LLM] = Field(description="the cheap LLM")
    router: Any = Field(default="mf", description="router name, checkpoint folder, or router object",
                        exclude=True)
    threshold: Optional[float] = Field(default=None, description="route strong when score >= threshold")
    strong_fraction: Optional[float] = Field(default=None, description="target share of strong calls")
    calibration_prompts: Optional[List[str]] = Field(default=None, exclude=True, repr=False)
    route_on: Union[Literal["last_user", "conversation"], Callable[[Sequence[ChatMessage]], str]] = Field(
        default="last_user", description="what is scored: the last user message, the whole conversation, or "
        "your function of the messages (e.g. only the question inside a RAG prompt)", exclude=True)
    on_no_text: Literal["strong", "weak", "error"] = Field(
        default="strong", description="where a call goes whose message to route on holds no text")
    scope: Optional[str] = Field(default=None, description="budget/sticky scope when a call names none")

    _policy: RoutingPolicy = PrivateAttr()
    _calls: CallLifecycle = PrivateAttr()

    def __init__(self, strong: LLM, weak: LLM, router: Any = "mf", threshold: Optional[float] = None,
                 strong_fraction: Optional[float] = None, calibration_prompts: Optional[Sequence[str]] = None,
                 route_on: Union[Literal["last_user", "conversation"],
                                 Callable[[Sequence[ChatMessage]], str]] = "last_user",
                 cost_ledger: Optional[CostLedger] = None, price_table: Optional[PriceTable] = None,
                 budget: Optional[Budget] = None, steps: StepPolicy = "per_turn", scope: Optional[str] = None,
                 on_no_text: Literal["strong", "weak", "error"] = "strong", max_scopes: int = 100_000,
                 scope_ttl_s: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(strong=strong, weak=weak, router=router, threshold=threshold,
                         strong_fraction=strong_fraction,
                         calibration_prompts=list(calibration_prompts) if calibration_prompts else None,
                         route_on=route_on, scope=scope, on_no_text=on_no_text, **kwargs)
        self._policy = RoutingPolicy(router, threshold=threshold, strong_fraction=strong_fraction,
                                     calibration_prompts=calibration_prompts, budget=budget, steps=steps,
                                     max_scopes=max_scopes, scope_ttl_s=scope_ttl_s)
        self.threshold = self._policy._fixed  # None while a target share is held online
        prices = cost_ledger.prices if cost_ledger is not None else price_table
        self._calls = CallLifecycle(self._policy, prices=prices, ledger=cost_ledger, on_no_text=on_no_text,
                                    strong=Backend("strong", strong.metadata.model_name, provider_of(strong)),
                                    weak=Backend("weak", weak.metadata.model_name, provider_of(weak)))

    @classmethod
    def class_name(cls) -> str:
        return "RoutedLLM"

    # -- serialisation: settings yes, secrets never ------------------------------------
    @field_serializer("strong", "weak")
    def _redact_backend(self, backend: LLM) -> Dict[str, Any]:
        """A backend as its class and non-secret settings: API keys and tokens are dropped."""
        return {**_redacted(backend.model_dump()), "class_name": backend.class_name()}

    def __repr__(self) -> str:
        return (f"RoutedLLM(strong={_short(self.strong)}, weak={_short(self.weak)}, router={self.router_name!r}, "
                f"threshold={self.threshold!r}, strong_fraction={self.strong_fraction!r})")

    __str__ = __repr__

    @classmethod
    def from_dict(cls, data: Dict[str, Any], strong: Optional[LLM] = None, weak: Optional[LLM] = None,
                  **kwargs: Any) -> "RoutedLLM":
        """Rebuild from :meth:`to_dict`. Backends are serialised without their secrets, so
        they are passed again as objects: ``RoutedLLM.from_dict(d, strong=..., weak=...)``."""
        if strong is None or weak is None:
            raise RouteLLMError("RoutedLLM.from_dict needs the backends as objects (strong=..., weak=...): "
                                "to_dict() never holds their API keys, so it cannot rebuild them")
        data = {k: v for k, v in data.items() if k not in ("strong", "weak", "class_name")}
        return cls(strong=strong, weak=weak, **{**data, **kwargs})

    # -- what LlamaIndex asks of an LLM -----------------------------------------------
    @property
    def metadata(self) -> LLMMetadata:
        """Honest about the pair: what both can do, within the smaller known limits (a
        backend's -1, "unknown", is not a limit)."""
        s, w = self.strong.metadata, self.weak.metadata
        return LLMMetadata(
            context_window=_smaller_known(s.context_window, w.context_window),
            num_output=_smaller_known(s.num_output, w.num_output),
            is_chat_model=s.is_chat_model and w.is_chat_model,
            is_function_calling_model=s.is_function_calling_model and w.is_function_calling_model,
            model_name=f"routed({s.model_name}|{w.model_name})",
        )

    @property
    def cost_ledger(self) -> CostLedger:
        """Calls, tokens and dollars per route and per model since construction, however
        each call ended (priced once, at settlement)."""
        return self._calls.ledger

    @property
    def policy(self) -> RoutingPolicy:
        return self._policy

    @property
    def router_name(self) -> str:
        return self._policy.router_name

    # -- query engines: route on the question -------------------------------------------
    def _with_query(self, prompt: Any, prompt_args: Dict[str, Any]) -> Any:
        """Route on the template's ``query_str``: given as an argument, or bound earlier with
        ``partial_format`` (as response synthesizers do)."""
        q = prompt_args.get("query_str")
        if q is None:
            q = (getattr(prompt, "kwargs", None) or {}).get("query_str")
        return _QUERY_TEXT.set(q if isinstance(q, str) and q.strip() and not callable(self.route_on) else None)

    # predict, apredict, stream, astream, structured_predict, astructured_predict: see
    # _routed_on_query below (each sets the query, then runs LLM's own method)

    # -- the one dispatch ------------------------------------------------------------------
    def _chat_turn(self, messages: Sequence[ChatMessage], kwargs: Dict[str, Any]) -> Turn:
        if not messages:
            raise InvalidPromptError("no messages to route: give at least one message")
        text = _QUERY_TEXT.get()
        if callable(self.route_on):
            text = self.route_on(messages)
            if not isinstance(text, str):
                raise InvalidPromptError(f"route_on returned {type(text).__name__}, not the text to route on")
        pairs = [(m.role.value, m.content or "") for m in messages]
        try:
            return turn_of(pairs, "last_user" if callable(self.route_on) else self.route_on, text=text)
        except InvalidPromptError:
            if kwargs.get(ROUTE_KWARG) is None:  # nothing says what the call is for
                raise
            return turn_of(pairs, text="")  # a forced call needs no text

    def _prompt_turn(self, prompt: str) -> Turn:
        turn = turn_of_prompt(prompt)
        query = _QUERY_TEXT.get()
        return dataclasses.replace(turn, text=clean_text(query)) if query else turn

    def _begin_args(self, turn: Turn, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        max_tokens = kwargs.get("max_tokens")
        if not isinstance(max_tokens, int):
            known = [getattr(b, "max_tokens", None) for b in (self.strong, self.weak)]
            max_tokens = max(known) if all(isinstance(k, int) and k > 0 for k in known) else None
        return {"turn": turn, "force": kwargs.pop(ROUTE_KWARG, None),
                "scope": kwargs.pop(SCOPE_KWARG, None) or self.scope, "max_output_tokens": max_tokens}

    def _begin(self, turn: Turn, kwargs: Dict[str, Any]) -> RoutedCall:
        call = self._calls.begin(**self._begin_args(turn, kwargs))
        call.span_id = active_span_id.get()  # type: ignore[attr-defined]
        return call

    async def _abegin(self, turn: Turn, kwargs: Dict[str, Any]) -> RoutedCall:
        call = await self._calls.abegin(**self._begin_args(turn, kwargs))
        call.span_id = active_span_id.get()  # type: ignore[attr-defined]
        return call

    def _backend(self, route: Route) -> LLM:
        backend = self.strong if route == "strong" else self.weak
        # Settings.llm hands the callback manager to the wrapper only; share it so the
        # backend's one LLM event reaches the handlers attached to this LLM.
        if backend.callback_manager is not self.callback_manager:
            backend.callback_manager = self.callback_manager
        return backend

    def _stream_kwargs(self, call: RoutedCall, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        """OpenAI streams report usage only when asked (``stream_options.include_usage``);
        ask, so a streamed call is counted and priced like any other."""
        if call.backend.provider in ("openai", "azure"):
            return {"stream_options": {"include_usage": True}, **kwargs}
        return kwargs

    def _report(self, call: RoutedCall, record: CallRecord) -> None:
        dispatcher.event(RoutingDecisionEvent(
            route=record.route, model=record.model, provider=record.provider, score=record.score,
            threshold=record.threshold, router=record.router, forced=record.forced, latency_ms=record.latency_ms,
            step_policy=record.step_policy, budget=record.budget, cost_usd=record.cost_usd,
            input_tokens=record.input_tokens, output_tokens=record.output_tokens, call_id=record.call_id,
            status=record.status, estimated=record.estimated, span_id=getattr(call, "span_id", None)))

    def _finish(self, response: Any, call: RoutedCall, *, streamed: bool = False) -> Any:
        record = call.finish(usage_report(response), text=None if streamed else _text_of(response))
        self._report(call, record)
        return _stamp(response, record.metadata())

    def _failed(self, exc: BaseException, call: RoutedCall) -> None:
        """Settle what the call really spent (nothing, or what a cut stream delivered); the
        error says which route failed."""
        record = call.settle_on_exit(exc)
        self._report(call, record)
        if isinstance(exc, Exception) and not isinstance(exc, RouteLLMError):
            exc.add_note(f"routellm: the {record.route} route ({record.model}) failed "
                         f"(score {record.score}, threshold {record.threshold:.3f})")

    def _run(self, turn: Turn, kwargs: Dict[str, Any], invoke: Callable[[LLM, Dict[str, Any]], Any]) -> Any:
        call = self._begin(turn, kwargs)
        try:
            response = invoke(self._backend(call.route), kwargs)
        except BaseException as exc:
            self._failed(exc, call)
            raise
        return self._finish(response, call)

    async def _arun(self, turn: Turn, kwargs: Dict[str, Any], invoke: Callable[[LLM, Dict[str, Any]], Any]) -> Any:
        call = await self._abegin(turn, kwargs)
        try:
            response = await invoke(self._backend(call.route), kwargs)
        except BaseException as exc:
            self._failed(exc, call)
            raise
        return self._finish(response, call)

    def _run_stream(self, turn: Turn, kwargs: Dict[str, Any], open_stream: Callable[[LLM, Dict[str, Any]], Any]
                    ) -> Generator[Any, None, None]:
        call = self._begin(turn, kwargs)
        try:
            gen = open_stream(self._backend(call.route), self._stream_kwargs(call, kwargs))
        except BaseException as exc:
            self._failed(exc, call)
            raise
        return self._stream(call, gen)

    async def _arun_stream(self, turn: Turn, kwargs: Dict[str, Any],
                           open_stream: Callable[[LLM, Dict[str, Any]], Any]) -> AsyncGenerator[Any, None]:
        call = await self._abegin(turn, kwargs)
        try:
            gen = await open_stream(self._backend(call.route), self._stream_kwargs(call, kwargs))
        except BaseException as exc:
            self._failed(exc, call)
            raise
        return self._astream(call, gen)

    def _stream(self, call: RoutedCall, gen: Any) -> Generator[Any, None, None]:
        in_flight, last = call.preview_record().metadata(), None
        try:
            for last in gen:
                call.delivered(getattr(last, "delta", None))
                yield _stamp(last, in_flight)
            if last is None:
                raise RouteLLMError(f"the {call.route} backend's stream ended without a response")
            self._finish(last, call, streamed=True)
        except BaseException as exc:  # GeneratorExit: the caller stopped reading
            self._failed(exc, call)
            raise

    async def _astream(self, call: RoutedCall, gen: Any) -> AsyncGenerator[Any, None]:
        in_flight, last = call.preview_record().metadata(), None
        try:
            async for last in gen:
                call.delivered(getattr(last, "delta", None))
                yield _stamp(last, in_flight)
            if last is None:
                raise RouteLLMError(f"the {call.route} backend's stream ended without a response")
            self._finish(last, call, streamed=True)
        except BaseException as exc:
            self._failed(exc, call)
            raise

    # -- chat -----------------------------------------------------------------------
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._run(self._chat_turn(messages, kwargs), kwargs, lambda b, kw: b.chat(messages, **kw))

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._arun(self._chat_turn(messages, kwargs), kwargs, lambda b, kw: b.achat(messages, **kw))

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._run_stream(self._chat_turn(messages, kwargs), kwargs, lambda b, kw: b.stream_chat(messages, **kw))

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        return await self._arun_stream(self._chat_turn(messages, kwargs), kwargs,
                                       lambda b, kw: b.astream_chat(messages, **kw))

    # -- completion -------------------------------------------------------------------
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._run(self._prompt_turn(prompt), kwargs,
                         lambda b, kw: b.complete(prompt, formatted=formatted, **kw))

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return await self._arun(self._prompt_turn(prompt), kwargs,
                                lambda b, kw: b.acomplete(prompt, formatted=formatted, **kw))

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        return self._run_stream(self._prompt_turn(prompt), kwargs,
                                lambda b, kw: b.stream_complete(prompt, formatted=formatted, **kw))

    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        return await self._arun_stream(self._prompt_turn(prompt), kwargs,
                                       lambda b, kw: b.astream_complete(prompt, formatted=formatted, **kw))

    # -- tools: a whole tool-calling turn goes to one backend ----------------------------
    def _tool_call(self, user_msg: Optional[Union[str, ChatMessage]], chat_history: Optional[List[ChatMessage]],
                   tools: Sequence[Any], options: Dict[str, Any], kwargs: Dict[str, Any]
                   ) -> tuple[Turn, Callable[[str], Any]]:
        """The turn of a tool-calling call, and ``method(name)`` calling ``backend.name``."""
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg)
                            if isinstance(user_msg, str) else user_msg)

        def method(name: str) -> Any:
            return lambda b, kw: getattr(b, name)(tools, user_msg=user_msg, chat_history=chat_history,
                                                  **options, **kw)
        return self._chat_turn(messages, kwargs), method

    def chat_with_tools(self, tools: Sequence[Any], user_msg: Optional[Union[str, ChatMessage]] = None,
                        chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                        allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                        **kwargs: Any) -> ChatResponse:
        turn, method = self._tool_call(user_msg, chat_history, tools, _tool_options(
            verbose, allow_parallel_tool_calls, tool_required), kwargs)
        return self._run(turn, kwargs, method("chat_with_tools"))

    async def achat_with_tools(self, tools: Sequence[Any], user_msg: Optional[Union[str, ChatMessage]] = None,
                               chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                               allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                               **kwargs: Any) -> ChatResponse:
        turn, method = self._tool_call(user_msg, chat_history, tools, _tool_options(
            verbose, allow_parallel_tool_calls, tool_required), kwargs)
        return await self._arun(turn, kwargs, method("achat_with_tools"))

    def stream_chat_with_tools(self, tools: Sequence[Any], user_msg: Optional[Union[str, ChatMessage]] = None,
                               chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                               allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                               **kwargs: Any) -> ChatResponseGen:
        turn, method = self._tool_call(user_msg, chat_history, tools, _tool_options(
            verbose, allow_parallel_tool_calls, tool_required), kwargs)
        return self._run_stream(turn, kwargs, method("stream_chat_with_tools"))

    async def astream_chat_with_tools(self, tools: Sequence[Any],
                                      user_msg: Optional[Union[str, ChatMessage]] = None,
                                      chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                                      allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                      **kwargs: Any) -> ChatResponseAsyncGen:
        turn, method = self._tool_call(user_msg, chat_history, tools, _tool_options(
            verbose, allow_parallel_tool_calls, tool_required), kwargs)
        return await self._arun_stream(turn, kwargs, method("astream_chat_with_tools"))

    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: Optional[Union[str, ChatMessage]] = None,
                                 chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                                 allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                 **kwargs: Any) -> dict:
        """Only reached by code that prepares tools without calling chat_with_tools: the
        strong backend's format is used, since the route is not known yet."""
        return self.strong._prepare_chat_with_tools(  # type: ignore[attr-defined]
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs)

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> List[ToolSelection]:
        """Parsed by the backend that produced the response (formats differ per provider)."""
        info = response.additional_kwargs.get("routellm") if response.additional_kwargs else None
        if not info or info.get("route") not in ("strong", "weak"):
            raise RouteLLMError("this response was not produced by this RoutedLLM (no routing stamp), "
                                "so it is unknown which backend's tool-call format it uses")
        backend = self.strong if info["route"] == "strong" else self.weak
        return backend.get_tool_calls_from_response(  # type: ignore[attr-defined]
            response, error_on_no_tool_call=error_on_no_tool_call, **kwargs)


def _routed_on_query(name: str) -> Callable[..., Any]:
    """``LLM.<name>`` run with the template's question as the routing text. The call
    begins (and routes) inside the base method, before any token flows, so a streaming
    method needs the question only while it is called."""
    base = getattr(FunctionCallingLLM, name)
    if asyncio.iscoroutinefunction(base):
        async def method(self: RoutedLLM, *args: Any, **kwargs: Any) -> Any:
            token = self._with_query(kwargs.get("prompt", args[-1] if args else None), kwargs)
            try:
                return await base(self, *args, **kwargs)
            finally:
                _QUERY_TEXT.reset(token)
    else:
        def method(self: RoutedLLM, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            token = self._with_query(kwargs.get("prompt", args[-1] if args else None), kwargs)
            try:
                return base(self, *args, **kwargs)
            finally:
                _QUERY_TEXT.reset(token)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = base.__doc__
    return method


for _name in ("predict", "apredict", "stream", "astream", "structured_predict", "astructured_predict"):
    setattr(RoutedLLM, _name, _routed_on_query(_name))


def _tool_options(verbose: bool, allow_parallel_tool_calls: bool, tool_required: bool) -> Dict[str, Any]:
    return {"verbose": verbose, "allow_parallel_tool_calls": allow_parallel_tool_calls,
            "tool_required": tool_required}


def _stamp(response: Any, info: Dict[str, Any]) -> Any:
    response.additional_kwargs["routellm"] = info
    if isinstance(response.raw, dict):
        response.raw["routellm"] = info
    return response


def _text_of(response: Any) -> str:
    """What the backend wrote (for an estimate when it reported no usage)."""
    message = getattr(response, "message", None)
    text = (message.content or "") if message is not None else (getattr(response, "text", None) or "")
    tool_calls = (getattr(message, "additional_kwargs", None) or {}).get("tool_calls") if message else None
    return text + (str(tool_calls) if tool_calls else "")


def _smaller_known(a: int, b: int) -> int:
    known = [v for v in (a, b) if isinstance(v, int) and v > 0]
    return min(known) if known else -1


def _redacted(value: Any) -> Any:
    """``value`` without the entries that hold secrets (keys named like api_key/token/...,
    and any SecretStr)."""
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()
                if not (isinstance(k, str) and _SECRET_KEY.search(k) and k not in _NOT_SECRET)
                and not isinstance(v, SecretStr)}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value


def _short(backend: LLM) -> str:
    return f"{type(backend).__name__}(model={backend.metadata.model_name!r})"
