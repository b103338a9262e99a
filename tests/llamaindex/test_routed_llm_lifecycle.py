"""RoutedLLM's calls settle on every exit (cancellation, abandoned and cut streams,
raising handlers, absurd usage), budgets hold under hundreds of concurrent calls, query
engines route on the question, and secrets never leave the object. Over the local
OpenAI- and Anthropic-format servers where a provider is involved."""

from __future__ import annotations

import asyncio
import gc
import json
import time

import numpy as np
import pytest
from llama_index.core.base.llms.types import ChatMessage, LLMMetadata, MessageRole
from llama_index.core.callbacks import CallbackManager
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.callbacks.schema import CBEventType
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.prompts import PromptTemplate
from llama_index.llms.anthropic import Anthropic
from llama_index.llms.openai import OpenAI
from pydantic import BaseModel
from scripted_llm import ScriptedLLM

from llamaindex_routellm import ObjectsRequired, RoutedLLM
from routellm_integrations import Budget
from routellm_integrations.costs import PriceTable
from routellm_integrations.state import CostLedger
from routellm_integrations.errors import BudgetConfigError, BudgetExceeded, InvalidPromptError, RouteLLMError
from routellm_integrations.routers.base import BaseRouter
from routellm_integrations.routers.length import LengthRouter
from routellm_integrations.testing.openai_compat import Reply, chat_completions_handler, raw_usage_handler

SHORT = "What is the capital of France?"
LONG = "Derive the closed form of the sum of the first n cubes, proving each step by induction. " * 6
SECRET = "sk-live-do-not-print-0123456789"
PRICES = PriceTable({"scriptedllm": {"big-model": (10.0, 30.0), "small-model": (0.5, 1.5)}})


def openai_pair(server, **kw) -> RoutedLLM:
    strong = OpenAI(model="gpt-4o", api_key="sk-test", api_base=server.base_url, max_retries=0)
    weak = OpenAI(model="gpt-4o-mini", api_key="sk-test", api_base=server.base_url, max_retries=0)
    return RoutedLLM(strong=strong, weak=weak, router=LengthRouter(), threshold=0.5,
                     ledger=CostLedger(PriceTable.default()), **kw)


def msgs(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def state(llm, scope="global"):
    return llm.policy.budget.state(scope)


# -- cancellation --------------------------------------------------------------------------------
async def test_achat_cancelled_by_wait_for_releases_and_is_recorded(openai_server, events):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))
    openai_server.chat.push(Reply(text="slow answer", delay_s=1.0))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(llm.achat(msgs(LONG)), 0.2)
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and s.spent_usd == 0
    assert llm.ledger.total.failed_calls == 1
    assert [e.status for e in events] == ["cancelled"]


class SlowRouter(BaseRouter):
    name = "slow-length"

    def _score(self, prompts):
        time.sleep(0.3)
        return np.array([min(1.0, len(p) / 40) for p in prompts])


async def test_cancelled_while_the_router_scores_releases_the_reservation():
    llm = RoutedLLM(strong=ScriptedLLM(name="big-model"), weak=ScriptedLLM(name="small-model"),
                    router=SlowRouter(), threshold=0.5, ledger=CostLedger(PRICES), budget=Budget(max_usd=1.0))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(llm.achat(msgs(LONG)), 0.05)
    await asyncio.sleep(0.6)  # the scoring thread finishes; its reservation is released
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and llm.strong.calls == 0


# -- streams ----------------------------------------------------------------------------------------
def test_an_abandoned_stream_is_charged_for_what_it_delivered(openai_server, events):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))
    openai_server.chat.push(Reply(text="word " * 200))
    stream = llm.stream_chat(msgs(LONG))
    got = [next(stream) for _ in range(3)]
    stream.close()
    assert got[-1].message.content and got[-1].additional_kwargs["routellm"]["status"] == "in_flight"
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and s.spent_usd > 0
    total = llm.ledger.total
    assert total.estimated_calls == 1 and total.cost_usd == pytest.approx(s.spent_usd)
    assert [(e.status, e.estimated) for e in events] == [("abandoned", True)]


async def test_an_abandoned_async_stream_settles_too(openai_server, events):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))
    openai_server.chat.push(Reply(text="word " * 200))
    stream = await llm.astream_chat(msgs(LONG))
    async for _ in stream:
        break
    await stream.aclose()
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and s.spent_usd > 0
    assert [e.status for e in events] == ["abandoned"]


