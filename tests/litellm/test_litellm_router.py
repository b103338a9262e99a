"""The plug-in in a real ``litellm.Router`` over the local OpenAI-format server: which
model group each request reaches follows our router's scores, a held share holds, N
models weigh cost, streams route, the decision reaches LiteLLM's callbacks, and a bad
configuration fails when the plug-in is built."""

from __future__ import annotations

import asyncio
import random

import litellm
import pytest
from llm_helpers import STRONG_MODEL, WEAK_MODEL, group, logged, models_called

from routellm_integrations.errors import InvalidThresholdError, UnknownRouterError
from routellm_integrations.litellm import LiteLLMConfigError, RouteLLMPlugin
from routellm_integrations.litellm.plugin import _fingerprint as fingerprint
from routellm_integrations.routers.length import LengthRouter

ALIAS = "routellm-router"
# LiteLLM's logging worker lives on the event loop of its first call: one loop for the
# module's tests, so every test's success callbacks run
pytestmark = pytest.mark.asyncio(loop_scope="session")


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def routed_router(model_list, **options):
    plugin = RouteLLMPlugin(model_list=model_list, **options)
    return plugin, litellm.Router(model_list=[*model_list, plugin.deployment()])


async def test_routes_follow_the_router_scores(model_list, openai_server, recorder):
    _plugin, router = routed_router(model_list, strong="big", weak="small", router="length", threshold=0.5)
    prompts = ["hi", "x" * 450, "what is 2+2?", "y" * 1200, "z" * 399, "w" * 401]
    scores = LengthRouter().score(prompts)  # the order the router gives them, computed first
    expected = [STRONG_MODEL if s >= 0.5 else WEAK_MODEL for s in scores]
    assert set(expected) == {STRONG_MODEL, WEAK_MODEL}
    for p in prompts:
        await router.acompletion(model=ALIAS, messages=ask(p))
    assert models_called(openai_server) == expected
    by_text = {e["text"]: e["routellm"] for e in await logged(recorder, prompts)}
    decisions = [by_text[p] for p in prompts]
    assert [d["model_group"] for d in decisions] == ["big" if m == STRONG_MODEL else "small" for m in expected]
    for d, s in zip(decisions, scores):
        assert d["score"] == pytest.approx(float(s)) and d["threshold"] == 0.5 and d["router"] == "length"


async def test_the_request_reaches_the_model_as_sent(model_list, openai_server):
    _plugin, router = routed_router(model_list, strong="big", weak="small", router="length", threshold=0.5)
    await router.acompletion(model=ALIAS, messages=ask("q" * 600), temperature=0.25, max_tokens=33)
    [request] = openai_server.requests_to("/v1/chat/completions")
    assert request.json["model"] == STRONG_MODEL and request.json["max_tokens"] == 33
    assert request.json["temperature"] == 0.25 and request.json["messages"] == ask("q" * 600)
    await router.acompletion(model=ALIAS, messages=ask("short"))
    assert "max_tokens" not in openai_server.requests_to("/v1/chat/completions")[-1].json


async def test_the_scored_turn_is_the_last_user_message(model_list, openai_server):
    _plugin, router = routed_router(model_list, strong="big", weak="small", router="length", threshold=0.5)
    long_history = [{"role": "user", "content": "q" * 2000}, {"role": "assistant", "content": "a" * 2000},
                    {"role": "user", "content": "ok"}]
    await router.acompletion(model=ALIAS, messages=long_history)
    assert models_called(openai_server) == [WEAK_MODEL]  # "ok" is short; the history is not scored


async def test_a_held_share_holds(model_list, openai_server, recorder):
    plugin, router = routed_router(model_list, strong="big", weak="small", router="length", strong_fraction=0.3)
    rng = random.Random(7)
    prompts = [f"{i}:" + "w" * rng.randint(5, 2000) for i in range(100)]
    for p in prompts:
        await router.acompletion(model=ALIAS, messages=ask(p))
    called = models_called(openai_server)
    share = called.count(STRONG_MODEL) / len(called)
    assert len(called) == 100 and abs(share - 0.3) <= 0.08, share
    events = await logged(recorder, prompts)
    assert len(events) == 100 and all(e["routellm"]["strong_fraction"] == 0.3 for e in events)
    assert plugin.policy.online is not None and plugin.policy.online.realised_share == pytest.approx(share, abs=0.02)


