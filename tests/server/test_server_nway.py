"""Routes among N models, and escalation, in the routed client and the routing server over
real HTTP (the local OpenAI- and Anthropic-format servers as the backends): the
cost-weighted choice, what headers, records and the ledger name, config errors, and
cascades (whole and streamed) that settle every call on every exit."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import openai
import pytest
from srv_helpers import ANTHROPIC_SECRET, CLIENT_KEY, OPENAI_SECRET, wait_until

from routellm_integrations import load_router
from routellm_integrations.budgets import Budget
from routellm_integrations.client import AsyncRoutedClient, BackendError, RouteConfig, RoutedClient
from routellm_integrations.errors import (InvalidRouteError, InvalidThresholdError, RouterOptionError,
                                         UnknownModelError)
from routellm_integrations.client.answers import completion_answer, stream_answer
from routellm_integrations.costs import PriceTable, Usage
from routellm_integrations.routing.escalation import DEFAULT_CHECKS, first_failure, low_confidence
from routellm_integrations.server.config import ConfigError, load_config
from routellm_integrations.testing.openai_compat import Reply

MODELS = ["openai:gpt-4o", "openai:gpt-4o-mini", "anthropic:claude-3-haiku-20240307"]
KEYS = ["gpt-4o", "gpt-4o-mini", "claude-3-haiku-20240307"]
PRICES = {"openai": {"gpt-4o": [2.5, 10.0], "gpt-4o-mini": [0.15, 0.6]},
          "anthropic": {"claude-3-haiku-20240307": [0.25, 1.25]}}
TABLE = PriceTable.default().with_prices({p: {m: tuple(v) for m, v in ms.items()} for p, ms in PRICES.items()})
PROMPT = "Find the number of ordered pairs of positive integers (m, n) such that m^2 n = 20^20."
ASK = [{"role": "user", "content": PROMPT}]
COUNT = {"type": "json_schema", "json_schema": {"name": "count", "strict": True, "schema": {
    "type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}}}
ADD_TOOL = {"type": "function", "function": {"name": "add", "description": "add two integers", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}
CHEAPEST = 1e7  # a cost weight at which the cheapest model (gpt-4o-mini) always wins


def sdk(server) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=server.base_url, api_key=CLIENT_KEY, max_retries=0)


# the haiku backend is scored as claude-3.5-sonnet: predicted at least as good as gpt-4o-mini, so the
# Anthropic server is the cascade's second step (escalation skips a dearer model predicted worse)
SCORED_AS = {"claude-3-haiku-20240307": "claude-3-5-sonnet-20240620"}


def nway(**kw):  # type: ignore[no-untyped-def]
    return {"models": MODELS, "router_models": SCORED_AS, **kw}


def served_cost(*servers) -> float:  # type: ignore[no-untyped-def]
    """What the backends' reported usage costs at PRICES (every answer they gave)."""
    total = 0.0
    for s in servers:
        for u in s.chat.usage:
            provider = "anthropic" if u["model"].startswith("claude") else "openai"
            total += TABLE.cost(u["model"], Usage(u["input_tokens"], u["output_tokens"]), provider)
    return total


# -- the choice among N ----------------------------------------------------------------------

