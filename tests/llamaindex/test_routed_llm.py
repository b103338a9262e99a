"""RoutedLLM over scripted LlamaIndex LLMs: routing, events, usage, costs, tools, errors."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMCompletionEndEvent
from scripted_llm import Boom, ScriptedLLM

from llamaindex_routellm import RoutedLLM, RoutingDecisionEvent
from routellm_integrations import InvalidPromptError, InvalidRouteError
from routellm_integrations.costs import PriceTable
from routellm_integrations.state import CostLedger
from routellm_integrations.routers.length import LengthRouter

SHORT = "What is 2 + 2?"
LONG = "Explain, step by step, how a transformer computes attention. " * 10  # > 400 chars: strong
PRICES = PriceTable({"scriptedllm": {"big-model": (10.0, 30.0), "small-model": (0.5, 1.5)}})


class Collect(BaseEventHandler):
    events: list = []

    @classmethod
    def class_name(cls) -> str:
        return "Collect"

    def handle(self, event, **kwargs) -> None:
        self.events.append(event)


@pytest.fixture
def events():
    handler = Collect(events=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    yield handler.events
    root.event_handlers.remove(handler)


def make(**kw) -> RoutedLLM:
    strong = ScriptedLLM(name="big-model", usage=(100, 40))
    weak = ScriptedLLM(name="small-model", usage=(20, 8))
    return RoutedLLM(strong=strong, weak=weak, router=LengthRouter(), threshold=0.5,
                     ledger=CostLedger(PRICES), **kw)


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.SYSTEM, content="be brief"), ChatMessage(role=MessageRole.USER, content=text)]


def routing_events(events):
    return [e for e in events if isinstance(e, RoutingDecisionEvent)]


def test_metadata_is_honest_about_the_pair():
    llm = make()
    meta = llm.metadata
    assert meta.context_window == 4096 and meta.num_output == 512  # the smaller of the two
    assert meta.is_function_calling_model and meta.is_chat_model
    assert meta.model_name == "routed(big-model|small-model)"


def test_routes_on_the_last_user_message_and_stamps_the_response(events):
    llm = make()
    weak = llm.chat(user(SHORT))
    strong = llm.chat(user(LONG))
    assert weak.message.content.startswith("[small-model]") and strong.message.content.startswith("[big-model]")
    info = strong.additional_kwargs["routellm"]
    assert info["route"] == "strong" and info["model"] == "big-model" and info["router"] == "length"
    assert info["threshold"] == 0.5 and info["score"] >= 0.5 and info["input_tokens"] == 100
    assert info["cost_usd"] == pytest.approx((100 * 10 + 40 * 30) / 1e6)
    assert strong.raw["routellm"]["route"] == "strong"
    # an earlier long user turn does not make a later short one strong
    history = user(LONG) + [ChatMessage(role=MessageRole.ASSISTANT, content="ok"),
                            ChatMessage(role=MessageRole.USER, content=SHORT)]
    assert llm.chat(history).additional_kwargs["routellm"]["route"] == "weak"
    convo = make(route_on="conversation")
    assert convo.chat(history).additional_kwargs["routellm"]["route"] == "strong"


async def test_every_entry_point_sends_exactly_one_routing_event_and_one_llm_event(events):
    llm = make()
    llm.chat(user(SHORT))
    await llm.achat(user(LONG))
    list(llm.stream_chat(user(SHORT)))
    [c async for c in await llm.astream_chat(user(LONG))]
    llm.complete(SHORT)
    await llm.acomplete(LONG)
    list(llm.stream_complete(SHORT))
    [c async for c in await llm.astream_complete(LONG)]
    routed = routing_events(events)
    assert [e.route for e in routed] == ["weak", "strong"] * 4
    assert [e.model for e in routed] == ["small-model", "big-model"] * 4
    ends = [e for e in events if isinstance(e, (LLMChatEndEvent, LLMCompletionEndEvent))]
    assert len(ends) == 8  # the backends' own events; the wrapper adds none
    assert all(e.span_id for e in routed)
    assert llm.ledger.total.calls == 8


def test_streamed_chunks_carry_the_stamp_and_usage_is_counted_once(events):
    llm = make()
    chunks = list(llm.stream_chat(user(LONG)))
    assert len(chunks) >= 2 and all(c.additional_kwargs["routellm"]["route"] == "strong" for c in chunks)
    assert chunks[-1].additional_kwargs["routellm"]["output_tokens"] == 40
    assert llm.ledger.total.input_tokens == 100


def test_token_counting_handler_sees_one_llm_event_per_call():
    counter = TokenCountingHandler()
    llm = make(callback_manager=CallbackManager([counter]))
    llm.chat(user(SHORT))
    llm.chat(user(LONG))
    llm.complete(SHORT)
    assert len(counter.llm_token_counts) == 3
    assert counter.prompt_llm_token_count == 20 + 100 + 20
    assert counter.completion_llm_token_count == 8 + 40 + 8


def test_cost_ledger_totals_match_the_price_table_by_hand():
    llm = make()
    for text in (SHORT, LONG, SHORT, SHORT):
        llm.chat(user(text))
    t = llm.ledger.total
    weak_cost = (20 * 0.5 + 8 * 1.5) / 1e6
    strong_cost = (100 * 10 + 40 * 30) / 1e6
    assert t.calls == 4 and t.input_tokens == 3 * 20 + 100 and t.output_tokens == 3 * 8 + 40
    assert t.cost_usd == pytest.approx(3 * weak_cost + strong_cost)
    # savings: the weak calls' tokens priced on the strong model, minus what they cost
    assert t.savings_usd == pytest.approx(3 * ((20 * 10 + 8 * 30) / 1e6 - weak_cost))
    routes = llm.ledger.by_route
    assert routes["strong"].calls == 1 and routes["weak"].calls == 3


def test_per_call_override_forces_a_route(events):
    llm = make()
    forced = llm.chat(user(SHORT), route="strong")
    assert forced.additional_kwargs["routellm"]["route"] == "strong"
    assert forced.additional_kwargs["routellm"]["forced"] is True
    with pytest.raises(InvalidRouteError):
        llm.chat(user(SHORT), route="medium")


def test_bad_input_and_failing_backends():
    llm = make()
    with pytest.raises(InvalidPromptError, match="no messages"):
        llm.chat([])
    image_only = [ChatMessage(role=MessageRole.USER, blocks=[ImageBlock(url="http://127.0.0.1/x.png")])]
    # a message without text goes where on_no_text says (as in RoutedChat): strong by default
    assert llm.chat(image_only).additional_kwargs["routellm"]["reason"] == "no_text"
    assert llm.chat(image_only).additional_kwargs["routellm"]["route"] == "strong"
    assert make(on_no_text="weak").chat(image_only).additional_kwargs["routellm"]["route"] == "weak"
    with pytest.raises(InvalidPromptError, match="has no text"):
        make(on_no_text="error").chat(image_only)
    with pytest.raises(InvalidPromptError, match="no user message"):
        llm.chat([ChatMessage(role=MessageRole.SYSTEM, content="only a system prompt")])
    llm = make()
    with pytest.raises(InvalidPromptError):
        llm.complete("   ")
    llm.weak.fail = True
    with pytest.raises(Boom) as info:
        llm.chat(user(SHORT))
    assert any("weak route (small-model) failed" in n for n in info.value.__notes__)
    with pytest.raises(Boom):
        list(llm.stream_chat(user(SHORT)))
    t = llm.ledger.total
    assert t.calls == 0 and t.cost_usd == 0 and t.failed_calls == 2


async def test_200_concurrent_achat_calls_keep_consistent_totals(events):
    llm = make()
    llm.strong.delay = llm.weak.delay = 0.001
    texts = [SHORT if i % 4 else LONG for i in range(200)]
    responses = await asyncio.gather(*(llm.achat(user(t)) for t in texts))
    routes = [r.additional_kwargs["routellm"]["route"] for r in responses]
    assert routes == ["strong" if t == LONG else "weak" for t in texts]
    t = llm.ledger.total
    assert t.calls == 200 and llm.ledger.by_route["strong"].calls == 50
    assert t.input_tokens == 50 * 100 + 150 * 20 and t.output_tokens == 50 * 40 + 150 * 8
    assert len(routing_events(events)) == 200


async def test_function_agent_tool_loop_runs_on_the_routed_backend(events):
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.tools import FunctionTool

    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    llm = make()
    llm.strong.script = [{"tool": "multiply", "args": {"a": 6, "b": 7}}, "The answer is 42."]
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm)
    result = await agent.run(user_msg=LONG + " Then multiply 6 by 7.")
    assert "42" in str(result)
    routed = routing_events(events)
    assert [e.route for e in routed] == ["strong", "strong"]  # the tool step stays on the turn's backend
    assert llm.weak.calls == 0 and llm.strong.calls == 2
    short = await FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm).run(user_msg=SHORT)
    assert "[small-model]" in str(short)


async def test_agent_runs_under_a_budget_per_scope(events):
    """Each agent run gets its own budget scope; per-turn routing keeps the tool steps on
    the turn's backend; spend never passes the cap by more than one call."""
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.tools import FunctionTool

    from routellm_integrations import Budget, routing_scope

    def lookup(topic: str) -> str:
        """Look a topic up."""
        return f"notes on {topic}"

    strong_cost = (100 * 10 + 40 * 30) / 1e6  # one strong call at PRICES
    llm = RoutedLLM(strong=ScriptedLLM(name="big-model", usage=(100, 40)),
                    weak=ScriptedLLM(name="small-model", usage=(20, 8)), router=LengthRouter(), threshold=0.5,
                    ledger=CostLedger(PRICES),  # a call reserves its input bytes + 64 output tokens
                    budget=Budget(max_usd=8 * strong_cost, on_exhausted="weak", default_output_tokens=64))
    question = LONG + " Look up the history of attention."
    spent = {}
    for run in ("run-1", "run-2"):
        for turn in range(3):
            llm.strong.script = [{"tool": "lookup", "args": {"topic": "attention"}}, f"answer {turn}"]
            llm.weak.script = [{"tool": "lookup", "args": {"topic": "attention"}}, f"answer {turn}"]
            with routing_scope(run):
                await FunctionAgent(tools=[FunctionTool.from_defaults(lookup)], llm=llm).run(user_msg=question)
        spent[run] = llm.policy.budget.state(run).spent_usd
    routed = [e for e in routing_events(events)]
    per_run = len(routed) // 2
    for run, chunk in (("run-1", routed[:per_run]), ("run-2", routed[per_run:])):
        assert spent[run] <= 8 * strong_cost
        assert [e.route for e in chunk][:2] == ["strong", "strong"]  # the first turn, tool step included
        assert chunk[1].step_policy == "per_turn:kept"
        assert "weak" in [e.route for e in chunk]  # later turns fell back as the budget ran out
        assert all(e.budget["scope"] == run for e in chunk)
        assert chunk[-1].budget["remaining_fraction"] < 0.5
