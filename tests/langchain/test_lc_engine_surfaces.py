"""The branch helper (``RoutedRunnable``) and the agent middleware (``RoutingMiddleware``)
run through the one call lifecycle and engine: each routed call is one ``CallRecord``,
reported in the same shape as ``RoutedChat``'s (the ``routellm_route`` event's payload,
the ``routellm_*`` run metadata, ``response_metadata["routellm"]``), and settled on every
exit (an answer, an exception, a cancellation, a stream the consumer stops reading).

Neither surface takes a budget, so a reservation cannot be shown; a call whose runnable
raises is shown settled as ``failed``, with its record in the ledger and on the
exception. Real LangChain objects only (the scripted chat model of ``lc_fakes``,
``GenericFakeChatModel``, ``RunnableLambda``, ``create_agent``)."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from langchain_routellm import RoutedChat, RoutedRunnable, routellm_cost_tracker
from routellm_integrations.routing import CallRecord
from lc_fakes import ScriptedChatModel

SHORT, LONG = "hi", "Please write a detailed essay about the history of computing machines, add 2 and 3."
LENGTH = {"router": "length", "router_options": {"midpoint": 20}, "threshold": 0.5}
RECORD_FIELDS = set(CallRecord.model_fields)


class Seen(BaseCallbackHandler):
    """Routing events, chat-model starts' routellm_* metadata, and settled records
    (``on_routed_call``: what the cost tracker is handed)."""

    def __init__(self):
        self.events, self.metadata, self.records = [], [], []

    def on_custom_event(self, name, data, *, run_id, **kw):
        if name == "routellm_route":
            self.events.append(data)

    def on_chat_model_start(self, serialized, messages, *, run_id, tags=None, metadata=None, **kw):
        self.metadata.append({k: v for k, v in (metadata or {}).items() if k.startswith("routellm_")})

    def on_routed_call(self, record):
        self.records.append(record)


def _pair():
    return ScriptedChatModel(model="gpt-4o", provider="openai"), ScriptedChatModel(model="gpt-4o-mini", provider="openai")


def _routed_chat_shape():
    """What RoutedChat reports for one call: its event payload, its backend run's
    routellm_* metadata keys, its stamped record."""
    strong, weak = _pair()
    chat = RoutedChat(strong=strong, weak=weak, **LENGTH)
    seen = Seen()
    out = (RunnableLambda(lambda x: x) | chat).invoke(LONG, config={"callbacks": [seen]})  # a parent run: an event
    assert len(seen.events) == 1 and len(seen.records) == 1
    return seen.events[0], set(seen.metadata[-1]), out.response_metadata["routellm"]


def test_routed_runnable_reports_a_call_record_shaped_like_routed_chats():
    chat_event, chat_meta_keys, chat_stamp = _routed_chat_shape()
    strong, weak = _pair()
    branch = RoutedRunnable(strong, weak, **LENGTH)
    seen = Seen()
    out = branch.invoke(LONG, config={"callbacks": [seen]})
    event, = seen.events
    record, = seen.records
    # the event is the record as the call starts, with RoutedChat's fields
    assert set(event) == set(chat_event) == RECORD_FIELDS
    assert event["status"] == "in_flight" and event["route"] == "strong" and event["model"] == "gpt-4o"
    # the backend run carries RoutedChat's routellm_* metadata, naming the call
    assert set(seen.metadata[-1]) == chat_meta_keys and seen.metadata[-1]["routellm_call_id"] == event["call_id"]
    # the answer carries the settled record, priced from its usage
    stamp = out.response_metadata["routellm"]
    assert set(stamp) == set(chat_stamp) and CallRecord.model_validate(stamp) == record
    assert record.call_id == event["call_id"] and record.status == "ok" and record.route == "strong"
    assert record.model == "gpt-4o" and record.strong_model == "gpt-4o" and record.weak_model == "gpt-4o-mini"
    assert record.input_tokens == out.usage_metadata["input_tokens"] and not record.estimated
    assert record.cost_usd is not None and record.cost_usd > 0
    assert [e.call_id for e in branch.ledger.store.entries()] == [record.call_id]


async def test_routed_runnable_async_reports_the_same_record():
    strong, weak = _pair()
    branch = RoutedRunnable(strong, weak, **LENGTH)
    seen = Seen()
    out = await branch.ainvoke(SHORT, config={"callbacks": [seen]})
    event, = seen.events
    record, = seen.records
    assert set(event) == RECORD_FIELDS and event["route"] == "weak"
    assert record.status == "ok" and record.route == "weak" and record.model == "gpt-4o-mini"
    assert out.response_metadata["routellm"] == record.metadata()


def test_routed_runnable_prices_only_what_reports_usage():
    """A chain answering with an AIMessage that reports usage is priced by the answer's
    model; a runnable whose answer is not a message is unpriced (None, never $0)."""
    usage = {"input_tokens": 12, "output_tokens": 30, "total_tokens": 42}
    fake = GenericFakeChatModel(messages=iter([AIMessage("an answer", usage_metadata=usage,
                                                         response_metadata={"model_name": "gpt-4o-mini"})]))
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    priced = RoutedRunnable(RunnableLambda(lambda x: "strong answer", name="strong_chain"), prompt | fake, **LENGTH)
    seen = Seen()
    assert priced.invoke({"question": SHORT}, config={"callbacks": [seen]}).content == "an answer"
    with pytest.warns(Warning, match="strong_chain"):  # unpriced, and said so
        assert priced.invoke({"question": LONG}, config={"callbacks": [seen]}) == "strong answer"
    weak_call, strong_call = seen.records
    assert weak_call.model == "gpt-4o-mini" and weak_call.input_tokens == 12 and weak_call.output_tokens == 30
    assert weak_call.cost_usd is not None and weak_call.cost_usd > 0 and not weak_call.estimated
    assert weak_call.weak_model == "RunnableSequence" and strong_call.strong_model == "strong_chain"
    assert strong_call.status == "ok" and strong_call.model == "strong_chain" and strong_call.cost_usd is None


def test_a_routed_runnable_call_is_counted_once_by_the_tracker():
    strong, weak = _pair()
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    branch = RoutedRunnable(prompt | strong, prompt | weak, **LENGTH)
    with routellm_cost_tracker() as tracker:
        branch.invoke({"question": LONG})
        branch.invoke({"question": SHORT})
        list(branch.stream({"question": SHORT}))
    assert tracker.by_route["strong"].calls == 1 and tracker.by_route["weak"].calls == 2
    assert branch.ledger.total.calls == 3


def test_a_runnable_that_raises_settles_its_call_as_failed():
    def boom(_):
        raise ValueError("backend down")

    branch = RoutedRunnable(RunnableLambda(boom), RunnableLambda(lambda x: "weak"), **LENGTH)
    seen = Seen()
    with pytest.raises(ValueError, match="backend down") as info:
        branch.invoke(LONG, config={"callbacks": [seen]})
    record, = seen.records
    assert record.status == "failed" and record.route == "strong" and record.cost_usd is None
    assert info.value.routellm_record == record.metadata()
    assert any("routellm: the strong route" in note for note in info.value.__notes__)
    assert [e.status for e in branch.ledger.store.entries()] == ["failed"]


async def test_a_cancelled_routed_runnable_call_settles_as_cancelled():
    started = asyncio.Event()

    async def slow(_):
        started.set()
        await asyncio.sleep(30)

    branch = RoutedRunnable(RunnableLambda(lambda x: x, afunc=slow), RunnableLambda(lambda x: "weak"), **LENGTH)
    seen = Seen()
    task = asyncio.ensure_future(branch.ainvoke(LONG, config={"callbacks": [seen]}))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record, = seen.records
    assert record.status == "cancelled" and record.route == "strong"


def _streaming_pair():
    text = "one two three four five six"
    return (GenericFakeChatModel(messages=iter([AIMessage(text)] * 3), name="strong"),
            GenericFakeChatModel(messages=iter([AIMessage(text)] * 3), name="weak"))


def test_a_stream_the_consumer_stops_reading_settles_as_abandoned():
    strong, weak = _streaming_pair()
    branch = RoutedRunnable(strong, weak, **LENGTH)
    seen = Seen()
    whole = list(branch.stream(SHORT, config={"callbacks": [seen]}))
    assert "".join(c.content for c in whole) == "one two three four five six"
    assert [r.status for r in seen.records] == ["ok"]
    chunks = branch.stream(LONG, config={"callbacks": [seen]})
    assert next(chunks).content == "one"
    chunks.close()
    _, left = seen.records
    assert left.status == "abandoned" and left.route == "strong"
    assert [e.status for e in branch.ledger.store.entries()] == ["ok", "abandoned"]


async def test_an_async_stream_the_consumer_stops_reading_settles_as_abandoned():
    strong, weak = _streaming_pair()
    branch = RoutedRunnable(strong, weak, **LENGTH)
    seen = Seen()
    whole = [c.content async for c in branch.astream(SHORT, config={"callbacks": [seen]})]
    assert "".join(whole) == "one two three four five six"
    chunks = branch.astream(LONG, config={"callbacks": [seen]})
    assert (await chunks.__anext__()).content == "one"
    await chunks.aclose()
    assert [(r.route, r.status) for r in seen.records] == [("weak", "ok"), ("strong", "abandoned")]


def test_a_stream_inside_a_chain_emits_the_routing_event():
    strong, weak = _streaming_pair()
    seen = Seen()
    chain = RoutedRunnable(strong, weak, **LENGTH) | RunnableLambda(lambda m: m.content)
    assert "".join(chain.stream(LONG, config={"callbacks": [seen]})) == "one two three four five six"
    event, = seen.events
    assert set(event) == RECORD_FIELDS and event["call_id"] == seen.records[0].call_id


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_middleware_reports_a_call_record_per_model_call_shaped_like_routed_chats():
    from langchain.agents import create_agent
    from langchain_routellm import RoutingMiddleware

    chat_event, chat_meta_keys, chat_stamp = _routed_chat_shape()
    own, strong = ScriptedChatModel(model="gpt-4o-mini", provider="openai"), ScriptedChatModel(model="gpt-4o",
                                                                                               provider="openai")
    middleware = RoutingMiddleware(strong=strong, **LENGTH)
    agent = create_agent(own, tools=[add], middleware=[middleware])
    seen = Seen()
    result = agent.invoke({"messages": [HumanMessage(LONG)]}, config={"callbacks": [seen]})
    answers = [m for m in result["messages"] if m.type == "ai"]
    assert len(answers) == 2 and len(seen.events) == 2 and len(seen.records) == 2  # a tool step, then the answer
    for event, record, answer, meta in zip(seen.events, seen.records, answers, seen.metadata):
        assert set(event) == set(chat_event) == RECORD_FIELDS and event["status"] == "in_flight"
        assert set(meta) == chat_meta_keys and meta["routellm_call_id"] == event["call_id"] == record.call_id
        assert set(answer.response_metadata["routellm"]) == set(chat_stamp)
        assert CallRecord.model_validate(answer.response_metadata["routellm"]) == record
        assert record.status == "ok" and record.route == "strong" and record.model == "gpt-4o"
        assert record.input_tokens == answer.usage_metadata["input_tokens"] and record.cost_usd > 0
    assert [r.step_policy for r in seen.records] == ["per_turn", "per_turn:kept"]
    assert seen.records[0].weak_model == "gpt-4o-mini"  # the agent's own model is the weak one
    assert middleware.ledger.total.calls == 2


async def test_middleware_async_model_call_reports_its_record():
    from langchain.agents import create_agent
    from langchain_routellm import RoutingMiddleware

    own, strong = ScriptedChatModel(model="gpt-4o-mini", provider="openai"), ScriptedChatModel(model="gpt-4o",
                                                                                               provider="openai")
    agent = create_agent(own, tools=[], middleware=[RoutingMiddleware(strong=strong, **LENGTH)])
    seen = Seen()
    result = await agent.ainvoke({"messages": [HumanMessage(SHORT)]}, config={"callbacks": [seen]})
    answer = result["messages"][-1]
    record, = seen.records
    assert record.route == "weak" and record.status == "ok" and record.model == "gpt-4o-mini"
    assert answer.response_metadata["routellm"] == record.metadata() and seen.events[0]["call_id"] == record.call_id


def test_middleware_model_call_that_raises_settles_as_failed():
    from langchain.agents import create_agent
    from langchain_routellm import RoutingMiddleware

    own = ScriptedChatModel(model="gpt-4o-mini", provider="openai")
    strong = ScriptedChatModel(model="gpt-4o", provider="openai", fail=RuntimeError("provider down"))
    middleware = RoutingMiddleware(strong=strong, **LENGTH)
    agent = create_agent(own, tools=[], middleware=[middleware])
    seen = Seen()
    with pytest.raises(RuntimeError, match="provider down") as info:
        agent.invoke({"messages": [HumanMessage(LONG)]}, config={"callbacks": [seen]})
    record, = seen.records
    assert record.status == "failed" and record.route == "strong" and record.cost_usd is None
    assert info.value.routellm_record["call_id"] == record.call_id
    assert [e.status for e in middleware.ledger.store.entries()] == ["failed"]
