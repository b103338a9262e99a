"""RoutedLLM over N real LlamaIndex clients (OpenAI x2 and Anthropic over the local
wire-format servers): the cost-weighted choice and what every report names, typed errors,
serialisation, and escalation (an unknown tool, a refusal, an empty answer; streams held
back until reviewed; cancellation, cut and abandoned streams during the escalated call)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.tools import FunctionTool
from llama_index.llms.anthropic import Anthropic
from llama_index.llms.openai import OpenAI
from scripted_llm import ScriptedLLM

from llamaindex_routellm import ObjectsRequired, RoutedLLM
from llamaindex_routellm.turns import chat_turn
from routellm_integrations.budgets import Budget
from routellm_integrations.costs import PriceTable, Usage
from routellm_integrations.errors import (InvalidRouteError, InvalidThresholdError, RouteLLMError, RouterOptionError,
                                          UnknownModelError)
from routellm_integrations.labels.shadow import ShadowSampler
from routellm_integrations.routers.length import LengthRouter
from routellm_integrations.testing.openai_compat import Reply

PRICES = PriceTable.default().with_prices({"openai": {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)},
                                           "anthropic": {"claude-3-haiku-20240307": (0.25, 1.25)}})
PROMPT = "Find the number of ordered pairs of positive integers (m, n) such that m^2 n = 20^20."
KEYS = ["gpt-4o", "gpt-4o-mini", "claude-3-haiku"]
# the haiku backend is scored as claude-3.5-sonnet: predicted at least as good as gpt-4o-mini, so the
# Anthropic server is the cascade's second step (escalation skips a dearer model predicted worse)
SCORED_AS = "claude-3-5-sonnet-20240620"
NAMES = ["gpt-4o", "gpt-4o-mini", SCORED_AS]
REFUSAL = "I'm sorry, but I can't help with that."
SECRET = "sk-live-do-not-print-0123456789"


def oa(server, name, key="sk-test"):
    return OpenAI(model=name, api_base=server.base_url, api_key=key, max_retries=0)


def models(openai_server, anthropic_server, key="sk-test"):
    return {"gpt-4o": oa(openai_server, "gpt-4o", key), "gpt-4o-mini": oa(openai_server, "gpt-4o-mini", key),
            "claude-3-haiku": Anthropic(model="claude-3-haiku-20240307", base_url=anthropic_server.base_url,
                                        api_key=key, max_retries=0)}


def routed(openai_server, anthropic_server, **kw) -> RoutedLLM:
    opts = {"prices": PRICES, "router_models": {"claude-3-haiku": SCORED_AS}, **kw}
    return RoutedLLM(models=models(openai_server, anthropic_server), **opts)


def two_openai(openai_server, **kw) -> RoutedLLM:
    """gpt-4o-mini escalates to gpt-4o, the top, which streams live."""
    return RoutedLLM(models={"gpt-4o": oa(openai_server, "gpt-4o"), "gpt-4o-mini": oa(openai_server, "gpt-4o-mini")},
                     prices=PRICES, cost_weight=1e7, **kw)


def msgs(text: str = PROMPT) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def text(response) -> str:
    """A chat or completion response's (whole) text."""
    message = getattr(response, "message", None)
    return (message.content if message is not None else response.text) or ""


def clean(llm: RoutedLLM, scope: str = "global") -> None:
    state = llm.policy.budget.state(scope)
    assert state.in_flight == 0 and state.reserved_usd == 0
    assert state.spent_usd == pytest.approx(llm.ledger.total.cost_usd)