def test_each_call_goes_to_the_model_the_cost_weight_picks(serve, openai_server, anthropic_server) -> None:
    weights = {"best": 0.0, "mid": 300.0, "cheap": CHEAPEST}
    server = serve(prices=PRICES, routes={name: nway(cost_weight=w) for name, w in weights.items()})
    listed = {m.id: m for m in sdk(server).models.list()}
    assert set(weights) <= set(listed) and listed["mid"].routellm == {"router": "quality", "models": KEYS,
                                                                      "escalate_if": False}
    q = load_router("quality").quality([PROMPT], [SCORED_AS.get(k, k) for k in KEYS])[0]
    picked = {}
    for name, weight in weights.items():
        raw = sdk(server).chat.completions.with_raw_response.create(model=name, messages=ASK)
        reply = raw.parse()
        meta = reply.routellm
        c = np.array([meta["expected_costs_usd"][k] for k in KEYS])
        assert c[0] > c[2] > c[1] > 0  # priced: gpt-4o > claude-3-haiku > gpt-4o-mini
        want = KEYS[int(np.argmax(q - weight * c))]
        picked[name] = want
        assert meta["route"] == want and meta["models"] == KEYS and meta["threshold"] is None
        assert meta["qualities"] == pytest.approx(dict(zip(KEYS, q.tolist())), abs=1e-6)
        assert meta["cost_weight"] == weight and meta["score"] == pytest.approx(float(q[KEYS.index(want)]), abs=1e-6)
        assert reply.model == want  # the backend model that answered (the local servers echo the request's)
        assert reply.choices[0].message.content == f"Hello from {want}. You said: {PROMPT}"
        h = raw.headers
        assert h["x-routellm-route"] == want and h["x-routellm-model"] == want
        assert h["x-routellm-models"] == ",".join(KEYS) and "x-routellm-threshold" not in h
        assert float(h["x-routellm-cost-weight"]) == weight and h["x-routellm-router"] == "quality"
        assert h["x-routellm-provider"] == ("anthropic" if want.startswith("claude") else "openai")
        assert float(h["x-routellm-cost-usd"]) == pytest.approx(meta["cost_usd"]) and meta["cost_usd"] > 0
    assert picked["best"] == KEYS[int(np.argmax(q))] and picked["cheap"] == "gpt-4o-mini"
    assert len(set(picked.values())) >= 2  # the weight decided
    # the ledger reports by route key: one call on each model chosen
    usage = server.get("/v1/routing/usage").json()
    by_route = usage["total"]["by_route"]
    assert sum(t["calls"] for t in by_route.values()) == 3
    assert {k: t["calls"] for k, t in by_route.items()} == {
        k: list(picked.values()).count(k) for k in set(picked.values())}
    assert usage["total"]["cost_usd"] == pytest.approx(served_cost(openai_server, anthropic_server))
    narrowed = server.get("/v1/routing/usage", params={"route": "gpt-4o-mini"}).json()
    assert narrowed["route"] == "gpt-4o-mini" and narrowed["total"]["calls"] == by_route["gpt-4o-mini"]["calls"]


