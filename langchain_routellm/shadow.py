"""LangChain side of shadow sampling: the other backend's answer, on the sampler's worker.

The other backend runs through its *sync* ``invoke`` in a thread: a LangChain async
client belongs to the event loop it was first used on, and the worker's loop is not the
application's (the default judge does the same: ``LangChainChatClient(threaded=True)``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from routellm_integrations.costs import Usage

from .labelling import completion_of
from .messages import backend_model_name


def other_answer(model: BaseChatModel, messages: list[BaseMessage]) -> Any:
    """What the sampler awaits for the other backend's answer to the same messages."""
    async def answer() -> tuple[str, Usage | None, str | None]:
        reply = await asyncio.to_thread(model.invoke, list(messages))
        done = completion_of(reply, backend_model_name(model))
        return done.text, done.usage, done.model
    return answer
