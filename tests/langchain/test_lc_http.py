"""RoutedChat over the real ChatOpenAI and ChatAnthropic clients talking HTTP to the local
OpenAI- and Anthropic-format servers: JSON and SSE, tool calls, usage, an agent loop,
a LangSmith trace captured by a local recording server."""

from __future__ import annotations

import json

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from langchain_routellm import RoutedChat, routellm_cost_tracker

STRONG, WEAK = "gpt-4o", "claude-haiku-4-5"
PRICES = {STRONG: (2.50, 10.00), WEAK: (1.00, 5.00)}  # USD per 1M input/output tokens, by hand
pytestmark = pytest.mark.asyncio(loop_scope="session")  # see test_lc_standard.py

SHORT = "now add 1 and 1"                                                 # 15 chars: weak
LONG = "Please add 2 and 3 with the add tool and explain the result to me."  # strong


def backends(openai_server, anthropic_server):
    strong = ChatOpenAI(model=STRONG, base_url=openai_server.base_url, api_key="sk-test", stream_usage=True,
                        max_retries=0)
    weak = ChatAnthropic(model=WEAK, base_url=anthropic_server.base_url, api_key="sk-ant-test", max_retries=0)
    return strong, weak


@pytest.fixture
def llm(openai_server, anthropic_server):
    strong, weak = backends(openai_server, anthropic_server)
    return RoutedChat(strong=strong, weak=weak, router="length", router_options={"midpoint": 20}, threshold=0.5)


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def by_hand(server_usage):
    return sum((u["input_tokens"] * PRICES[u["model"]][0] + u["output_tokens"] * PRICES[u["model"]][1]) / 1e6
               for u in server_usage)


def test_invoke_and_stream_over_both_wire_formats(llm, openai_server, anthropic_server):
    usage = UsageMetadataCallbackHandler()
    cfg = {"callbacks": [usage]}
    r_weak, r_strong = llm.invoke(SHORT, config=cfg), llm.invoke(LONG, config=cfg)
    assert r_weak.content == f"Hello from {WEAK}. You said: {SHORT}"
    assert r_strong.content == f"Hello from {STRONG}. You said: {LONG}"
    assert r_weak.response_metadata["routellm"]["provider"] == "anthropic"
    assert r_strong.response_metadata["routellm"]["provider"] == "openai"
    for prompt in (SHORT, LONG):
        chunks = list(llm.stream(prompt, config=cfg))
        full = chunks[0]
        for c in chunks[1:]:
            full = full + c
        assert len(chunks) > 3 and sum("routellm" in c.response_metadata for c in chunks) == 1
        assert full.text.startswith("Hello from") and full.usage_metadata["total_tokens"] > 0
    assert openai_server.requests_to("/v1/chat/completions")[-1].json["stream"] is True
    assert anthropic_server.requests_to("/v1/messages")[-1].json["stream"] is True
    served = {**openai_server.chat.usage_totals(), **anthropic_server.chat.usage_totals()}
    assert set(usage.usage_metadata) == {STRONG, WEAK}
    for model, t in served.items():
        assert usage.usage_metadata[model]["input_tokens"] == t["input_tokens"]
        assert usage.usage_metadata[model]["output_tokens"] == t["output_tokens"]


async def test_async_tools_over_http_each_provider_formats_tools(llm, openai_server, anthropic_server):
    bound = llm.bind_tools([add])
    r1 = await bound.ainvoke(SHORT)
    r2 = await bound.ainvoke(LONG)
    assert r1.tool_calls[0]["name"] == "add" and r1.tool_calls[0]["args"] == {"a": 1, "b": 1}
    assert r2.tool_calls[0]["args"] == {"a": 2, "b": 3}
    sent_openai = openai_server.requests_to("/v1/chat/completions")[-1].json["tools"][0]
    sent_anthropic = anthropic_server.requests_to("/v1/messages")[-1].json["tools"][0]
    assert sent_openai["type"] == "function" and sent_openai["function"]["name"] == "add"
    assert sent_anthropic["name"] == "add" and "input_schema" in sent_anthropic
    full = None
    async for c in bound.astream(SHORT):
        full = c if full is None else full + c
    assert full.tool_calls[0]["args"] == {"a": 1, "b": 1} and full.response_metadata["routellm"]["route"] == "weak"


def test_http_error_propagates_with_route_and_no_cost(llm, anthropic_server):
    anthropic_server.fail_next(500, times=1)
    import anthropic
    with routellm_cost_tracker() as t:
        with pytest.raises(anthropic.InternalServerError) as info:
            llm.invoke(SHORT)
    assert any("weak backend" in n for n in info.value.__notes__)
    assert t.successful_requests == 0 and t.total.failed_calls == 1 and t.total_cost == 0


