"""``RoutedLLM``: one LlamaIndex LLM over a strong and a weak LLM, choosing per call.

A whole call (chat, completion, a tool-calling turn, their streaming and async forms)
goes to exactly one backend, through the backend's own public method, so the backend
emits the one LLM event LlamaIndex handlers count tokens from. The wrapper adds no LLM
event of its own; it sends a :class:`~.events.RoutingDecisionEvent` and stamps the
decision into ``response.additional_kwargs["routellm"]``.
"""

from __future__ import annotations

from typing import Any, AsyncGenerator, Callable, Generator, List, Literal, Optional, Sequence, Union

from llama_index.core.base.llms.types import (ChatMessage, ChatResponse, ChatResponseAsyncGen,
                                              ChatResponseGen, CompletionResponse,
                                              CompletionResponseAsyncGen, CompletionResponseGen,
                                              LLMMetadata, MessageRole)
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.span import active_span_id
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection
from pydantic import Field, PrivateAttr, SerializeAsAny

from routellm_integrations.costs import CostLedger, PriceTable
from routellm_integrations.decision import Route, RoutingDecision
from routellm_integrations.errors import InvalidPromptError, RouteLLMError
from routellm_integrations.budgets import Budget
from routellm_integrations.policy import RoutingPolicy, StepPolicy, Ticket

from .events import RoutingDecisionEvent
from .usage import provider_of, response_usage

dispatcher = get_dispatcher(__name__)

ROUTE_KWARG = "route"
"""Per-call override: ``llm.chat(messages, route="strong")`` forces a backend."""
SCOPE_KWARG = "routellm_scope"
"""Per-call budget/sticky scope: ``llm.chat(messages, routellm_scope=run_id)``."""


class _Call:
    """A routed call in flight: the policy's ticket and the span the decision was made in."""

    __slots__ = ("ticket", "span_id")

    def __init__(self, ticket: Ticket, span_id: Optional[str]) -> None:
        self.ticket, self.span_id = ticket, span_id

    @property
    def decision(self) -> RoutingDecision:
        return self.ticket.decision

    @property
    def route(self) -> Route:
        return self.ticket.decision.route


