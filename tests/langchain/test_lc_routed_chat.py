"""RoutedChat over scripted fake backends: routing, metadata, usage counted once, tools,
structured output, streaming, errors, concurrency. Fast: no HTTP, no model load."""

from __future__ import annotations

import subprocess
import sys

import pytest
from langchain_core.callbacks import BaseCallbackHandler, UsageMetadataCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel

from langchain_routellm import RoutedChat, routellm_cost_tracker
from routellm_integrations.errors import InvalidRouteError
from lc_fakes import ScriptedChatModel
from routellm_integrations.costs import PriceTable, Usage
from routellm_integrations.errors import InvalidPromptError, UnpricedModelWarning

SHORT = "hi"                                                     # length router: weak
LONG = "Please write a detailed essay about the history of computing machines."  # strong


def make(**kw):
    strong = ScriptedChatModel(model="gpt-4o", provider="openai")
    weak = ScriptedChatModel(model="claude-3-5-haiku-latest", provider="anthropic")
    opts = {"router": "length", "router_options": {"midpoint": 20}, "threshold": 0.5, **kw}
    return RoutedChat(strong=strong, weak=weak, **opts), strong, weak


class Recorder(BaseCallbackHandler):
    def __init__(self):
        self.starts, self.events, self.ends = [], [], []

    def on_chat_model_start(self, serialized, messages, *, run_id, tags=None, metadata=None, **kw):
        self.starts.append({"tags": tags, "metadata": metadata, "run_id": run_id})

    def on_llm_end(self, response, *, run_id, **kw):
        self.ends.append(response)

    def on_custom_event(self, name, data, *, run_id, **kw):
        self.events.append((name, data, run_id))


def test_routes_each_call_and_reports_the_backend():
    llm, strong, weak = make()
    r1, r2 = llm.invoke(SHORT), llm.invoke(LONG)
    assert r1.content == f"claude-3-5-haiku-latest: {SHORT}" and len(weak.calls) == 1
    assert r2.content.startswith("gpt-4o:") and len(strong.calls) == 1
    meta = r2.response_metadata["routellm"]
    assert r2.response_metadata["model_name"] == "gpt-4o"
    assert {k: meta[k] for k in ("route", "model", "provider", "router", "threshold", "reason")} == {
        "route": "strong", "model": "gpt-4o", "provider": "openai", "router": "length", "threshold": 0.5,
        "reason": "scored"}
    assert 0.5 <= meta["score"] <= 1 and meta["latency_ms"] >= 0
    u = r2.usage_metadata
    assert meta["cost_usd"] == pytest.approx((u["input_tokens"] * 2.5 + u["output_tokens"] * 10.0) / 1e6)


def test_usage_counted_once_under_the_backend_model_and_tags_metadata():
    llm, _, _ = make()
    usage, rec = UsageMetadataCallbackHandler(), Recorder()
    r1 = llm.invoke(SHORT, config={"callbacks": [usage, rec]})
    r2 = llm.invoke(LONG, config={"callbacks": [usage, rec]})
    assert usage.usage_metadata["claude-3-5-haiku-latest"]["total_tokens"] == r1.usage_metadata["total_tokens"]
    assert usage.usage_metadata["gpt-4o"]["total_tokens"] == r2.usage_metadata["total_tokens"]
    assert set(usage.usage_metadata) == {"claude-3-5-haiku-latest", "gpt-4o"}
    assert len(rec.starts) == 2 and len(rec.ends) == 2  # one LLM run per call
    assert "routellm:weak" in rec.starts[0]["tags"] and "routellm:strong" in rec.starts[1]["tags"]
    md = rec.starts[1]["metadata"]
    assert md["routellm_route"] == "strong" and md["ls_provider"] == "openai" and md["ls_model_name"] == "gpt-4o"
    assert rec.starts[0]["metadata"]["ls_model_name"] == "claude-3-5-haiku-latest"


def test_streaming_attaches_routing_metadata_once_and_counts_usage_once():
    llm, _, _ = make()
    usage = UsageMetadataCallbackHandler()
    chunks = list(llm.stream(LONG, config={"callbacks": [usage]}))
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert sum("routellm" in c.response_metadata for c in chunks) == 1
    assert chunks[-1].chunk_position == "last"
    assert full.response_metadata["model_name"] == "gpt-4o"
    assert full.response_metadata["routellm"]["route"] == "strong"
    assert full.content.startswith("gpt-4o: Please")
    assert usage.usage_metadata["gpt-4o"]["total_tokens"] == full.usage_metadata["total_tokens"]
    assert full.response_metadata["routellm"]["cost_usd"] is not None