# -- the choice, and what every report names ------------------------------------------------------
def test_each_call_goes_to_the_model_the_cost_weight_picks(openai_server, anthropic_server, events):
    chosen = []
    for weight in (0.0, 300.0, 3000.0, 1e7):
        llm = routed(openai_server, anthropic_server, cost_weight=weight)
        q = llm.policy.router.quality([PROMPT], NAMES)[0]
        c = llm._calls.expected_costs(chat_turn(msgs(), "last_user", forced=False))
        want = KEYS[int(np.argmax(q - weight * np.array([c[k] for k in KEYS])))]
        events.clear()
        reply = llm.chat(msgs())
        meta = reply.additional_kwargs["routellm"]
        assert meta["route"] == want and meta["models"] == KEYS and meta["cost_weight"] == weight
        assert meta["threshold"] is None and meta["reason"] == "scored" and meta["status"] == "ok"
        assert meta["expected_costs_usd"] == pytest.approx(c)
        assert [meta["qualities"][k] for k in KEYS] == pytest.approx([float(v) for v in q])
        assert meta["model"].startswith(llm.backends[want].metadata.model_name)
        assert meta["strong_model"] == "gpt-4o" and meta["weak_model"] == "gpt-4o-mini"  # dearest, cheapest
        assert reply.message.content.startswith(f"Hello from {llm.backends[want].metadata.model_name}")
        (event,) = events
        assert (event.route, event.models, event.cost_weight, event.threshold) == (want, KEYS, weight, None)
        assert event.qualities == meta["qualities"] and event.expected_costs_usd == meta["expected_costs_usd"]
        ledger = llm.ledger.summary()
        assert set(ledger["by_route"]) == {want} and ledger["cost_usd"] == pytest.approx(meta["cost_usd"])
        chosen.append(want)
    assert chosen[-1] == "gpt-4o-mini" and len(set(chosen)) > 1  # the weight matters; a huge one: the cheapest


def test_a_route_override_forces_any_key_and_metadata_spans_all_backends(openai_server, anthropic_server):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7)
    reply = llm.chat(msgs(), route="claude-3-haiku")
    meta = reply.additional_kwargs["routellm"]
    assert (meta["route"], meta["forced"], meta["provider"]) == ("claude-3-haiku", True, "anthropic")
    assert reply.message.content.startswith("Hello from claude-3-haiku")
    with pytest.raises(InvalidRouteError, match="gpt-4o-mini"):
        llm.chat(msgs(), route="strong")  # a pair's name means nothing among N
    metas = [b.metadata for b in llm.backends.values()]
    meta = llm.metadata
    assert meta.model_name == "routed(gpt-4o|gpt-4o-mini|claude-3-haiku-20240307)"
    assert meta.context_window == min(m.context_window for m in metas if m.context_window > 0)
    assert meta.num_output == min(m.num_output for m in metas if m.num_output > 0)
    assert meta.is_function_calling_model and meta.is_chat_model
    # tools prepared before a route exists use the reference model's format (here: Anthropic's)
    tool = FunctionTool.from_defaults(fn=add)
    prepared = routed(openai_server, anthropic_server, reference_model="claude-3-haiku")._prepare_chat_with_tools(
        [tool], user_msg="add 2 and 3")
    assert prepared["tools"][0]["name"] == "add" and "input_schema" in prepared["tools"][0]
    assert llm._prepare_chat_with_tools([tool], user_msg="x")["tools"][0]["type"] == "function"  # gpt-4o: OpenAI's


def test_unknown_models_and_bad_options_are_typed_errors(openai_server, anthropic_server, tmp_path):
    m = models(openai_server, anthropic_server)
    m["claude-3-5-haiku"] = m.pop("claude-3-haiku")  # not in the router's data: a hint, at construction
    with pytest.raises(UnknownModelError, match="claude-3-5-haiku.*Did you mean"):
        RoutedLLM(models=m, prices=PRICES)
    m = models(openai_server, anthropic_server)
    with pytest.raises(InvalidRouteError, match="not both"):
        RoutedLLM(models=m, strong=m["gpt-4o"], weak=m["gpt-4o-mini"], prices=PRICES)
    with pytest.raises(InvalidRouteError, match="strong= and weak="):
        RoutedLLM(strong=m["gpt-4o"], prices=PRICES)
    with pytest.raises(InvalidRouteError, match="not model keys"):
        routed(openai_server, anthropic_server, router_models={"nope": "gpt-4o"})
    with pytest.raises(RouterOptionError, match="quality"):
        routed(openai_server, anthropic_server, router="mf")
    with pytest.raises(InvalidThresholdError):
        routed(openai_server, anthropic_server, threshold=0.3)
    with pytest.raises(InvalidThresholdError, match="models="):
        RoutedLLM(strong=m["gpt-4o"], weak=m["gpt-4o-mini"], router=LengthRouter(), cost_weight=10.0)
    with pytest.raises(InvalidRouteError, match="reference"):
        routed(openai_server, anthropic_server, reference_model="gpt-5")
    with pytest.raises(InvalidRouteError, match="shadow sampling compares a strong/weak pair"):
        routed(openai_server, anthropic_server, shadow=ShadowSampler(tmp_path / "l.sqlite", rate=1.0))
    with pytest.raises(RouteLLMError, match="escalate_if"):
        routed(openai_server, anthropic_server, escalate_if=["not a check"])