def test_create_agent_loop_one_turn_strong_one_weak(llm, openai_server, anthropic_server):
    from langchain.agents import create_agent

    agent = create_agent(llm, tools=[add])
    usage = UsageMetadataCallbackHandler()
    with routellm_cost_tracker() as tracker:
        first = agent.invoke({"messages": [HumanMessage(LONG)]}, config={"callbacks": [usage]})
        second = agent.invoke({"messages": [*first["messages"], HumanMessage(SHORT)]}, config={"callbacks": [usage]})
    ai = [m for m in second["messages"] if m.type == "ai"]
    assert [m.response_metadata["routellm"]["route"] for m in ai] == ["strong", "strong", "weak", "weak"]
    assert ai[0].tool_calls[0]["args"] == {"a": 2, "b": 3} and ai[2].tool_calls[0]["args"] == {"a": 1, "b": 1}
    assert ai[-1].content == "The tool returned 2." and second["messages"][-2].content == "2"
    served = {**openai_server.chat.usage_totals(), **anthropic_server.chat.usage_totals()}
    assert {m: (t["input_tokens"], t["output_tokens"]) for m, t in served.items()} == {
        m: (u["input_tokens"], u["output_tokens"]) for m, u in usage.usage_metadata.items()}
    all_usage = openai_server.chat.usage + anthropic_server.chat.usage
    assert tracker.total_cost == pytest.approx(by_hand(all_usage), rel=1e-12)
    assert tracker.by_route["strong"].calls == 2 and tracker.by_route["weak"].calls == 2
    weak_as_strong = sum((u["input_tokens"] * 2.5 + u["output_tokens"] * 10) / 1e6 for u in anthropic_server.chat.usage)
    assert tracker.savings_usd == pytest.approx(weak_as_strong - by_hand(anthropic_server.chat.usage))


def test_agent_stream_mode_messages(llm):
    from langchain.agents import create_agent

    agent = create_agent(llm, tools=[add])
    chunks = [c for c, _meta in agent.stream({"messages": [HumanMessage(SHORT)]}, stream_mode="messages")
              if c.type == "AIMessageChunk"]
    assert chunks and sum("routellm" in c.response_metadata for c in chunks) == 2  # two model calls


def test_structured_output_over_http(llm):
    from pydantic import BaseModel

    class Sum(BaseModel):
        a: int
        b: int

    assert llm.with_structured_output(Sum).invoke(SHORT) == Sum(a=1, b=1)
    assert llm.with_structured_output(Sum, method="json_schema", strict=True).invoke(LONG) == Sum(a=2, b=3)


def test_langsmith_trace_carries_routing_and_backend_model(llm, monkeypatch):
    import langsmith

    from routellm_integrations.testing.langsmith_recorder import LangSmithRecorder

    with LangSmithRecorder() as recorder:
        client = langsmith.Client(api_url=recorder.url, api_key="x")
        with langsmith.tracing_context(enabled=True, client=client, project_name="routellm-test"):
            llm.invoke(SHORT)
        client.flush()
    runs = recorder.runs()
    llm_runs = [r for r in runs if r.get("run_type") == "llm"]
    assert llm_runs, f"no llm run posted: {json.dumps(runs)[:500]}"
    meta = {}
    tags: list = []
    outputs = {}
    for r in llm_runs:
        meta.update(((r.get("extra") or {}).get("metadata")) or {})
        tags += r.get("tags") or []
        outputs = r.get("outputs") or outputs
    assert meta["ls_provider"] == "anthropic" and meta["ls_model_name"] == WEAK
    assert meta["routellm_route"] == "weak" and meta["routellm_router"] == "length"
    assert "routellm:weak" in tags
    msg = outputs["generations"][0][0]["message"]["kwargs"]
    assert msg["response_metadata"]["routellm"]["model"] == WEAK
    assert msg["usage_metadata"]["input_tokens"] > 0


def test_budget_per_langgraph_thread_and_turn_coherent_steps(openai_server, anthropic_server):
    """A strong-call cap per LangGraph thread: once a thread spent it, its later turns go
    weak; another thread starts fresh. A turn's tool step keeps the turn's backend."""
    from langchain.agents import create_agent
    from langgraph.checkpoint.memory import InMemorySaver

    from routellm_integrations import Budget

    strong, weak = backends(openai_server, anthropic_server)
    llm = RoutedChat(strong=strong, weak=weak, router="length", router_options={"midpoint": 20}, threshold=0.5,
                     budget=Budget(max_strong_calls=2))
    agent = create_agent(llm, tools=[add], checkpointer=InMemorySaver())
    routes: dict[str, list] = {}
    for thread in ("A", "A", "B"):
        cfg = {"configurable": {"thread_id": thread}}
        out = agent.invoke({"messages": [HumanMessage(LONG)]}, config=cfg)
        ai = [m for m in out["messages"] if m.type == "ai"][-2:]  # this turn: tool call, then answer
        routes.setdefault(thread, []).append([m.response_metadata["routellm"]["route"] for m in ai])
        meta = ai[-1].response_metadata["routellm"]
        assert meta["budget"]["scope"] == f"thread:{thread}"
        assert ai[0].response_metadata["routellm"]["step_policy"] in ("per_turn", "per_turn:budget")
        assert meta["step_policy"].startswith("per_turn:kept")
    assert routes["A"] == [["strong", "strong"], ["weak", "weak"]]  # the cap of 2 strong calls is spent
    assert routes["B"] == [["strong", "strong"]]
    assert llm.policy.budget.state("thread:A").strong_calls == 2
