"""The routing server over real HTTP, with the openai SDK and LangChain's ChatOpenAI as
clients and the local OpenAI/Anthropic-format servers as backends."""

from __future__ import annotations

import gc
import json
import logging

import httpx
import openai
import pytest
from srv_helpers import CLIENT_KEY, OPENAI_SECRET, OTHER_KEY, assert_no_secret, wait_until

from routellm_integrations import load_router
from routellm_integrations.testing.openai_compat import Reply, Response, chat_completions_handler

ADD_TOOL = {"type": "function", "function": {"name": "add", "description": "add two integers", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}
HI = [{"role": "user", "content": "hello there"}]


def sdk(server, key: str = CLIENT_KEY) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)


def backend_usage(*servers) -> dict[str, int]:  # type: ignore[no-untyped-def]
    totals = {"calls": 0, "input_tokens": 0, "output_tokens": 0}
    for s in servers:
        for t in s.chat.usage_totals().values():
            for k in totals:
                totals[k] += t[k]
    return totals


def test_completions_with_the_openai_sdk(serve, openai_server, anthropic_server) -> None:
    server = serve()
    client = sdk(server)
    raw = client.chat.completions.with_raw_response.create(model="router-random-0.0", messages=HI)
    reply = raw.parse()
    assert reply.model == "gpt-4o" and reply.choices[0].message.content == "Hello from gpt-4o. You said: hello there"
    assert raw.headers["x-routellm-route"] == "strong" and raw.headers["x-routellm-model"] == "gpt-4o"
    assert float(raw.headers["x-routellm-threshold"]) == 0.0 and raw.headers["x-routellm-router"] == "random"
    assert float(raw.headers["x-routellm-cost-usd"]) == pytest.approx(reply.routellm["cost_usd"])
    assert reply.routellm["call_id"] == raw.headers["x-routellm-call-id"] and reply.routellm["scope"] == "alice"
    weak = client.chat.completions.create(model="router-random-1.0", messages=HI)
    assert weak.model == "claude-3-5-haiku-latest" and weak.routellm["route"] == "weak"
    assert weak.usage.prompt_tokens == anthropic_server.chat.usage[-1]["input_tokens"]


def test_streaming_with_the_openai_sdk(serve, openai_server, anthropic_server) -> None:
    server = serve()
    client = sdk(server)
    for model, answering in (("router-random-0.0", "gpt-4o"), ("router-random-1.0", "claude-3-5-haiku-latest")):
        with client.chat.completions.with_streaming_response.create(
                model=model, messages=HI, stream=True, stream_options={"include_usage": True}) as resp:
            assert resp.headers["x-routellm-model"] == answering and "x-routellm-cost-usd" not in resp.headers
            chunks = list(resp.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == f"Hello from {answering}. You said: hello there"
        last = chunks[-1]
        assert last.usage.completion_tokens > 0 and last.routellm["status"] == "ok"
        assert last.routellm["cost_usd"] > 0 and last.routellm["model"] == answering
    usage = server.get("/v1/routing/usage").json()
    backend = backend_usage(openai_server, anthropic_server)
    for part in (usage["total"], usage["key"]):
        assert part["calls"] == backend["calls"] == 2
        assert part["input_tokens"] == backend["input_tokens"]
        assert part["output_tokens"] == backend["output_tokens"]
        assert part["estimated_calls"] == 0


@pytest.mark.parametrize("model", ["router-random-0.0", "router-random-1.0"])
def test_a_tool_call_round_trip(serve, model: str) -> None:
    client = sdk(serve())
    messages = [{"role": "user", "content": "add 2 and 3"}]
    first = client.chat.completions.create(model=model, messages=messages, tools=[ADD_TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"a": 2, "b": 3}
    messages += [first.choices[0].message.to_dict(), {"role": "tool", "tool_call_id": call.id, "content": "5"}]
    second = client.chat.completions.create(model=model, messages=messages, tools=[ADD_TOOL])
    assert second.choices[0].message.content == "The tool returned 5."
    assert second.routellm["route"] == first.routellm["route"]
    # streamed: tool-call deltas assemble into the same call
    chunks = list(client.chat.completions.create(model=model, messages=messages[:1], tools=[ADD_TOOL], stream=True))
    args = "".join(tc.function.arguments or "" for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or [])
    assert json.loads(args) == {"a": 2, "b": 3}
    assert chunks[-1].choices[0].finish_reason == "tool_calls" and chunks[-1].routellm["status"] == "ok"


def test_response_format_passes_through(serve, openai_server) -> None:
    client = sdk(serve())
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "num", "schema": schema, "strict": True}}
    reply = client.chat.completions.create(model="router-random-0.0", messages=[{"role": "user", "content": "7"}],
                                           response_format=fmt, seed=3, temperature=0.2)
    assert json.loads(reply.choices[0].message.content) == {"n": 7}
    sent = openai_server.requests_to("/v1/chat/completions")[-1].json
    assert sent["response_format"] == fmt and sent["seed"] == 3 and sent["model"] == "gpt-4o"
    weak = client.chat.completions.create(model="router-random-1.0", messages=[{"role": "user", "content": "7"}],
                                          response_format=fmt)
    assert json.loads(weak.choices[0].message.content) == {"n": 7}