def anthropic_pair(server, **kw) -> RoutedLLM:
    strong = Anthropic(model="claude-sonnet-4-20250514", api_key="sk-ant-test", base_url=server.base_url,
                       max_retries=0)
    weak = Anthropic(model="claude-3-5-haiku-20241022", api_key="sk-ant-test", base_url=server.base_url,
                     max_retries=0)
    return RoutedLLM(strong=strong, weak=weak, router=LengthRouter(), threshold=0.5,
                     ledger=CostLedger(PriceTable.default()), **kw)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_stream_the_provider_cuts_is_charged_estimated(openai_server, anthropic_server, events, mode,
                                                               provider):
    server, make = (openai_server, openai_pair) if provider == "openai" else (anthropic_server, anthropic_pair)
    llm = make(server, budget=Budget(max_usd=1.0))
    server.chat.push(Reply(text="token " * 100, cut_after=8))
    got = []
    with pytest.raises(Exception):
        if mode == "sync":
            for r in llm.stream_chat(msgs(LONG)):
                got.append(r.delta)
        else:
            async for r in await llm.astream_chat(msgs(LONG)):
                got.append(r.delta)
    assert "".join(d or "" for d in got)
    (event,) = events
    assert event.status == "cut" and event.estimated and event.cost_usd > 0 and event.output_tokens > 0
    assert event.route == "strong" and event.provider == provider and event.call_id
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and s.spent_usd == pytest.approx(event.cost_usd)
    assert llm.ledger.total.cost_usd == pytest.approx(event.cost_usd)
    # the event carries the call's one record; the call was written once, to the store the ledger reads
    from routellm_integrations.routing import CallRecord

    assert isinstance(event.record, CallRecord) and event.record.call_id == event.call_id
    (entry,) = [e for store in llm.ledger.stores for e in store.entries()]
    assert entry.call_id == event.call_id and entry.status == "cut" and entry.cost_usd == event.record.cost_usd


def test_a_stream_never_read_releases_its_reservation_when_dropped(openai_server):
    """Safety net only: the stream was opened lazily by the backend (no request sent), so
    nothing was spent; dropping it must not hold the budget forever."""
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))
    stream = llm.stream_chat(msgs(LONG))
    assert state(llm).in_flight == 1 and state(llm).reserved_usd > 0
    del stream
    gc.collect()
    deadline = time.monotonic() + 2.0
    while state(llm).in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state(llm).in_flight == 0 and state(llm).reserved_usd == 0 and state(llm).spent_usd == 0


# -- raising handlers ----------------------------------------------------------------------------------
class RaisesOnStart(BaseCallbackHandler):
    def __init__(self) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])

    def on_event_start(self, event_type, payload=None, event_id="", parent_id="", **kwargs):
        if event_type == CBEventType.LLM:
            raise RuntimeError("handler broke")
        return event_id

    def on_event_end(self, event_type, payload=None, event_id="", **kwargs):
        pass

    def start_trace(self, trace_id=None):
        pass

    def end_trace(self, trace_id=None, trace_map=None):
        pass


def test_a_raising_callback_handler_releases_the_reservation(openai_server):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0), callback_manager=CallbackManager([RaisesOnStart()]))
    with pytest.raises(RuntimeError, match="handler broke"):
        llm.chat(msgs(LONG))
    with pytest.raises(RuntimeError, match="handler broke"):
        list(llm.stream_chat(msgs(LONG)))
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and llm.ledger.total.failed_calls == 2
    assert not openai_server.requests_to("/v1/chat/completions")


class RaisesOnEveryEvent(BaseEventHandler):
    @classmethod
    def class_name(cls) -> str:
        return "RaisesOnEveryEvent"

    def handle(self, event, **kwargs) -> None:
        raise RuntimeError(f"handler broke on {type(event).__name__}")


@pytest.mark.parametrize("mode", ["chat", "stream", "achat"])
async def test_a_raising_event_handler_neither_breaks_the_call_nor_leaks(openai_server, events, mode):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))
    handler = RaisesOnEveryEvent()
    get_dispatcher().add_event_handler(handler)
    try:
        if mode == "chat":
            text = llm.chat(msgs(LONG)).message.content
        elif mode == "achat":
            text = (await llm.achat(msgs(LONG))).message.content
        else:
            text = "".join(r.delta or "" for r in llm.stream_chat(msgs(LONG)))
    finally:
        get_dispatcher().event_handlers.remove(handler)
    assert "Hello from gpt-4o" in text
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and s.spent_usd > 0
    assert llm.ledger.total.calls == 1 and [e.status for e in events] == ["ok"]


