"""LlamaIndex side of shadow sampling: the other backend's answer and the default judge,
both through the LLMs' sync methods in a thread of the sampler's worker (an async client
belongs to the event loop it was opened on, and the worker's loop is not the app's)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms import LLM

from routellm_integrations.costs import Usage
from routellm_integrations.errors import InvalidUsageError
from routellm_integrations.labels.clients import Completion

from .dispatch import text_of
from .usage import provider_of, response_usage


def _usage(response: Any) -> Usage | None:
    try:
        return response_usage(response)
    except InvalidUsageError:
        return None


def _model(llm: LLM, response: Any) -> str:
    raw = getattr(response, "raw", None)
    name = raw.get("model") if isinstance(raw, dict) else getattr(raw, "model", None)
    return str(name or llm.metadata.model_name)


class ThreadedLLMClient:
    """A ``ChatClient`` (what the judge is) over a LlamaIndex LLM's ``chat``."""

    def __init__(self, llm: LLM) -> None:
        self._llm = llm
        self.model = str(llm.metadata.model_name)
        self.provider = provider_of(llm)

    def __repr__(self) -> str:
        return f"ThreadedLLMClient(model={self.model!r})"

    async def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> Completion:
        chat = [ChatMessage(role=m["role"], content=m["content"]) for m in messages]
        response = await asyncio.to_thread(self._llm.chat, chat)
        return Completion(text_of(response), _usage(response), _model(self._llm, response))


def other_answer(llm: LLM, invoke: Callable[[LLM, dict[str, Any]], Any], kwargs: dict[str, Any]) -> Any:
    """What the sampler awaits for the other backend's answer to the same call."""
    async def answer() -> tuple[str, Usage | None, str | None]:
        response = await asyncio.to_thread(invoke, llm, dict(kwargs))
        return text_of(response), _usage(response), _model(llm, response)
    return answer