def test_chat_openai_from_langchain(serve) -> None:
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_openai import ChatOpenAI

    server = serve()
    llm = ChatOpenAI(model="router-random-1.0", base_url=server.base_url, api_key=CLIENT_KEY, max_retries=0,
                     stream_usage=True)
    msg = llm.invoke("hello there")
    assert msg.content == "Hello from claude-3-5-haiku-latest. You said: hello there"
    assert msg.response_metadata["model_name"] == "claude-3-5-haiku-latest"
    assert msg.usage_metadata["input_tokens"] > 0
    chunks = list(llm.stream("hello there"))
    assert "".join(c.content for c in chunks) == msg.content
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.usage_metadata["output_tokens"] == msg.usage_metadata["output_tokens"]  # counted once
    tools = llm.bind_tools([ADD_TOOL])
    ai = tools.invoke([HumanMessage("add 2 and 3")])
    assert ai.tool_calls[0]["name"] == "add" and ai.tool_calls[0]["args"] == {"a": 2, "b": 3}
    answer = tools.invoke([HumanMessage("add 2 and 3"), ai, ToolMessage("5", tool_call_id=ai.tool_calls[0]["id"])])
    assert answer.content == "The tool returned 5."


def test_models_health_and_metrics(serve, openai_server) -> None:
    server = serve(threshold=0.3, routes={"cheap": {"router": "length", "threshold": 0.9}})
    ids = [m.id for m in sdk(server).models.list()]
    assert ids == ["router-random-0.3", "router-length-0.3", "cheap"]
    health = server.get("/health", key=None).json()
    assert health["status"] == "ok" and health["routers"] == ["random", "length"]
    reply = sdk(server).chat.completions.create(model="cheap", messages=HI)
    assert reply.routellm["router"] == "length" and reply.routellm["threshold"] == 0.9
    metrics = server.get("/metrics", key=None).text
    model = reply.model
    assert f'routellm_calls_total{{model="{model}",route="{reply.routellm["route"]}",status="ok"}} 1.0' in metrics
    assert "routellm_cost_usd_total" in metrics and 'routellm_decision_latency_seconds_count{router="length"} 1.0' in metrics
    assert 'routellm_requests_total{endpoint="/v1/chat/completions",status="200"} 1.0' in metrics
    assert 'kind="input"' in metrics and "alice" not in metrics