# -- absurd usage ----------------------------------------------------------------------------------
absurd_usage_handler = raw_usage_handler('{"prompt_tokens": 12, "completion_tokens": 1e400, "total_tokens": 1e400}')


def test_absurd_usage_never_breaks_a_good_answer(openai_server):
    openai_server.routes[("POST", "/v1/chat/completions")] = absurd_usage_handler
    try:
        llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))
        with pytest.warns(RuntimeWarning, match="unusable usage"):
            answer = llm.chat(msgs(LONG))
    finally:
        openai_server.routes[("POST", "/v1/chat/completions")] = chat_completions_handler(openai_server.chat)
    record = answer.additional_kwargs["routellm"]
    assert answer.message.content == "a good answer"
    assert record["status"] == "ok" and record["estimated"] and record["usage_error"]
    assert 0 < record["cost_usd"] < 0.01 and state(llm).spent_usd == pytest.approx(record["cost_usd"])


# -- budgets under concurrency ---------------------------------------------------------------------
PROMPTS = [("x" * int(n)) for n in np.random.default_rng(3).integers(1, 800, 200)]


async def _routes(llm):
    answers = await asyncio.gather(*(llm.achat(msgs(p)) for p in PROMPTS))
    return [a.additional_kwargs["routellm"]["route"] for a in answers]


def _scripted(**kw):
    strong, weak = ScriptedLLM(name="big-model", delay=0.01), ScriptedLLM(name="small-model", delay=0.01)
    return RoutedLLM(strong=strong, weak=weak, router=LengthRouter(), threshold=0.5, ledger=CostLedger(PRICES),
                     **kw)


async def test_a_far_cap_changes_no_decision_under_200_concurrent_calls():
    free = await _routes(_scripted())
    capped_llm = _scripted(budget=Budget(max_usd=1000.0))
    capped = await _routes(capped_llm)
    strict = await _routes(_scripted(budget=Budget(max_usd=1000.0, on_exhausted="raise")))
    assert 40 < free.count("strong") < 160
    assert capped == free and strict == free
    assert state(capped_llm).reserved_usd == 0 and state(capped_llm).in_flight == 0


async def test_a_tight_cap_holds_under_200_concurrent_calls():
    cap = 0.02
    llm = _scripted(budget=Budget(max_usd=cap, default_output_tokens=64))

    async def one(p):
        try:
            return (await llm.achat(msgs(p))).additional_kwargs["routellm"]["cost_usd"]
        except BudgetExceeded:
            return None

    costs = [c for c in await asyncio.gather(*(one(p) for p in PROMPTS)) if c is not None]
    assert costs and len(costs) < len(PROMPTS)
    assert sum(costs) - cap < max(costs) and state(llm).spent_usd == pytest.approx(sum(costs))
    assert state(llm).reserved_usd == 0


def test_the_backends_max_tokens_bound_the_reservation(openai_server):
    """A strong call reserves input + output bound: 4096 default output tokens of gpt-4o
    ($0.04) do not fit a $0.01 cap, 16 do; so the same call goes weak, then strong."""
    default = openai_pair(openai_server, budget=Budget(max_usd=0.01))
    assert default.chat(msgs(LONG)).additional_kwargs["routellm"]["step_policy"] == "per_turn:budget"
    for backend in (default.strong, default.weak):
        backend.max_tokens = 16
    bounded = RoutedLLM(strong=default.strong, weak=default.weak, router=LengthRouter(), threshold=0.5,
                        ledger=CostLedger(PriceTable.default()), budget=Budget(max_usd=0.01))
    assert bounded.chat(msgs(LONG)).additional_kwargs["routellm"]["route"] == "strong"
    # a call's own max_tokens bounds it too
    assert default.chat(msgs(LONG), max_tokens=16).additional_kwargs["routellm"]["route"] == "strong"


def test_tool_schemas_count_in_the_reservation():
    """The provider bills the tools' schemas as input: a huge schema makes a strong call
    too dear for the cap, so it goes weak; without tools the same question goes strong."""
    from llama_index.core.tools import FunctionTool

    def lookup(topic: str) -> str:
        return topic

    tool = FunctionTool.from_defaults(lookup, description="Look a topic up. " * 1500)  # ~25k bytes
    llm = _scripted(budget=Budget(max_usd=0.05, default_output_tokens=1))
    assert llm.chat_with_tools([], user_msg=LONG).additional_kwargs["routellm"]["route"] == "strong"
    assert llm.chat_with_tools([tool], user_msg=LONG).additional_kwargs["routellm"]["route"] == "weak"
    assert state(llm).reserved_usd == 0


