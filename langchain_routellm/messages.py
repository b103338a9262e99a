"""LangChain messages as the core sees them: ``[(role, text)]`` for the one turn
extraction (:func:`routellm_integrations.routing.turn_of`), and the names a backend
chat model goes by in prices and traces."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage

from routellm_integrations.routing import Turn, turn_of

__all__ = ["backend_model_name", "backend_provider", "chunk_text", "message_pairs", "message_text",
           "routing_text", "to_chunk", "turn_of_messages"]


def message_text(message: BaseMessage) -> str:
    """The text blocks of a message (images and other media carry no routing text)."""
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


def message_pairs(messages: Sequence[BaseMessage]) -> list[tuple[str, str]]:
    """``[(role, text)]`` with LangChain's message types as roles (``human``, ``ai``, ...:
    the core normalises them)."""
    return [(m.type, message_text(m)) for m in messages]


def turn_of_messages(messages: Sequence[BaseMessage], route_on: Any = "last_user", *,
                     tools: Any = None) -> Turn:
    """The core :class:`~routellm_integrations.routing.Turn` of a LangChain call; the
    bound tools' schemas count in its size (the provider bills them as input).
    ``route_on``: ``"last_user"``, ``"conversation"`` or your function of the messages
    returning the text to score."""
    extra = json.dumps(tools, default=str) if tools else ""
    if callable(route_on):
        return turn_of(message_pairs(messages), text=route_on(list(messages)), extra_input=extra)
    return turn_of(message_pairs(messages), route_on, extra_input=extra)  # type: ignore[arg-type]


def routing_text(messages: Sequence[BaseMessage], route_on: Any = "last_user") -> str:
    """The text a router scores for these messages (see :func:`turn_of_messages`)."""
    return turn_of_messages(messages, route_on).text


def chunk_text(message: BaseMessage) -> str:
    """What a message or streamed chunk delivered that the provider bills as output: its
    text and its tool calls (or their argument fragments)."""
    text = message_text(message)
    chunks = getattr(message, "tool_call_chunks", None) or []
    for tc in chunks:
        text += (tc.get("name") or "") + (tc.get("args") or "")
    if not chunks:
        for tc in getattr(message, "tool_calls", None) or []:
            text += tc.get("name", "") + json.dumps(tc.get("args", {}), default=str)
    return text


def backend_model_name(backend: BaseChatModel) -> str:
    """The model a backend calls, as price tables and LangSmith name it."""
    for attr in ("model_name", "model", "model_id", "deployment_name"):
        v = getattr(backend, attr, None)
        if isinstance(v, str) and v:
            return v
    try:
        name = backend._get_ls_params().get("ls_model_name")
    except Exception:  # noqa: BLE001 - a backend without ls params still works
        name = None
    return name or type(backend).__name__


def backend_provider(backend: BaseChatModel) -> str | None:
    try:
        return backend._get_ls_params().get("ls_provider")
    except Exception:  # noqa: BLE001
        return None


def to_chunk(message: BaseMessage) -> AIMessageChunk:
    """A whole AIMessage as one chunk (for backends that cannot stream)."""
    if isinstance(message, AIMessageChunk):
        return message
    tool_call_chunks = [{"name": tc["name"], "args": json.dumps(tc["args"]), "id": tc.get("id"), "index": i,
                         "type": "tool_call_chunk"} for i, tc in enumerate(getattr(message, "tool_calls", []) or [])]
    return AIMessageChunk(content=message.content, additional_kwargs=dict(message.additional_kwargs),
                          response_metadata=dict(message.response_metadata), id=message.id,
                          usage_metadata=getattr(message, "usage_metadata", None),
                          tool_call_chunks=tool_call_chunks)
