"""The routed client (no server of ours): model names, backends, the Anthropic translation,
streams and how every exit path settles."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from routellm_integrations.budgets import Budget
from routellm_integrations.client import (AsyncRoutedClient, BackendConfigError, BackendError, InvalidModelError,
                                          RouteConfig, RoutedClient, parse_backend, parse_model)
from routellm_integrations.client.anthropic_format import StreamTranslator, from_message, to_messages_request
from routellm_integrations.client.secrets import redact
from routellm_integrations.errors import BudgetExceeded, RouteLLMError
from routellm_integrations.testing.openai_compat import Reply

from srv_helpers import ANTHROPIC_SECRET, OPENAI_SECRET, REPO, assert_no_secret, wait_until

ADD_TOOL = {"type": "function", "function": {"name": "add", "description": "add two integers", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}
HI = [{"role": "user", "content": "hello there"}]


# -- names --------------------------------------------------------------------------------

@pytest.mark.parametrize("model, problem", [
    ("gpt-4o", "unknown model 'gpt-4o'"),
    ("router-nope-0.5", "unknown router 'nope'"),
    ("router-random-1.5", "must be a number in [0, 1]"),
    ("router-random-abc", "'abc' is not a number"),
    ("router-random-sharex", "'x' is not a number"),
    ("router-random-nan", "must be a number in [0, 1]"),
    ("", "non-empty string"),
])
def test_bad_model_names_raise_a_typed_error_naming_the_problem(model: str, problem: str) -> None:
    with pytest.raises(InvalidModelError) as info:
        parse_model(model, routers=["random", "length"])
    assert isinstance(info.value, RouteLLMError) and isinstance(info.value, ValueError)
    assert problem in str(info.value)


def test_model_names_follow_routellm_and_held_shares() -> None:
    assert parse_model("router-mf-0.11593").threshold == pytest.approx(0.11593)
    share = parse_model("router-sw_ranking-share0.3")
    assert (share.router, share.strong_fraction, share.threshold) == ("sw_ranking", 0.3, None)
    assert parse_model("fast", routes={"fast": RouteConfig(router="length", threshold=0.5)}).route == "fast"


def test_backend_specs() -> None:
    assert str(parse_backend("openai:gpt-4o")) == "openai:gpt-4o"
    assert parse_backend("openai:llama3:8b").model == "llama3:8b"
    for bad in ("gpt-4o", "cohere:command", "openai:"):
        with pytest.raises(BackendConfigError):
            parse_backend(bad)


def test_a_missing_provider_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    client = AsyncRoutedClient("openai:gpt-4o", "anthropic:claude-3-5-haiku-latest", openai_api_key="sk-x-123456")
    with pytest.raises(BackendConfigError, match="ANTHROPIC_API_KEY"):
        client.backend("anthropic:claude-3-5-haiku-latest")


# -- sync client over both providers -------------------------------------------------------

def _client(openai_server, anthropic_server, **kw) -> RoutedClient:  # type: ignore[no-untyped-def]
    return RoutedClient("openai:gpt-4o", "anthropic:claude-3-5-haiku-latest", openai_base_url=openai_server.base_url,
                        openai_api_key=OPENAI_SECRET, anthropic_base_url=anthropic_server.base_url,
                        anthropic_api_key=ANTHROPIC_SECRET, **kw)


def test_sync_client_routes_and_reports_the_answering_model(openai_server, anthropic_server) -> None:
    openai_server.chat.snapshots["gpt-4o"] = "gpt-4o-2024-08-06"
    with _client(openai_server, anthropic_server) as client:
        strong = client.chat.completions.create(model="router-random-0.0", messages=HI)
        weak = client.chat.completions.create(model="router-random-1.0", messages=HI)
        assert strong.model == "gpt-4o-2024-08-06" and strong.routellm["route"] == "strong"
        assert weak.model == "claude-3-5-haiku-latest" and weak.routellm["route"] == "weak"
        assert weak.choices[0].message.content == "Hello from claude-3-5-haiku-latest. You said: hello there"
        assert strong.routellm["cost_usd"] > 0 and weak.routellm["router"] == "random"
        # the ledger in the store holds exactly what the backends reported
        report = client.store.usage()
        backend = {**openai_server.chat.usage_totals(), **anthropic_server.chat.usage_totals()}
        assert report.total.calls == 2
        assert report.total.input_tokens == sum(t["input_tokens"] for t in backend.values())
        assert report.total.output_tokens == sum(t["output_tokens"] for t in backend.values())
        assert report.by_model["gpt-4o-2024-08-06"].calls == 1
        assert_no_secret(repr(client), repr(client.aclient.backend("openai:gpt-4o")))


def test_one_policy_per_model_string_and_routers_shared(openai_server, anthropic_server) -> None:
    with _client(openai_server, anthropic_server) as client:
        a = client.aclient.routed("router-random-0.3")
        assert client.aclient.routed("router-random-0.3") is a
        b = client.aclient.routed("router-random-0.7")
        assert b is not a and b.policy.router is a.policy.router
        assert b.policy.threshold == 0.7
        share = client.aclient.routed("router-random-share0.25")
        assert share.policy.strong_fraction == 0.25


def test_anthropic_translation_of_tools_and_results(anthropic_server, openai_server) -> None:
    with _client(openai_server, anthropic_server) as client:
        first = client.chat.completions.create(model="router-random-1.0", tools=[ADD_TOOL], messages=[
            {"role": "system", "content": "You add."}, {"role": "user", "content": "add 2 and 3"}])
        call = first.choices[0].message.tool_calls[0]
        assert first.choices[0].finish_reason == "tool_calls"
        assert (call.function.name, json.loads(call.function.arguments)) == ("add", {"a": 2, "b": 3})
        sent = anthropic_server.requests[-1].json
        assert sent["system"] == "You add." and sent["tools"][0]["input_schema"]["required"] == ["a", "b"]
        second = client.chat.completions.create(model="router-random-1.0", tools=[ADD_TOOL], messages=[
            {"role": "user", "content": "add 2 and 3"}, first.choices[0].message.to_dict(),
            {"role": "tool", "tool_call_id": call.id, "content": "5"}])
        assert second.choices[0].message.content == "The tool returned 5."
        sent = anthropic_server.requests[-1].json
        assert sent["messages"][1]["content"][0] == {"type": "tool_use", "id": call.id, "name": "add",
                                                     "input": {"a": 2, "b": 3}}
        assert sent["messages"][2]["content"][0] == {"type": "tool_result", "tool_use_id": call.id, "content": "5"}


def test_anthropic_response_format_and_unsupported_n() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    body = {"messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "num", "schema": schema}}}
    request, meta = to_messages_request(body, "claude", default_max_tokens=100)
    assert request["tool_choice"] == {"type": "tool", "name": "num"} and request["max_tokens"] == 100
    reply = from_message({"id": "m1", "model": "claude", "stop_reason": "tool_use", "usage": {"input_tokens": 3,
                          "output_tokens": 2}, "content": [{"type": "tool_use", "id": "t", "name": "num",
                                                            "input": {"n": 4}}]}, meta)
    assert reply["choices"][0]["message"]["content"] == '{"n": 4}'
    assert reply["choices"][0]["finish_reason"] == "stop" and "tool_calls" not in reply["choices"][0]["message"]
    assert reply["usage"]["prompt_tokens"] == 3
    from routellm_integrations.client import UnsupportedParameterError

    with pytest.raises(UnsupportedParameterError, match="n=2"):
        to_messages_request({**body, "n": 2}, "claude")


def test_anthropic_stream_translation_of_tool_deltas() -> None:
    tr = StreamTranslator({"format_tool": None}, include_usage=True)
    events = [
        {"type": "message_start", "message": {"id": "m", "model": "claude-x", "usage": {"input_tokens": 7,
                                                                                      "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me add."}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "tu", "name": "add"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "1}"}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"}]
    chunks = [c for e in events for c in tr.feed(e["type"], e)]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[1] == {"content": "Let me add."}
    assert deltas[2]["tool_calls"][0]["id"] == "tu" and deltas[2]["tool_calls"][0]["index"] == 0
    assert "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[2:5]) == '{"a":1}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16,
                                   "prompt_tokens_details": {"cached_tokens": 0}}
    assert tr.done and chunks[0]["model"] == "claude-x"


@pytest.mark.parametrize("model", ["router-random-0.0", "router-random-1.0"])
def test_streams_carry_the_record_on_the_last_chunk(openai_server, anthropic_server, model: str) -> None:
    with _client(openai_server, anthropic_server) as client:
        for include_usage in (False, True):
            extra = {"stream_options": {"include_usage": True}} if include_usage else {}
            chunks = list(client.chat.completions.create(model=model, messages=HI, stream=True, **extra))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text.startswith("Hello from")
            last = chunks[-1]
            assert last.routellm["status"] == "ok" and last.routellm["input_tokens"] > 0
            assert (last.usage is not None) == include_usage
            assert all(not getattr(c, "routellm", None) for c in chunks[:-1])
            if not include_usage:  # the record rides on the finish chunk: no empty-choices chunk
                assert all(c.choices for c in chunks)
        # OpenAI backends are asked for usage whatever the caller asked
        assert all(r.json["stream_options"]["include_usage"] for r in openai_server.requests_to("/v1/chat/completions"))
        backend = {**openai_server.chat.usage_totals(), **anthropic_server.chat.usage_totals()}
        report = client.store.usage()
        assert report.total.estimated_calls == 0
        assert report.total.output_tokens == sum(t["output_tokens"] for t in backend.values())


# -- every exit path settles ----------------------------------------------------------------

def _budgeted(openai_server, anthropic_server) -> AsyncRoutedClient:  # type: ignore[no-untyped-def]
    return AsyncRoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", openai_base_url=openai_server.base_url,
                             openai_api_key=OPENAI_SECRET, budget=Budget(max_usd=10.0), max_retries=0)


async def test_a_consumer_that_stops_reading_abandons_and_releases(openai_server, anthropic_server) -> None:
    client = _budgeted(openai_server, anthropic_server)
    openai_server.chat.push(Reply(text="one two three four five six seven eight"))
    stream = await client.create(model="router-random-0.0", messages=HI, stream=True, scope="u1")
    async for _chunk in stream:
        assert client.budget_state("u1").in_flight == 1
        break
    await stream.aclose()
    assert stream.record.status == "abandoned" and stream.record.estimated
    state = client.budget_state("u1")
    assert state.in_flight == 0 and state.reserved_usd == 0 and state.spent_usd > 0  # charged for what was sent
    await client.aclose()


async def test_a_stream_the_provider_cuts_is_charged_as_cut(openai_server, anthropic_server) -> None:
    client = _budgeted(openai_server, anthropic_server)
    openai_server.chat.push(Reply(text="one two three four five six seven", cut_after=3))
    stream = await client.create(model="router-random-1.0", messages=HI, stream=True, scope="u2")
    got = []
    with pytest.raises(BackendError) as info:
        async for chunk in stream:
            got.append(chunk)
    assert info.value.kind == "stream_cut" and info.value.route == "weak"
    assert got and stream.record.status == "cut" and stream.record.estimated
    assert client.budget_state("u2").in_flight == 0
    entry = client.store.entries()[-1]
    assert entry.status == "cut" and entry.output_tokens > 0
    await client.aclose()


async def test_cancellation_while_the_backend_thinks_settles_cancelled(openai_server, anthropic_server) -> None:
    client = _budgeted(openai_server, anthropic_server)
    openai_server.chat.push(Reply(text="slow", delay_s=2.0))
    records = []
    client.on_settled(lambda record, call: records.append(record))
    task = asyncio.ensure_future(client.create(model="router-random-0.0", messages=HI, scope="u3"))
    await asyncio.to_thread(wait_until, lambda: openai_server.requests_to("/v1/chat/completions"), 30, "the request")
    assert client.budget_state("u3").in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.status for r in records] == ["cancelled"]
    assert client.budget_state("u3").in_flight == 0 and client.budget_state("u3").spent_usd == 0
    await client.aclose()


async def test_backend_errors_keep_the_status_and_never_the_key(openai_server, anthropic_server) -> None:
    from routellm_integrations.testing.openai_compat import Response

    def echo_key(req):  # type: ignore[no-untyped-def] - a provider quoting the key it was sent
        return Response.error(401, f"Incorrect API key provided: {req.headers['authorization'][7:]}")

    openai_server.routes[("POST", "/v1/chat/completions")] = echo_key
    try:
        client = _budgeted(openai_server, anthropic_server)
        with pytest.raises(BackendError) as info:
            await client.create(model="router-random-0.0", messages=HI, scope="u4")
        assert info.value.status_code == 401 and "HTTP 401" in str(info.value)
        assert_no_secret(str(info.value), repr(info.value), info.value.args)
        assert client.budget_state("u4").in_flight == 0
        assert client.store.entries()[-1].status == "failed"
        await client.aclose()
    finally:
        from routellm_integrations.testing.openai_compat import chat_completions_handler

        openai_server.routes[("POST", "/v1/chat/completions")] = chat_completions_handler(openai_server.chat)


def test_redaction_masks_registered_and_key_shaped_secrets() -> None:
    from routellm_integrations.client import register_secret

    register_secret("plainsecretvalue42")
    text = redact("a plainsecretvalue42 b sk-abcdefghijkl c Bearer xyzxyzxyz123")
    assert "plainsecretvalue42" not in text and "sk-abcdefghijkl" not in text and "xyzxyzxyz123" not in text


async def test_budget_refusal_names_the_scope(openai_server, anthropic_server) -> None:
    client = AsyncRoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", openai_base_url=openai_server.base_url,
                               openai_api_key=OPENAI_SECRET, budget=Budget(max_usd=1e-6, on_exhausted="raise"))
    await client.create(model="router-random-0.0", messages=HI, scope="tiny")
    with pytest.raises(BudgetExceeded, match="'tiny'"):
        await client.create(model="router-random-0.0", messages=HI, scope="tiny")
    # the cap is the scope's, whatever model string the caller picks
    with pytest.raises(BudgetExceeded):
        await client.create(model="router-random-0.9", messages=HI, scope="tiny")
    await client.aclose()


def test_imports_stay_light() -> None:
    code = ("import sys, routellm_integrations, langchain_routellm, routellm_integrations.client, "
            "routellm_integrations.server, routellm_integrations.server.config\n"
            "heavy = [m for m in ('fastapi', 'uvicorn', 'starlette', 'openai', 'anthropic', 'prometheus_client') "
            "if m in sys.modules]\nprint(heavy)\nassert not heavy, heavy")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


# -- both HTTP layers (httpx, and the SDKs' aiohttp transport the server extra installs) --------

@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_each_transport_answers_streams_and_maps_every_failure(openai_server, anthropic_server,
                                                                      transport: str) -> None:
    import socket

    from routellm_integrations.client.backends import AnthropicBackend, OpenAIBackend
    from routellm_integrations.testing.openai_compat import Response

    oa = OpenAIBackend("gpt-4o-mini", api_key=OPENAI_SECRET, base_url=openai_server.base_url, max_retries=0,
                       transport=transport)  # type: ignore[arg-type]
    an = AnthropicBackend("claude-3-5-haiku-latest", api_key=ANTHROPIC_SECRET, base_url=anthropic_server.base_url,
                          max_retries=0, transport=transport)  # type: ignore[arg-type]
    assert oa.transport == an.transport == transport
    sdk = oa._sdk()
    assert (type(sdk._client).__name__ == "_DefaultAioHttpClient") == (transport == "aiohttp")
    body = {"messages": HI, "max_tokens": 16}
    for backend, server in ((oa, openai_server), (an, anthropic_server)):
        server.chat.push(Reply(text="alpha beta gamma"))
        reply = await backend.acomplete(dict(body))
        assert reply.completion["choices"][0]["message"]["content"] == "alpha beta gamma"
        server.chat.push(Reply(text="one two three four five six", cut_after=2))
        stream = await backend.astream(dict(body, stream=True), include_usage=True)
        with pytest.raises(BackendError) as cut:
            async for _ in stream:
                pass
        await stream.aclose()
        assert cut.value.kind == "stream_cut", cut.value
        path = ("POST", "/v1/chat/completions" if backend is oa else "/v1/messages")
        handler = server.routes[path]
        server.routes[path] = lambda req: Response.error(503, "overloaded")
        try:
            with pytest.raises(BackendError) as failed:
                await backend.acomplete(dict(body))
        finally:
            server.routes[path] = handler
        assert failed.value.status_code == 503 and failed.value.kind == "api_error"
        assert_no_secret(str(failed.value), repr(failed.value))
        await backend.aclose()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = OpenAIBackend("gpt-4o-mini", api_key=OPENAI_SECRET, base_url=f"http://127.0.0.1:{port}/v1",
                         max_retries=0, transport=transport)  # type: ignore[arg-type]
    with pytest.raises(BackendError) as refused:
        await gone.acomplete(dict(body))
    assert refused.value.kind == "connection_error", refused.value
    await gone.aclose()


def test_an_unknown_transport_is_a_config_error() -> None:
    from routellm_integrations.client.backends import OpenAIBackend

    with pytest.raises(BackendConfigError, match="transport must be one of auto, httpx, aiohttp"):
        OpenAIBackend("gpt-4o-mini", api_key="k", transport="curl")  # type: ignore[arg-type]
