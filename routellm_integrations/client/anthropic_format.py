"""OpenAI chat requests as Anthropic Messages requests, and Anthropic replies (whole or
streamed) as OpenAI ``chat.completion`` / ``chat.completion.chunk`` objects. Pure
functions on dicts: no SDK, no I/O.

What maps:

- ``system``/``developer`` messages -> ``system``; ``user``/``assistant`` -> messages
  (consecutive messages of one role are merged); assistant ``tool_calls`` -> ``tool_use``
  blocks; ``tool`` messages -> ``tool_result`` blocks in a user message; image parts
  (``image_url``, as URL or ``data:`` URL) -> image blocks.
- ``tools`` -> tool definitions (``input_schema``); ``tool_choice`` ``auto``/``required``/
  ``none``/a function -> ``auto``/``any``/``none``/``tool``; ``parallel_tool_calls=False``
  -> ``disable_parallel_tool_use``.
- ``response_format`` ``json_schema`` -> a forced tool whose input is the answer (sent back
  as the message's JSON content); ``json_object`` -> an instruction in ``system``.
- ``max_tokens``/``max_completion_tokens`` (else a default), ``stop``, ``temperature``
  (capped at 1, Anthropic's maximum), ``top_p``, ``user`` (-> ``metadata.user_id``).
- ``n`` other than 1 is refused (:class:`UnsupportedParameterError`); OpenAI-only
  sampling and logging parameters (``seed``, ``frequency_penalty``, ``presence_penalty``,
  ``logit_bias``, ``logprobs``, ``store``, ...) are dropped.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .errors import BackendError, UnsupportedParameterError

__all__ = ["StreamTranslator", "from_message", "openai_usage", "to_messages_request"]

_FORMAT_TOOL_DEFAULT = "json_response"
_JSON_OBJECT_INSTRUCTION = "Answer with a single JSON object and nothing else."
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
           "tool_use": "tool_calls", "refusal": "content_filter", "model_context_window_exceeded": "length"}


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("text", None))


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise UnsupportedParameterError("an image_url part needs a url", "messages")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[len("data:"):].split(";", 1)[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise UnsupportedParameterError(f"message content must be a string or a list of parts, got "
                                        f"{type(content).__name__}", "messages")
    out: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            if part:
                out.append({"type": "text", "text": part})
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                out.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            out.append(_image_block(part))
        else:
            raise UnsupportedParameterError(f"message parts of type {kind!r} cannot be sent to an Anthropic backend",
                                            "messages")
    return out


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    raw = fn.get("arguments") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise UnsupportedParameterError(f"tool call {call.get('id')!r} has arguments that are not JSON",
                                        "messages") from None
    if not isinstance(args, dict):
        args = {"value": args}
    return {"type": "tool_use", "id": call.get("id") or "", "name": fn.get("name") or "", "input": args}


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return
    if out and out[-1]["role"] == role:
        previous = out[-1]["content"]
        if role == "user" and blocks[0]["type"] == "tool_result":  # results come first in a user turn
            first_other = next((i for i, b in enumerate(previous) if b["type"] != "tool_result"), len(previous))
            previous[first_other:first_other] = blocks
        else:
            previous.extend(blocks)
        return
    out.append({"role": role, "content": list(blocks)})


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice is None:
        out = None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise UnsupportedParameterError(f"tool_choice {choice!r} is not 'auto', 'required', 'none' or a function",
                                        "tool_choice")
    if parallel is False:
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return out


def to_messages_request(body: dict[str, Any], model: str, *, default_max_tokens: int = 4096
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(messages_request, meta)`` for an OpenAI chat request; ``meta`` says how to read
    the reply back (``format_tool``: the tool that carries a ``response_format`` answer)."""
    n = body.get("n")
    if n not in (None, 1):
        raise UnsupportedParameterError(f"n={n!r}: an Anthropic backend answers one choice per call", "n")
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for m in body.get("messages") or []:
        role = m.get("role")
        if role in ("system", "developer"):
            text = _text_of(m.get("content"))
            if text:
                system.append(text)
        elif role == "user":
            _append(messages, "user", _blocks(m.get("content")))
        elif role == "assistant":
            blocks = _blocks(m.get("content")) + [_tool_use(c) for c in m.get("tool_calls") or []]
            _append(messages, "assistant", blocks)
        elif role in ("tool", "function"):
            result = {"type": "tool_result", "tool_use_id": m.get("tool_call_id") or m.get("name") or "",
                      "content": _text_of(m.get("content"))}
            _append(messages, "user", [result])
        else:
            raise UnsupportedParameterError(f"message role {role!r} is not system, developer, user, assistant or "
                                            "tool", "messages")
    tools = []
    for t in body.get("tools") or []:
        if t.get("type", "function") != "function":
            raise UnsupportedParameterError(f"tools of type {t.get('type')!r} cannot be sent to an Anthropic backend",
                                            "tools")
        fn = t.get("function") or {}
        tool = {"name": fn.get("name"), "input_schema": fn.get("parameters") or {"type": "object", "properties": {}}}
        if fn.get("description"):
            tool["description"] = fn["description"]
        tools.append(tool)
    request: dict[str, Any] = {"model": model, "messages": messages}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    request["max_tokens"] = int(max_tokens)
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    meta: dict[str, Any] = {"format_tool": None}
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        if tools:
            raise UnsupportedParameterError("response_format json_schema together with tools cannot be sent to an "
                                            "Anthropic backend", "response_format")
        spec = fmt.get("json_schema") or {}
        name = spec.get("name") or _FORMAT_TOOL_DEFAULT
        tool = {"name": name, "input_schema": spec.get("schema") or {"type": "object"},
                "description": spec.get("description") or "Give the answer in this format."}
        tools, choice, meta["format_tool"] = [tool], {"type": "tool", "name": name}, name
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        system.append(_JSON_OBJECT_INSTRUCTION)
    if tools:
        request["tools"] = tools
    if choice is not None:
        request["tool_choice"] = choice
    if system:
        request["system"] = "\n\n".join(system)
    stop = body.get("stop")
    if stop:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("temperature") is not None:
        request["temperature"] = min(float(body["temperature"]), 1.0)
    if body.get("top_p") is not None:
        request["top_p"] = body["top_p"]
    if body.get("user"):
        request["metadata"] = {"user_id": str(body["user"])}
    return request, meta


