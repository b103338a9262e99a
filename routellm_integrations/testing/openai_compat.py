"""A small OpenAI-wire-format server on 127.0.0.1 for tests.

Why: the OpenAI SDK, LangChain and LlamaIndex clients should be exercised over real
HTTP (headers, retries, status codes, streaming), not through mocks of their internals.
Routes live in a table (``server.routes[("POST", "/v1/embeddings")] = handler``) so other
test suites can add ``/v1/chat/completions`` (JSON or SSE via :class:`Response` with an
iterable body) without touching the transport.

    with OpenAICompatServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")
        server.fail_next(429, times=1)        # inject failures
        server.requests[-1].headers["authorization"]

``POST /v1/chat/completions`` answers from :class:`ChatScript` (shared with the Anthropic
server in ``anthropic_compat.py``): JSON or SSE streaming, tool calls, usage (in a final
chunk when ``stream_options.include_usage`` is set), stop sequences. Queue exact replies
with ``server.chat.push(Reply(...))``; ``server.chat.usage`` lists the usage it reported.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any = None


@dataclass
class Response:
    """``body`` as bytes/dict (JSON) for a normal reply, or an iterable of bytes for a
    chunked stream (e.g. SSE: yield ``b"data: {...}\\n\\n"`` then ``b"data: [DONE]\\n\\n"``)."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None  # streamed bodies: drop the connection after this many chunks
    chunk_delay_s: float = 0.0  # streamed bodies: wait this long before each chunk after the first

    @classmethod
    def error(cls, status: int, message: str, type_: str = "invalid_request_error",
              headers: dict[str, str] | None = None) -> "Response":
        return cls(status, {"error": {"message": message, "type": type_, "param": None,
                                      "code": None}}, headers or {})


Handler = Callable[[RecordedRequest], Response]


def fake_embedding(text: str, dim: int) -> np.ndarray:
    """A deterministic unit vector per text, so tests can recompute expectations."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def embeddings_handler(default_dim: int = 1536) -> Handler:
    def handle(req: RecordedRequest) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return Response.error(400, "'input' must be a non-empty string or array")
        if any(not isinstance(t, str) or t == "" for t in inputs):
            return Response.error(400, "'$.input' is invalid: strings must be non-empty")
        if len(inputs) > 2048:
            return Response.error(400, "'$.input' must have at most 2048 items")
        dim = int(body.get("dimensions") or default_dim)
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, t in enumerate(inputs):
            v = fake_embedding(t, dim)
            emb: Any = base64.b64encode(v.astype("<f4").tobytes()).decode() if b64 else v.tolist()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(max(1, len(t.split())) for t in inputs)
        return Response(200, {"object": "list", "data": data, "model": body.get("model", ""),
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
    return handle


# -- chat: a scripted model shared by the OpenAI and Anthropic wire formats ---------------

_TOKEN_RX = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """The servers' tokenizer: words and punctuation marks. Deterministic, so tests can
    recompute usage by hand."""
    return len(_TOKEN_RX.findall(text or ""))


@dataclass
class Reply:
    """What the scripted model answers next: text, tool calls, or both.

    ``tool_calls`` items are ``{"name": ..., "args": {...}}`` (an ``"id"`` is optional).
    ``input_tokens``/``output_tokens`` override the counted usage; ``cache_read_tokens``
    reports that part of the input as read from a prompt cache. ``cut_after`` (streams
    only) drops the connection after that many events, as a provider that fails mid-stream
    does: no closing event, no usage. ``delay_s`` waits that long before answering (on
    top of the script's ``delay_s`` for every answer)."""

    text: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int = 0
    cut_after: int | None = None
    delay_s: float = 0.0


@dataclass
class ChatTurn:
    """The provider-neutral view of a request that the script decides on."""

    model: str
    texts: list[str]                   # every text in the conversation, system included
    last_role: str                     # "user", "assistant" or "tool"
    last_user_text: str
    last_tool_result: str | None
    tools: list[dict[str, Any]]        # {"name", "description", "parameters"(JSON schema)}
    tool_choice: str | None            # None/"auto", "none", "required", or a tool name
    stop: list[str]
    max_tokens: int | None
    n_images: int = 0
    #: the JSON schema a ``response_format`` asks the answer to follow ({} for json_object)
    response_schema: dict[str, Any] | None = None


@dataclass
class ChatResult:
    model: str
    text: str
    tool_calls: list[dict[str, Any]]   # {"id", "name", "args"}
    input_tokens: int
    output_tokens: int
    finish: str                        # "stop", "tool_calls", "length", "stop_sequence"
    stop_sequence: str | None = None
    cache_read_tokens: int = 0
    cut_after: int | None = None
    delay_s: float = 0.0


def _example_value(schema: dict[str, Any], name: str, numbers: list[int]) -> Any:
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "string")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        return _example_value(options[0], name, numbers) if options else None
    if typ in ("integer", "number"):
        return numbers.pop(0) if numbers else 1
    if typ == "boolean":
        return True
    if typ == "array":
        return [_example_value(schema.get("items") or {"type": "string"}, name, numbers)]
    if typ == "object":
        return args_for_schema(schema, numbers)
    return f"{name} value"


