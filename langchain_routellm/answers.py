"""A LangChain answer as the escalation checks see it
(:class:`~routellm_integrations.routing.Answer`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage

from routellm_integrations.routing import Answer, ToolCall

from .messages import message_text

__all__ = ["answer_of", "offered_tools", "schema_of"]


def offered_tools(tools: Any) -> dict[str, Mapping[str, Any]] | None:
    """name -> parameters schema of the (OpenAI-format) tools a call offered; None: none."""
    if not tools:
        return None
    out: dict[str, Mapping[str, Any]] = {}
    for t in tools:
        fn = t.get("function", t) if isinstance(t, Mapping) else {}
        name = fn.get("name")
        if isinstance(name, str):
            out[name] = fn.get("parameters") or {}
    return out


def schema_of(schema: Any) -> dict[str, Any]:
    """A JSON schema for a structured-output ``schema`` (a pydantic class, a TypedDict, a
    JSON schema or an OpenAI tool/function dict); ``{}`` (any JSON) for json_mode."""
    if schema is None:
        return {}
    from langchain_core.utils.function_calling import convert_to_json_schema

    try:
        return dict(convert_to_json_schema(schema))
    except Exception:  # noqa: BLE001 - an exotic schema: still check that the answer is JSON
        return {}


def answer_of(message: BaseMessage, *, tools: Any = None, response_schema: Mapping[str, Any] | None = None,
              route: str | None = None, tool_choice: Any = None) -> Answer:
    """The :class:`Answer` of one AI message: text, tool calls (parsed and unparsable),
    the offered tools, and token logprobs when the backend returned them
    (``response_metadata["logprobs"]["content"]``, OpenAI's shape)."""
    tool_calls = [ToolCall(tc.get("name", ""), tc.get("args", {})) for tc in getattr(message, "tool_calls", None) or []]
    invalid = [(tc.get("name"), str(tc.get("error") or "arguments are not valid JSON"))
               for tc in getattr(message, "invalid_tool_calls", None) or []]
    logprobs = None
    lp = (message.response_metadata or {}).get("logprobs")
    if isinstance(lp, Mapping) and isinstance(lp.get("content"), list):
        logprobs = [float(t["logprob"]) for t in lp["content"] if isinstance(t, Mapping) and "logprob" in t]
    required = bool(tools) and tool_choice not in (None, "auto", "none", False)
    meta = message.response_metadata or {}
    finish = meta.get("finish_reason") or meta.get("stop_reason")  # OpenAI's / Anthropic's name for it
    return Answer(text=message_text(message), tool_calls=tool_calls, invalid_tool_calls=invalid,
                  tools=offered_tools(tools), response_schema=response_schema, logprobs=logprobs or None,
                  tool_required=required, route=route, finish_reason=finish if isinstance(finish, str) else None)
