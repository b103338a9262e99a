"""The routing server's HTTP surface against hostile or careless clients, over real HTTP
(our server in a thread, the local OpenAI/Anthropic-format servers as backends): body
caps, request validation before any provider call, what a dollar cap cannot bound,
provider errors answered as a provider would, budget refusals a client can act on,
tenancy of usage and metrics, and OpenAI-format errors for every path."""

from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest
from srv_helpers import (
    CLIENT_KEY,
    OPENAI_SECRET,
    OTHER_KEY,
    assert_no_secret,
    wait_until,
)

from routellm_integrations.testing.openai_compat import (
    Response,
    chat_completions_handler,
)

HI = [{"role": "user", "content": "hello there"}]
ADMIN_KEY = "rk-admin-ops-777888999"
METRICS_KEY = "rk-metrics-scraper-123123"
CHAT = ("POST", "/v1/chat/completions")


def _error(resp: httpx.Response) -> dict:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def _raw_http(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send ``head`` (and ``body``, never finishing it when the head promises more) and
    read what the server answers; a server that waits for the rest of the body never
    answers, and the socket's timeout fails the test."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _parse(data: bytes) -> tuple[int, dict]:
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def _deep(levels: int) -> str:
    """A placeholder :func:`_dumps` writes as objects nested ``levels`` deep (deeper than
    Python's json encoder can write)."""
    return f"__DEEP_{levels}__"


def _dumps(body: dict) -> bytes:
    text = json.dumps(body)
    for levels in (253, 1000):
        text = text.replace(f'"{_deep(levels)}"', '{"a": ' * levels + "1" + "}" * levels)
    return text.encode()


def _post_json(server, body: dict) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.post(server.url + "/v1/chat/completions", content=_dumps(body), timeout=30,
                      headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})


# -- 1. the body cap -------------------------------------------------------------------------

def test_a_body_over_the_cap_is_a_413_refused_before_it_is_read(serve, openai_server) -> None:
    server = serve(max_body_bytes=4096)
    auth = f"authorization: Bearer {CLIENT_KEY}\r\n".encode()
    # a Content-Length of 50 MB, and not one byte of it sent: answered from the header
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" + auth +
            b"content-length: 50000000\r\n\r\n")
    status, body = _parse(_raw_http(server.port, head))
    assert status == 413 and body["error"]["code"] == "request_too_large" and "4096" in body["error"]["message"]
    # chunked (no length): refused once the bytes streamed pass the cap, the body never finished
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" + auth +
            b"transfer-encoding: chunked\r\n\r\n")
    chunk = b'{"model": "router-random-0.0", "pad": "' + b"x" * 6000
    status, body = _parse(_raw_http(server.port, head, b"%x\r\n" % len(chunk) + chunk + b"\r\n"))
    assert status == 413 and body["error"]["code"] == "request_too_large"
    # a whole body over the cap, from an ordinary client
    resp = server.post("/v1/chat/completions", {"model": "router-random-0.0",
                                                "messages": [{"role": "user", "content": "y" * 8000}]})
    assert resp.status_code == 413 and _error(resp)["type"] == "invalid_request_error"
    # under the cap: served; no oversized request ever reached the provider
    assert server.post("/v1/chat/completions", {"model": "router-random-0.0", "messages": HI}).status_code == 200
    assert len(openai_server.requests_to("/v1/chat/completions")) == 1
    metrics = server.get("/metrics").text
    assert 'routellm_requests_total{endpoint="/v1/chat/completions",status="413"} 3.0' in metrics


def test_the_body_cap_is_a_flag_of_routellm_serve() -> None:
    import argparse

    from routellm_integrations.cli.serve import (
        SERVE_HELP,
        add_serve_parser,
        config_from_args,
    )
    from routellm_integrations.server.config import ServerConfig

    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    args = parser.parse_args(["serve", "--max-body-bytes", "65536"])
    assert config_from_args(args).max_body_bytes == 65536
    assert ServerConfig().max_body_bytes == 4 * 1024 * 1024 and SERVE_HELP