def test_a_streamed_nway_call_names_its_key(serve) -> None:
    server = serve(prices=PRICES, routes={"cheap": nway(cost_weight=CHEAPEST)})
    with sdk(server).chat.completions.with_streaming_response.create(
            model="cheap", messages=ASK, stream=True, stream_options={"include_usage": True}) as resp:
        assert resp.headers["x-routellm-route"] == "gpt-4o-mini" and resp.headers["x-routellm-models"] == ",".join(KEYS)
        assert "x-routellm-threshold" not in resp.headers
        chunks = list(resp.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("Hello from gpt-4o-mini")
    meta = chunks[-1].routellm
    assert meta["route"] == "gpt-4o-mini" and meta["models"] == KEYS and meta["status"] == "ok"
    assert chunks[-1].usage.completion_tokens > 0 and "escalations" not in meta


def test_route_config_errors_name_the_field(provider_env, tmp_path) -> None:
    from routellm_integrations.server.app import create_app

    # a model the router was not trained on: a config error at start-up, with a hint
    config = load_config(None, prices=PRICES, routes={"auto": {"models": [*MODELS[:2],
                                                                          "anthropic:claude-3-5-haiku-latest"]}})
    with pytest.raises(UnknownModelError, match=r"routes\.auto\.models: .*claude-3-5-haiku-latest.*Did you mean"):
        create_app(config)
    # ... unless router_models names it as the router knows it
    ok = load_config(None, routes={"auto": {"models": ["openai:gpt-4o", "anthropic:claude-3-5-haiku-latest"],
                                            "router_models": {"claude-3-5-haiku-latest": "claude-3-haiku-20240307"}}})
    assert create_app(ok).state.client.routed("auto").policy.models["claude-3-5-haiku-latest"] == \
        "claude-3-haiku-20240307"
    # a pair router cannot choose among N
    with pytest.raises(RouterOptionError, match=r"routes\.auto\.router: .*quality"):
        create_app(load_config(None, routes={"auto": nway(router="length")}))
    # a route's misuse: the typed error every surface raises for it, naming the route
    for text, error, problem in [
        ("  auto: {models: [openai:gpt-4o, openai:gpt-4o-mini], threshold: 0.3}\n", InvalidThresholdError,
         "routes.auto: with models= (N-way routing) give cost_weight="),
        ("  auto: {models: [openai:gpt-4o, openai:gpt-4o-mini], strong: openai:gpt-4o}\n", InvalidRouteError,
         "routes.auto: give strong= and weak=, or models="),
        ("  auto: {cost_weight: 300}\n", InvalidThresholdError, "routes.auto: cost_weight choose among N models: give models= too"),
        ("  auto: {router: quality, spend_per_call: 0.01, threshold: 0.5}\n", InvalidThresholdError,
         "spend_per_call choose among N models"),
        ("  auto: {models: [openai:gpt-4o]}\n", InvalidRouteError, "routes.auto: models: routing among N models needs"),
        ("  auto: {models: [openai:gpt-4o, gpt-4o-mini]}\n", InvalidRouteError, "routes.auto: models[1]: a backend"),
        ("  auto: {models: [openai:gpt-4o, openai:gpt-4o]}\n", InvalidRouteError, "the key 'gpt-4o' is given twice"),
        ("  auto: {models: [openai:gpt-4o, openai:gpt-4o-mini], cost_weight: -1}\n", InvalidThresholdError,
         "routes.auto: cost_weight must be a finite number >= 0"),
        ("  auto: {models: [openai:gpt-4o, openai:gpt-4o-mini], max_cost_per_call: 0}\n", InvalidThresholdError,
         "routes.auto: max_cost_per_call must be a positive number"),
        ("  auto: {models: [openai:gpt-4o, openai:gpt-4o-mini], router_models: {gpt4: x}}\n", InvalidRouteError,
         "router_models names ['gpt4']"),
        ("  auto: {models: {big: openai:gpt-4o, small: openai:gpt-4o-mini}, reference_model: gpt-4o}\n",
         InvalidRouteError, "reference_model names ['gpt-4o'], which are not model keys ['big', 'small']"),
        ("  auto: {models: [openai:gpt-4o, openai:gpt-4o-mini], escalate_if: maybe}\n", ConfigError,
         "routes.auto.escalate_if"),
    ]:
        path = tmp_path / "bad.yaml"
        path.write_text("routes:\n" + text)
        with pytest.raises(error) as info:
            load_config(path)
        assert problem in str(info.value), str(info.value)
    # the client's own route config, and RoutedChat's options: the same types
    with pytest.raises(InvalidThresholdError, match="route 'auto': with models= \\(N-way routing\\)"):
        AsyncRoutedClient(routes={"auto": {"models": MODELS, "threshold": 0.3}})
    with pytest.raises(InvalidThresholdError, match="cost_weight choose among N models"):
        RouteConfig(cost_weight=3.0, threshold=0.5)
    with pytest.raises(InvalidThresholdError, match="spend_per_call must be a positive number"):
        RouteConfig(models=MODELS, spend_per_call=-1.0)
    with pytest.raises(InvalidRouteError, match="not both"):
        RouteConfig(models=MODELS, strong="openai:gpt-4o")
    # the old name of escalate_if still works, with a warning naming the new one
    with pytest.warns(DeprecationWarning, match="escalate= is now called escalate_if="):
        assert RouteConfig(models=MODELS, escalate=True).escalate_if is True


def test_a_toml_route_among_n_models(tmp_path) -> None:
    path = tmp_path / "server.toml"
    path.write_text('routers = ["random"]\n[routes.auto]\nmodels = ["openai:gpt-4o", "openai:gpt-4o-mini"]\n'
                    'cost_weight = 300\nescalate_if = true\n')
    route = load_config(path).routes["auto"]
    assert route.router == "quality" and route.model_keys() == {"gpt-4o": "openai:gpt-4o",
                                                               "gpt-4o-mini": "openai:gpt-4o-mini"}
    assert route.escalate_if and route.cost_weight == 300
    assert load_config(None, routes={"p": {"router": "random", "threshold": 0.2}}).routes["p"].router == "random"


# -- escalation over HTTP -----------------------------------------------------------------------

def test_invalid_json_for_a_json_schema_escalates_to_the_next_model_up(serve, openai_server,
                                                                       anthropic_server) -> None:
    server = serve(prices=PRICES, routes={"auto": nway(cost_weight=CHEAPEST, escalate_if=True),
                                          "plain": nway(cost_weight=CHEAPEST)})
    settled = []
    server.client.on_settled(lambda record, call: settled.append(record))
    # without escalation the broken answer is what the client gets
    openai_server.chat.push(Reply(text='{"n": '), model="gpt-4o-mini")
    plain = sdk(server).chat.completions.create(model="plain", messages=ASK, response_format=COUNT)
    assert plain.choices[0].message.content == '{"n": ' and plain.routellm["route"] == "gpt-4o-mini"
    # with it, the next model up (claude-3-haiku, dearer than gpt-4o-mini) answers
    openai_server.chat.push(Reply(text='{"n": '), model="gpt-4o-mini")
    raw = sdk(server).chat.completions.with_raw_response.create(model="auto", messages=ASK, response_format=COUNT)
    reply = raw.parse()
    assert json.loads(reply.choices[0].message.content) == {"n": 2}  # claude's forced tool, as JSON content
    assert reply.model == "claude-3-haiku-20240307"
    meta = reply.routellm
    assert meta["route"] == "claude-3-haiku-20240307" and meta["escalated_from"] == "gpt-4o-mini"
    assert meta["reason"] == "escalated" and meta["status"] == "ok"
    (first,) = meta["escalations"]
    assert first["route"] == "gpt-4o-mini" and first["status"] == "escalated" and first["cost_usd"] > 0
    assert "not valid JSON" in first["escalation_reason"]
    assert raw.headers["x-routellm-route"] == "claude-3-haiku-20240307"
    assert raw.headers["x-routellm-escalated-from"] == "gpt-4o-mini"
    assert [r.status for r in settled] == ["ok", "escalated", "ok"]  # the metrics listener heard every call
    # the ledger counts both calls of the cascade, and the escalation
    total = server.get("/v1/routing/usage").json()["total"]
    assert total["calls"] == 3 and total["escalated_calls"] == 1
    assert total["by_route"]["gpt-4o-mini"]["calls"] == 2 and total["by_route"]["gpt-4o-mini"]["escalated_calls"] == 1
    assert total["by_route"]["claude-3-haiku-20240307"]["calls"] == 1
    assert total["cost_usd"] == pytest.approx(served_cost(openai_server, anthropic_server))
    assert total["estimated_calls"] == 0
    # a valid answer from the cheapest model stands
    ok = sdk(server).chat.completions.create(model="auto", messages=ASK, response_format=COUNT)
    assert ok.routellm["route"] == "gpt-4o-mini" and "escalations" not in ok.routellm
    assert json.loads(ok.choices[0].message.content) == {"n": 2}


def test_a_stream_escalates_before_its_first_chunk(serve, openai_server, anthropic_server) -> None:
    server = serve(prices=PRICES, routes={"auto": nway(cost_weight=CHEAPEST, escalate_if=True)})
    for include_usage in (False, True):
        openai_server.chat.push(Reply(text="I'm sorry, but I can't help with that."), model="gpt-4o-mini")
        extra = {"stream_options": {"include_usage": True}} if include_usage else {}
        with sdk(server).chat.completions.with_streaming_response.create(
                model="auto", messages=ASK, stream=True, **extra) as resp:
            # the headers came with the first chunk: they name the model that answered
            assert resp.headers["x-routellm-route"] == "claude-3-haiku-20240307"
            assert resp.headers["x-routellm-escalated-from"] == "gpt-4o-mini"
            chunks = list(resp.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == f"Hello from claude-3-haiku-20240307. You said: {PROMPT}"
        assert all(c.model == "claude-3-haiku-20240307" for c in chunks if c.model)  # no chunk of the refusal
        meta = chunks[-1].routellm
        assert meta["route"] == "claude-3-haiku-20240307" and meta["escalated_from"] == "gpt-4o-mini"
        assert meta["escalations"][0]["escalation_reason"] == "refusal"
        assert (chunks[-1].usage is not None) == include_usage
    usage = server.get("/v1/routing/usage").json()["total"]
    assert usage["calls"] == 4 and usage["escalated_calls"] == 2
    assert usage["by_route"]["gpt-4o-mini"]["escalated_calls"] == 2
    assert usage["cost_usd"] == pytest.approx(served_cost(openai_server, anthropic_server))


def test_a_cut_stream_during_the_escalated_call_leaves_nothing_reserved(serve, openai_server,
                                                                       anthropic_server) -> None:
    server = serve(prices=PRICES, routes={"auto": nway(cost_weight=CHEAPEST, escalate_if=True)},
                   keys=[{"label": "alice", "key": CLIENT_KEY, "budget": {"max_usd": 5.0}}])
    settled = []
    server.client.on_settled(lambda record, call: settled.append(record))
    openai_server.chat.push(Reply(text=""), model="gpt-4o-mini")  # empty: escalated
    anthropic_server.chat.push(Reply(text="a long answer " * 20, cut_after=4))
    resp = server.post("/v1/chat/completions", {"model": "auto", "messages": ASK, "stream": True})
    # nothing was sent before the cut (the answer was held back): an HTTP error, as for a whole call
    assert resp.status_code == 502 and resp.json()["error"]["code"] == "backend_stream_cut"
    assert "claude-3-haiku-20240307" in resp.json()["error"]["message"]
    assert resp.headers["x-routellm-route"] == "claude-3-haiku-20240307" and resp.headers["x-should-retry"] == "false"
    wait_until(lambda: len(settled) == 2, what="both calls to settle")
    assert [(r.route, r.status) for r in settled] == [("gpt-4o-mini", "escalated"), ("claude-3-haiku-20240307", "cut")]
    usage = server.get("/v1/routing/usage").json()
    budget = usage["key"]["budget"]
    assert budget["in_flight"] == 0 and budget["reserved_usd"] == 0
    assert budget["spent_usd"] == pytest.approx(sum(r.cost_usd for r in settled)) and budget["spent_usd"] > 0
    assert usage["key"]["escalated_calls"] == 1 and usage["key"]["calls"] == 2


def test_a_client_that_leaves_during_the_escalated_call_releases_everything(serve, openai_server,
                                                                           anthropic_server) -> None:
    server = serve(prices=PRICES, routes={"auto": nway(cost_weight=CHEAPEST, escalate_if=True)},
                   keys=[{"label": "alice", "key": CLIENT_KEY, "budget": {"max_usd": 5.0}}])
    settled = []
    server.client.on_settled(lambda record, call: settled.append(record))
    openai_server.chat.push(Reply(text=""), model="gpt-4o-mini")
    anthropic_server.chat.push(Reply(text="slow", delay_s=3.0))
    with pytest.raises(httpx.ReadTimeout):
        with httpx.Client(timeout=httpx.Timeout(30, read=0.5)) as http:
            with http.stream("POST", server.url + "/v1/chat/completions",
                             json={"model": "auto", "messages": ASK, "stream": True},
                             headers={"authorization": f"Bearer {CLIENT_KEY}"}) as resp:
                resp.read()
    wait_until(lambda: len(settled) == 2, what="both calls to settle")
    assert [r.status for r in settled] == ["escalated", "cancelled"]
    budget = wait_until(lambda: (b := server.get("/v1/routing/usage").json()["key"]["budget"])["in_flight"] == 0
                        and b, what="the reservation to be released")
    assert budget["reserved_usd"] == 0 and budget["spent_usd"] == pytest.approx(settled[0].cost_usd)


# -- the client, without our server ---------------------------------------------------------------

def _client(openai_server, anthropic_server, **kw):  # type: ignore[no-untyped-def]
    return AsyncRoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", openai_base_url=openai_server.base_url,
                             openai_api_key=OPENAI_SECRET, anthropic_base_url=anthropic_server.base_url,
                             anthropic_api_key=ANTHROPIC_SECRET, max_retries=0, prices=TABLE, **kw)


def test_the_sync_client_routes_among_n_and_escalates_tool_calls(openai_server, anthropic_server) -> None:
    routes = {"auto": RouteConfig(models=MODELS, cost_weight=CHEAPEST, escalate_if=True, router_models=SCORED_AS),
              "pair": RouteConfig(router="length", threshold=1.0, escalate_if=True)}  # a pair escalates weak -> strong
    with RoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", openai_base_url=openai_server.base_url,
                      openai_api_key=OPENAI_SECRET, anthropic_base_url=anthropic_server.base_url,
                      anthropic_api_key=ANTHROPIC_SECRET, prices=TABLE, routes=routes) as client:
        ask = [{"role": "user", "content": "add 2 and 3 with add"}]
        for model, cheap, up in (("auto", "gpt-4o-mini", "claude-3-haiku-20240307"), ("pair", "weak", "strong")):
            openai_server.chat.push(Reply(tool_calls=[{"name": "add", "args": {"a": "two"}}]), model="gpt-4o-mini")
            reply = client.chat.completions.create(model=model, messages=ask, tools=[ADD_TOOL])
            call = reply.choices[0].message.tool_calls[0]
            assert (call.function.name, json.loads(call.function.arguments)) == ("add", {"a": 2, "b": 3})
            assert reply.routellm["route"] == up and reply.routellm["escalated_from"] == cheap
            assert "arguments of tool 'add' do not match its schema" in \
                reply.routellm["escalations"][0]["escalation_reason"]
        # route= names a key
        forced = client.chat.completions.create(model="auto", messages=ask, route="gpt-4o")
        assert forced.routellm["route"] == "gpt-4o" and forced.routellm["forced"] and forced.model == "gpt-4o"
        report = client.store.usage()
        assert report.total.escalated_calls == 2 and report.total.calls == 5
        assert report.by_route["weak"].escalated_calls == 1 and report.by_route["strong"].calls == 1