def test_serialisation_keeps_settings_never_secrets_and_needs_the_models_back(openai_server, anthropic_server):
    def too_short(answer):
        return "too short" if len(answer.text) < 3 else None

    llm = RoutedLLM(models=models(openai_server, anthropic_server, key=SECRET), prices=PRICES, cost_weight=7.0,
                    router_models={"claude-3-haiku": "claude-3-haiku-20240307"}, escalate_if=too_short)
    shown = [repr(llm), str(llm), json.dumps(llm.to_dict(), default=str), llm.to_json(), str(llm.model_dump()),
             llm.model_dump_json()]
    for text in shown:
        assert SECRET not in text
    data = llm.to_dict()
    assert data["models"]["claude-3-haiku"]["model"] == "claude-3-haiku-20240307" and data["strong"] is None
    assert "models={'gpt-4o': OpenAI(model='gpt-4o')" in repr(llm) and "cost_weight=7.0" in repr(llm)
    with pytest.raises(ObjectsRequired, match=r"models=\.\.\., escalate_if=\.\.\.") as info:
        RoutedLLM.from_dict(data)
    assert "models={" in str(info.value)
    again = RoutedLLM.from_dict(data, models=models(openai_server, anthropic_server), prices=PRICES,
                                escalate_if=too_short)
    assert (again.cost_weight, again.router_name, again.router_models) == (7.0, "quality", llm.router_models)
    assert again.chat(msgs()).additional_kwargs["routellm"]["route"] in KEYS
    # a pair still serialises as before, and escalate_if=True survives a round trip as itself
    pair = RoutedLLM(strong=ScriptedLLM(name="big-model"), weak=ScriptedLLM(name="small-model"),
                     router="random", escalate_if=True, prices=PRICES)
    back = RoutedLLM.from_json(pair.to_json(), strong=ScriptedLLM(name="big-model"),
                               weak=ScriptedLLM(name="small-model"), prices=PRICES)
    assert back.escalate_if is True and back._checks == pair._checks and back.models is None


# -- escalation --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_an_unknown_tool_call_escalates_to_the_next_model_up(openai_server, anthropic_server, events, mode):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True, budget=Budget(max_usd=1.0))
    openai_server.chat.push(Reply(tool_calls=[{"name": "nope", "args": {}}]), model="gpt-4o-mini")
    tools = [FunctionTool.from_defaults(fn=add)]
    if mode == "sync":
        reply = llm.chat_with_tools(tools, user_msg="add 2 and 3 with add")
    else:
        reply = await llm.achat_with_tools(tools, user_msg="add 2 and 3 with add")
    meta = reply.additional_kwargs["routellm"]
    assert (meta["route"], meta["escalated_from"], meta["reason"]) == ("claude-3-haiku", "gpt-4o-mini", "escalated")
    (selection,) = llm.get_tool_calls_from_response(reply)  # parsed by the Anthropic backend that answered
    assert (selection.tool_name, selection.tool_kwargs) == ("add", {"a": 2, "b": 3})
    assert [(e.route, e.status) for e in events] == [("gpt-4o-mini", "escalated"), ("claude-3-haiku", "ok")]
    assert "nope" in events[0].escalation_reason and events[1].escalated_from == "gpt-4o-mini"
    ledger = llm.ledger.summary()
    assert ledger["calls"] == 2 and ledger["escalated_calls"] == 1
    assert ledger["by_route"]["gpt-4o-mini"]["escalated_calls"] == 1
    served = openai_server.chat.usage + anthropic_server.chat.usage  # both calls billed from the server's counts
    by_hand = sum(PRICES.cost(u["model"], Usage(u["input_tokens"], u["output_tokens"]),
                              "anthropic" if "claude" in u["model"] else "openai") for u in served)
    assert ledger["cost_usd"] == pytest.approx(by_hand) and ledger["estimated_calls"] == 0
    clean(llm)
    # a valid tool call on the cheap model stays there
    events.clear()
    reply = llm.chat_with_tools(tools, user_msg="add 2 and 3 with add")
    assert reply.additional_kwargs["routellm"]["route"] == "gpt-4o-mini"
    assert [e.status for e in events] == ["ok"] and llm.ledger.summary()["escalated_calls"] == 1