# -- 2. validation before any provider call ----------------------------------------------------

BAD = [
    ({"stream_options": "yes"}, "stream_options"),
    ({"stream": "true"}, "stream"),
    ({"n": "2"}, "n"),
    ({"temperature": 7}, "temperature"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_completion_tokens": -5}, "max_completion_tokens"),
    ({"tool_choice": "maybe"}, "tool_choice"),
    ({"response_format": {"type": "json_schema"}}, "response_format"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "not an object"}}]},
     "tools[0].function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": _deep(253)}}]},
     "tools[0].function.parameters"),
    ({"deep_unknown_field": _deep(1000)}, "deep_unknown_field"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
    ({"messages": [{"role": "user", "content": 42}]}, "messages[0].content"),
]


@pytest.mark.parametrize("stream", [False, True])
def test_a_bad_request_is_a_400_naming_the_field_and_calls_no_provider(serve, openai_server, anthropic_server,
                                                                       stream: bool) -> None:
    server = serve()
    for change, param in BAD:
        body = {"model": "router-random-0.0", "messages": HI, **({"stream": True} if stream else {}), **change}
        resp = _post_json(server, body)
        assert resp.status_code == 400, (change, resp.status_code, resp.text[:300])
        err = _error(resp)
        assert err["param"] is not None and err["param"].startswith(param), (param, err)
        assert err["type"] == "invalid_request_error"
    # no provider was called, so the ledger has no row for any of them (not even "failed")
    assert not openai_server.requests_to("/v1/chat/completions") and not anthropic_server.requests
    usage = server.get("/v1/routing/usage").json()["total"]
    assert usage["calls"] == 0 and usage["failed_calls"] == 0


def test_unknown_top_level_fields_pass_through(serve, openai_server) -> None:
    server = serve()
    body = {"model": "router-random-0.0", "messages": HI, "metadata": {"team": "a"}, "store": False,
            "service_tier": "auto", "stream_options": None}
    assert server.post("/v1/chat/completions", body).status_code == 200
    sent = openai_server.requests_to("/v1/chat/completions")[-1].json
    assert sent["metadata"] == {"team": "a"} and sent["store"] is False and sent["service_tier"] == "auto"


# -- 3. what a dollar cap cannot bound ---------------------------------------------------------