async def test_async_paths_route_too():
    llm, strong, weak = make()
    r = await llm.ainvoke(LONG)
    assert r.response_metadata["routellm"]["route"] == "strong"
    chunks = [c async for c in llm.astream(SHORT)]
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert full.response_metadata["routellm"]["route"] == "weak" and full.content.startswith("claude")
    events = [e async for e in llm.astream_events(LONG, version="v2")]
    starts = [e for e in events if e["event"] == "on_chat_model_start"]
    assert len(starts) == 1 and "routellm:strong" in starts[0]["tags"]
    assert starts[0]["metadata"]["routellm_route"] == "strong"


def test_batch_routes_each_input_separately():
    llm, strong, weak = make()
    out = llm.batch([SHORT, LONG, SHORT])
    assert [m.response_metadata["routellm"]["route"] for m in out] == ["weak", "strong", "weak"]
    res = llm.generate([[HumanMessage(SHORT)], [HumanMessage(LONG)]])
    assert [g[0].message.response_metadata["routellm"]["route"] for g in res.generations] == ["weak", "strong"]


def test_forced_route_per_call_and_at_construction():
    llm, strong, weak = make()
    first, second = (llm.invoke(LONG, route="weak").response_metadata["routellm"] for _ in range(2))
    assert first["call_id"] != second["call_id"]  # each call is its own record
    assert {k: v for k, v in first.items() if k not in ("call_id", "latency_ms")} == {
        k: v for k, v in second.items() if k not in ("call_id", "latency_ms")}
    r = llm.invoke(LONG, route="weak")
    assert r.response_metadata["routellm"]["route"] == "weak" and r.response_metadata["routellm"]["reason"] == "forced"
    # LangChain's model override names a model id: the backend serving it answers
    assert llm.invoke(SHORT, model="gpt-4o").response_metadata["model_name"] == "gpt-4o"
    assert "model" not in strong.calls[-1]["kwargs"]  # the override is not sent to the backend
    with pytest.warns(DeprecationWarning, match="route='weak'"):  # a route key is route='weak' now
        assert llm.invoke(SHORT, model="weak").response_metadata["routellm"]["route"] == "weak"
    with pytest.raises(InvalidRouteError, match="route='gpt-9' names no backend"):
        llm.invoke(SHORT, route="gpt-9")
    with pytest.raises(InvalidRouteError, match="route='gpt-9' names no backend"):
        llm.invoke(SHORT, model="gpt-9")
    forced, _, _ = make(route="strong")
    assert forced.invoke(SHORT).response_metadata["routellm"]["route"] == "strong"
    with pytest.warns(DeprecationWarning, match="model= is now called route="):
        old, _, _ = make(model="strong")
    assert old.route == "strong" and old.invoke(SHORT).response_metadata["routellm"]["route"] == "strong"
    assert llm._get_ls_params(route="weak")["ls_model_name"] == "claude-3-5-haiku-latest"
    assert llm._get_ls_params(model="sentinel")["ls_model_name"] == "sentinel"


def test_route_on_conversation_and_last_human():
    llm, _, _ = make()
    msgs = [SystemMessage("x" * 300), HumanMessage(LONG), AIMessage("ok"), HumanMessage(SHORT)]
    assert llm.invoke(msgs).response_metadata["routellm"]["route"] == "weak"
    conv, _, _ = make(route_on="conversation")
    assert conv.invoke(msgs).response_metadata["routellm"]["route"] == "strong"


def test_stop_sequences_and_defaults_reach_the_backend():
    llm, strong, weak = make(temperature=0.2, max_tokens=50, stop=["never"])
    r = llm.invoke("hi you there", stop=["you"])
    assert r.content == "claude-3-5-haiku-latest: hi "
    assert weak.calls[-1]["stop"] == ["you"]
    assert weak.calls[-1]["kwargs"]["temperature"] == 0.2 and weak.calls[-1]["kwargs"]["max_tokens"] == 50
    llm.invoke(SHORT)
    assert weak.calls[-1]["stop"] == ["never"]
    ls = llm._get_ls_params(stop=["x"])
    assert ls["ls_temperature"] == 0.2 and ls["ls_max_tokens"] == 50 and ls["ls_stop"] == ["x"]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_bind_tools_each_backend_formats_at_call_time():
    llm, strong, weak = make()
    bound = llm.bind_tools([add], tool_choice="any")
    r = bound.invoke("add 2 and 3")
    assert r.tool_calls[0]["name"] == "add" and r.tool_calls[0]["args"] == {"a": 2, "b": 3}
    sent = weak.calls[-1]["kwargs"]
    assert sent["tools"][0]["function"]["name"] == "add" and sent["tool_choice"] == "any"
    chunks = list(bound.stream(LONG + " add 4 and 5"))
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert full.tool_calls[0]["args"] == {"a": 4, "b": 5}
    assert full.response_metadata["routellm"]["route"] == "strong"