async def test_the_top_model_streams_live_and_every_exit_settles(openai_server, anthropic_server) -> None:
    client = _client(openai_server, anthropic_server, budget=Budget(max_usd=5.0),
                     routes={"best": RouteConfig(models=MODELS, cost_weight=0.0, escalate_if=True, router_models=SCORED_AS),
                             "auto": RouteConfig(models=MODELS, cost_weight=CHEAPEST, escalate_if=True,
                                                 router_models=SCORED_AS)})
    records = []
    client.on_settled(lambda record, call: records.append(record))
    # the top model has nobody above it: its stream is not held back
    top = await client.stream_raw({"model": "best", "messages": ASK}, scope="s1", route="gpt-4o")
    assert not top.holding and top.decision.route == "gpt-4o"
    assert [c async for c in top][-1]["routellm"]["status"] == "ok"
    cheap = await client.stream_raw({"model": "auto", "messages": ASK}, scope="s1")
    assert cheap.holding and cheap.decision.route == "gpt-4o-mini"
    await cheap.aclose()  # closed before reading: abandoned, released
    assert records[-1].status == "abandoned" and client.budget_state("s1").in_flight == 0
    # a whole call whose escalated backend fails: both settle, the error names the key
    openai_server.chat.push(Reply(text=""), model="gpt-4o-mini")
    anthropic_server.fail_next(503)
    with pytest.raises(BackendError) as info:
        await client.complete_raw({"model": "auto", "messages": ASK}, scope="s2")
    assert info.value.route == "claude-3-haiku-20240307" and info.value.status_code == 503
    assert [r.status for r in records[-2:]] == ["escalated", "failed"]
    assert client.budget_state("s2").in_flight == 0 and client.budget_state("s2").reserved_usd == 0
    # cancelled while the escalated model thinks
    openai_server.chat.push(Reply(text=""), model="gpt-4o-mini")
    anthropic_server.chat.push(Reply(text="slow", delay_s=2.0))
    sent = len(anthropic_server.requests)
    task = asyncio.ensure_future(client.complete_raw({"model": "auto", "messages": ASK}, scope="s3"))
    await asyncio.to_thread(wait_until, lambda: len(anthropic_server.requests) > sent, 30, "the escalated request")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.status for r in records[-2:]] == ["escalated", "cancelled"]
    assert client.budget_state("s3").in_flight == 0 and client.budget_state("s3").reserved_usd == 0
    # a released stream the consumer stops reading: its call had settled ok before the first chunk
    stream = await client.stream_raw({"model": "auto", "messages": ASK}, scope="s4")
    async for _chunk in stream:
        break
    await stream.aclose()
    assert stream.record.status == "ok" and not stream.record.estimated
    assert client.budget_state("s4").in_flight == 0
    await client.aclose()


