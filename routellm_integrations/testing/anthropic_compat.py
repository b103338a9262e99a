"""A small Anthropic-messages-wire-format server on 127.0.0.1 for tests.

``POST /v1/messages`` answers from the same :class:`~servers.openai_compat.ChatScript`
as the OpenAI server: JSON, or SSE with ``"stream": true`` (``message_start``,
``content_block_start/delta/stop`` with ``text_delta`` and ``input_json_delta``,
``message_delta`` carrying the stop reason and the usage, ``message_stop``), ``tool_use``
blocks, ``tool_result`` inputs, ``stop_sequences`` and usage including cache reads.

    with AnthropicCompatServer() as server:
        client = anthropic.Anthropic(base_url=server.base_url, api_key="sk-ant-test")
        server.chat.push(Reply(tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}}]))
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from .openai_compat import ChatResult, ChatScript, ChatTurn, OpenAICompatServer, RecordedRequest, Response


def anthropic_error(status: int, message: str, type_: str = "invalid_request_error") -> Response:
    return Response(status, {"type": "error", "error": {"type": type_, "message": message}})


def _blocks_text(content: Any) -> tuple[str, int, list[str], str | None]:
    """(text, images, tool-use texts, tool_result text) of one message's content."""
    if isinstance(content, str):
        return content, 0, [], None
    texts, images, uses, result = [], 0, [], None
    for block in content or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind in ("image", "document"):
            images += 1
        elif kind == "tool_use":
            uses.append(block.get("name", "") + " " + json.dumps(block.get("input", {})))
        elif kind == "tool_result":
            inner = block.get("content")
            result = inner if isinstance(inner, str) else " ".join(
                b.get("text", "") for b in inner or [] if isinstance(b, dict) and b.get("type") == "text")
    return " ".join(texts), images, uses, result


def anthropic_turn(body: dict[str, Any]) -> ChatTurn:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages: at least one message is required")
    if not isinstance(body.get("max_tokens"), int):
        raise ValueError("max_tokens: Field required")
    system = body.get("system") or ""
    if isinstance(system, list):
        system = " ".join(b.get("text", "") for b in system if isinstance(b, dict))
    texts = [system] if system else []
    last_user, last_tool, images, last_role = "", None, 0, "user"
    for m in messages:
        if m.get("role") not in ("user", "assistant"):
            raise ValueError(f"messages: unexpected role {m.get('role')!r}")
        text, n_img, uses, result = _blocks_text(m.get("content"))
        images += n_img
        texts.append(text)
        texts.extend(uses)
        if result is not None:
            texts.append(result)
        if m["role"] == "user":
            if result is not None:
                last_tool, last_role = result, "tool"
            else:
                last_user, last_role = text, "user"
        else:
            last_role = "assistant"
    tools = [{"name": t["name"], "description": t.get("description", ""), "parameters": t.get("input_schema") or {}}
             for t in body.get("tools") or [] if "input_schema" in t]
    choice = body.get("tool_choice") or {}
    kind = choice.get("type")
    tool_choice = {"any": "required", "tool": choice.get("name"), "none": "none"}.get(kind) if kind else None
    return ChatTurn(model=str(body.get("model") or ""), texts=texts, last_role=last_role,
                    last_user_text=last_user, last_tool_result=last_tool, tools=tools,
                    tool_choice=tool_choice, stop=list(body.get("stop_sequences") or []),
                    max_tokens=body["max_tokens"], n_images=images)


def _usage(r: ChatResult) -> dict[str, Any]:
    # Anthropic's input_tokens excludes cached tokens
    return {"input_tokens": r.input_tokens - r.cache_read_tokens, "output_tokens": r.output_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": r.cache_read_tokens}


def _stop_reason(r: ChatResult) -> str:
    return {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens",
            "stop_sequence": "stop_sequence"}[r.finish]


def messages_handler(script: ChatScript):  # type: ignore[no-untyped-def]
    def handle(req: RecordedRequest) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        if not body.get("model"):
            return anthropic_error(400, "model: Field required")
        try:
            turn = anthropic_turn(body)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return anthropic_error(400, str(exc))
        r = script.answer(turn)
        mid = script.next_id("msg_")
        content: list[dict[str, Any]] = []
        if r.text:
            content.append({"type": "text", "text": r.text})
        for c in r.tool_calls:
            content.append({"type": "tool_use", "id": c["id"].replace("call_", "toolu_"), "name": c["name"],
                            "input": c["args"]})
        if not body.get("stream"):
            return Response(200, {"id": mid, "type": "message", "role": "assistant", "model": r.model,
                                  "content": content, "stop_reason": _stop_reason(r),
                                  "stop_sequence": r.stop_sequence, "usage": _usage(r)})

        def event(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

        def events() -> Iterable[bytes]:
            start_usage = {**_usage(r), "output_tokens": 1}
            yield event("message_start", {"message": {"id": mid, "type": "message", "role": "assistant",
                                                      "model": r.model, "content": [], "stop_reason": None,
                                                      "stop_sequence": None, "usage": start_usage}})
            yield event("ping", {})
            for i, block in enumerate(content):
                if block["type"] == "text":
                    yield event("content_block_start", {"index": i, "content_block": {"type": "text", "text": ""}})
                    for w in re.findall(r"\S+\s*", block["text"]):
                        yield event("content_block_delta", {"index": i, "delta": {"type": "text_delta", "text": w}})
                else:
                    yield event("content_block_start", {"index": i, "content_block": {
                        "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})
                    args = json.dumps(block["input"])
                    half = len(args) // 2
                    for piece in (args[:half], args[half:]):
                        if piece:
                            yield event("content_block_delta", {"index": i, "delta": {
                                "type": "input_json_delta", "partial_json": piece}})
                yield event("content_block_stop", {"index": i})
            yield event("message_delta", {"delta": {"stop_reason": _stop_reason(r), "stop_sequence": r.stop_sequence},
                                          "usage": _usage(r)})
            yield event("message_stop", {})

        return Response(200, events(), {"content-type": "text/event-stream"}, cut_after=r.cut_after,
                        chunk_delay_s=script.chunk_delay_s)

    return handle


class AnthropicCompatServer(OpenAICompatServer):
    """Threaded Anthropic-format server on a free localhost port. ``base_url`` is the root
    (the Anthropic SDK appends ``/v1/messages``)."""

    def __init__(self) -> None:
        super().__init__()
        self.routes = {("POST", "/v1/messages"): messages_handler(self.chat)}

    @property
    def base_url(self) -> str:
        return self.url

    def fail_next(self, status: int, times: int = 1, message: str | None = None,
                  retry_after_ms: int | None = 1) -> None:
        headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
        with self._lock:
            for _ in range(times):
                resp = anthropic_error(status, message or f"injected HTTP {status}",
                                       "rate_limit_error" if status == 429 else "api_error")
                resp.headers.update(headers)
                self._failures.append(resp)