def test_a_required_tool_call_that_does_not_come_escalates(openai_server, anthropic_server, events):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True)
    openai_server.chat.push(Reply(text="I would add them."), model="gpt-4o-mini")
    tools = [FunctionTool.from_defaults(fn=add)]
    reply = llm.chat_with_tools(tools, user_msg="add 2 and 3", tool_required=True)
    assert reply.additional_kwargs["routellm"]["escalated_from"] == "gpt-4o-mini"
    assert "required" in events[0].escalation_reason
    events.clear()
    openai_server.chat.push(Reply(text="I would add them."), model="gpt-4o-mini")
    reply = llm.chat_with_tools(tools, user_msg="add 2 and 3")  # not required: a text answer is fine
    assert reply.additional_kwargs["routellm"]["route"] == "gpt-4o-mini" and [e.status for e in events] == ["ok"]


@pytest.mark.parametrize("entry", ["chat", "achat", "complete", "acomplete"])
async def test_a_refusal_or_an_empty_answer_escalates(openai_server, anthropic_server, events, entry):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True, budget=Budget(max_usd=1.0))
    # the cheap model refuses, the next one up answers nothing, the top one answers
    openai_server.chat.push(Reply(text=REFUSAL), model="gpt-4o-mini")
    anthropic_server.chat.push(Reply(text=""))
    if entry == "chat":
        reply = llm.chat(msgs())
    elif entry == "achat":
        reply = await llm.achat(msgs())
    elif entry == "complete":
        reply = llm.complete(PROMPT)
    else:
        reply = await llm.acomplete(PROMPT)
    assert text(reply).startswith("Hello from gpt-4o.")
    meta = reply.additional_kwargs["routellm"]
    assert (meta["route"], meta["escalated_from"], meta["status"]) == ("gpt-4o", "claude-3-haiku", "ok")
    assert [(e.route, e.status, e.escalation_reason) for e in events] == [
        ("gpt-4o-mini", "escalated", "refusal"), ("claude-3-haiku", "escalated", "empty answer"),
        ("gpt-4o", "ok", "empty answer")]  # the answer's own record: why the model below was passed over
    assert len({e.call_id for e in events}) == 3
    ledger = llm.ledger.summary()
    assert (ledger["calls"], ledger["escalated_calls"]) == (3, 2)
    clean(llm)


def test_the_top_model_and_a_custom_check_and_a_pair(openai_server, anthropic_server, events):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True)
    openai_server.chat.push(Reply(text=REFUSAL), model="gpt-4o")
    reply = llm.chat(msgs(), route="gpt-4o")  # nothing above the top: its answer is kept
    assert reply.message.content == REFUSAL and reply.additional_kwargs["routellm"]["status"] == "ok"
    assert [e.status for e in events] == ["ok"] and llm.ledger.summary()["escalated_calls"] == 0
    # a check of your own
    events.clear()
    picky = routed(openai_server, anthropic_server, cost_weight=1e7,
                   escalate_if=lambda a: "not from claude" if a.route == "gpt-4o-mini" else None)
    assert picky.chat(msgs()).additional_kwargs["routellm"]["route"] == "claude-3-haiku"
    assert events[0].escalation_reason == "not from claude"
    # a strong/weak pair escalates weak -> strong
    pair = RoutedLLM(strong=oa(openai_server, "gpt-4o"), weak=oa(openai_server, "gpt-4o-mini"), router=LengthRouter(),
                     threshold=1.0, prices=PRICES, escalate_if=True)
    openai_server.chat.push(Reply(text=""), model="gpt-4o-mini")
    meta = pair.chat(msgs()).additional_kwargs["routellm"]
    assert (meta["route"], meta["escalated_from"], meta["threshold"]) == ("strong", "weak", 1.0)
    assert pair.ledger.summary()["by_route"]["weak"]["escalated_calls"] == 1