class RoutedLLM(FunctionCallingLLM):
    """Routes each call to ``strong`` or ``weak`` with a RouteLLM router.

    ``threshold`` (default 0.5) or ``strong_fraction`` with ``calibration_prompts`` sets
    the cut-off; ``route_on="last_user"`` (default: the paper's routers saw single
    prompts) or ``"conversation"`` chooses what is scored.
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
    scope: Optional[str] = Field(default=None, description="budget/sticky scope when a call names none")

    _policy: RoutingPolicy = PrivateAttr()
    _ledger: CostLedger = PrivateAttr()

    def __init__(self, strong: LLM, weak: LLM, router: Any = "mf", threshold: Optional[float] = None,
                 strong_fraction: Optional[float] = None, calibration_prompts: Optional[Sequence[str]] = None,
                 route_on: Union[Literal["last_user", "conversation"],
                                 Callable[[Sequence[ChatMessage]], str]] = "last_user",
                 cost_ledger: Optional[CostLedger] = None, price_table: Optional[PriceTable] = None,
                 budget: Optional[Budget] = None, steps: StepPolicy = "per_turn", scope: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__(strong=strong, weak=weak, router=router, threshold=threshold,
                         strong_fraction=strong_fraction,
                         calibration_prompts=list(calibration_prompts) if calibration_prompts else None,
                         route_on=route_on, scope=scope, **kwargs)
        self._policy = RoutingPolicy(router, threshold=threshold, strong_fraction=strong_fraction,
                                     calibration_prompts=calibration_prompts, budget=budget, steps=steps)
        self.threshold = self._policy._fixed  # None while a target share is held online
        self._ledger = cost_ledger if cost_ledger is not None else CostLedger(price_table)

    @classmethod
    def class_name(cls) -> str:
        return "RoutedLLM"

    # -- what LlamaIndex asks of an LLM -----------------------------------------------
    @property
    def metadata(self) -> LLMMetadata:
        """Honest about the pair: what both can do, within the smaller limits."""
        s, w = self.strong.metadata, self.weak.metadata
        return LLMMetadata(
            context_window=min(s.context_window, w.context_window),
            num_output=min(s.num_output, w.num_output),
            is_chat_model=s.is_chat_model and w.is_chat_model,
            is_function_calling_model=s.is_function_calling_model and w.is_function_calling_model,
            model_name=f"routed({s.model_name}|{w.model_name})",
        )

    @property
    def cost_ledger(self) -> CostLedger:
        """Calls, tokens and dollars per route and per model since construction."""
        return self._ledger

    @property
    def policy(self) -> RoutingPolicy:
        return self._policy

    # -- routing --------------------------------------------------------------------
    @staticmethod
    def turn(messages: Sequence[ChatMessage]) -> tuple[str, bool]:
        """The user turn a call belongs to (a digest of the conversation up to its last user
        message) and whether the call continues it (the last message is a tool result or
        the assistant's own): steps of one agent turn share a backend."""
        import hashlib

        last_user = max((i for i, m in enumerate(messages) if m.role == MessageRole.USER), default=-1)
        digest = hashlib.sha1()
        for m in messages[: last_user + 1]:
            digest.update(f"{m.role.value}\x00{m.content or ''}\x01".encode())
        return digest.hexdigest(), last_user < len(messages) - 1

    def routing_text(self, messages: Sequence[ChatMessage]) -> str:
        if not messages:
            raise InvalidPromptError("no messages to route: give at least one message")
        if callable(self.route_on):
            text = self.route_on(messages)
            if not isinstance(text, str):
                raise InvalidPromptError(f"route_on returned {type(text).__name__}, not the text to route on")
        elif self.route_on == "conversation":
            text = "\n".join(f"{m.role.value}: {m.content or ''}" for m in messages if (m.content or "").strip())
        else:
            users = [m for m in messages if m.role == MessageRole.USER and (m.content or "").strip()]
            text = (users[-1].content or "") if users else ""
        if not text.strip():
            raise InvalidPromptError("no user text to route on (the messages hold no text from the user, "
                                     "e.g. only images or only tool results)")
        return text

    def _options(self, kwargs: dict, messages: Optional[Sequence[ChatMessage]]) -> dict:
        turn_key, followup = self.turn(messages) if messages else (None, False)
        return {"force": kwargs.pop(ROUTE_KWARG, None), "scope": kwargs.pop(SCOPE_KWARG, None) or self.scope,
                "turn_key": turn_key, "followup": followup}

    def _decide(self, text: str, kwargs: dict, messages: Optional[Sequence[ChatMessage]] = None) -> "_Call":
        return _Call(self._policy.decide(text, **self._options(kwargs, messages)), active_span_id.get())

    async def _adecide(self, text: str, kwargs: dict,
                       messages: Optional[Sequence[ChatMessage]] = None) -> "_Call":
        return _Call(await self._policy.adecide(text, **self._options(kwargs, messages)), active_span_id.get())

    def _backend(self, route: Route) -> LLM:
        backend = self.strong if route == "strong" else self.weak
        # Settings.llm hands the callback manager to the wrapper only; share it so the
        # backend's one LLM event reaches the handlers attached to this LLM.
        if backend.callback_manager is not self.callback_manager:
            backend.callback_manager = self.callback_manager
        return backend

    def _model(self, route: Route) -> str:
        return (self.strong if route == "strong" else self.weak).metadata.model_name

    def _stream_kwargs(self, route: Route, kwargs: dict) -> dict:
        """OpenAI streams report usage only when asked (``stream_options.include_usage``);
        ask, so a streamed call is counted and priced like any other."""
        if provider_of(self.strong if route == "strong" else self.weak) in ("openai", "azure"):
            return {"stream_options": {"include_usage": True}, **kwargs}
        return kwargs

    def _finish(self, response: Any, call: "_Call", stamp_only: bool = False) -> Any:
        """Stamp the decision into the response; on the final response also price it,
        record it and send the one routing event (under the call's span, also when a
        stream ends after the call returned)."""
        decision = call.decision
        backend = self.strong if decision.route == "strong" else self.weak
        model = self._model(decision.route)
        info = {**decision.model_dump(), "model": model}
        if not stamp_only:
            usage = response_usage(response)
            cost = self._ledger.record(route=decision.route, model=model, usage=usage,
                                       provider=provider_of(backend), strong_model=self._model("strong"),
                                       strong_provider=provider_of(self.strong))
            tokens = {"input_tokens": usage.input_tokens if usage else None,
                      "output_tokens": usage.output_tokens if usage else None}
            self._policy.settle(call.ticket, cost)
            info.update(tokens, cost_usd=cost, budget=self._policy.budget_state(decision))
            dispatcher.event(RoutingDecisionEvent(
                route=decision.route, model=model, score=decision.score, threshold=decision.threshold,
                router=decision.router, forced=decision.forced, latency_ms=decision.latency_ms,
                step_policy=decision.step_policy, budget=self._policy.budget_state(decision),
                cost_usd=cost, span_id=call.span_id, **tokens))
        response.additional_kwargs["routellm"] = info
        if isinstance(response.raw, dict):
            response.raw["routellm"] = info
        return response

    def _failed(self, exc: BaseException, call: "_Call") -> None:
        """The backend raised: counted as a failed call (no tokens, no dollars); the error
        says which route failed."""
        decision = call.decision
        self._policy.settle(call.ticket, None, succeeded=False)
        self._ledger.record_failure(route=decision.route, model=self._model(decision.route))
        if isinstance(exc, Exception) and not isinstance(exc, RouteLLMError):
            exc.add_note(f"routellm: the {decision.route} route ({self._model(decision.route)}) failed "
                         f"(score {decision.score}, threshold {decision.threshold:.3f})")

    def _run(self, call: "_Call", invoke: Any) -> Any:
        try:
            response = invoke(self._backend(call.route))
        except Exception as exc:
            self._failed(exc, call)
            raise
        return self._finish(response, call)

    async def _arun(self, call: "_Call", invoke: Any) -> Any:
        try:
            response = await invoke(self._backend(call.route))
        except Exception as exc:
            self._failed(exc, call)
            raise
        return self._finish(response, call)

    def _stream(self, call: "_Call", gen: Any) -> Generator[Any, None, None]:
        last = None
        try:
            for last in gen:
                yield self._finish(last, call, stamp_only=True)
        except Exception as exc:
            self._failed(exc, call)
            raise
        if last is not None:
            self._finish(last, call)

    async def _astream(self, call: "_Call", gen: Any) -> AsyncGenerator[Any, None]:
        last = None
        try:
            async for last in gen:
                yield self._finish(last, call, stamp_only=True)
        except Exception as exc:
            self._failed(exc, call)
            raise
        if last is not None:
            self._finish(last, call)

    # -- chat -----------------------------------------------------------------------
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        call = self._decide(self.routing_text(messages), kwargs, messages)
        return self._run(call, lambda b: b.chat(messages, **kwargs))

    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        call = await self._adecide(self.routing_text(messages), kwargs, messages)
        return await self._arun(call, lambda b: b.achat(messages, **kwargs))

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        call = self._decide(self.routing_text(messages), kwargs, messages)
        try:
            gen = self._backend(call.route).stream_chat(messages, **self._stream_kwargs(call.route, kwargs))
        except Exception as exc:
            self._failed(exc, call)
            raise
        return self._stream(call, gen)

    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        call = await self._adecide(self.routing_text(messages), kwargs, messages)
        try:
            gen = await self._backend(call.route).astream_chat(messages, **self._stream_kwargs(call.route, kwargs))
        except Exception as exc:
            self._failed(exc, call)
            raise
        return self._astream(call, gen)

    # -- completion -------------------------------------------------------------------
    def _prompt_text(self, prompt: str) -> str:
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidPromptError("the prompt is empty: nothing to route or complete")
        return prompt

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        call = self._decide(self._prompt_text(prompt), kwargs)
        return self._run(call, lambda b: b.complete(prompt, formatted=formatted, **kwargs))

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        call = await self._adecide(self._prompt_text(prompt), kwargs)
        return await self._arun(call, lambda b: b.acomplete(prompt, formatted=formatted, **kwargs))

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        call = self._decide(self._prompt_text(prompt), kwargs)
        try:
            gen = self._backend(call.route).stream_complete(prompt, formatted=formatted,
                                                            **self._stream_kwargs(call.route, kwargs))
        except Exception as exc:
            self._failed(exc, call)
            raise
        return self._stream(call, gen)

    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        call = await self._adecide(self._prompt_text(prompt), kwargs)
        try:
            gen = await self._backend(call.route).astream_complete(prompt, formatted=formatted,
                                                                   **self._stream_kwargs(call.route, kwargs))
        except Exception as exc:
            self._failed(exc, call)
            raise
        return self._astream(call, gen)

    # -- tools: a whole tool-calling turn goes to one backend ----------------------------
    @staticmethod
    def _tool_messages(user_msg: Optional[Union[str, ChatMessage]],
                       chat_history: Optional[List[ChatMessage]]) -> List[ChatMessage]:
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg)
                            if isinstance(user_msg, str) else user_msg)
        return messages

    def chat_with_tools(self, tools: Sequence[Any], user_msg: Optional[Union[str, ChatMessage]] = None,
                        chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                        allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                        **kwargs: Any) -> ChatResponse:
        messages = self._tool_messages(user_msg, chat_history)
        call = self._decide(self.routing_text(messages), kwargs, messages)
        return self._run(call, lambda b: b.chat_with_tools(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs))

    async def achat_with_tools(self, tools: Sequence[Any], user_msg: Optional[Union[str, ChatMessage]] = None,
                               chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                               allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                               **kwargs: Any) -> ChatResponse:
        messages = self._tool_messages(user_msg, chat_history)
        call = await self._adecide(self.routing_text(messages), kwargs, messages)
        return await self._arun(call, lambda b: b.achat_with_tools(
            tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
            allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required, **kwargs))

    def stream_chat_with_tools(self, tools: Sequence[Any], user_msg: Optional[Union[str, ChatMessage]] = None,
                               chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                               allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                               **kwargs: Any) -> ChatResponseGen:
        messages = self._tool_messages(user_msg, chat_history)
        call = self._decide(self.routing_text(messages), kwargs, messages)
        try:
            gen = self._backend(call.route).stream_chat_with_tools(
                tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
                allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required,
                **self._stream_kwargs(call.route, kwargs))
        except Exception as exc:
            self._failed(exc, call)
            raise
        return self._stream(call, gen)

    async def astream_chat_with_tools(self, tools: Sequence[Any],
                                      user_msg: Optional[Union[str, ChatMessage]] = None,
                                      chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                                      allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                      **kwargs: Any) -> ChatResponseAsyncGen:
        messages = self._tool_messages(user_msg, chat_history)
        call = await self._adecide(self.routing_text(messages), kwargs, messages)
        try:
            gen = await self._backend(call.route).astream_chat_with_tools(
                tools, user_msg=user_msg, chat_history=chat_history, verbose=verbose,
                allow_parallel_tool_calls=allow_parallel_tool_calls, tool_required=tool_required,
                **self._stream_kwargs(call.route, kwargs))
        except Exception as exc:
            self._failed(exc, call)
            raise
        return self._astream(call, gen)

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