class Joke(BaseModel):
    setup: str
    punchline: str


def test_with_structured_output_every_method():
    llm, _, _ = make()
    for method in ("function_calling", "json_schema", "json_mode"):
        out = llm.with_structured_output(Joke, method=method).invoke("tell a joke")
        assert isinstance(out, Joke)
    raw = llm.with_structured_output(Joke, include_raw=True).invoke(LONG)
    assert raw["raw"].response_metadata["routellm"]["route"] == "strong" and isinstance(raw["parsed"], Joke)


def test_custom_event_goes_to_the_parent_run():
    llm, _, _ = make()
    rec = Recorder()
    chain = RunnableLambda(lambda x: x) | llm
    chain.invoke(LONG, config={"callbacks": [rec]})
    assert [e[0] for e in rec.events] == ["routellm_route"]
    assert rec.events[0][1]["route"] == "strong" and rec.events[0][1]["model"] == "gpt-4o"
    llm.invoke(LONG, config={"callbacks": [rec]})  # no parent run: metadata/tags only, no error
    assert len(rec.events) == 1


async def test_custom_event_in_astream_events_of_a_chain():
    llm, _, _ = make()
    chain = RunnableLambda(lambda x: x) | llm
    events = [e async for e in chain.astream_events(SHORT, version="v2")]
    custom = [e for e in events if e["event"] == "on_custom_event"]
    assert len(custom) == 1 and custom[0]["name"] == "routellm_route" and custom[0]["data"]["route"] == "weak"


def test_no_messages_and_image_only_messages():
    llm, strong, weak = make()
    with pytest.raises(InvalidPromptError, match="no messages"):
        llm.invoke([])
    with pytest.raises(InvalidPromptError, match="no user message"):
        llm.invoke([SystemMessage("only a system prompt")])
    image = HumanMessage(content=[{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}])
    r = llm.invoke([image])
    assert r.response_metadata["routellm"]["route"] == "strong"
    assert r.response_metadata["routellm"]["reason"] == "no_text" and r.response_metadata["routellm"]["score"] is None
    strict, _, _ = make(on_no_text="error")
    with pytest.raises(InvalidPromptError, match="no text"):
        strict.invoke([image])
    assert not strong.calls[:-1] and not weak.calls


def test_backend_error_names_the_route_and_records_no_cost():
    llm, strong, weak = make()
    weak.fail = ConnectionError("backend down")
    with routellm_cost_tracker() as tracker:
        with pytest.raises(ConnectionError) as info:
            llm.invoke(SHORT)
        assert llm.invoke(LONG).content.startswith("gpt-4o")
        with pytest.raises(ConnectionError):
            list(llm.stream(SHORT))
    assert any("weak backend" in n and "claude-3-5-haiku-latest" in n for n in info.value.__notes__)
    assert info.value.routellm_route == "weak"
    assert tracker.successful_requests == 1 and tracker.total.failed_calls == 2
    assert tracker.by_route["weak"].calls == 0 and tracker.by_route["weak"].failed_calls == 2
    assert tracker.by_route["weak"].cost_usd == 0 and tracker.by_route["strong"].calls == 1


async def test_concurrent_abatch_of_200_calls_has_consistent_totals():
    llm, strong, weak = make(router="random", router_options={"seed": 7}, threshold=0.5)
    prompts = [f"question number {i}" for i in range(200)]
    usage = UsageMetadataCallbackHandler()
    with routellm_cost_tracker() as tracker:
        out = await llm.abatch(prompts, config={"callbacks": [usage], "max_concurrency": 50})
    routes = [m.response_metadata["routellm"]["route"] for m in out]
    n_strong = routes.count("strong")
    assert len(out) == 200 and 0 < n_strong < 200
    assert len(strong.calls) == n_strong and len(weak.calls) == 200 - n_strong
    for m, p in zip(out, prompts):  # each answer belongs to its own prompt
        assert m.content.endswith(p)
    assert tracker.successful_requests == 200 and tracker.by_route["strong"].calls == n_strong
    assert tracker.total_tokens == sum(m.usage_metadata["total_tokens"] for m in out)
    assert tracker.total_tokens == sum(v["total_tokens"] for v in usage.usage_metadata.values())
    expected = sum(m.response_metadata["routellm"]["cost_usd"] for m in out)
    assert tracker.total_cost == pytest.approx(expected)


