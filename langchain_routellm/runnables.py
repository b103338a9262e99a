"""Route between any two runnables (two whole RAG chains, two prompts+models, ...).

    rag = route_between(strong=strong_rag_chain, weak=cheap_rag_chain, router="mf",
                        threshold=0.3)                      # a Runnable, usable in LCEL
    rag.invoke({"question": "..."})

Like ``RunnableBranch`` with a router as the condition: the routing text comes from the
input (a string, messages, or a dict's ``question``/``input``/``query``/``prompt`` key, or
your ``text=`` function); the chosen runnable runs as a child of a ``RoutedRunnable``
chain run, with ``routellm:strong|weak`` tags, ``routellm_*`` metadata and a
``routellm_route`` custom event. (``create_agent`` needs a chat model: use ``RoutedChat``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config, patch_config

from routellm_integrations.decision import RoutingDecision
from routellm_integrations.errors import InvalidPromptError
from routellm_integrations.policy import RoutingPolicy

from .messages import backend_model_name, routing_text

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
        if isinstance(strong, BaseChatModel) and isinstance(weak, BaseChatModel):  # score the pair it routes
            self.policy.score_pair(backend_model_name(strong), backend_model_name(weak))
        self.text = text or default_routing_text
        self.name = name or "RoutedRunnable"

    @property
    def InputType(self) -> Any:  # noqa: N802
        return self.strong.InputType

    @property
    def OutputType(self) -> Any:  # noqa: N802
        return self.strong.OutputType

    def decide(self, input: Any) -> RoutingDecision:
        text = self.text(input)
        if not isinstance(text, str) or not text.strip():
            raise InvalidPromptError("the routing text is empty: nothing to score")
        return self.policy.decide(text).decision

    async def adecide(self, input: Any) -> RoutingDecision:
        """:meth:`decide` with the router's scoring off the event loop."""
        if self.policy.scores_inline():
            return self.decide(input)
        return await asyncio.to_thread(self.decide, input)

    def _child(self, config: RunnableConfig, run_manager: Any, d: RoutingDecision) -> RunnableConfig:
        child = patch_config(config, callbacks=run_manager.get_child(f"routellm:{d.route}"))
        child["tags"] = [*(config.get("tags") or []), f"routellm:{d.route}"]
        child["metadata"] = {**(config.get("metadata") or {}), "routellm_route": d.route,
                             "routellm_score": d.score, "routellm_threshold": d.threshold,
                             "routellm_router": d.router, "routellm_latency_ms": d.latency_ms}
        return child

    def _invoke(self, input: Any, run_manager: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        d = self.decide(input)
        child = self._child(config, run_manager, d)
        dispatch_custom_event("routellm_route", d.model_dump(), config=child)
        return (self.strong if d.route == "strong" else self.weak).invoke(input, child, **kwargs)

    async def _ainvoke(self, input: Any, run_manager: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        d = await self.adecide(input)
        child = self._child(config, run_manager, d)
        await adispatch_custom_event("routellm_route", d.model_dump(), config=child)
        return await (self.strong if d.route == "strong" else self.weak).ainvoke(input, child, **kwargs)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(self._invoke, input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    def _plain(self, d: RoutingDecision, config: RunnableConfig | None) -> tuple[Runnable, RunnableConfig]:
        config = ensure_config(config)
        patched = {**config, "tags": [*(config.get("tags") or []), f"routellm:{d.route}"],
                   "metadata": {**(config.get("metadata") or {}), "routellm_route": d.route,
                                "routellm_score": d.score, "routellm_threshold": d.threshold,
                                "routellm_router": d.router}}
        return (self.strong if d.route == "strong" else self.weak), patched  # type: ignore[return-value]

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        target, patched = self._plain(self.decide(input), config)
        yield from target.stream(input, patched, **kwargs)

    async def astream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        target, patched = self._plain(await self.adecide(input), config)
        async for chunk in target.astream(input, patched, **kwargs):
            yield chunk


def route_between(strong: Runnable, weak: Runnable, router: Any = "mf", **options: Any) -> RoutedRunnable:
    """``RoutedRunnable(strong, weak, router, **options)``."""
    return RoutedRunnable(strong, weak, router, **options)