def _error(resp: httpx.Response) -> dict:
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_errors_in_openai_format_and_no_key_leaks(serve, openai_server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    server = serve(keys=[{"label": "alice", "key": CLIENT_KEY},
                         {"label": "bob", "key": OTHER_KEY, "budget": {"max_usd": 1e-6, "on_exhausted": "raise"}}])
    seen: list[httpx.Response] = []

    def post(body, key=CLIENT_KEY):  # type: ignore[no-untyped-def]
        resp = server.post("/v1/chat/completions", body, key=key)
        seen.append(resp)
        return resp

    # 401: no key, a wrong key
    for key in (None, "rk-wrong-key-000"):
        resp = post({"model": "router-random-0.5", "messages": HI}, key=key)
        assert resp.status_code == 401 and _error(resp)["code"] == "invalid_api_key"
    assert server.get("/v1/models", key="rk-wrong-key-000").status_code == 401
    assert server.get("/v1/routing/usage", key=None).status_code == 401
    # 400: a bad model name, a bad threshold, bad messages
    resp = post({"model": "gpt-4o", "messages": HI})
    assert resp.status_code == 400 and _error(resp)["param"] == "model" and "gpt-4o" in _error(resp)["message"]
    resp = post({"model": "router-random-7", "messages": HI})
    assert resp.status_code == 400 and "'7' must be a number in [0, 1]" in _error(resp)["message"]
    resp = post({"model": "router-mf-0.5", "messages": HI})
    assert resp.status_code == 400 and "unknown router 'mf'" in _error(resp)["message"]
    resp = post({"model": "router-random-0.5", "messages": [{"role": "assistant", "content": "x"}]})
    assert resp.status_code == 400 and _error(resp)["param"] == "messages"
    resp = post({"model": "router-random-0.5"})
    assert resp.status_code == 400 and _error(resp)["param"] == "messages"
    # 429: bob's budget is spent after one call; the message names the scope
    assert post({"model": "router-random-0.0", "messages": HI}, key=OTHER_KEY).status_code == 200
    resp = post({"model": "router-random-0.0", "messages": HI}, key=OTHER_KEY)
    assert resp.status_code == 429 and _error(resp)["code"] == "insufficient_quota"
    assert "'bob'" in _error(resp)["message"] and resp.headers["x-should-retry"] == "false"
    resp = post({"model": "router-random-0.0", "messages": HI, "stream": True}, key=OTHER_KEY)
    assert resp.status_code == 429
    # 502: the backend fails, and quotes the key it was sent
    openai_server.routes[("POST", "/v1/chat/completions")] = lambda req: Response.error(
        503, f"overloaded; key {req.headers['authorization'][7:]} throttled")
    try:
        for stream in (False, True):
            resp = post({"model": "router-random-0.0", "messages": HI, "stream": stream})
            assert resp.status_code == 502 and "HTTP 503" in _error(resp)["message"]
            assert "the strong backend openai:gpt-4o" in _error(resp)["message"]
    finally:
        openai_server.routes[("POST", "/v1/chat/completions")] = chat_completions_handler(openai_server.chat)
    # the key the provider echoed reached the server (so the redaction was exercised)
    assert any(OPENAI_SECRET in r.headers.get("authorization", "") for r in openai_server.requests)
    metrics = server.get("/metrics", key=None)
    usage = server.get("/v1/routing/usage")
    for resp in [*seen, metrics, usage]:
        assert_no_secret(resp.text, dict(resp.headers))
    assert_no_secret(caplog.text, [r.getMessage() for r in caplog.records])
    assert any("502" in r.getMessage() for r in caplog.records)  # the failure was logged, redacted
    assert 'routellm_requests_total{endpoint="/v1/chat/completions",status="429"} 2.0' in metrics.text


def test_a_client_that_disconnects_mid_stream_releases_its_reservation(serve, openai_server) -> None:
    server = serve(keys=[{"label": "alice", "key": CLIENT_KEY, "budget": {"max_usd": 5.0}}])
    words = " ".join(f"w{i}" for i in range(400))
    openai_server.chat.push(Reply(text=words))
    openai_server.chat.delay_s = 0.0
    openai_server.chat.chunk_delay_s = 0.01  # a model still writing when the client leaves
    records = []
    server.client.on_settled(lambda record, call: records.append(record))
    try:
        with httpx.Client(timeout=30) as http:
            with http.stream("POST", server.url + "/v1/chat/completions",
                             json={"model": "router-random-0.0", "messages": HI, "stream": True},
                             headers={"authorization": f"Bearer {CLIENT_KEY}"}) as resp:
                assert resp.status_code == 200 and resp.headers["x-routellm-route"] == "strong"
                lines = resp.iter_lines()
                assert next(lines).startswith("data: ")
            # leaving the block closes the connection mid-stream
        wait_until(lambda: records, what="the call to settle")
    finally:
        openai_server.chat.chunk_delay_s = 0.0
    assert records[0].status in ("cut", "abandoned", "cancelled")
    usage = wait_until(lambda: (u := server.get("/v1/routing/usage").json())["key"]["budget"]["in_flight"] == 0 and u,
                       what="the reservation to be released")
    assert usage["key"]["budget"]["reserved_usd"] == 0


def test_a_client_cancelled_before_the_first_chunk_is_not_charged(serve, openai_server) -> None:
    server = serve(keys=[{"label": "alice", "key": CLIENT_KEY, "budget": {"max_usd": 5.0}}])
    openai_server.chat.push(Reply(text="late", delay_s=1.5))
    records = []
    server.client.on_settled(lambda record, call: records.append(record))
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/v1/chat/completions", json={"model": "router-random-0.0", "messages": HI},
                   headers={"authorization": f"Bearer {CLIENT_KEY}"}, timeout=httpx.Timeout(30, read=0.3))
    # a whole (non-streamed) call runs to its end even so: the provider bills it, the ledger has it
    record = wait_until(lambda: records and records[0], what="the call to settle")
    assert record.status == "ok"
    budget = server.get("/v1/routing/usage").json()["key"]["budget"]
    assert budget["in_flight"] == 0 and budget["spent_usd"] == pytest.approx(record.cost_usd)