def openai_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Anthropic usage as OpenAI's: prompt tokens include cache reads and writes."""
    if not usage:
        return None
    read = int(usage.get("cache_read_input_tokens") or 0)
    write = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + read + write
    completion = int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": read}}


def _finish(stop_reason: str | None, meta: dict[str, Any], saw_tools: bool) -> str | None:
    if stop_reason is None:
        return None
    if stop_reason == "tool_use" and (meta.get("format_tool") and not saw_tools):
        return "stop"
    return _FINISH.get(stop_reason, "stop")


def from_message(msg: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic ``message`` as an OpenAI ``chat.completion``."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in msg.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            if meta.get("format_tool") and block.get("name") == meta["format_tool"]:
                texts.append(json.dumps(block.get("input", {})))
            else:
                calls.append({"id": block.get("id"), "type": "function",
                              "function": {"name": block.get("name"), "arguments": json.dumps(block.get("input", {}))}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None,
                               "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {"id": f"chatcmpl-{msg.get('id', '')}", "object": "chat.completion", "created": int(time.time()),
            "model": msg.get("model"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _finish(msg.get("stop_reason"), meta, bool(calls))}],
            "usage": openai_usage(msg.get("usage"))}


class StreamTranslator:
    """Anthropic stream events in, OpenAI ``chat.completion.chunk`` dicts out.

    ``usage`` is the Anthropic usage seen so far (``message_start`` then ``message_delta``);
    ``done`` says ``message_stop`` arrived."""

    def __init__(self, meta: dict[str, Any], *, include_usage: bool) -> None:
        self.meta = meta
        self.include_usage = include_usage
        self.usage: dict[str, Any] = {}
        self.model: str | None = None
        self.id = "chatcmpl-"
        self.created = int(time.time())
        self.done = False
        self._blocks: dict[int, tuple[str, int]] = {}  # anthropic block index -> (kind, openai tool index)
        self._tools = 0

    def _chunk(self, delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": choices, **extra}

    def feed(self, event: str | None, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type") or event
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = f"chatcmpl-{message.get('id', '')}"
            self.model = message.get("model")
            self.usage.update({k: v for k, v in (message.get("usage") or {}).items() if v is not None})
            return [self._chunk({"role": "assistant", "content": "", "refusal": None})]
        if kind == "content_block_start":
            block, index = data.get("content_block") or {}, int(data.get("index", 0))
            if block.get("type") == "text":
                self._blocks[index] = ("text", -1)
                return [self._chunk({"content": block["text"]})] if block.get("text") else []
            if block.get("type") == "tool_use":
                if self.meta.get("format_tool") and block.get("name") == self.meta["format_tool"]:
                    self._blocks[index] = ("format", -1)
                    return []
                k = self._tools
                self._tools += 1
                self._blocks[index] = ("tool", k)
                return [self._chunk({"tool_calls": [{"index": k, "id": block.get("id"), "type": "function",
                                                     "function": {"name": block.get("name"), "arguments": ""}}]})]
            self._blocks[index] = ("other", -1)
            return []
        if kind == "content_block_delta":
            delta, index = data.get("delta") or {}, int(data.get("index", 0))
            block_kind, k = self._blocks.get(index, ("text", -1))
            if delta.get("type") == "text_delta" and block_kind == "text":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                piece = delta.get("partial_json", "")
                if block_kind == "format":
                    return [self._chunk({"content": piece})] if piece else []
                if block_kind == "tool" and piece:
                    return [self._chunk({"tool_calls": [{"index": k, "function": {"arguments": piece}}]})]
            return []
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            finish = _finish((data.get("delta") or {}).get("stop_reason"), self.meta, self._tools > 0)
            return [self._chunk({}, finish)] if finish else []
        if kind == "message_stop":
            self.done = True
            if self.include_usage:
                return [self._chunk(None, usage=openai_usage(self.usage))]
            return []
        if kind == "error":
            err = data.get("error") or {}
            raise BackendError(f"the Anthropic stream reported {err.get('type', 'an error')}: "
                               f"{err.get('message', '')}", kind="api_error")
        return []  # ping, content_block_stop, unknown events
