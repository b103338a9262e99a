"""Route between any two runnables (two whole RAG chains, two prompts+models, ...).

    rag = route_between(strong=strong_rag_chain, weak=cheap_rag_chain, router="mf",
                        threshold=0.3)                      # a Runnable, usable in LCEL
    rag.invoke({"question": "..."})

Like ``RunnableBranch`` with a router as the condition: the routing text comes from the
input (a string, messages, or a dict's ``question``/``input``/``query``/``prompt`` key, or
your ``text=`` function). (``create_agent`` needs a chat model: use ``RoutedChat``.)

Each call runs through the core call lifecycle and cascade engine, as ``RoutedChat``'s
do: it begins a :class:`~routellm_integrations.routing.RoutedCall` (the router decides),
the engine (:mod:`routellm_integrations.routing.engine`) runs the chosen runnable
(``invoke``/``ainvoke`` as a child of a ``RoutedRunnable`` chain run; ``stream``/
``astream`` chunk by chunk) and the call settles on every exit: an answer, an exception,
a cancellation, a stream the consumer stops reading. Its one
:class:`~routellm_integrations.routing.CallRecord` is what the run reports: the chosen
runnable's run carries the ``routellm:strong|weak`` tag and the ``routellm_*`` metadata
``RoutedChat``'s runs carry, the ``routellm_route`` custom event's payload is the record
as the call starts, an ``AIMessage`` answer gets ``response_metadata["routellm"]`` (the
settled record), and the cost tracker counts the record. ``ledger`` holds every call.

A backend is named by its chat model's model name (a chat model, or one bound with
``bind_tools``/``with_config``), else by the runnable's name. A call is priced from the
answer: an ``AIMessage`` with ``usage_metadata`` is priced by its model, as
``RoutedChat`` prices a call; a chat model that reports no usage is estimated from the
text, as ``RoutedChat`` does; any other runnable's call is unpriced (``cost_usd`` None,
never $0).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import add_usage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.runnables.config import ensure_config, patch_config

from routellm_integrations.decision import RoutingDecision
from routellm_integrations.errors import InvalidPromptError
from routellm_integrations.policy import RoutingPolicy
from routellm_integrations.routers.pair import UnscoredPairWarning
from routellm_integrations.routing import Backend, CallLifecycle, CallRecord, RoutedCall, Turn, engine, turn_of_prompt
from routellm_integrations.routing.engine import Hooks, Tally
from routellm_integrations.state import CostLedger

from .messages import backend_model_name, backend_provider, chunk_text, routing_text
from .records import aemit, emit, route_tags_metadata, scope_of, stamp_message, watch

__all__ = ["RoutedRunnable", "default_routing_text", "route_between"]

_KEYS = ("question", "input", "query", "prompt", "text")


def default_routing_text(value: Any) -> str:
    """A string as is; messages / a prompt value: the last human message; a dict: its
    ``question``/``input``/``query``/``prompt``/``text`` (or ``messages``) entry."""
    if isinstance(value, str):
        return value
    if isinstance(value, PromptValue):
        return routing_text(value.to_messages())
    if isinstance(value, BaseMessage):
        return routing_text([value])
    if isinstance(value, list) and value and all(isinstance(m, (BaseMessage, tuple, dict)) for m in value):
        from langchain_core.messages import convert_to_messages
        return routing_text(convert_to_messages(value))
    if isinstance(value, dict):
        for k in _KEYS:
            if isinstance(value.get(k), str):
                return value[k]
        if "messages" in value:
            return default_routing_text(value["messages"])
    raise InvalidPromptError(f"cannot find text to route on in a {type(value).__name__}; give text=<function>")


def _chat_model(runnable: Runnable) -> BaseChatModel | None:
    """The chat model a runnable is (possibly bound: ``bind_tools``, ``with_config``)."""
    while isinstance(runnable, RunnableBinding):
        runnable = runnable.bound
    return runnable if isinstance(runnable, BaseChatModel) else None


def _backend(route: str, runnable: Runnable) -> Backend:
    """How the price table and the reports name a runnable: its chat model's model name
    and provider, else the runnable's name (unpriced)."""
    chat = _chat_model(runnable)
    if chat is not None:
        return Backend(route, backend_model_name(chat), backend_provider(chat))
    return Backend(route, runnable.get_name(), None)