# -- query engines route on the question -----------------------------------------------------------
QA = PromptTemplate("Context information is below.\n{context_str}\nAnswer the query.\nQuery: {query_str}\nAnswer: ")
CONTEXT = "The Eiffel Tower is 330 metres tall and stands in Paris, the capital of France. " * 12


async def test_templated_calls_route_on_the_query_not_the_context(events):
    llm = RoutedLLM(strong=ScriptedLLM(name="big-model"), weak=ScriptedLLM(name="small-model"),
                    router=LengthRouter(), threshold=0.5, ledger=CostLedger(PRICES))
    llm.predict(QA, context_str=CONTEXT, query_str=SHORT)
    await llm.apredict(QA, context_str=CONTEXT, query_str=SHORT)
    "".join(llm.stream(QA, context_str=CONTEXT, query_str=SHORT))
    [t async for t in await llm.astream(QA, context_str=CONTEXT, query_str=SHORT)]
    llm.predict(QA, context_str="short", query_str=LONG)
    assert [e.route for e in events] == ["weak"] * 4 + ["strong"]
    # without a query, the whole prompt is what the call is about
    llm.predict(PromptTemplate("{text}"), text=CONTEXT)
    assert events[-1].route == "strong"


class Capital(BaseModel):
    """A capital city."""

    city: str


async def test_structured_predict_routes_on_the_query(events):
    answer = [{"tool": "Capital", "args": {"city": "Paris"}}]
    llm = RoutedLLM(strong=ScriptedLLM(name="big-model", script=list(answer)),
                    weak=ScriptedLLM(name="small-model", script=answer * 2), router=LengthRouter(), threshold=0.5,
                    ledger=CostLedger(PRICES))
    assert llm.structured_predict(Capital, QA, context_str=CONTEXT, query_str=SHORT).city == "Paris"
    assert (await llm.astructured_predict(Capital, QA, context_str=CONTEXT, query_str=SHORT)).city == "Paris"
    assert [e.route for e in events] == ["weak", "weak"] and llm.strong.calls == 0
    # bound earlier with partial_format, as response synthesizers do
    assert llm.structured_predict(Capital, QA.partial_format(query_str=LONG), context_str="short").city == "Paris"
    assert events[-1].route == "strong"


# -- metadata, configuration, secrets -----------------------------------------------------------------
class UnknownLimits(ScriptedLLM):
    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=-1, num_output=-1, is_chat_model=True, is_function_calling_model=True,
                           model_name=self.name)


def test_metadata_ignores_a_backends_unknown_limits():
    llm = RoutedLLM(strong=UnknownLimits(name="big-model"), weak=ScriptedLLM(name="small-model"),
                    router=LengthRouter(), ledger=CostLedger(PRICES))
    assert llm.metadata.num_output == 512 and llm.metadata.context_window == 4096
    both = RoutedLLM(strong=UnknownLimits(name="big-model"), weak=UnknownLimits(name="small-model"),
                     router=LengthRouter(), ledger=CostLedger(PRICES))
    assert both.metadata.num_output == -1


def test_an_unpriced_model_under_a_dollar_cap_is_a_configuration_error():
    with pytest.raises(BudgetConfigError, match="my-local-model"):
        RoutedLLM(strong=ScriptedLLM(name="my-local-model"), weak=ScriptedLLM(name="small-model"),
                  router=LengthRouter(), ledger=CostLedger(PRICES), budget=Budget(max_usd=1.0))


def test_backend_secrets_never_appear_in_any_serialisation(openai_server, anthropic_server):
    llm = RoutedLLM(strong=OpenAI(model="gpt-4o", api_key=SECRET, api_base=openai_server.base_url,
                                  default_headers={"Authorization": f"Bearer {SECRET}", "X-Team": "a"}),
                    weak=Anthropic(model="claude-3-5-haiku-20241022", api_key=SECRET,
                                   base_url=anthropic_server.base_url),
                    router=LengthRouter(), threshold=0.3)
    shown = [repr(llm), str(llm), json.dumps(llm.to_dict(), default=str), llm.to_json(),
             str(llm.model_dump()), llm.model_dump_json()]
    for text in shown:
        assert SECRET not in text
    assert llm.to_dict()["strong"]["model"] == "gpt-4o" and llm.to_dict()["strong"]["class_name"] == OpenAI.class_name()
    assert llm.to_dict()["strong"]["default_headers"] == {"X-Team": "a"}  # settings stay, only secrets go


