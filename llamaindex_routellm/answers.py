"""A LlamaIndex response as the escalation checks see it
(:class:`~routellm_integrations.routing.Answer`): its text, its tool calls as the backend
that wrote them parses them, the tools the call offered, and token logprobs when the
backend returned them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence, Tuple

from llama_index.core.base.llms.types import ToolCallBlock

from routellm_integrations.routing import Answer, ToolCall

__all__ = ["answer_of", "offered_tools"]


def offered_tools(tools: Optional[Sequence[Any]]) -> Optional[Dict[str, Mapping[str, Any]]]:
    """name -> JSON schema of the parameters of the tools a call offered (LlamaIndex tools,
    by their metadata; or OpenAI-format tool dicts); None: the call offered none."""
    if not tools:
        return None
    out: Dict[str, Mapping[str, Any]] = {}
    for tool in tools:
        metadata = getattr(tool, "metadata", None)
        if metadata is not None and getattr(metadata, "name", None):
            try:
                out[metadata.name] = metadata.get_parameters_dict()
            except Exception:  # noqa: BLE001 - a schema that cannot be built: the name still counts
                out[metadata.name] = {}
        elif isinstance(tool, Mapping):
            fn = tool.get("function", tool)
            if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
                out[fn["name"]] = fn.get("parameters") or {}
    return out


def _tool_calls(backend: Any, response: Any, offered: bool) -> Tuple[List[ToolCall], List[Tuple[Optional[str], str]]]:
    """The tool calls of a chat response, parsed by the backend that wrote it, and those
    it could not parse. A plain chat call's tool calls are read too (so a tool-calling
    answer is never taken for an empty one), but an error parsing them is only a
    failure when the call offered tools."""
    message = getattr(response, "message", None)
    if message is None:
        return [], []
    blocks = [b for b in (getattr(message, "blocks", None) or []) if isinstance(b, ToolCallBlock)]
    if not blocks and not (message.additional_kwargs or {}).get("tool_calls"):
        return [], []
    calls: List[ToolCall] = []
    invalid: List[Tuple[Optional[str], str]] = []
    parse = getattr(backend, "get_tool_calls_from_response", None)
    if callable(parse):
        try:
            calls = [ToolCall(s.tool_name, s.tool_kwargs)
                     for s in parse(response, error_on_no_tool_call=False) or []]
        except Exception as exc:  # noqa: BLE001 - the backend could not read its own answer
            if offered:
                invalid.append((None, f"{type(exc).__name__}: {exc}"))
    # arguments that are not JSON: some parsers read them as {} or a partial object
    for block in blocks:
        args = block.tool_kwargs
        if isinstance(args, str) and args.strip():
            try:
                json.loads(args)
            except ValueError as exc:
                invalid.append((block.tool_name, f"arguments are not valid JSON ({exc})"))
    return calls, invalid


def _logprobs(response: Any) -> Optional[List[float]]:
    """The answer's token logprobs: the sampled tokens' from the raw OpenAI response when
    it is there, else the most likely token's per position from LlamaIndex's
    ``response.logprobs``."""
    raw = getattr(response, "raw", None)
    choices = raw.get("choices") if isinstance(raw, Mapping) else getattr(raw, "choices", None)
    if choices:
        first = choices[0]
        lp = first.get("logprobs") if isinstance(first, Mapping) else getattr(first, "logprobs", None)
        content = lp.get("content") if isinstance(lp, Mapping) else getattr(lp, "content", None)
        if isinstance(content, list) and content:
            out = [t.get("logprob") if isinstance(t, Mapping) else getattr(t, "logprob", None) for t in content]
            values = [float(v) for v in out if isinstance(v, (int, float))]
            if values:
                return values
    positions = getattr(response, "logprobs", None)
    if positions:
        values = [float(p[0].logprob) for p in positions if p and isinstance(p[0].logprob, (int, float))]
        return values or None
    return None


def _finish_reason(response: Any) -> Optional[str]:
    """Why the backend stopped, from its raw response (OpenAI's ``choices[0].finish_reason``,
    Anthropic's ``stop_reason``); None when it does not say."""
    raw = getattr(response, "raw", None)
    get = raw.get if isinstance(raw, Mapping) else (lambda name, default=None: getattr(raw, name, default))
    choices = get("choices", None)
    if choices:
        first = choices[0]
        value = first.get("finish_reason") if isinstance(first, Mapping) else getattr(first, "finish_reason", None)
    else:
        value = get("stop_reason", None)
    return value if isinstance(value, str) else None


def text_only(response: Any) -> str:
    """The text of a chat or completion response (no tool calls)."""
    message = getattr(response, "message", None)
    if message is None:
        return getattr(response, "text", None) or ""
    return message.content or ""


def answer_of(response: Any, backend: Any, *, tools: Optional[Sequence[Any]] = None,
              route: Optional[str] = None, tool_required: bool = False) -> Answer:
    """The :class:`Answer` of one LlamaIndex ``ChatResponse`` / ``CompletionResponse``
    written by ``backend``; ``tools``: what the call offered (a tool name not among them
    is what ``invalid_tool_call`` flags); ``tool_required``: the call demanded a tool call
    (``chat_with_tools(..., tool_required=True)``), so an answer without one fails it."""
    offered = offered_tools(tools)
    calls, invalid = _tool_calls(backend, response, offered is not None)
    return Answer(text=text_only(response), tool_calls=calls, invalid_tool_calls=invalid, tools=offered,
                  logprobs=_logprobs(response), tool_required=bool(tool_required and offered), route=route,
                  finish_reason=_finish_reason(response))
