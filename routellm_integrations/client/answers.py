"""What an escalation check sees of an OpenAI-format answer (whole or streamed).

:func:`completion_answer` reads a ``chat.completion``, :func:`stream_answer` the
``chat.completion.chunk`` objects of a stream (tool-call fragments joined by index); both
take the request body for what the answer must meet: the offered ``tools`` (name ->
parameters schema) and the ``response_format`` (``json_schema`` -> its schema,
``json_object`` -> any JSON). Only the first choice is reviewed (``n > 1``: choice 0).
Anthropic backends answer in the same format (:mod:`.anthropic_format`), so one reader
serves both. Token logprobs (``choices[0].logprobs.content[*].logprob``) are passed on
when the backend returned them (ask with ``logprobs: true``) for
:func:`~routellm_integrations.routing.escalation.low_confidence`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..routing.escalation import Answer, ToolCall, check_schema_bounds, response_schema

__all__ = ["check_request_schemas", "completion_answer", "request_tools", "response_schema", "stream_answer"]


def check_request_schemas(request: Mapping[str, Any]) -> None:
    """Refuse, before the call is made, a request whose schemas an escalation check could
    not validate in bounded time (:func:`~..routing.escalation.check_schema_bounds`): the
    ``response_format`` schema and each function tool's ``parameters``. Raises
    :class:`~routellm_integrations.errors.UnsafeSchemaError` naming the schema and the
    problem (a 400 from the server). The checks themselves refuse such a schema too, at
    review time, so calling this early only saves the backend call."""
    schema = response_schema(request)
    if schema:
        check_schema_bounds(schema, "response_format schema")
    for name, params in (request_tools(request) or {}).items():
        if params:
            check_schema_bounds(params, f"parameters schema of tool {name!r}")


def request_tools(request: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The function tools a request offers, name -> JSON schema of the parameters (None:
    no tools, or a tool that is not a function, e.g. a provider's built-in one, whose
    calls we could not judge)."""
    tools = request.get("tools")
    if not isinstance(tools, list) or not tools:
        return None
    out: dict[str, dict[str, Any]] = {}
    for tool in tools:
        if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
            return None
        fn = tool.get("function")
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            return None
        params = fn.get("parameters")
        out[fn["name"]] = dict(params) if isinstance(params, Mapping) else {}
    return out


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, Mapping) and p.get("type") in ("text", "output_text")
                       and isinstance(p.get("text"), str))
    return ""


def _logprobs(logprobs: Any) -> list[float]:
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    out = []
    for item in content or ():
        value = item.get("logprob") if isinstance(item, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(float(value))
    return out


def _answer(text: str, calls: Iterable[tuple[Any, Any]], request: Mapping[str, Any], logprobs: list[float],
            route: str | None, finish_reason: Any = None) -> Answer:
    tool_calls, invalid = [], []
    for name, arguments in calls:
        if not isinstance(name, str) or not name:
            invalid.append((None, "the tool call names no function"))
        else:
            tool_calls.append(ToolCall(name, arguments if arguments is not None else ""))
    return Answer(text=text, tool_calls=tool_calls, invalid_tool_calls=invalid, tools=request_tools(request),
                  response_schema=response_schema(request), logprobs=logprobs or None, route=route,
                  finish_reason=finish_reason if isinstance(finish_reason, str) else None)


def _first_choice(choices: Any) -> Mapping[str, Any]:
    for choice in choices or ():
        if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
            return choice
    return {}


def completion_answer(completion: Mapping[str, Any], request: Mapping[str, Any],
                      route: str | None = None) -> Answer:
    """The :class:`Answer` of a whole ``chat.completion`` (its first choice)."""
    choice = _first_choice(completion.get("choices"))
    message = choice.get("message") if isinstance(choice.get("message"), Mapping) else {}
    text = _content_text(message.get("content"))
    if not text and isinstance(message.get("refusal"), str):  # OpenAI's structured-output refusal
        text = message["refusal"]
    calls = []
    for call in message.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, Mapping) else None
        fn = fn if isinstance(fn, Mapping) else {}
        calls.append((fn.get("name"), fn.get("arguments")))
    return _answer(text, calls, request, _logprobs(choice.get("logprobs")), route, choice.get("finish_reason"))


def stream_answer(chunks: Iterable[Mapping[str, Any]], request: Mapping[str, Any],
                  route: str | None = None) -> Answer:
    """The :class:`Answer` a stream's chunks add up to (choice 0; tool-call fragments
    joined by their ``index``)."""
    text: list[str] = []
    refusal: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    logprobs: list[float] = []
    finish = None
    for chunk in chunks:
        choice = _first_choice(chunk.get("choices"))
        finish = choice.get("finish_reason") or finish
        delta = choice.get("delta") if isinstance(choice.get("delta"), Mapping) else {}
        if isinstance(delta.get("content"), str):
            text.append(delta["content"])
        elif isinstance(delta.get("content"), list):
            text.append(_content_text(delta["content"]))
        if isinstance(delta.get("refusal"), str):
            refusal.append(delta["refusal"])
        for call in delta.get("tool_calls") or ():
            if not isinstance(call, Mapping):
                continue
            index = call.get("index", len(calls))
            slot = calls.setdefault(index if isinstance(index, int) else len(calls), {"name": None, "args": []})
            fn = call.get("function") if isinstance(call.get("function"), Mapping) else {}
            if isinstance(fn.get("name"), str) and fn["name"] and not slot["name"]:
                slot["name"] = fn["name"]
            if isinstance(fn.get("arguments"), str):
                slot["args"].append(fn["arguments"])
        logprobs.extend(_logprobs(choice.get("logprobs")))
    answer_text = "".join(text) or "".join(refusal)
    joined = [(slot["name"], "".join(slot["args"])) for _, slot in sorted(calls.items())]
    return _answer(answer_text, joined, request, logprobs, route, finish)