async def test_n_models_weigh_cost(openai_server):
    url = openai_server.base_url
    models = ["gpt-4-1106-preview", "gpt-4o-mini-2024-07-18", "gpt-3.5-turbo-0125"]
    model_list = [group(f"g{i}", m, url) for i, m in enumerate(models)]
    routes = {m: f"g{i}" for i, m in enumerate(models)}
    prompt = ask("Prove that there are infinitely many primes, then give a worked example.")
    costly, router = routed_router(model_list, models=routes, cost_weight=0.0)
    await router.acompletion(model=ALIAS, messages=prompt)
    d0 = costly.policy.decide(prompt[-1]["content"], dry_run=True,
                              costs=costly._expected_costs(len(prompt[-1]["content"]), 2)).decision
    best = max(d0.qualities, key=d0.qualities.get)
    cheap, router2 = routed_router(model_list, models=routes, cost_weight=1e6)
    await router2.acompletion(model=ALIAS, messages=prompt)
    costs = cheap._expected_costs(len(prompt[-1]["content"]), 2)
    cheapest = min(costs, key=costs.get)
    assert best != cheapest  # the two knobs must disagree for the test to say anything
    assert models_called(openai_server) == [best, cheapest]


async def test_async_stream_routes_and_reports(model_list, openai_server, recorder):
    _plugin, router = routed_router(model_list, strong="big", weak="small", router="length", threshold=0.5)
    chunks = []
    stream = await router.acompletion(model=ALIAS, messages=ask("s" * 900), stream=True)
    async for chunk in stream:
        chunks.append(chunk.choices[0].delta.content or "")
    assert "".join(chunks) and models_called(openai_server) == [STRONG_MODEL]
    [event] = await logged(recorder, ["s" * 900])
    assert event["kind"] == "success" and event["stream"]
    assert event["routellm"]["route"] == "strong" and event["routellm"]["model_group"] == "big"


async def test_a_call_litellm_routes_without_asking_is_recorded(model_list, openai_server, recorder):
    _plugin, router = routed_router(model_list, strong="big", weak="small", router="length", threshold=0.0)
    await router.acompletion(model=ALIAS, messages=[{"role": "user", "content": "    "}])
    assert models_called(openai_server) == [WEAK_MODEL]  # threshold 0 would send any scored text strong
    [event] = await logged(recorder, ["    "])
    assert event["routellm"]["step_policy"] == "not_scored" and event["routellm"]["model_group"] == "small"


def test_mf_scores_the_groups_models(model_list):
    plugin = RouteLLMPlugin(model_list=model_list, strong="big", weak="small")
    assert plugin.policy.scored_pair == ["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"]


def test_hot_swap_keeps_serving(model_list):
    plugin = RouteLLMPlugin(model_list=model_list, strong="big", weak="small", router="length", strong_fraction=0.5)
    report = plugin.swap_router(LengthRouter(midpoint=50), prompts=["a" * n for n in range(10, 500, 10)])
    assert report.new_router == "length" and report.share_kept


@pytest.mark.parametrize("options, error, words", [
    ({"strong": "big", "weak": "small", "router": "no-such-router"}, UnknownRouterError, "no-such-router"),
    ({"strong": "big", "weak": "tiny"}, LiteLLMConfigError, "tiny"),
    ({"strong": "big", "weak": "small", "threshold": 1.5}, InvalidThresholdError, "threshold"),
    ({"strong": "big"}, LiteLLMConfigError, "weak="),
    ({"models": {"a": "big", "b": "small"}, "threshold": 0.5}, InvalidThresholdError, "threshold"),
])
def test_a_bad_config_fails_at_start_up(model_list, options, error, words):
    with pytest.raises(error, match=words):
        RouteLLMPlugin(model_list=model_list, **options)


def test_sync_completion_on_the_alias_is_refused_by_litellm(model_list, openai_server):
    """LiteLLM runs pre-routing strategies on its async path only: the sync call fails
    loudly (it is not silently sent to some group)."""
    _plugin, router = routed_router(model_list, strong="big", weak="small", router="length", threshold=0.5)
    with pytest.raises(litellm.BadRequestError):
        router.completion(model=ALIAS, messages=ask("hello"))
    assert models_called(openai_server) == []


async def test_the_held_share_lives_in_the_store(model_list, openai_server, tmp_path):
    store = f"sqlite:///{tmp_path / 'routing.db'}"
    options = {"strong": "big", "weak": "small", "router": "length", "strong_fraction": 0.3, "store": store,
                   "online_key": "litellm-test", "checkpoint_every": 5}
    first, router = routed_router(model_list, **options)
    for i in range(20):
        await router.acompletion(model=ALIAS, messages=ask(f"{i} " + "v" * (37 * i % 1500)))
    seen = first.policy.online.state_dict()
    assert seen["seen"] == 20
    again = RouteLLMPlugin(model_list=model_list, **options)  # a restart over the same store
    restored = again.policy.online.state_dict()
    assert restored["seen"] == 20 and restored["strong"] == seen["strong"]
    assert again.policy.threshold == pytest.approx(first.policy.threshold)