def test_from_dict_needs_the_backends_and_then_round_trips():
    llm = RoutedLLM(strong=ScriptedLLM(name="big-model"), weak=ScriptedLLM(name="small-model"),
                    router=LengthRouter(), threshold=0.3, scope="team-a", on_no_text="weak",
                    ledger=CostLedger(PRICES))
    with pytest.raises(ObjectsRequired, match="strong=..., weak=..., router=...") as info:
        RoutedLLM.from_dict(llm.to_dict())
    assert isinstance(info.value, TypeError) and isinstance(info.value, RouteLLMError)
    again = RoutedLLM.from_dict(llm.to_dict(), strong=ScriptedLLM(name="big-model"),
                                weak=ScriptedLLM(name="small-model"), router=LengthRouter(),
                                ledger=CostLedger(PRICES))
    assert (again.threshold, again.scope, again.on_no_text) == (0.3, "team-a", "weak")
    assert again.chat(msgs(LONG)).additional_kwargs["routellm"]["route"] == "strong"


def test_from_json_keeps_a_named_router_the_budget_and_the_step_policy():
    llm = RoutedLLM(strong=ScriptedLLM(name="big-model"), weak=ScriptedLLM(name="small-model"), router="random",
                    strong_fraction=0.25, steps="sticky", budget=Budget(max_usd=2.0, on_exhausted="raise"),
                    max_scopes=10, ledger=CostLedger(PRICES))
    again = RoutedLLM.from_json(llm.to_json(), strong=ScriptedLLM(name="big-model"),
                                weak=ScriptedLLM(name="small-model"), ledger=CostLedger(PRICES))
    assert again.router_name == "random" and again.policy.steps == "sticky"
    assert again.policy.budget.budget == Budget(max_usd=2.0, on_exhausted="raise")
    assert (again.strong_fraction, again.threshold, again.max_scopes) == (0.25, None, 10)
    # the budget is checked on the way back in, as at construction
    with pytest.raises(BudgetConfigError):
        RoutedLLM.from_json(llm.to_json(), strong=ScriptedLLM(name="unpriced"), weak=ScriptedLLM(name="small-model"),
                            ledger=CostLedger(PRICES))


# -- one turn extraction for both frameworks ------------------------------------------------------------
@pytest.mark.parametrize("route_on", ["last_user", "conversation"])
def test_a_conversation_routes_on_the_same_text_as_in_langchain(route_on):
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    from langchain_routellm.messages import turn_of_messages

    llm = RoutedLLM(strong=ScriptedLLM(name="big-model"), weak=ScriptedLLM(name="small-model"),
                    router=LengthRouter(), route_on=route_on, ledger=CostLedger(PRICES))
    li = [ChatMessage(role=MessageRole.SYSTEM, content="be brief"), ChatMessage(role=MessageRole.USER, content="hi"),
          ChatMessage(role=MessageRole.ASSISTANT, content="hello"), ChatMessage(role=MessageRole.USER, content="")]
    lc = [SystemMessage("be brief"), HumanMessage("hi"), AIMessage("hello"), HumanMessage("")]
    ours, theirs = llm._turn(li, {}), turn_of_messages(lc, "last_human" if route_on == "last_user" else route_on)
    assert (ours.text, ours.key, ours.followup) == (theirs.text, theirs.key, theirs.followup)
    if route_on == "last_user":  # the empty last message is not replaced by an earlier one
        assert ours.text == "" and llm.chat(li).additional_kwargs["routellm"]["reason"] == "no_text"
    with pytest.raises(InvalidPromptError):
        llm.chat([ChatMessage(role=MessageRole.SYSTEM, content="no user")])


def test_the_routing_event_carries_the_record_and_reads_its_fields():
    from llamaindex_routellm import RoutingDecisionEvent
    from llamaindex_routellm.events import _RECORD_FIELDS
    from routellm_integrations.routing import CallRecord

    record = CallRecord(call_id="c1", route="weak", model="m", provider="openai", score=0.2, threshold=0.5,
                        router="length", latency_ms=1.0, reason="scored", forced=False, step_policy=None, scope=None,
                        status="ok", input_tokens=10, output_tokens=2, cost_usd=0.001, strong_model="s",
                        strong_provider="openai")
    event = RoutingDecisionEvent.of(record, span_id="span-1")
    assert event.record is record and event.span_id == "span-1" and "route" not in type(event).model_fields
    assert {name: getattr(event, name) for name in _RECORD_FIELDS} == {name: getattr(record, name)
                                                                       for name in _RECORD_FIELDS}