# -- streams --------------------------------------------------------------------------------------------
async def _collect(llm, entry):
    if entry == "stream_chat":
        return list(llm.stream_chat(msgs()))
    if entry == "stream_complete":
        return list(llm.stream_complete(PROMPT))
    if entry == "astream_chat":
        return [r async for r in await llm.astream_chat(msgs())]
    return [r async for r in await llm.astream_complete(PROMPT)]


@pytest.mark.parametrize("entry", ["stream_chat", "astream_chat", "stream_complete", "astream_complete"])
async def test_a_stream_escalates_before_its_first_chunk(openai_server, anthropic_server, events, entry):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True, budget=Budget(max_usd=1.0))
    openai_server.chat.push(Reply(text=REFUSAL), model="gpt-4o-mini")
    chunks = await _collect(llm, entry)
    got = "".join(c.delta or "" for c in chunks)
    assert "sorry" not in got and got.startswith("Hello from claude-3-haiku")
    assert all("sorry" not in text(c) for c in chunks)
    assert chunks[0].additional_kwargs["routellm"]["route"] == "claude-3-haiku"  # the first chunk is the answer's
    meta = chunks[-1].additional_kwargs["routellm"]
    assert (meta["route"], meta["escalated_from"], meta["status"]) == ("claude-3-haiku", "gpt-4o-mini", "ok")
    assert [m["model"] for m in openai_server.chat.usage] == ["gpt-4o-mini"]  # the refusal was served, not shown
    assert [(e.route, e.status) for e in events] == [("gpt-4o-mini", "escalated"), ("claude-3-haiku", "ok")]
    assert llm.ledger.summary()["estimated_calls"] == 0  # both priced from the providers' usage
    clean(llm)


async def test_a_held_stream_that_passes_is_released_whole(openai_server, anthropic_server, events):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True, budget=Budget(max_usd=1.0))
    chunks = list(llm.stream_chat(msgs()))
    assert "".join(c.delta or "" for c in chunks) == chunks[-1].message.content == f"Hello from gpt-4o-mini. " \
        f"You said: {PROMPT}"
    assert chunks[-1].additional_kwargs["routellm"]["status"] == "ok" and [e.status for e in events] == ["ok"]
    # the consumer stops reading what was held: the answer was whole (and billed whole) already
    events.clear()
    stream = await llm.astream_chat(msgs())
    async for _ in stream:
        break
    await stream.aclose()
    assert [(e.status, e.estimated) for e in events] == [("ok", False)]
    clean(llm)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_tool_stream_escalates_on_an_unknown_tool(openai_server, anthropic_server, events, mode):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True, budget=Budget(max_usd=1.0))
    openai_server.chat.push(Reply(tool_calls=[{"name": "nope", "args": {}}]), model="gpt-4o-mini")
    tools = [FunctionTool.from_defaults(fn=add)]
    if mode == "sync":
        chunks = list(llm.stream_chat_with_tools(tools, user_msg="add 2 and 3 with add"))
    else:
        chunks = [c async for c in await llm.astream_chat_with_tools(tools, user_msg="add 2 and 3 with add")]
    assert {c.additional_kwargs["routellm"]["route"] for c in chunks} == {"claude-3-haiku"}
    (selection,) = llm.get_tool_calls_from_response(chunks[-1])
    assert selection.tool_name == "add"
    assert [(e.route, e.status) for e in events] == [("gpt-4o-mini", "escalated"), ("claude-3-haiku", "ok")]
    clean(llm)