def test_cost_tracker_matches_the_price_table_by_hand_and_savings():
    llm, _, _ = make()
    with routellm_cost_tracker() as t:
        r1 = llm.invoke(SHORT)
        r2 = llm.invoke(LONG)
    u1, u2 = r1.usage_metadata, r2.usage_metadata
    weak_cost = (u1["input_tokens"] * 0.80 + u1["output_tokens"] * 4.00) / 1e6
    strong_cost = (u2["input_tokens"] * 2.50 + u2["output_tokens"] * 10.00) / 1e6
    assert t.total_cost == pytest.approx(weak_cost + strong_cost)
    assert t.by_model["claude-3-5-haiku-latest"].cost_usd == pytest.approx(weak_cost)
    as_strong = (u1["input_tokens"] * 2.50 + u1["output_tokens"] * 10.00) / 1e6
    assert t.savings_usd == pytest.approx(as_strong - weak_cost)
    assert "Savings" in str(t)


@pytest.mark.filterwarnings("ignore::routellm_integrations.errors.UnpricedModelWarning")
def test_unknown_backend_model_is_unpriced_not_free():
    strong = ScriptedChatModel(model="my-finetune-xyz", provider="openai")
    weak = ScriptedChatModel(model="gpt-4o-mini", provider="openai")
    llm = RoutedChat(strong=strong, weak=weak, router="length", router_options={"midpoint": 20},
                     threshold=0.5, prices=PriceTable.default())
    with pytest.warns(UnpricedModelWarning, match="my-finetune-xyz"):
        r = llm.invoke(LONG)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnpricedModelWarning)
        llm.invoke(LONG)  # warned once per price table, not per call
    assert r.response_metadata["routellm"]["cost_usd"] is None
    with routellm_cost_tracker() as t:
        llm.invoke(LONG)
        llm.invoke(SHORT)
    assert t.unpriced_calls == 1 and t.savings_usd is None and t.total_cost > 0
    priced = RoutedChat(strong=strong, weak=weak, router="length",
                        prices=PriceTable.default().with_prices({"openai": {"my-finetune-xyz": (3.0, 12.0)}}))
    u = Usage.from_dict(priced.invoke(LONG, route="strong").usage_metadata)
    assert priced.invoke(LONG, route="strong").response_metadata["routellm"]["cost_usd"] == pytest.approx(
        (u.input_tokens * 3 + u.output_tokens * 12) / 1e6)


def test_validation_and_repr_hide_secrets():
    with pytest.raises(ValueError, match="threshold must be in"):
        make(threshold=1.5)
    with pytest.raises(Exception, match="not both"):
        make(threshold=0.3, strong_fraction=0.5)
    from langchain_openai import ChatOpenAI
    llm = RoutedChat(strong=ChatOpenAI(model="gpt-4o", api_key="sk-very-secret-123"),
                     weak=ChatOpenAI(model="gpt-4o-mini", api_key="sk-very-secret-123"), router="random")
    assert "sk-very-secret-123" not in repr(llm) and "sk-very-secret-123" not in str(llm.asdict())
    assert "sk-very-secret-123" not in str(llm._get_invocation_params())


def test_strong_fraction_is_held_on_live_traffic():
    import random

    prompts = ["a" * n for n in range(1, 201)]
    random.Random(0).shuffle(prompts)
    llm, _, _ = make(threshold=None, strong_fraction=0.3, calibration_prompts=prompts[:50])
    routes = [llm.invoke(p).response_metadata["routellm"]["route"] for p in prompts]
    assert abs(routes.count("strong") / len(prompts) - 0.3) <= 0.03
    held = llm.get_threshold()
    assert [llm.decide([HumanMessage("a" * 500)]).route for _ in range(50)] == ["strong"] * 50
    assert llm.get_threshold() == held  # decide() previews: live traffic alone moves the threshold
    # traffic that shifts (short prompts, then long ones) still ends near the target
    shifted = ["a" * n for n in random.Random(1).sample(range(1, 100), 99)]
    shifted += ["a" * n for n in random.Random(2).sample(range(400, 2000), 200)]
    drifting, _, _ = make(threshold=None, strong_fraction=0.3)
    routes = [drifting.invoke(p).response_metadata["routellm"]["route"] for p in shifted]
    assert abs(routes.count("strong") / len(shifted) - 0.3) <= 0.04


def test_import_is_light():
    code = ("import sys, langchain_routellm; bad = [m for m in ('torch', 'transformers', 'onnxruntime', "
            "'sentence_transformers', 'langchain.agents') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