def test_n_and_image_parts_are_refused_under_a_dollar_cap(serve, openai_server) -> None:
    server = serve(keys=[{"label": "alice", "key": CLIENT_KEY, "budget": {"max_usd": 5.0}},
                         {"label": "bob", "key": OTHER_KEY}])
    image = [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                          {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]
    resp = server.post("/v1/chat/completions", {"model": "router-random-0.0", "messages": HI, "n": 3})
    assert resp.status_code == 400 and _error(resp)["param"] == "n" and "one choice" in _error(resp)["message"]
    resp = server.post("/v1/chat/completions", {"model": "router-random-0.0", "messages": image, "stream": True})
    assert resp.status_code == 400 and _error(resp)["param"] == "messages[0].content[1]"
    assert _error(resp)["code"] == "unsupported_under_budget"
    assert not openai_server.requests_to("/v1/chat/completions")
    # without a dollar cap both pass through
    assert server.post("/v1/chat/completions", {"model": "router-random-0.0", "messages": HI, "n": 2},
                       key=OTHER_KEY).status_code == 200
    assert openai_server.requests_to("/v1/chat/completions")[-1].json["n"] == 2


# -- 4. provider errors as a provider answers them; budget refusals a client can act on ------------

def test_provider_errors_are_answered_like_a_provider(serve, openai_server) -> None:
    server = serve(providers={"openai": {"max_retries": 0, "timeout_s": 1.0}})
    release = threading.Event()
    answers: list = []

    def fail(req):  # type: ignore[no-untyped-def]
        kind = answers[0]
        if kind == "hang":
            release.wait(30)
            return Response.error(500, "too late")
        secret = req.headers["authorization"][7:]
        if kind == 429:
            return Response.error(429, f"Rate limit reached for key {secret}", "requests", {"retry-after": "7"})
        if kind == 400:
            return Response(400, {"error": {"message": f"Invalid 'logit_bias' (key {secret})",
                                            "type": "invalid_request_error", "param": "logit_bias", "code": None}})
        return Response.error(kind, f"overloaded ({secret})", "server_error")

    openai_server.routes[CHAT] = fail
    seen = []
    try:
        for stream in (False, True):
            body = {"model": "router-random-0.0", "messages": HI, "stream": stream}
            answers[:] = [429]
            resp = server.post("/v1/chat/completions", body)
            assert resp.status_code == 429 and _error(resp)["code"] == "rate_limit_exceeded"
            assert resp.headers["retry-after"] == "7" and resp.headers.get("x-should-retry") != "false"
            answers[:] = [400]
            resp = server.post("/v1/chat/completions", body)
            assert resp.status_code == 400 and "Invalid 'logit_bias'" in _error(resp)["message"]
            assert _error(resp)["param"] == "logit_bias"
            answers[:] = [503]
            resp = server.post("/v1/chat/completions", body)
            assert resp.status_code == 502 and "HTTP 503" in _error(resp)["message"]
            seen += [resp]
        answers[:] = ["hang"]
        resp = server.post("/v1/chat/completions", {"model": "router-random-0.0", "messages": HI})
        release.set()
        assert resp.status_code == 504 and _error(resp)["code"] == "backend_timeout"
        seen += [resp]
    finally:
        release.set()
        openai_server.routes[CHAT] = chat_completions_handler(openai_server.chat)
    for resp in seen:
        assert_no_secret(resp.text, dict(resp.headers))
    assert any(OPENAI_SECRET in r.headers.get("authorization", "") for r in openai_server.requests)


def test_a_budget_held_by_calls_in_flight_is_retryable_an_exhausted_one_is_not(serve, openai_server) -> None:
    # one gpt-4o call reserves ~$0.04 (4096 output tokens at $10/1M): alice's $0.03 holds one at a time
    server = serve(keys=[{"label": "alice", "key": CLIENT_KEY, "budget": {"max_usd": 0.03, "on_exhausted": "raise"}},
                         {"label": "bob", "key": OTHER_KEY, "budget": {"max_usd": 1e-6, "on_exhausted": "raise"}}])
    gate = threading.Event()
    inner = chat_completions_handler(openai_server.chat)

    def held(req):  # type: ignore[no-untyped-def]
        gate.wait(30)
        return inner(req)

    openai_server.routes[CHAT] = held
    first: list[httpx.Response] = []
    body = {"model": "router-random-0.0", "messages": HI}
    thread = threading.Thread(target=lambda: first.append(server.post("/v1/chat/completions", body)))
    thread.start()
    try:
        wait_until(lambda: openai_server.requests_to("/v1/chat/completions"), what="the first call in flight")
        resp = server.post("/v1/chat/completions", body)
        assert resp.status_code == 429 and _error(resp)["code"] == "budget_busy"
        assert int(resp.headers["retry-after"]) >= 1 and resp.headers.get("x-should-retry") != "false"
        assert "'alice'" in _error(resp)["message"]
    finally:
        gate.set()
        thread.join(timeout=30)
        openai_server.routes[CHAT] = inner
    assert first[0].status_code == 200
    assert server.post("/v1/chat/completions", body).status_code == 200  # it fit once the first settled
    # an exhausted scope: not retryable, whatever is in flight
    assert server.post("/v1/chat/completions", body, key=OTHER_KEY).status_code == 200
    resp = server.post("/v1/chat/completions", body, key=OTHER_KEY)
    assert resp.status_code == 429 and _error(resp)["code"] == "insufficient_quota"
    assert resp.headers["x-should-retry"] == "false" and "retry-after" not in resp.headers


def test_the_budget_tells_busy_from_exhausted() -> None:
    from routellm_integrations.budgets import Budget, ScopeTotals, busy, refusal

    cap = Budget(max_usd=1.0, on_exhausted="raise")
    held = ScopeTotals(spent=0.2, reserved=0.9, in_flight=1)
    assert busy(cap, held, "weak", {"weak": 0.5}) and refusal(cap, "s", held, "weak", {"weak": 0.5}).busy
    spent = ScopeTotals(spent=1.0, reserved=0.3, in_flight=1)
    assert not busy(cap, spent, "weak", {"weak": 0.5}) and not refusal(cap, "s", spent, "weak", None).busy
    assert not busy(cap, ScopeTotals(spent=1.0), "weak", None)
    calls = Budget(max_strong_calls=1, on_exhausted="raise")  # a strong call in flight will count once it ends
    assert not busy(calls, ScopeTotals(reserved=0.1, strong_in_flight=1, in_flight=1), "strong", None)


# -- 5. tenancy ------------------------------------------------------------------------------------

def test_a_client_key_sees_only_its_own_usage(serve, tmp_path) -> None:
    db = tmp_path / "tenants" / "routing.sqlite"
    db.parent.mkdir()
    server = serve(state=f"sqlite:///{db}", keys=[{"label": "alice", "key": CLIENT_KEY},
                                                 {"label": "bob", "key": OTHER_KEY},
                                                 {"label": "ops", "key": ADMIN_KEY, "admin": True}])
    body = {"model": "router-random-0.0", "messages": HI}
    assert server.post("/v1/chat/completions", body).status_code == 200
    for _ in range(2):
        assert server.post("/v1/chat/completions", body, key=OTHER_KEY).status_code == 200
    alice = server.get("/v1/routing/usage")
    mine = alice.json()
    assert mine["scope"] == "key" and mine["total"]["calls"] == 1 and mine["key"]["calls"] == 1
    assert "bob" not in alice.text and "store" not in mine
    ops = server.get("/v1/routing/usage", key=ADMIN_KEY).json()
    assert ops["scope"] == "all" and ops["total"]["calls"] == 3 and ops["key"]["calls"] == 0
    texts = [alice.text, json.dumps(ops), server.get("/health").text, server.get("/v1/models").text,
             server.get("/v1/routing/usage?since=x").text]
    for text in texts:
        assert str(tmp_path) not in text and "routing.sqlite" not in text


def test_metrics_behind_a_key(serve) -> None:
    server = serve(metrics_key=METRICS_KEY, keys=[{"label": "alice", "key": CLIENT_KEY},
                                                  {"label": "ops", "key": ADMIN_KEY, "admin": True}])
    for key in (None, CLIENT_KEY, "rk-wrong-0000000"):
        resp = server.get("/metrics", key=key)
        assert resp.status_code == 401 and _error(resp)["code"] == "invalid_api_key"
    for key in (METRICS_KEY, ADMIN_KEY):
        resp = server.get("/metrics", key=key)
        assert resp.status_code == 200 and "routellm_requests_total" in resp.text
    assert server.get("/health", key=None).status_code == 200  # health stays open
    assert METRICS_KEY not in server.app.state.config.model_dump_json()


# -- 6. hardening ----------------------------------------------------------------------------------

def test_every_error_is_in_openai_format_and_nothing_redirects(serve) -> None:
    server = serve()
    resp = httpx.post(server.url + "/v1/chat/completions/", json={"model": "router-random-0.0", "messages": HI},
                      headers={"authorization": f"Bearer {CLIENT_KEY}", "host": "evil.example"},
                      follow_redirects=False, timeout=30)
    assert resp.status_code == 404 and "location" not in resp.headers and _error(resp)["code"] == "not_found"
    resp = server.get("/v1/chat/completions")
    assert resp.status_code == 405 and _error(resp)["code"] == "method_not_allowed"
    assert _error(server.get("/v1/nothing-here"))["type"] == "invalid_request_error"
    resp = httpx.post(server.url + "/v1/chat/completions", content=b"{not json",
                      headers={"authorization": f"Bearer {CLIENT_KEY}", "content-type": "application/json"})
    assert resp.status_code == 400 and _error(resp)["type"] == "invalid_request_error"


def test_an_internal_failure_is_a_500_in_openai_format_without_paths(serve, tmp_path) -> None:
    server = serve(state=f"sqlite:///{tmp_path / 'routing.sqlite'}")

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"disk I/O error at {tmp_path}/routing.sqlite")

    server.client.store.usage = broken
    resp = server.get("/v1/routing/usage")
    assert resp.status_code == 500 and _error(resp)["type"] == "server_error"
    assert str(tmp_path) not in resp.text