# -- every exit settles, during the escalated call too ------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_cut_stream_during_the_escalated_call_settles(openai_server, anthropic_server, events, mode):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True, budget=Budget(max_usd=5.0))
    openai_server.chat.push(Reply(text=""), model="gpt-4o-mini")
    anthropic_server.chat.push(Reply(text="a long answer " * 20, cut_after=4))
    got = []
    with pytest.raises(Exception):
        if mode == "sync":
            for r in llm.stream_chat(msgs()):
                got.append(r)
        else:
            async for r in await llm.astream_chat(msgs()):
                got.append(r)
    assert got == []  # the cut answer was held (a model above could have taken over): nothing of it shown
    assert [(e.route, e.status) for e in events] == [("gpt-4o-mini", "escalated"), ("claude-3-haiku", "cut")]
    assert events[1].estimated and events[1].cost_usd > 0  # the provider billed what it sent
    by_route = llm.ledger.summary()["by_route"]
    assert by_route["gpt-4o-mini"]["escalated_calls"] == 1 and by_route["claude-3-haiku"]["calls"] == 1
    clean(llm)


async def test_a_live_top_stream_cut_or_abandoned_after_escalation_settles(openai_server, events):
    llm = two_openai(openai_server, escalate_if=True, budget=Budget(max_usd=5.0))
    openai_server.chat.push(Reply(text=REFUSAL), model="gpt-4o-mini")
    openai_server.chat.push(Reply(text="word " * 100, cut_after=6), model="gpt-4o")
    got = []
    with pytest.raises(Exception):
        for r in llm.stream_chat(msgs()):
            got.append(r.delta)
    assert got and "sorry" not in "".join(d or "" for d in got)  # the top model streamed live, then was cut
    assert [(e.route, e.status) for e in events] == [("gpt-4o-mini", "escalated"), ("gpt-4o", "cut")]
    clean(llm)
    # the consumer stops reading the escalated (live) stream
    events.clear()
    openai_server.chat.push(Reply(text=REFUSAL), model="gpt-4o-mini")
    openai_server.chat.push(Reply(text="word " * 200), model="gpt-4o")
    stream = llm.stream_chat(msgs())
    first = [next(stream) for _ in range(3)]
    stream.close()
    assert first[0].additional_kwargs["routellm"]["route"] == "gpt-4o"
    assert first[-1].additional_kwargs["routellm"]["status"] == "in_flight"
    assert [(e.route, e.status) for e in events] == [("gpt-4o-mini", "escalated"), ("gpt-4o", "abandoned")]
    clean(llm)


async def test_cancelled_while_the_escalated_model_answers(openai_server, anthropic_server, events):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True, budget=Budget(max_usd=5.0))
    for start in ("achat", "astream_chat"):
        events.clear()
        openai_server.chat.push(Reply(text=""), model="gpt-4o-mini")
        anthropic_server.chat.push(Reply(text="slow", delay_s=0.8))

        async def consume():
            if start == "achat":
                return await llm.achat(msgs())
            return [r async for r in await llm.astream_chat(msgs())]
        task = asyncio.ensure_future(consume())
        for _ in range(300):
            await asyncio.sleep(0.01)
            if events:  # the cheap call settled as escalated: the next model is answering
                break
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert [(e.route, e.status) for e in events] == [("gpt-4o-mini", "escalated"), ("claude-3-haiku", "cancelled")]
        clean(llm)
        await asyncio.sleep(0.9)  # let the server finish the request the client dropped
    assert llm.ledger.summary()["failed_calls"] == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_failing_escalated_backend_settles_and_names_its_route(openai_server, anthropic_server, events,
                                                                       mode):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True, budget=Budget(max_usd=5.0))
    openai_server.chat.push(Reply(text=REFUSAL), model="gpt-4o-mini")
    anthropic_server.fail_next(500, times=1)
    with pytest.raises(Exception) as info:
        if mode == "sync":
            llm.chat(msgs())
        else:
            await llm.achat(msgs())
    assert any("claude-3-haiku route" in n and "escalated from gpt-4o-mini" in n
               for n in getattr(info.value, "__notes__", []))
    assert [(e.route, e.status) for e in events] == [("gpt-4o-mini", "escalated"), ("claude-3-haiku", "failed")]
    clean(llm)
    # and a stream whose escalated backend cannot even open
    events.clear()
    openai_server.chat.push(Reply(text=REFUSAL), model="gpt-4o-mini")
    anthropic_server.fail_next(500, times=1)
    with pytest.raises(Exception):
        if mode == "sync":
            list(llm.stream_chat(msgs()))
        else:
            [r async for r in await llm.astream_chat(msgs())]
    assert [(e.route, e.status) for e in events] == [("gpt-4o-mini", "escalated"), ("claude-3-haiku", "failed")]
    clean(llm)