def args_for_schema(schema: dict[str, Any] | None, numbers: list[int] | None = None) -> dict[str, Any]:
    """Arguments that satisfy a tool's JSON schema: every required property (all of them
    when none is marked required) with a value of its type; integers are taken, in order,
    from the numbers in the user's message, so ``add 2 and 3`` calls ``add(a=2, b=3)``."""
    schema = schema or {}
    props: dict[str, Any] = schema.get("properties") or {}
    required = schema.get("required") or list(props)
    defs = schema.get("$defs") or schema.get("definitions") or {}
    out = {}
    nums = list(numbers or [])
    for name in required:
        prop = props.get(name, {})
        ref = prop.get("$ref")
        if ref and ref.split("/")[-1] in defs:
            prop = defs[ref.split("/")[-1]]
        out[name] = _example_value(prop, name, nums)
    return out


class ChatScript:
    """A deterministic chat model behind both servers.

    Queue replies with :meth:`push` (``server.chat.push(Reply(text="hi"))``, or per model
    with ``model=``); when the queue is empty the default policy answers:

    - after a tool result: ``"The tool returned <result>."``;
    - with tools and a forced ``tool_choice`` (required/any/a name), or when the last user
      message names a tool: a call to that tool with schema-valid arguments;
    - otherwise: ``"Hello from <model>. You said: <last user text>"``.

    Every answer's usage (counted with :func:`count_tokens`) is appended to :attr:`usage`,
    so tests can compare callback totals with what the server reported.

    :attr:`responder` (optional, cleared by :meth:`reset`) answers by content: called
    with each turn that no queued reply matched, it returns a :class:`Reply` or ``None``
    (then the default policy answers), e.g. a judge that prefers a marked answer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[tuple[str | None, Reply]] = []
        self.responder: Callable[[ChatTurn], Reply | None] | None = None
        self.usage: list[dict[str, Any]] = []
        self.snapshots: dict[str, str] = {}  # request model -> model name the server answers with
        self.delay_s = 0.0  # every answer waits this long (a provider's latency)
        self.chunk_delay_s = 0.0  # streams: the wait between two events (a model writing)
        self._ids = 0

    def push(self, *replies: Reply, model: str | None = None) -> None:
        with self._lock:
            self._queue.extend((model, r) for r in replies)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.usage.clear()
            self.snapshots.clear()
            self.responder = None

    def next_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}{self._ids:06d}"

    def usage_totals(self) -> dict[str, dict[str, int]]:
        """Per answering model: input and output tokens the server reported."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for u in self.usage:
                t = out.setdefault(u["model"], {"input_tokens": 0, "output_tokens": 0, "calls": 0})
                t["input_tokens"] += u["input_tokens"]
                t["output_tokens"] += u["output_tokens"]
                t["calls"] += 1
        return out

    def _pop(self, model: str) -> Reply | None:
        with self._lock:
            for i, (m, r) in enumerate(self._queue):
                if m is None or m == model:
                    return self._queue.pop(i)[1]
        return None

    def answer(self, turn: ChatTurn) -> ChatResult:
        reply = self._pop(turn.model)
        if reply is None and self.responder is not None:
            reply = self.responder(turn)
        if reply is None:
            reply = self._default(turn)
        if self.delay_s or reply.delay_s:
            time.sleep(self.delay_s + reply.delay_s)
        text = reply.text or ""
        finish, stop_seq = "stop", None
        for s in turn.stop:
            if s and s in text:
                text, finish, stop_seq = text[: text.index(s)], "stop_sequence", s
                break
        if turn.max_tokens is not None and count_tokens(text) > turn.max_tokens:
            text = " ".join(text.split()[: max(1, turn.max_tokens // 2)])
            finish = "length"
        calls = [{"id": c.get("id") or self.next_id("call_"), "name": c["name"], "args": c.get("args", {})}
                 for c in reply.tool_calls]
        if calls and finish == "stop":
            finish = "tool_calls"
        prompt = " ".join(turn.texts) + " " + " ".join(json.dumps(t, sort_keys=True) for t in turn.tools)
        n_in = reply.input_tokens if reply.input_tokens is not None else count_tokens(prompt) + 3 * len(turn.texts) + 85 * turn.n_images
        n_out = reply.output_tokens if reply.output_tokens is not None else max(
            1, count_tokens(text) + sum(count_tokens(c["name"] + json.dumps(c["args"])) for c in calls))
        model = self.snapshots.get(turn.model, turn.model)
        with self._lock:
            self.usage.append({"model": model, "input_tokens": n_in, "output_tokens": n_out})
        return ChatResult(model, text, calls, n_in, n_out, finish, stop_seq, min(reply.cache_read_tokens, n_in),
                          reply.cut_after)

    def _default(self, turn: ChatTurn) -> Reply:
        if turn.last_role == "tool":
            return Reply(text=f"The tool returned {turn.last_tool_result}.")
        numbers = [int(x) for x in re.findall(r"-?\d+", turn.last_user_text)]
        if turn.tools and turn.tool_choice != "none":
            names = [t["name"] for t in turn.tools]
            chosen = None
            if turn.tool_choice in ("required", "any"):
                chosen = next((n for n in names if n in turn.last_user_text), names[0])
            elif turn.tool_choice and turn.tool_choice in names:
                chosen = turn.tool_choice
            else:
                chosen = next((n for n in names if n in turn.last_user_text), None)
            if chosen is not None:
                tool = next(t for t in turn.tools if t["name"] == chosen)
                return Reply(tool_calls=[{"name": chosen, "args": args_for_schema(tool.get("parameters"), numbers)}])
        if turn.response_schema is not None:  # structured output: JSON content, as providers send
            return Reply(text=json.dumps(args_for_schema(turn.response_schema, numbers)))
        said = turn.last_user_text.strip() or "(no text)"
        return Reply(text=f"Hello from {turn.model}. You said: {said}")


def _openai_text(content: Any) -> tuple[str, int]:
    if isinstance(content, str):
        return content, 0
    texts, images = [], 0
    for part in content or []:
        if isinstance(part, dict):
            if part.get("type") == "text":
                texts.append(part.get("text", ""))
            elif part.get("type") in ("image_url", "input_image", "image"):
                images += 1
    return " ".join(texts), images


def openai_turn(body: dict[str, Any]) -> ChatTurn:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty array")
    texts, last_user, last_tool, images = [], "", None, 0
    for m in messages:
        text, n_img = _openai_text(m.get("content"))
        images += n_img
        texts.append(text)
        for tc in m.get("tool_calls") or []:
            texts.append(tc.get("function", {}).get("name", "") + " " + tc.get("function", {}).get("arguments", ""))
        if m.get("role") == "user":
            last_user = text
        if m.get("role") == "tool":
            last_tool = text
    role = messages[-1].get("role")
    tools = [{"name": t["function"]["name"], "description": t["function"].get("description", ""),
              "parameters": t["function"].get("parameters") or {}}
             for t in body.get("tools") or [] if t.get("type") == "function"]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        choice = choice.get("function", {}).get("name")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else list(stop)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    fmt = body.get("response_format") if isinstance(body.get("response_format"), dict) else {}
    schema = ((fmt.get("json_schema") or {}).get("schema") or {}) if fmt.get("type") == "json_schema" else (
        {} if fmt.get("type") == "json_object" else None)
    return ChatTurn(model=str(body.get("model") or ""), texts=texts,
                    last_role="tool" if role == "tool" else ("assistant" if role == "assistant" else "user"),
                    last_user_text=last_user, last_tool_result=last_tool, tools=tools, tool_choice=choice,
                    stop=stop, max_tokens=max_tokens, n_images=images, response_schema=schema)


def _openai_usage(r: ChatResult) -> dict[str, Any]:
    return {"prompt_tokens": r.input_tokens, "completion_tokens": r.output_tokens,
            "total_tokens": r.input_tokens + r.output_tokens,
            "prompt_tokens_details": {"cached_tokens": r.cache_read_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}


def raw_usage_handler(usage_json: str, content: str = "a good answer") -> Handler:
    """A chat-completions handler whose ``usage`` is sent as ``usage_json`` verbatim, for
    reports ``json.dumps`` cannot write (``"completion_tokens": 1e400``)."""
    def handle(request: RecordedRequest) -> Response:
        body = json.dumps({
            "id": "chatcmpl-raw", "object": "chat.completion", "created": 1, "model": request.json["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": "__USAGE__"}).replace('"__USAGE__"', usage_json)
        return Response(200, body.encode(), {"content-type": "application/json"})
    return handle


def chat_completions_handler(script: ChatScript) -> Handler:
    """``POST /v1/chat/completions``: JSON, or SSE with ``"stream": true`` (usage in a final
    chunk when ``stream_options.include_usage``), text and tool calls."""

    def handle(req: RecordedRequest) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        if not body.get("model"):
            return Response.error(400, "you must provide a model parameter")
        try:
            turn = openai_turn(body)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return Response.error(400, f"invalid request: {exc}")
        r = script.answer(turn)
        cid, created = script.next_id("chatcmpl-"), 1_700_000_000
        finish = {"stop_sequence": "stop"}.get(r.finish, r.finish)
        tool_calls = [{"id": c["id"], "type": "function",
                       "function": {"name": c["name"], "arguments": json.dumps(c["args"])}} for c in r.tool_calls]
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": r.text if (r.text or not tool_calls) else None,
                                       "refusal": None}
            if tool_calls:
                message["tool_calls"] = tool_calls
            return Response(200, {"id": cid, "object": "chat.completion", "created": created, "model": r.model,
                                  "choices": [{"index": 0, "message": message, "logprobs": None,
                                               "finish_reason": finish}],
                                  "usage": _openai_usage(r), "system_fingerprint": "fp_local"})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any) -> bytes:
            data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": r.model,
                    "system_fingerprint": "fp_local",
                    "choices": [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None,
                                                          "finish_reason": finish_reason}], **extra}
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        def events() -> Iterable[bytes]:
            yield chunk({"role": "assistant", "content": "", "refusal": None})
            words = re.findall(r"\S+\s*", r.text)
            for w in words:
                yield chunk({"content": w})
            for i, tc in enumerate(tool_calls):
                yield chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function",
                                             "function": {"name": tc["function"]["name"], "arguments": ""}}]})
                args = tc["function"]["arguments"]
                half = len(args) // 2
                for piece in (args[:half], args[half:]):
                    if piece:
                        yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
            yield chunk({}, finish)
            if include_usage:
                yield chunk(None, usage=_openai_usage(r))
            yield b"data: [DONE]\n\n"

        return Response(200, events(), {"content-type": "text/event-stream"}, cut_after=r.cut_after,
                        chunk_delay_s=script.chunk_delay_s)

    return handle


