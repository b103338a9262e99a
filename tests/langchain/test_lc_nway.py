"""RoutedChat over N real clients (ChatOpenAI x2 and ChatAnthropic over the local wire-format
servers): the cost-weighted choice, what every report names, and escalation (tool-call
structured output, native json_schema, streams, cancellation, cut streams)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_routellm import RoutedChat, routellm_cost_tracker
from routellm_integrations.budgets import Budget
from routellm_integrations.costs import PriceTable
from routellm_integrations.errors import InvalidRouteError, UnknownModelError
from routellm_integrations.testing.openai_compat import Reply

PRICES = PriceTable.default().with_prices({"openai": {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)},
                                           "anthropic": {"claude-3-haiku-20240307": (0.25, 1.25)}})
SCORED_AS = "claude-3-5-sonnet-20240620"
PROMPT = "Find the number of ordered pairs of positive integers (m, n) such that m^2 n = 20^20."


def models(openai_server, anthropic_server):
    def oa(name):
        return ChatOpenAI(model=name, base_url=openai_server.base_url, api_key="sk-test", stream_usage=True,
                          max_retries=0)
    return {"gpt-4o": oa("gpt-4o"), "gpt-4o-mini": oa("gpt-4o-mini"),
            "claude-3-haiku": ChatAnthropic(model="claude-3-haiku-20240307", base_url=anthropic_server.base_url,
                                            api_key="sk-ant-test", max_retries=0)}


def routed(openai_server, anthropic_server, **kw):
    # the haiku backend is scored as claude-3.5-sonnet: predicted at least as good as gpt-4o-mini, the
    # Anthropic server is then the cascade's second step (escalation skips a dearer model predicted worse)
    opts = {"prices": PRICES, "router_models": {"claude-3-haiku": SCORED_AS}, **kw}
    return RoutedChat(models=models(openai_server, anthropic_server), **opts)


class Count(BaseModel):
    """How many there are."""

    n: int


def test_each_call_goes_to_the_model_the_cost_weight_picks(openai_server, anthropic_server):
    for weight in (0.0, 300.0, 1e7):
        llm = routed(openai_server, anthropic_server, cost_weight=weight)
        d = llm.decide([HumanMessage(PROMPT)])
        q = llm.get_router().quality([PROMPT], ["gpt-4o", "gpt-4o-mini", SCORED_AS])[0]
        c = np.array([d.expected_costs_usd[k] for k in ("gpt-4o", "gpt-4o-mini", "claude-3-haiku")])
        want = ["gpt-4o", "gpt-4o-mini", "claude-3-haiku"][int(np.argmax(q - weight * c))]
        assert d.route == want and d.cost_weight == weight
        with routellm_cost_tracker(prices=PRICES) as tracker:
            reply = llm.invoke(PROMPT)
        meta = reply.response_metadata["routellm"]
        assert meta["route"] == want and meta["models"] == ["gpt-4o", "gpt-4o-mini", "claude-3-haiku"]
        assert reply.response_metadata["model_name"].startswith(llm._calls.backend(want).model)
        assert meta["qualities"][want] == pytest.approx(float(q[list(meta["qualities"]).index(want)]))
        assert meta["strong_model"] == "gpt-4o" and meta["weak_model"] == "gpt-4o-mini"
        assert set(tracker.by_route) == {want} and tracker.total_cost == pytest.approx(meta["cost_usd"])
        assert llm._get_ls_params(routellm_route=None)["ls_model_name"] == "gpt-4o"
    assert d.route == "gpt-4o-mini"  # at a huge weight: the cheapest


def test_unknown_models_and_options_are_typed_errors(openai_server, anthropic_server):
    m = models(openai_server, anthropic_server)
    m["claude-3-5-haiku"] = m.pop("claude-3-haiku")  # not in the router's data: a hint, at construction
    with pytest.raises(UnknownModelError, match="claude-3-5-haiku.*Did you mean"):
        RoutedChat(models=m, prices=PRICES)
    with pytest.raises(ValueError, match="not both"):
        m = models(openai_server, anthropic_server)
        RoutedChat(models=m, strong=m["gpt-4o"], weak=m["gpt-4o-mini"])
    with pytest.raises(InvalidRouteError, match="not model keys"):
        routed(openai_server, anthropic_server, router_models={"nope": "gpt-4o"})
    with pytest.raises(Exception, match="quality"):
        routed(openai_server, anthropic_server, router="mf")
    llm = routed(openai_server, anthropic_server, cost_weight=1e7)
    reply = llm.invoke(PROMPT, model="gpt-4o")  # force a key
    assert reply.response_metadata["routellm"]["route"] == "gpt-4o"
    assert reply.response_metadata["routellm"]["forced"]


def test_structured_output_escalates_when_the_cheap_answer_fails_its_schema(openai_server, anthropic_server):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True)
    openai_server.chat.push(Reply(tool_calls=[{"name": "Count", "args": {"n": "many"}}]), model="gpt-4o-mini")
    with routellm_cost_tracker(prices=PRICES) as tracker:
        out = llm.with_structured_output(Count).invoke(PROMPT)
    assert isinstance(out, Count)
    totals = llm.ledger.summary()
    assert totals["calls"] == 2 and totals["escalated_calls"] == 1
    assert set(totals["by_route"]) == {"gpt-4o-mini", "claude-3-haiku"}  # the next model up answered
    served = openai_server.chat.usage + anthropic_server.chat.usage
    by_hand = sum(PRICES.cost(u["model"], __import__("routellm_integrations.costs", fromlist=["Usage"]).Usage(
        u["input_tokens"], u["output_tokens"]), "anthropic" if "claude" in u["model"] else "openai") for u in served)
    assert tracker.total_cost == pytest.approx(by_hand) and tracker.by_route["gpt-4o-mini"].calls == 1
    # the default checks pass a valid answer on the cheapest model: no escalation
    llm.ledger.reset()
    assert llm.with_structured_output(Count).invoke(PROMPT).n >= 0
    assert llm.ledger.summary()["escalated_calls"] == 0


def test_native_json_schema_escalates_on_invalid_json(openai_server, anthropic_server):
    mini = ChatOpenAI(model="gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    big = ChatOpenAI(model="gpt-4o", base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    llm = RoutedChat(models={"gpt-4o": big, "gpt-4o-mini": mini}, prices=PRICES, cost_weight=1e7, escalate_if=True)
    openai_server.chat.push(Reply(text='{"n": '), model="gpt-4o-mini")
    out = llm.with_structured_output(Count, method="json_schema").invoke(PROMPT)
    assert isinstance(out, Count)
    statuses = [(r, t["escalated_calls"]) for r, t in llm.ledger.summary()["by_route"].items()]
    assert statuses == [("gpt-4o-mini", 1), ("gpt-4o", 0)]


def test_a_stream_escalates_before_its_first_chunk(openai_server, anthropic_server):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True)
    openai_server.chat.push(Reply(text="I'm sorry, but I can't help with that."), model="gpt-4o-mini")
    chunks = list(llm.stream(PROMPT))
    text = "".join(c.text for c in chunks)
    assert "sorry" not in text and text.startswith("Hello from claude-3-haiku")
    meta = chunks[-1].response_metadata["routellm"]
    assert meta["route"] == "claude-3-haiku" and meta["escalated_from"] == "gpt-4o-mini"
    assert meta["reason"] == "escalated" and llm.ledger.summary()["escalated_calls"] == 1


@pytest.mark.asyncio(loop_scope="session")  # see test_lc_standard.py
async def test_async_stream_escalation_and_cut_and_cancel_settle(openai_server, anthropic_server):
    budget = Budget(max_usd=5.0)
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True, budget=budget)
    # the escalated call is cut mid-stream: it settles cut; the first escalated; nothing stays reserved
    openai_server.chat.push(Reply(text=""), model="gpt-4o-mini")
    anthropic_server.chat.push(Reply(text="a long answer " * 20, cut_after=4))
    with pytest.raises(Exception):
        async for _ in llm.astream(PROMPT):
            pass
    by_route = llm.ledger.summary()["by_route"]
    assert by_route["gpt-4o-mini"]["escalated_calls"] == 1 and by_route["claude-3-haiku"]["calls"] == 1
    state = llm.policy.budget.state("global")
    assert state.in_flight == 0 and state.reserved_usd == 0
    # cancelled while the escalated model answers
    openai_server.chat.push(Reply(text=""), model="gpt-4o-mini")
    anthropic_server.chat.push(Reply(text="slow", delay_s=0.5))
    task = asyncio.ensure_future(llm.ainvoke(PROMPT))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if llm.ledger.summary()["escalated_calls"] == 2:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    state = llm.policy.budget.state("global")
    assert state.in_flight == 0 and state.reserved_usd == 0
    assert llm.ledger.summary()["failed_calls"] == 1  # the cancelled escalation
    await asyncio.sleep(0.7)  # let the server finish the request the cancelled call left (no stray output)


def test_escalation_on_a_pair_and_an_unknown_tool(openai_server, anthropic_server):
    m = models(openai_server, anthropic_server)
    llm = RoutedChat(strong=m["gpt-4o"], weak=m["gpt-4o-mini"], router="length", threshold=1.0, prices=PRICES,
                     escalate_if=True)
    openai_server.chat.push(Reply(tool_calls=[{"name": "delete_everything", "args": {}}]), model="gpt-4o-mini")

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    reply = llm.bind_tools([add]).invoke("add 2 and 3 with add")
    assert reply.tool_calls[0]["name"] == "add" and reply.response_metadata["routellm"]["route"] == "strong"
    assert llm.ledger.summary()["by_route"]["weak"]["escalated_calls"] == 1
    assert json.loads(json.dumps(reply.response_metadata["routellm"]))["escalated_from"] == "weak"


def test_a_held_answer_that_passes_is_billed_in_full_when_the_reader_stops(openai_server, anthropic_server):
    llm = routed(openai_server, anthropic_server, cost_weight=1e7, escalate_if=True)
    openai_server.chat.push(Reply(text="one two three four five six seven"), model="gpt-4o-mini")
    stream = llm.stream(PROMPT)
    next(stream)  # the answer passed its checks; its replay starts
    stream.close()
    record = llm.ledger.summary()
    assert record["calls"] == 1 and record["estimated_calls"] == 0  # the provider's usage, not an estimate
    served = openai_server.chat.usage[-1]
    assert record["output_tokens"] == served["output_tokens"]