def test_a_budget_that_cannot_take_the_escalation_keeps_the_answer(openai_server, anthropic_server, events):
    """An escalation is admitted like any call and refused, never downgraded, when the
    budget cannot take it: the cheap answer is kept (settled ok), nothing stays reserved."""
    llm = two_openai(openai_server, escalate_if=True, budget=Budget(max_usd=0.002))
    openai_server.chat.push(Reply(text=REFUSAL), model="gpt-4o-mini")
    reply = llm.chat(msgs(), max_tokens=200)
    meta = reply.additional_kwargs["routellm"]
    assert (meta["route"], meta["status"], reply.message.content) == ("gpt-4o-mini", "ok", REFUSAL)
    assert [e.status for e in events] == ["ok"] and llm.ledger.summary()["escalated_calls"] == 0
    clean(llm)


def test_a_shadowed_pair_records_each_call_of_a_cascade_once(openai_server, tmp_path):
    """Each call of a cascade is recorded for feedback under its own record; neither is
    shadowed (an escalated answer, and an escalation, have no comparable other answer)."""
    sampler = ShadowSampler(tmp_path / "l.sqlite", rate=1.0, seed=0)
    pair = RoutedLLM(strong=oa(openai_server, "gpt-4o"), weak=oa(openai_server, "gpt-4o-mini"), router=LengthRouter(),
                     threshold=1.0, prices=PRICES, escalate_if=True, shadow=sampler)
    openai_server.chat.push(Reply(text=REFUSAL), model="gpt-4o-mini")
    meta = pair.chat(msgs("a short question?")).additional_kwargs["routellm"]
    assert meta["route"] == "strong" and meta["escalated_from"] == "weak"
    assert sampler.drain(timeout=20)
    stats = sampler.stats
    assert (stats.recorded, stats.sampled, stats.failed) == (2, 0, 0), stats
    pair.record_feedback(meta["call_id"], 1.0)
    sampler.close()


async def test_an_agent_and_structured_predict_escalate_through_the_tool_entry_points(openai_server, anthropic_server,
                                                                                     events):
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.prompts import PromptTemplate
    from pydantic import BaseModel

    class Count(BaseModel):
        """How many there are."""

        n: int

    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True, budget=Budget(max_usd=1.0))
    # structured output by function calling: arguments that fail the schema go one model up
    openai_server.chat.push(Reply(tool_calls=[{"name": "Count", "args": {"n": "many"}}]), model="gpt-4o-mini")
    out = llm.structured_predict(Count, PromptTemplate("Count them: {q}"), q=PROMPT)
    assert isinstance(out, Count)
    assert [(e.route, e.status) for e in events] == [("gpt-4o-mini", "escalated"), ("claude-3-haiku", "ok")]
    assert "do not match its schema" in events[0].escalation_reason
    # an agent's streamed tool step: the unknown tool never reaches the agent, the next model's call does
    events.clear()
    openai_server.chat.push(Reply(tool_calls=[{"name": "nope", "args": {}}]), model="gpt-4o-mini")
    result = await FunctionAgent(tools=[FunctionTool.from_defaults(add)], llm=llm).run(user_msg="add 2 and 3 with add")
    assert "5" in str(result)
    assert [(e.route, e.status) for e in events][:2] == [("gpt-4o-mini", "escalated"), ("claude-3-haiku", "ok")]
    assert all(e.status in ("ok", "escalated") for e in events)
    clean(llm)
