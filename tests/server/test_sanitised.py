"""Issue 25 over real HTTP: what a provider answers (its model name, its error text) is
made safe before it reaches our response headers, the ledger, metric labels and logs.

- a backend answering with a model name holding CR/LF and characters latin-1 cannot
  encode: the call succeeds; every place shows the sanitised name;
- a provider echoing a non-``sk-`` key masked (first 8 + stars + last 4): the client and
  the logs see no fragment of the key."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from srv_helpers import CLIENT_KEY

from routellm_integrations.client.names import safe_model_name
from routellm_integrations.testing.openai_compat import Response, chat_completions_handler

HI = [{"role": "user", "content": "hello there"}]
#: what a hostile or broken provider says answered: a header injection and non-latin-1 text
RAW_STRONG = "gpt-4o\r\nx-injected: 1\r\n\u6a21\u578b \u00e9"
RAW_WEAK = "claude\n\u2603\x00haiku"


def _post(server, body, key=CLIENT_KEY):  # type: ignore[no-untyped-def]
    return server.post("/v1/chat/completions", body, key=key)


def _sse_models(resp: httpx.Response) -> list[str]:
    models = []
    for line in resp.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            chunk = json.loads(line[6:])
            if chunk.get("model"):
                models.append(chunk["model"])
    return models


@pytest.mark.parametrize("stream", [False, True])
def test_a_backends_unsafe_model_name_is_sanitised_everywhere(serve, openai_server, anthropic_server,
                                                              stream: bool) -> None:
    openai_server.chat.snapshots["gpt-4o"] = RAW_STRONG
    anthropic_server.chat.snapshots["claude-3-5-haiku-latest"] = RAW_WEAK
    strong, weak = safe_model_name(RAW_STRONG), safe_model_name(RAW_WEAK)
    assert strong and weak and strong.isascii() and "\n" not in strong + weak
    server = serve()
    for model, route, safe, asked in (("router-random-0.0", "strong", strong, "gpt-4o"),
                                      ("router-random-1.0", "weak", weak, "claude-3-5-haiku-latest")):
        resp = _post(server, {"model": model, "messages": HI, "stream": stream})
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-routellm-route"] == route and "x-injected" not in resp.headers
        if stream:  # the headers go out before the answer names its model: the backend's own name
            assert resp.headers["x-routellm-model"] == asked and set(_sse_models(resp)) == {safe}
        else:
            assert resp.headers["x-routellm-model"] == safe and resp.json()["model"] == safe
    metrics = server.get("/metrics", key=None).text
    assert f'model="{strong}"' in metrics and f'model="{weak}"' in metrics
    assert "\u6a21" not in metrics and "\u2603" not in metrics
    ledger = [e.model for e in server.client.store.entries()]
    assert ledger[-2:] == [strong, weak]


def test_a_provider_echoing_a_masked_key_leaks_no_fragment(serve, openai_server, monkeypatch, caplog) -> None:
    key = "prov_Z9yX8wV7uT6sR5qP4oN3mL2kJ1hG"  # no sk- prefix: only the registered key says what to hide
    head, tail = key[:8], key[-4:]
    monkeypatch.setenv("OPENAI_API_KEY", key)
    caplog.set_level(logging.DEBUG)
    server = serve()
    sent: list[str] = []

    def echo_masked(req):  # type: ignore[no-untyped-def] - as providers quote the key they were sent
        got = req.headers["authorization"][7:]
        sent.append(got)
        return Response.error(401, f"Incorrect API key provided: {got[:8]}{'*' * 20}{got[-4:]}. You can find "
                                   f"your API key at https://example.invalid/keys (also: {got[:8]}...{got[-4:]}).")

    openai_server.routes[("POST", "/v1/chat/completions")] = echo_masked
    try:
        seen = [_post(server, {"model": "router-random-0.0", "messages": HI, "stream": stream})
                for stream in (False, True)]
    finally:
        openai_server.routes[("POST", "/v1/chat/completions")] = chat_completions_handler(openai_server.chat)
    assert sent and sent[0] == key  # the provider was given the key and echoed it masked
    usage = server.get("/v1/routing/usage")
    metrics = server.get("/metrics", key=None)
    for resp in seen:
        assert resp.status_code == 502 and "HTTP 401" in resp.json()["error"]["message"]
    for text in [*(r.text for r in [*seen, usage, metrics]), *(str(dict(r.headers)) for r in seen),
                 caplog.text, *(r.getMessage() for r in caplog.records)]:
        assert head not in text and tail not in text, text[:300]
    assert any("401" in r.getMessage() for r in caplog.records)  # the failure was logged, redacted


def test_a_redos_schema_on_an_escalation_route_is_refused_without_running_it(serve, openai_server,
                                                                            anthropic_server) -> None:
    from routellm_integrations.testing.openai_compat import Reply

    server = serve(routes={"careful": {"router": "random", "threshold": 1.0, "escalate_if": True}})
    anthropic_server.chat.push(Reply(text=json.dumps("a" * 40 + "!")))
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "^(a+)+$"}}}
    before = len(anthropic_server.chat.usage) + len(openai_server.chat.usage)
    resp = _post(server, {"model": "careful", "messages": HI, "response_format": fmt})
    assert server.get("/health", key=None).status_code == 200
    assert resp.status_code == 400 and "^(a+)+$" in resp.json()["error"]["message"]
    # refused before the call: no backend was asked (and billed) for an answer no check could read
    assert len(anthropic_server.chat.usage) + len(openai_server.chat.usage) == before