class RoutedRunnable(Runnable[Any, Any]):
    """Runs ``strong`` when the router scores the input's text >= threshold, else ``weak``."""

    def __init__(self, strong: Runnable, weak: Runnable, router: Any = "mf", *, threshold: float | None = None,
                 strong_fraction: float | None = None, calibration_prompts: list[str] | None = None,
                 router_options: dict[str, Any] | None = None, text: Callable[[Any], str] | None = None,
                 name: str | None = None) -> None:
        self.strong, self.weak = strong, weak
        self.policy = RoutingPolicy(router, threshold=threshold, strong_fraction=strong_fraction,
                                    calibration_prompts=calibration_prompts, router_options=router_options,
                                    steps="every_step")
        # the router scores the pair it routes when both are chat models; two chains are
        # no model pair, and the router keeps its default one
        paired = _chat_model(strong) is not None and _chat_model(weak) is not None
        with warnings.catch_warnings():
            if not paired:
                warnings.simplefilter("ignore", UnscoredPairWarning)
            self._calls = CallLifecycle(self.policy, strong=_backend("strong", strong), weak=_backend("weak", weak))
        if not paired:
            self.policy.score_pair(None, None)
        self.text = text or default_routing_text
        self.name = name or "RoutedRunnable"

    @property
    def InputType(self) -> Any:  # noqa: N802
        return self.strong.InputType

    @property
    def OutputType(self) -> Any:  # noqa: N802
        return self.strong.OutputType

    @property
    def ledger(self) -> CostLedger:
        """Every call this runnable routed, however it ended (one record each)."""
        return self._calls.ledger

    def _turn(self, input: Any) -> Turn:
        text = self.text(input)
        if not isinstance(text, str) or not text.strip():
            raise InvalidPromptError("the routing text is empty: nothing to score")
        return turn_of_prompt(text)

    def decide(self, input: Any) -> RoutingDecision:
        """Where a call with this input would go now. A preview: it reserves nothing and
        moves no online threshold."""
        return self._calls.preview(self._turn(input))

    async def adecide(self, input: Any) -> RoutingDecision:
        """:meth:`decide` with the router's scoring off the event loop."""
        if self.policy.scores_inline():
            return self.decide(input)
        return await asyncio.to_thread(self.decide, input)

    def _target(self, call: RoutedCall) -> Runnable:
        return self.strong if call.route == "strong" else self.weak

    # -- the chosen runnable's config ------------------------------------------------------
    def _child(self, config: RunnableConfig, run_manager: Any, call: RoutedCall) -> RunnableConfig:
        """A child run of this chain's run, with the call's tag and metadata."""
        child = patch_config(config, callbacks=run_manager.get_child(f"routellm:{call.route}"))
        child["tags"], child["metadata"] = route_tags_metadata(call, config.get("tags"), config.get("metadata"))
        return child

    @staticmethod
    def _plain(config: RunnableConfig, call: RoutedCall) -> RunnableConfig:
        """``config`` with the call's tag and metadata (a stream runs in the caller's run)."""
        tags, metadata = route_tags_metadata(call, config.get("tags"), config.get("metadata"))
        return {**config, "tags": tags, "metadata": metadata}  # type: ignore[typeddict-item]

    # -- entry points ---------------------------------------------------------------------
    def _invoke(self, input: Any, run_manager: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        call = self._calls.begin(self._turn(input), scope=scope_of(config.get("metadata")))
        with call:  # settles if anything fails before the engine runs the call
            watch(call, run_manager.get_child())
            emit(self._child(config, run_manager, call).get("callbacks"), call)
            hooks = _RunnableHooks(self, input, lambda c: self._child(config, run_manager, c), kwargs)
            return engine.run(call, hooks)

    async def _ainvoke(self, input: Any, run_manager: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        call = await self._calls.abegin(self._turn(input), scope=scope_of(config.get("metadata")))
        async with call:
            watch(call, run_manager.get_child())
            await aemit(self._child(config, run_manager, call).get("callbacks"), call)
            hooks = _RunnableHooks(self, input, lambda c: self._child(config, run_manager, c), kwargs)
            return await engine.arun(call, hooks)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(self._invoke, input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        config = ensure_config(config)
        call = self._calls.begin(self._turn(input), scope=scope_of(config.get("metadata")))
        with call:  # the engine's generator settles the call; a consumer that stops reading closes it
            watch(call, config.get("callbacks"))
            emit(config.get("callbacks"), call)
            yield from engine.stream(call, _RunnableHooks(self, input, lambda c: self._plain(config, c), kwargs))

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        config = ensure_config(config)
        call = await self._calls.abegin(self._turn(input), scope=scope_of(config.get("metadata")))
        async with call:
            watch(call, config.get("callbacks"))
            await aemit(config.get("callbacks"), call)
            hooks = _RunnableHooks(self, input, lambda c: self._plain(config, c), kwargs)
            # closed with this generator: the backend's stream is let go at once
            async with aclosing(engine.astream(call, hooks)) as chunks:
                async for chunk in chunks:
                    yield chunk


def route_between(strong: Runnable, weak: Runnable, router: Any = "mf", **options: Any) -> RoutedRunnable:
    """``RoutedRunnable(strong, weak, router, **options)``."""
    return RoutedRunnable(strong, weak, router, **options)


class _Chunks(Tally):
    """A stream's chunks pass unchanged; message chunks' usage and model name are summed
    for the record."""

    def __init__(self, call: RoutedCall, held: bool) -> None:
        super().__init__(call, held)
        self.usage: Any = None
        self.model: str | None = None

    def add(self, chunk: Any) -> tuple[Any]:
        self.last = chunk
        if isinstance(chunk, AIMessageChunk):
            if chunk.usage_metadata:
                self.usage = add_usage(self.usage, chunk.usage_metadata)
            self.model = self.model or (chunk.response_metadata or {}).get("model_name")
        return (chunk,)

    def end(self, stream: Any) -> "_Chunks":
        return self


class _RunnableHooks(Hooks):
    """One ``RoutedRunnable`` call on the engine: the chosen runnable runs on ``input``
    with ``config_for(call)`` (the call's tags and metadata)."""

    def __init__(self, owner: RoutedRunnable, input: Any, config_for: Callable[[RoutedCall], RunnableConfig],
                 kwargs: dict[str, Any]) -> None:
        self.owner, self.input, self.config_for, self.kwargs = owner, input, config_for, kwargs

    def send(self, call: RoutedCall) -> Any:
        return self.owner._target(call).invoke(self.input, self.config_for(call), **self.kwargs)

    async def asend(self, call: RoutedCall) -> Any:
        return await self.owner._target(call).ainvoke(self.input, self.config_for(call), **self.kwargs)

    def open(self, call: RoutedCall) -> Any:
        return self.owner._target(call).stream(self.input, self.config_for(call), **self.kwargs)

    async def aopen(self, call: RoutedCall) -> Any:
        return self.owner._target(call).astream(self.input, self.config_for(call), **self.kwargs)

    def tally(self, call: RoutedCall, held: bool) -> Tally:
        return _Chunks(call, held)

    # an answer's usage: an AIMessage's usage_metadata (a stream's: its chunks' sum); else
    # the call is estimated from its text and priced by the backend's name (a chat model's
    # model, as RoutedChat; any other runnable's name is unpriced)
    def usage_of(self, answer: Any) -> Any:
        if isinstance(answer, _Chunks):
            return answer.usage
        return (answer.usage_metadata or None) if isinstance(answer, AIMessage) else None

    def model_of(self, answer: Any) -> str | None:
        """The model that answered, when it reported its usage (what is priced)."""
        if isinstance(answer, _Chunks):
            return answer.model if answer.usage else None
        if isinstance(answer, AIMessage) and answer.usage_metadata:
            return (answer.response_metadata or {}).get("model_name")
        return None

    def text_of(self, answer: Any) -> str | None:
        if isinstance(answer, BaseMessage):
            return chunk_text(answer)
        return answer if isinstance(answer, str) else None

    def delta_of(self, chunk: Any) -> str | None:
        if isinstance(chunk, BaseMessage):
            return chunk_text(chunk)
        return chunk if isinstance(chunk, str) else None

    def stamp(self, answer: Any, record: CallRecord, escalated: list[CallRecord]) -> Any:
        return stamp_message(answer, record) if isinstance(answer, AIMessage) else answer

    def backend_label(self, call: RoutedCall) -> str:
        return type(self.owner._target(call)).__name__
