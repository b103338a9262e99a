"""Judge labelling with a LangChain app's own chat models.

``LangChainChatClient`` adapts any ``BaseChatModel`` (``ChatOpenAI``, ``ChatAnthropic``,
or a ``RoutedChat``'s ``.strong`` / ``.weak``) to the framework-free
:class:`~routellm_integrations.labels.ChatClient` protocol, so the models an app
already configured (keys, base URLs, retries) label its traffic::

    from langchain_routellm.labelling import LangChainChatClient
    from routellm_integrations.labels import label_prompts

    report = label_prompts(prompts, strong=LangChainChatClient(llm.strong),
                           weak=LangChainChatClient(llm.weak), store=LabelStore("labels.sqlite"))
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.language_models import BaseChatModel

from routellm_integrations.costs import Usage
from routellm_integrations.labels.clients import Completion

from .messages import backend_model_name, backend_provider

__all__ = ["LangChainChatClient"]


class LangChainChatClient:
    """A LangChain chat model as a labelling :class:`ChatClient`.

    ``model`` (the name used for prices, work keys and label records) is ``name`` or the
    chat model's ``model_name``/``model``; ``provider`` is its LangSmith ``ls_provider``.
    Usage comes from the answer's ``usage_metadata``; the answering model's name from its
    ``response_metadata`` (``model_name`` or ``model``).

    ``threaded=True`` calls the model's sync ``invoke`` in a worker thread instead of
    ``ainvoke``: for use on an event loop other than the app's (shadow sampling), since a
    LangChain async client belongs to the loop it was first used on."""

    def __init__(self, model: BaseChatModel, name: str | None = None, *, threaded: bool = False) -> None:
        if not isinstance(model, BaseChatModel):
            raise TypeError(f"LangChainChatClient needs a LangChain BaseChatModel, got {type(model).__name__}")
        self.chat_model = model
        self.model: str = name or backend_model_name(model)
        self.provider: str | None = backend_provider(model)
        self.threaded = bool(threaded)

    def __repr__(self) -> str:  # never the chat model's own repr: keep configuration (and keys) out of logs
        return f"LangChainChatClient(model={self.model!r}, provider={self.provider!r}, " \
               f"chat_model={type(self.chat_model).__name__})"

    async def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> Completion:
        if self.threaded:
            msg = await asyncio.to_thread(self.chat_model.invoke, messages, max_tokens=max_tokens)
        else:
            msg = await self.chat_model.ainvoke(messages, max_tokens=max_tokens)
        return completion_of(msg, self.model)


def completion_of(msg: Any, default_model: str) -> Completion:
    """An AIMessage as a :class:`Completion`: text, usage and the model that answered."""
    meta: dict[str, Any] = dict(getattr(msg, "response_metadata", None) or {})
    answered = meta.get("model_name") or meta.get("model")
    usage = Usage.from_dict(getattr(msg, "usage_metadata", None) or None)
    return Completion(text=_text(msg.content), usage=usage,
                      model=answered if isinstance(answered, str) and answered else default_model)


def _text(content: Any) -> str:
    """A message's text: the string, or its text blocks joined (Anthropic, reasoning models)."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)