class _HTTPServer(ThreadingHTTPServer):
    #: a provider takes hundreds of concurrent connections; the stdlib default (5) resets them
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a pool closing an idle keep-alive connection, a cancelled
        call, a consumer that stopped reading) is what a provider sees every day, not a
        server fault: it is not printed. Anything else is, as the stdlib prints it."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class OpenAICompatServer:
    """Threaded HTTP server on a free localhost port; start/stop or use as a context manager."""

    def __init__(self, embedding_dim: int = 1536) -> None:
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/embeddings"): embeddings_handler(embedding_dim),
        }
        self.chat = ChatScript()
        self.routes[("POST", "/v1/chat/completions")] = chat_completions_handler(self.chat)
        self.requests: list[RecordedRequest] = []
        self._failures: list[Response] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control -------------------------------------------------------------------
    def fail_next(self, status: int, times: int = 1, message: str | None = None,
                  retry_after_ms: int | None = 1) -> None:
        """The next ``times`` requests (any route) get ``status``; a tiny ``retry-after-ms``
        keeps SDK retries fast."""
        headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
        with self._lock:
            self._failures.extend(Response.error(status, message or f"injected HTTP {status}",
                                                 headers=headers) for _ in range(times))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._failures.clear()
        self.chat.reset()

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> "OpenAICompatServer":
        if self._httpd is None:
            self._httpd = _HTTPServer(("127.0.0.1", 0), _make_handler(self))
            self._httpd.daemon_threads = True
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-compat",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "OpenAICompatServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- dispatch ------------------------------------------------------------------
    def _dispatch(self, req: RecordedRequest) -> Response:
        with self._lock:
            self.requests.append(req)
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return failure
        handler = self.routes.get((req.method, req.path))
        if handler is None:
            return Response.error(404, f"no route {req.method} {req.path}", "not_found")
        return handler(req)


def _make_handler(server: OpenAICompatServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real clients expect
        disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # silence: tests assert on what clients log, not the server

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            req = RecordedRequest(self.command, self.path.split("?", 1)[0],
                                  {k.lower(): v for k, v in self.headers.items()}, raw, parsed)
            try:
                resp = server._dispatch(req)
            except Exception as exc:  # a handler bug should be a 500, not a hung client
                resp = Response.error(500, f"handler error: {exc}", "server_error")
            self._send(resp)

        do_GET = do_POST = do_DELETE = _handle

        def _send(self, resp: Response) -> None:
            body = resp.body
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                resp.headers.setdefault("content-type", "application/json")
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                self.send_header(k, v)
            if isinstance(body, (bytes, bytearray, str)):
                data = body.encode() if isinstance(body, str) else bytes(body)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_header("transfer-encoding", "chunked")  # streamed (e.g. SSE)
            self.end_headers()
            for sent, chunk in enumerate(body if isinstance(body, Iterable) else []):
                if sent and resp.chunk_delay_s:
                    time.sleep(resp.chunk_delay_s)
                if resp.cut_after is not None and sent >= resp.cut_after:  # the provider drops the stream
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                chunk = chunk.encode() if isinstance(chunk, str) else chunk
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return _Handler