def test_an_open_server_says_so(serve, caplog) -> None:
    caplog.set_level(logging.INFO)
    server = serve(keys=[])
    reply = sdk(server, key="anything-goes").chat.completions.create(model="router-length-0.5", messages=HI)
    assert reply.routellm["scope"] is None  # no key, no budget: no scope
    assert any("OPEN" in r.getMessage() for r in caplog.records)
    usage = server.get("/v1/routing/usage", key=None).json()
    assert usage["key"] is None and usage["total"]["calls"] == 1


def test_client_keys_from_the_environment(serve, monkeypatch) -> None:
    monkeypatch.setenv("ROUTELLM_SERVER_API_KEYS", f"carol=rk-carol-key-123456, {OTHER_KEY}")
    server = serve(keys=[])
    assert sdk(server, key="rk-carol-key-123456").chat.completions.create(
        model="router-length-0.5", messages=HI).routellm["scope"] == "carol"
    anon = sdk(server, key=OTHER_KEY).chat.completions.create(model="router-length-0.5", messages=HI)
    assert anon.routellm["scope"].startswith("key-") and OTHER_KEY not in anon.routellm["scope"]
    assert server.get("/v1/models", key=None).status_code == 401


@pytest.mark.slow
def test_the_mf_router_serves(serve) -> None:
    """The defaults: router-mf-share0.3 advertised, 30% held online, the router scoring the
    backends' pair (gpt-4o vs gpt-4o-mini), all said in the record and the headers."""
    server = serve(routers=["mf"], weak="openai:gpt-4o-mini")
    routed = server.app.state.client  # warmed up before the first request: router, embedder, SDK clients
    assert routed._routers["mf"].embedder._table is not None
    assert all(routed.backend(spec)._clients for spec in routed.specs())
    assert gc.get_freeze_count() > 0  # start-up objects kept out of full collections under load
    client = sdk(server)
    assert [m.id for m in client.models.list()] == ["router-mf-share0.3"]
    prompts = ["Hi!", "Prove that there are infinitely many primes p = 3 (mod 4)."]
    replies = [client.chat.completions.create(model="router-mf-share0.3", messages=[{"role": "user", "content": p}])
               for p in prompts]
    pair = ["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"]
    expected = load_router("mf", strong_model=pair[0], weak_model=pair[1]).score(prompts)  # scored here
    for r, score in zip(replies, expected):
        assert r.routellm["router"] == "mf" and r.routellm["score"] == pytest.approx(float(score), abs=1e-5)
        assert r.routellm["strong_fraction"] == 0.3 and r.routellm["scored_pair"] == pair
        assert r.routellm["route"] == ("strong" if r.routellm["score"] >= r.routellm["threshold"] else "weak")
        assert r.model == ("gpt-4o" if r.routellm["route"] == "strong" else "gpt-4o-mini")
    raw = server.post("/v1/chat/completions", {"model": "router-mf", "messages": [{"role": "user", "content": "Hi"}]})
    assert raw.status_code == 200
    assert raw.headers["x-routellm-scored-pair"] == ",".join(pair) and raw.headers["x-routellm-strong-fraction"] == "0.3"