async def test_a_budget_that_cannot_take_the_escalation_keeps_the_answer(openai_server, anthropic_server) -> None:
    # a call is admitted while spent + reserved < cap: the first reserves more than the cap, the
    # escalation finds nothing left
    client = _client(openai_server, anthropic_server, budget=Budget(max_usd=4e-5, on_exhausted="raise"),
                     routes={"auto": RouteConfig(models=MODELS, cost_weight=CHEAPEST, escalate_if=True)})
    openai_server.chat.push(Reply(text=""), model="gpt-4o-mini")
    completion, record = await client.complete_raw({"model": "auto", "messages": ASK, "max_tokens": 50},
                                                   scope="tight")
    assert record.route == "gpt-4o-mini" and record.status == "ok" and "escalations" not in completion["routellm"]
    assert not anthropic_server.requests and client.budget_state("tight").in_flight == 0
    await client.aclose()


def test_answers_of_completions_and_chunks() -> None:
    request = {"tools": [ADD_TOOL], "response_format": COUNT}
    completion = {"choices": [{"index": 0, "message": {"content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}]},
        "logprobs": {"content": [{"token": "x", "logprob": -2.0}, {"token": "y", "logprob": -1.0}]}}]}
    answer = completion_answer(completion, request)
    assert answer.tools == {"add": ADD_TOOL["function"]["parameters"]} and answer.response_schema["required"] == ["n"]
    assert first_failure(DEFAULT_CHECKS, answer) is None and answer.logprobs == [-2.0, -1.0]
    assert first_failure([low_confidence(-1.0)], answer) == "mean token logprob -1.500 < -1.0"
    chunks = [{"choices": [{"index": 0, "delta": {"tool_calls": [
                  {"index": 0, "id": "c", "function": {"name": "add", "arguments": '{"a": '}}]}}]},
              {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
    streamed = stream_answer(chunks, request)
    assert streamed.tool_calls[0].arguments == '{"a": "x"}'
    assert "arguments of tool 'add'" in first_failure(DEFAULT_CHECKS, streamed)
    text = stream_answer([{"choices": [{"index": 0, "delta": {"content": '{"n": 4}'}}]}], {"response_format": COUNT})
    assert first_failure(DEFAULT_CHECKS, text) is None
    refusal = completion_answer({"choices": [{"message": {"content": None, "refusal": "I can't help with that."}}]},
                                {"response_format": COUNT})
    assert "not valid JSON" in first_failure(DEFAULT_CHECKS, refusal)
    unnamed = completion_answer({"choices": [{"message": {"tool_calls": [{"function": {"arguments": "{}"}}]}}]}, {})
    assert "could not be parsed" in first_failure(DEFAULT_CHECKS, unnamed)