def test_a_request_cut_by_the_graceful_timeout_is_answered_in_openai_format(serve_process, openai_server) -> None:
    release = threading.Event()
    inner = chat_completions_handler(openai_server.chat)

    def hang(req):  # type: ignore[no-untyped-def]
        release.wait(60)
        return inner(req)

    openai_server.routes[CHAT] = hang
    try:
        proc = serve_process("--strong", "openai:gpt-4o", "--weak", "openai:gpt-4o-mini", "--router", "random",
                             "--graceful-timeout", "1")
        got: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: got.append(httpx.post(
            proc.url + "/v1/chat/completions", json={"model": "router-random-0.0", "messages": HI},
            headers={"authorization": f"Bearer {CLIENT_KEY}"}, timeout=60)))
        thread.start()
        wait_until(lambda: openai_server.requests_to("/v1/chat/completions"), what="the call in flight")
        proc.proc.terminate()  # the backend never answers: the graceful timeout cuts the request
        thread.join(timeout=60)
        proc.proc.wait(timeout=60)
    finally:
        release.set()
        openai_server.routes[CHAT] = inner
    assert got and got[0].status_code == 503 and _error(got[0])["code"] == "server_shutting_down"
    assert got[0].headers["retry-after"] == "1"


def test_ready_answers_503_when_the_store_does_not(serve, tmp_path) -> None:
    server = serve(state=f"sqlite:///{tmp_path / 'routing.sqlite'}")
    assert server.get("/ready", key=None).json() == {"status": "ready"}

    def down() -> None:
        raise OSError(f"unable to open database file {tmp_path}/routing.sqlite")

    server.client.store.ping = down
    resp = server.get("/ready", key=None)
    assert resp.status_code == 503 and _error(resp)["code"] == "store_unavailable"
    assert int(resp.headers["retry-after"]) >= 1 and str(tmp_path) not in resp.text
    assert server.get("/health", key=None).status_code == 200  # alive, not ready


