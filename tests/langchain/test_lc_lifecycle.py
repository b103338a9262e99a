"""RoutedChat's calls settle on every exit: answers, cache hits, cancellations, raising
callbacks, abandoned and cut streams, absurd usage; budgets stay exact under hundreds
of concurrent calls. Over the local OpenAI-format server where a provider is involved."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import set_llm_cache
from langchain_core.load import dumps
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from langchain_routellm import RoutedChat, routellm_cost_tracker
from lc_fakes import ScriptedChatModel
from routellm_integrations import Budget
from routellm_integrations.costs import PriceTable
from routellm_integrations.errors import BudgetConfigError, BudgetExceeded
from routellm_integrations.routers.base import BaseRouter
from routellm_integrations.testing.openai_compat import Reply, chat_completions_handler, raw_usage_handler

SHORT = "hi there"                                                         # length router: weak
LONG = "Please write a detailed essay about the history of computing machines."  # strong
SECRET = "sk-live-do-not-print-0123456789"
#: langchain-openai keeps one async HTTP client per process: every async test shares a loop
on_session_loop = pytest.mark.asyncio(loop_scope="session")


def openai_pair(server, **kw):
    strong = ChatOpenAI(model="gpt-4o", base_url=server.base_url, api_key="sk-test", max_retries=0,
                        stream_usage=True)
    weak = ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test", max_retries=0,
                      stream_usage=True)
    opts = {"router": "length", "router_options": {"midpoint": 20}, "threshold": 0.5, **kw}
    return RoutedChat(strong=strong, weak=weak, **opts)


def state(llm, scope="global"):
    return llm.policy.budget.state(scope)


# -- cache hits ------------------------------------------------------------------------------
@pytest.fixture
def cache():
    from langchain_core.caches import InMemoryCache

    set_llm_cache(InMemoryCache())
    yield
    set_llm_cache(None)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_cache_hit_settles_as_cached_and_releases_its_reservation(cache, mode):
    llm = RoutedChat(strong=ScriptedChatModel(model="gpt-4o", provider="openai"),
                     weak=ScriptedChatModel(model="gpt-4o-mini", provider="openai"),
                     router="length", router_options={"midpoint": 20}, threshold=0.5,
                     budget=Budget(max_usd=1.0, on_exhausted="raise"))
    call = llm.invoke if mode == "sync" else (lambda p: asyncio.run(llm.ainvoke(p)))
    with routellm_cost_tracker() as tracker:
        first, second = call(LONG), call(LONG)
    assert llm.strong.calls and len(llm.strong.calls) == 1  # the second answer came from the cache
    a, b = first.response_metadata["routellm"], second.response_metadata["routellm"]
    assert a["status"] == "ok" and a["cost_usd"] > 0
    assert b["status"] == "cached" and b["cost_usd"] == 0.0 and b["call_id"] != a["call_id"]
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and s.spent_usd == pytest.approx(a["cost_usd"])
    assert tracker.total.calls == 1 and tracker.total.cached_calls == 1
    assert tracker.total_cost == pytest.approx(a["cost_usd"])
    assert llm.ledger.total.cached_calls == 1 and llm.ledger.total.calls == 1
    # the cached entry itself is untouched: a third hit still reports the first call's stamp underneath
    assert call(LONG).response_metadata["routellm"]["status"] == "cached"


# -- cancellation ------------------------------------------------------------------------------
@on_session_loop
async def test_ainvoke_cancelled_by_wait_for_releases_and_is_recorded(openai_server):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))
    openai_server.chat.push(Reply(text="slow answer", delay_s=1.0))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(llm.ainvoke(LONG), 0.2)
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and s.spent_usd == 0
    assert llm.ledger.total.failed_calls == 1  # cancelled: in the ledger, nothing billed


class SlowRouter(BaseRouter):
    name = "slow-length"

    def _score(self, prompts):
        time.sleep(0.3)
        return np.array([min(1.0, len(p) / 40) for p in prompts])


def test_cancelled_while_the_router_scores_releases_the_reservation():
    llm = RoutedChat(strong=ScriptedChatModel(model="gpt-4o", provider="openai"),
                     weak=ScriptedChatModel(model="gpt-4o-mini", provider="openai"), router=SlowRouter(),
                     threshold=0.5, budget=Budget(max_usd=1.0))

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(llm.ainvoke(LONG), 0.05)
        await asyncio.sleep(0.6)  # the scoring thread finishes and its reservation is released

    asyncio.run(main())
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and not llm.strong.calls


async def ticker(ticks):
    """Records when the event loop gets to run: gaps show a blocked loop."""
    for _ in range(10):
        ticks.append(time.monotonic())
        await asyncio.sleep(0.02)


def test_scoring_runs_off_the_event_loop():
    llm = RoutedChat(strong=ScriptedChatModel(model="gpt-4o", provider="openai"),
                     weak=ScriptedChatModel(model="gpt-4o-mini", provider="openai"), router=SlowRouter(),
                     threshold=0.5)
    ticks = []

    async def main():
        await asyncio.gather(llm.ainvoke(LONG), ticker(ticks))

    asyncio.run(main())
    assert max(np.diff(ticks)) < 0.2  # the loop kept ticking while the router slept 0.3 s


# -- raising callbacks and backends ---------------------------------------------------------------
class Raises(BaseCallbackHandler):
    raise_error = True

    def on_chat_model_start(self, *args, **kwargs):
        raise RuntimeError("callback broke")


@on_session_loop
async def test_a_raising_callback_releases_the_reservation(openai_server):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))

    async def astream():
        return [c async for c in llm.astream(LONG, config={"callbacks": [Raises()]})]

    for run in (lambda: llm.invoke(LONG, config={"callbacks": [Raises()]}),
                lambda: list(llm.stream(LONG, config={"callbacks": [Raises()]})),
                lambda: llm.ainvoke(LONG, config={"callbacks": [Raises()]}), astream):
        with pytest.raises(RuntimeError, match="callback broke"):
            out = run()
            if asyncio.iscoroutine(out):
                await out
        s = state(llm)
        assert s.reserved_usd == 0 and s.in_flight == 0
    assert llm.ledger.total.failed_calls == 4 and not openai_server.requests_to("/v1/chat/completions")


class NoTools(ScriptedChatModel):
    def bind_tools(self, tools, **kwargs):
        raise NotImplementedError


def test_bind_tools_on_a_backend_without_tools_releases_the_reservation():
    llm = RoutedChat(strong=NoTools(model="gpt-4o", provider="openai"),
                     weak=ScriptedChatModel(model="gpt-4o-mini", provider="openai"), router="length",
                     router_options={"midpoint": 20}, threshold=0.5, budget=Budget(max_usd=1.0))

    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    with pytest.raises(NotImplementedError, match="strong backend"):
        llm.bind_tools([add]).invoke(LONG)
    assert state(llm).reserved_usd == 0 and llm.ledger.total.failed_calls == 1


def test_decide_previews_without_reserving(openai_server):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0, max_strong_calls=1))
    for _ in range(5):
        assert llm.decide([HumanMessage(LONG)]).route == "strong"
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and s.strong_calls == 0
    assert llm.invoke(LONG).response_metadata["routellm"]["route"] == "strong"  # the preview took nothing


# -- streams ---------------------------------------------------------------------------------------
def test_an_abandoned_stream_is_charged_for_what_it_delivered(openai_server):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))
    openai_server.chat.push(Reply(text="word " * 200))
    with routellm_cost_tracker() as tracker:
        stream = llm.stream(LONG)
        got = [next(stream) for _ in range(3)]
        stream.close()
    assert "".join(c.content for c in got)
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and s.spent_usd > 0
    total = llm.ledger.total
    assert total.estimated_calls == 1 and total.cost_usd == pytest.approx(s.spent_usd)
    assert tracker.total_cost == pytest.approx(s.spent_usd) and tracker.total.estimated_calls == 1


@on_session_loop
async def test_an_abandoned_async_stream_settles_too(openai_server):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))
    openai_server.chat.push(Reply(text="word " * 200))
    stream = llm.astream(LONG)
    async for _ in stream:
        break
    await stream.aclose()
    s = state(llm)
    assert s.reserved_usd == 0 and s.in_flight == 0 and s.spent_usd > 0


@on_session_loop
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_stream_the_provider_cuts_is_charged_estimated(openai_server, mode):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))
    openai_server.chat.push(Reply(text="token " * 100, cut_after=8))
    got = []
    with routellm_cost_tracker() as tracker:
        with pytest.raises(Exception) as info:
            if mode == "sync":
                for chunk in llm.stream(LONG):
                    got.append(chunk.content)
            else:
                async for chunk in llm.astream(LONG):
                    got.append(chunk.content)
    record = info.value.routellm_record
    assert "".join(got) and record["status"] == "cut" and record["estimated"] and record["cost_usd"] > 0
    assert record["output_tokens"] > 0
    s = state(llm)
    assert s.reserved_usd == 0 and s.spent_usd == pytest.approx(record["cost_usd"])
    assert llm.ledger.total.cost_usd == pytest.approx(record["cost_usd"])
    assert tracker.total_cost == pytest.approx(record["cost_usd"])


# -- absurd usage ----------------------------------------------------------------------------------
absurd_usage_handler = raw_usage_handler('{"prompt_tokens": 12, "completion_tokens": 1e400, "total_tokens": 1e400}')


def test_absurd_usage_never_breaks_a_good_answer(openai_server):
    openai_server.routes[("POST", "/v1/chat/completions")] = absurd_usage_handler
    try:
        llm = openai_pair(openai_server, budget=Budget(max_usd=1.0))
        with pytest.warns(RuntimeWarning, match="unusable usage"):
            answer = llm.invoke(LONG)
    finally:
        openai_server.routes[("POST", "/v1/chat/completions")] = chat_completions_handler(openai_server.chat)
    record = answer.response_metadata["routellm"]
    assert answer.content == "a good answer"
    assert record["status"] == "ok" and record["estimated"] and record["usage_error"]
    assert 0 < record["cost_usd"] < 0.01 and state(llm).spent_usd == pytest.approx(record["cost_usd"])


# -- the tracker reads the cost the call stamped ---------------------------------------------------
def test_the_tracker_reports_the_calls_own_prices(openai_server):
    own = PriceTable.default().with_prices({"openai": {"gpt-4o": (100.0, 100.0), "gpt-4o-mini": (1.0, 1.0)}})
    llm = openai_pair(openai_server, prices=own)
    with routellm_cost_tracker() as tracker:
        answers = [llm.invoke(LONG), llm.invoke(SHORT), *llm.batch([LONG, SHORT])]
        list(llm.stream(LONG))
    stamped = sum(a.response_metadata["routellm"]["cost_usd"] for a in answers)
    assert tracker.total.calls == 5
    assert tracker.total_cost == pytest.approx(llm.ledger.total.cost_usd)
    assert tracker.total_cost > stamped  # the stream counted too
    u = answers[0].usage_metadata
    assert answers[0].response_metadata["routellm"]["cost_usd"] == pytest.approx(
        (u["input_tokens"] + u["output_tokens"]) * 100.0 / 1e6)


def test_the_tracker_counts_the_call_records_in_the_one_usage_shape(openai_server):
    from routellm_integrations.state import LedgerEntry

    llm = openai_pair(openai_server)
    with routellm_cost_tracker() as tracker:
        answers = [llm.invoke(LONG), llm.invoke(SHORT)]
    # the model's calls were written once, to its store; the tracker's entries are the same records' rows
    stored = {e.call_id: e for e in llm.ledger.store.entries()}
    records = [a.response_metadata["routellm"] for a in answers]
    assert set(stored) == {r["call_id"] for r in records}
    seen = tracker.ledger.store.entries()
    assert sorted(e.call_id for e in seen) == sorted(stored)
    for e in seen:
        assert e.model_dump(exclude={"ts"}) == stored[e.call_id].model_dump(exclude={"ts"})
        assert e == LedgerEntry.of(next(r for r in records if r["call_id"] == e.call_id), ts=e.ts)
    shape = tracker.summary()
    assert shape == tracker.ledger.usage().as_dict() and shape.keys() == llm.ledger.store.usage().as_dict().keys()
    assert shape["calls"] == 2 and "total" not in shape and set(shape["by_route"]) == {"strong", "weak"}
    assert shape["cost_usd"] == pytest.approx(llm.ledger.summary()["cost_usd"])


# -- budgets under concurrency ---------------------------------------------------------------------
PROMPTS = [("x" * n) for n in np.random.default_rng(3).integers(1, 60, 200)]


async def _routes(llm):
    answers = await llm.abatch(PROMPTS, config={"max_concurrency": 200})
    return [a.response_metadata["routellm"]["route"] for a in answers]


@on_session_loop
async def test_a_far_cap_changes_no_decision_under_200_concurrent_calls(openai_server):
    openai_server.chat.delay_s = 0.02
    try:
        free = await _routes(openai_pair(openai_server))
        capped_llm = openai_pair(openai_server, budget=Budget(max_usd=1000.0))
        capped = await _routes(capped_llm)
        strict = await _routes(openai_pair(openai_server, budget=Budget(max_usd=1000.0, on_exhausted="raise")))
    finally:
        openai_server.chat.delay_s = 0.0
    assert 40 < free.count("strong") < 160
    assert capped == free and strict == free
    assert state(capped_llm).reserved_usd == 0 and state(capped_llm).in_flight == 0


@on_session_loop
@pytest.mark.parametrize("on_exhausted", ["weak", "raise"])
async def test_a_tight_cap_holds_under_200_concurrent_calls(openai_server, on_exhausted):
    cap = 0.05
    llm = openai_pair(openai_server, max_tokens=64, budget=Budget(max_usd=cap, on_exhausted=on_exhausted))
    openai_server.chat.delay_s = 0.02

    async def one(p):
        try:
            return await llm.ainvoke(p * 40)
        except BudgetExceeded:
            return None

    try:
        answers = await asyncio.gather(*(one(p) for p in PROMPTS))
    finally:
        openai_server.chat.delay_s = 0.0
    done = [a for a in answers if a is not None]
    costs = [a.response_metadata["routellm"]["cost_usd"] for a in done]
    spent = sum(costs)
    assert done and len(done) < len(PROMPTS)  # the cap admitted some and refused the rest
    assert spent - cap < max(costs)  # only the last call admitted may pass the cap
    assert state(llm).spent_usd == pytest.approx(spent)
    assert state(llm).reserved_usd == 0


# -- configuration and secrets -----------------------------------------------------------------------
def test_an_unpriced_model_under_a_dollar_cap_is_a_configuration_error():
    # the typed error itself, as RoutedLLM and the policy raise it (not pydantic's ValidationError)
    with pytest.raises(BudgetConfigError, match="my-local-model.*cannot price"):
        RoutedChat(strong=ScriptedChatModel(model="my-local-model", provider="custom"),
                   weak=ScriptedChatModel(model="gpt-4o-mini", provider="openai"), router="length",
                   budget=Budget(max_usd=1.0))
    RoutedChat(strong=ScriptedChatModel(model="my-local-model", provider="custom"),  # a strong-call cap is fine
               weak=ScriptedChatModel(model="gpt-4o-mini", provider="openai"), router="length",
               budget=Budget(max_strong_calls=3))


def test_backend_secrets_never_appear_in_any_serialisation(openai_server, anthropic_server):
    llm = RoutedChat(strong=ChatOpenAI(model="gpt-4o", base_url=openai_server.base_url, api_key=SECRET),
                     weak=ChatAnthropic(model="claude-3-5-haiku-latest", base_url=anthropic_server.base_url,
                                        api_key=SECRET), router="length")
    shown = [repr(llm), str(llm), str(llm.model_dump()), llm.model_dump_json(), dumps(llm),
             json.dumps(llm.to_json(), default=str), str(llm.asdict()), str(llm._identifying_params)]
    for text in shown:
        assert SECRET not in text


# -- native structured output --------------------------------------------------------------------------
class Sum(BaseModel):
    a: int
    b: int


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_native_structured_output_uses_the_backends_own_method(openai_server, method):
    llm = openai_pair(openai_server)
    schema = Sum if method == "json_schema" else Sum.model_json_schema()
    prompt = "Please add 2 and 3 and answer with the fields a and b of the sum, in JSON."
    if method == "json_mode":  # no schema goes over the wire: the model follows the prompt
        openai_server.chat.push(Reply(text='{"a": 2, "b": 3}'))
    with routellm_cost_tracker() as tracker:
        out = llm.with_structured_output(schema, method=method, include_raw=True).invoke(prompt)
    body = openai_server.requests_to("/v1/chat/completions")[-1].json
    assert body["response_format"]["type"] == ("json_schema" if method == "json_schema" else "json_object")
    assert "tools" not in body and body["model"] == "gpt-4o"
    assert out["parsed"] == (Sum(a=2, b=3) if method == "json_schema" else {"a": 2, "b": 3})
    record = out["raw"].response_metadata["routellm"]
    assert record["route"] == "strong" and record["status"] == "ok" and record["cost_usd"] > 0
    assert tracker.total.calls == 1 and tracker.total_cost == pytest.approx(record["cost_usd"])


@on_session_loop
async def test_native_structured_output_async_and_parsed_only(openai_server):
    llm = openai_pair(openai_server)
    out = await llm.with_structured_output(Sum, method="json_schema").ainvoke(
        "Please add 2 and 3 and answer with the fields a and b of the sum, in JSON.")
    assert out == Sum(a=2, b=3) and llm.ledger.total.calls == 1


def test_concurrent_threads_keep_the_ledger_exact(openai_server):
    llm = openai_pair(openai_server, budget=Budget(max_usd=1000.0))
    results = []

    def worker(i):
        results.append(llm.invoke(PROMPTS[i]).response_metadata["routellm"]["cost_usd"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 50 and llm.ledger.total.calls == 50
    assert state(llm).spent_usd == pytest.approx(sum(results)) and state(llm).reserved_usd == 0


# -- stream_events v3 -----------------------------------------------------------------------------------
def _fakes(**kw):
    return RoutedChat(strong=ScriptedChatModel(model="gpt-4o", provider="openai"),
                      weak=ScriptedChatModel(model="gpt-4o-mini", provider="openai"), router="length",
                      router_options={"midpoint": 20}, threshold=0.5, **kw)


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_stream_events_v3_routes_settles_and_is_tracked():
    llm = _fakes(budget=Budget(max_usd=1.0))
    with routellm_cost_tracker() as tracker:
        out = llm.stream_events(LONG, version="v3").output
    record = out.response_metadata["routellm"]
    assert record["route"] == "strong" and record["status"] == "ok" and record["cost_usd"] > 0
    assert tracker.total.calls == 1 and state(llm).reserved_usd == 0


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
async def test_astream_events_v3_scores_off_the_loop_and_settles():
    llm = RoutedChat(strong=ScriptedChatModel(model="gpt-4o", provider="openai"),
                     weak=ScriptedChatModel(model="gpt-4o-mini", provider="openai"), router=SlowRouter(),
                     threshold=0.5, budget=Budget(max_usd=1.0))
    ticks = []

    async def call():
        stream = await llm.astream_events(LONG, version="v3")
        return await stream.output

    out, _ = await asyncio.gather(call(), ticker(ticks))
    assert out.response_metadata["routellm"]["route"] == "strong" and max(np.diff(ticks)) < 0.2
    assert state(llm).reserved_usd == 0 and llm.ledger.total.calls == 1


def test_scope_state_is_bounded():
    llm = _fakes(budget=Budget(max_usd=10.0), max_scopes=3)
    for i in range(10):
        llm.invoke(LONG, config={"metadata": {"thread_id": f"t{i}"}})
    assert len(llm.policy.budget) == 3
    assert state(llm, "thread:t9").spent_usd > 0 and state(llm, "thread:t0").spent_usd == 0  # forgotten