async def test_a_failed_call_carries_its_decision_to_the_failure_callback(model_list, openai_server, recorder):
    plugin = RouteLLMPlugin(model_list=model_list, strong="big", weak="small", router="length", threshold=0.5)
    router = litellm.Router(model_list=[*model_list, plugin.deployment()], num_retries=0)
    openai_server.fail_next(400, times=1, message="the backend refuses this one")
    with pytest.raises(litellm.BadRequestError):
        await router.acompletion(model=ALIAS, messages=ask("f" * 700))
    [event] = await logged(recorder, ["f" * 700])
    assert event["kind"] == "failure" and event["routellm"]["route"] == "strong"
    assert event["routellm"]["model_group"] == "big" and event["routellm"]["score"] == pytest.approx(0.7 / 1.1)


async def test_no_user_message_goes_to_the_fallback_and_says_why(model_list):
    """LiteLLM does not ask the classifier for such a request (see the test above); asked
    anyway, the plug-in sends it to the fallback and records why, rather than failing."""
    from litellm.types.router import RoutingContext

    plugin = RouteLLMPlugin(model_list=model_list, strong="big", weak="small", router="length", threshold=0.0)
    only_system = [{"role": "system", "content": "a system prompt " * 50}]
    context = RoutingContext(raw_messages=only_system, structured_messages=only_system, candidate_models=[])
    assert await plugin.classify(context) == "weak"  # threshold 0 would send any scored text strong
    record = plugin._take(fingerprint(only_system))
    assert record["step_policy"] == "no_text" and "no user message" in record["note"]
    assert record["model_group"] == "small"


async def test_concurrent_calls_each_carry_their_own_decision(model_list, openai_server, recorder):
    _plugin, router = routed_router(model_list, strong="big", weak="small", router="length", threshold=0.5)
    prompts = [f"c{i} " + "k" * (60 * i) for i in range(24)]
    await asyncio.gather(*(router.acompletion(model=ALIAS, messages=ask(p)) for p in prompts))
    events = {e["text"]: e for e in await logged(recorder, prompts)}
    assert len(events) == len(prompts)
    for p, s in zip(prompts, LengthRouter().score(prompts)):
        e = events[p]
        assert e["routellm"]["score"] == pytest.approx(float(s))
        assert e["model"] == (STRONG_MODEL if s >= 0.5 else WEAK_MODEL)
        assert e["routellm"]["model_group"] == ("big" if s >= 0.5 else "small")
        assert "served_by_model_group" not in e["routellm"]


async def test_a_litellm_fallback_group_is_recorded_beside_the_decision(model_list, openai_server, recorder):
    plugin = RouteLLMPlugin(model_list=model_list, strong="big", weak="small", router="length", threshold=0.5)
    router = litellm.Router(model_list=[*model_list, plugin.deployment()], num_retries=0,
                            fallbacks=[{"big": ["small"]}])
    openai_server.fail_next(500, times=1)
    await router.acompletion(model=ALIAS, messages=ask("b" * 800))
    assert models_called(openai_server) == [STRONG_MODEL, WEAK_MODEL]
    events = await logged(recorder, ["b" * 800] * 2)  # the failed attempt, then the fallback's success
    assert [e["kind"] for e in events] == ["failure", "success"]
    assert "served_by_model_group" not in events[0]["routellm"]
    successes = events[1:]
    assert successes and successes[-1]["routellm"]["route"] == "strong"
    assert successes[-1]["routellm"]["served_by_model_group"] == "small"


async def test_a_tool_step_keeps_its_turns_route(model_list, openai_server, recorder):
    _plugin, router = routed_router(model_list, strong="big", weak="small", router="length", threshold=0.5)
    ask_long = [{"role": "user", "content": "t" * 900}]
    await router.acompletion(model=ALIAS, messages=ask_long)
    # the tool-calling step of the same turn: its last message is short, the turn is the long ask
    step = [*ask_long, {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
    await router.acompletion(model=ALIAS, messages=step)
    assert models_called(openai_server) == [STRONG_MODEL, STRONG_MODEL]
    [kept] = [e for e in await logged(recorder, ["t" * 900, "ok"]) if e["text"] == "ok"]
    assert kept["routellm"]["step_policy"] == "per_turn:kept" and kept["routellm"]["route"] == "strong"
