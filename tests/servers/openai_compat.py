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
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
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


class OpenAICompatServer:
    """Threaded HTTP server on a free localhost port; start/stop or use as a context manager."""

    def __init__(self, embedding_dim: int = 1536) -> None:
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/embeddings"): embeddings_handler(embedding_dim),
        }
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
            self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
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
            for chunk in body if isinstance(body, Iterable) else []:
                chunk = chunk.encode() if isinstance(chunk, str) else chunk
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return _Handler