def test_a_store_that_stops_answering_is_a_503_a_client_can_retry(serve, openai_server, tmp_path,
                                                                 monkeypatch) -> None:
    import os
    import signal

    from routellm_integrations.state import wal
    from routellm_integrations.testing.redis_server import RedisServer

    monkeypatch.setenv(wal.WAL_ENV, str(tmp_path / "wal"))
    redis_server = RedisServer().start()
    try:
        server = serve(state=f"{redis_server.url}?prefix=hostile&socket_timeout=0.5&socket_connect_timeout=0.5",
                       keys=[{"label": "alice", "key": CLIENT_KEY, "budget": {"max_usd": 5.0}}])
        body = {"model": "router-random-0.0", "messages": HI}
        assert server.post("/v1/chat/completions", body).status_code == 200
        assert server.get("/ready", key=None).status_code == 200
        os.kill(redis_server._proc.pid, signal.SIGSTOP)
        try:
            answers = [server.get("/ready", key=None), server.get("/v1/routing/usage"),
                       server.post("/v1/chat/completions", body)]  # a budget needs the store to admit
        finally:
            os.kill(redis_server._proc.pid, signal.SIGCONT)
        for resp in answers:
            assert resp.status_code == 503 and _error(resp)["code"] == "store_unavailable", resp.text
            assert int(resp.headers["retry-after"]) >= 1
            assert "redis" not in resp.text and str(redis_server.url.split(":")[-1].split("/")[0]) not in resp.text
        assert wait_until(lambda: server.get("/ready", key=None).status_code == 200, what="ready again")
        assert server.post("/v1/chat/completions", body).status_code == 200
    finally:
        redis_server.stop()
