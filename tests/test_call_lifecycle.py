"""The core call lifecycle: one turn extraction, and a handle that settles on every exit."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import numpy as np
import pytest

from routellm_integrations.budgets import Budget
from routellm_integrations.costs import PriceTable
from routellm_integrations.state import CostLedger
from routellm_integrations.errors import BudgetConfigError, BudgetExceeded, InvalidPromptError
from routellm_integrations.policy import RoutingPolicy
from routellm_integrations.routers.base import BaseRouter
from routellm_integrations.routing import Backend, CallLifecycle, turn_of, turn_of_prompt

PRICES = PriceTable({"openai": {"dear": (10.0, 30.0), "cheap": (0.5, 1.5)}})
STRONG, WEAK = Backend("strong", "dear", "openai"), Backend("weak", "cheap", "openai")


class Fixed(BaseRouter):
    """Scores a prompt by the number written at its start ("0.73 ..." -> 0.73)."""

    name = "fixed"

    def _score(self, prompts):
        return np.array([float(p.split()[0]) for p in prompts])


class Slow(Fixed):
    name = "slow"

    def _score(self, prompts):
        time.sleep(0.2)
        return super()._score(prompts)


def lifecycle(router=None, budget=None, **kw):
    policy = RoutingPolicy(router or Fixed(), threshold=0.5, budget=budget, steps="every_step")
    return CallLifecycle(policy, strong=STRONG, weak=WEAK, prices=PRICES, ledger=CostLedger(PRICES), **kw)


def state(lc, scope="global"):
    return lc.policy.budget.state(scope)


# -- one turn extraction ---------------------------------------------------------------------
def test_turn_normalises_roles_so_both_frameworks_route_and_digest_alike():
    lc_style = [("system", "be brief"), ("human", "first"), ("ai", "answer"), ("human", "0.7 second")]
    li_style = [("system", "be brief"), ("user", "first"), ("assistant", "answer"), ("user", "0.7 second")]
    a, b = turn_of(lc_style), turn_of(li_style)
    assert a == b and a.text == "0.7 second" and not a.followup
    assert turn_of(lc_style, "conversation").text == "be brief\n\nfirst\n\nanswer\n\n0.7 second"
    assert turn_of(lc_style, "last_human").text == "0.7 second"
    step = turn_of(li_style + [("assistant", ""), ("tool", "42")])
    assert step.followup and step.key == a.key  # a tool step continues the turn


def test_an_empty_last_user_message_never_falls_back_to_an_earlier_one():
    t = turn_of([("user", "an earlier question"), ("assistant", "ok"), ("user", "")])
    assert t.text == "" and not t.has_text


def test_turn_errors_and_surrogates():
    with pytest.raises(InvalidPromptError, match="no messages"):
        turn_of([])
    with pytest.raises(InvalidPromptError, match="no user message"):
        turn_of([("system", "x"), ("assistant", "y")])
    with pytest.raises(InvalidPromptError, match="empty"):
        turn_of_prompt("   ")
    t = turn_of([("user", "caf\udce9 au lait")])
    t.text.encode("utf-8")  # a lone surrogate is replaced, so any tokenizer can take it
    assert t.text.startswith("caf") and t.input_bytes >= len("caf au lait")


# -- the handle ------------------------------------------------------------------------------
def test_unpriced_model_under_a_dollar_cap_is_a_configuration_error():
    policy = RoutingPolicy(Fixed(), threshold=0.5, budget=Budget(max_usd=1.0))
    with pytest.raises(BudgetConfigError, match="'mystery-model'"):
        CallLifecycle(policy, strong=Backend("strong", "mystery-model", "openai"), weak=WEAK, prices=PRICES)
    CallLifecycle(RoutingPolicy(Fixed(), budget=Budget(max_strong_calls=3)),  # a call cap needs no prices
                  strong=Backend("strong", "mystery-model", "openai"), weak=WEAK, prices=PRICES)


def test_finish_prices_once_settles_and_records():
    lc = lifecycle(budget=Budget(max_usd=10.0))
    call = lc.begin(turn_of([("user", "0.9 prove it")]), max_output_tokens=100)
    assert call.route == "strong" and state(lc).reserved_usd > 0 and state(lc).in_flight == 1
    record = call.finish({"prompt_tokens": 1000, "completion_tokens": 100}, model="dear-2025-01-01")
    expected = (1000 * 10.0 + 100 * 30.0) / 1e6
    assert record.status == "ok" and record.cost_usd == pytest.approx(expected) and not record.estimated
    assert record.model == "dear-2025-01-01" and record.strong_model == "dear"
    assert state(lc).spent_usd == pytest.approx(expected) and state(lc).reserved_usd == 0 and state(lc).in_flight == 0
    assert lc.ledger.total.calls == 1 and lc.ledger.total.cost_usd == pytest.approx(expected)
    assert call.finish({"prompt_tokens": 5}) is record  # settling twice changes nothing
    assert lc.ledger.total.calls == 1 and record.metadata()["budget"]["spent_usd"] == pytest.approx(expected)


def test_every_exit_of_a_with_block_releases_the_reservation():
    lc = lifecycle(budget=Budget(max_usd=10.0))
    with pytest.raises(RuntimeError):
        with lc.begin(turn_of([("user", "0.9 x")])):
            raise RuntimeError("backend down")
    assert state(lc).in_flight == 0 and state(lc).spent_usd == 0 and lc.ledger.total.failed_calls == 1

    def stream():
        with lc.begin(turn_of([("user", "0.9 x")])) as call:
            for word in ["a" * 40] * 10:
                call.delivered(word)
                yield word
    gen = stream()
    next(gen), next(gen)
    gen.close()  # the consumer stopped reading: GeneratorExit inside the block
    assert state(lc).in_flight == 0
    abandoned = state(lc).spent_usd
    assert abandoned > 0  # 80 delivered characters were billed, estimated
    assert lc.ledger.total.estimated_calls == 1


def test_a_cut_stream_is_charged_for_what_it_delivered():
    lc = lifecycle(budget=Budget(max_usd=10.0))
    call = lc.begin(turn_of([("user", "0.9 tell me a story")]))
    for _ in range(8):
        call.delivered("word ")
    record = call.fail(ConnectionError("peer closed"))
    assert record.status == "cut" and record.estimated and record.output_tokens == 10
    assert record.cost_usd > 0 and state(lc).spent_usd == pytest.approx(record.cost_usd)
    assert lc.ledger.total.cost_usd == pytest.approx(record.cost_usd)


def test_absurd_usage_never_crashes_a_good_answer():
    lc = lifecycle()
    call = lc.begin(turn_of([("user", "0.2 hi")]))
    with pytest.warns(RuntimeWarning, match="unusable usage"):
        record = call.finish({"prompt_tokens": 10, "completion_tokens": 1e400}, text="hello there")
    assert record.status == "ok" and record.estimated and record.usage_error and record.output_tokens == 3
    assert record.cost_usd == pytest.approx((record.input_tokens * 0.5 + 3 * 1.5) / 1e6)


def test_a_cache_hit_costs_nothing_and_releases():
    lc = lifecycle(budget=Budget(max_usd=10.0))
    record = lc.begin(turn_of([("user", "0.9 x")])).cached()
    assert record.status == "cached" and record.cost_usd == 0.0
    assert state(lc).in_flight == 0 and state(lc).spent_usd == 0 and state(lc).strong_calls == 0
    assert lc.ledger.total.calls == 0 and lc.ledger.total.cached_calls == 1


def test_a_dropped_handle_is_released_by_the_garbage_collector():
    lc = lifecycle(budget=Budget(max_usd=10.0))
    call = lc.begin(turn_of([("user", "0.9 x")]))
    assert state(lc).in_flight == 1
    del call
    gc.collect()  # the release runs on a worker thread (never under a lock the collector interrupted)
    deadline = time.monotonic() + 5
    while state(lc).in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state(lc).in_flight == 0 and state(lc).reserved_usd == 0


def test_a_handle_collected_while_the_budget_lock_is_held_does_not_deadlock():
    lc = lifecycle(budget=Budget(max_usd=10.0))

    def collect_under_the_lock():
        call = lc.begin(turn_of([("user", "0.9 x")]))
        with lc.policy.budget.store._lock:  # as if the collector ran inside a budget operation
            del call
            gc.collect()

    worker = threading.Thread(target=collect_under_the_lock, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive()
    deadline = time.monotonic() + 5
    while state(lc).in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state(lc).in_flight == 0


def test_preview_reserves_nothing():
    lc = lifecycle(budget=Budget(max_usd=10.0))
    assert lc.preview(turn_of([("user", "0.9 x")])).route == "strong"
    assert state(lc).in_flight == 0 and len(lc.policy.budget) == 0


def test_no_text_goes_where_on_no_text_says():
    assert lifecycle().begin(turn_of([("user", "")])).route == "strong"
    assert lifecycle(on_no_text="weak").begin(turn_of([("user", "")])).reason == "no_text"
    with pytest.raises(InvalidPromptError):
        lifecycle(on_no_text="error").begin(turn_of([("user", "")]))


async def test_cancelled_while_the_router_scores_releases_what_the_thread_reserved():
    lc = lifecycle(router=Slow(), budget=Budget(max_usd=10.0))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(lc.abegin(turn_of([("user", "0.9 x")])), 0.05)
    await asyncio.sleep(0.4)  # the scoring thread finishes and reserves; the orphan is released
    assert state(lc).in_flight == 0 and lc.ledger.total.failed_calls == 1


class WhereScored(Fixed):
    """Records the thread each score ran on."""

    name = "where"

    def __init__(self, inline: bool) -> None:
        self._inline, self.threads = inline, []

    @property
    def inline_scoring(self) -> bool:
        return self._inline

    def _score(self, prompts):
        self.threads.append(threading.current_thread())
        return super()._score(prompts)


@pytest.mark.parametrize("inline", [True, False])
async def test_a_router_that_scores_cheaply_scores_on_the_event_loop(inline):
    router = WhereScored(inline)
    lc = lifecycle(router=router)
    with await lc.abegin(turn_of([("user", "0.9 x")])) as call:
        call.cached()
    assert router.threads == [threading.current_thread()] if inline else router.threads[0] is not threading.current_thread()
    assert lc.policy.scores_inline() is inline


def test_which_shipped_routers_score_inline():
    from routellm_integrations.routers import load_router

    mf = RoutingPolicy("mf", threshold=0.5)
    assert not mf.scores_inline()  # not loaded yet: the first call loads it off the loop
    mf.decide("Prove that 2 is prime.")
    assert mf.scores_inline()  # WordLlama, loaded: a table lookup
    assert RoutingPolicy("length", threshold=0.5).scores_inline()
    assert not load_router("mf_minilm").inline_scoring  # a transformer per prompt


async def test_cancelled_during_the_backend_call_is_recorded_and_released():
    lc = lifecycle(budget=Budget(max_usd=10.0))

    async def routed():
        async with await lc.abegin(turn_of([("user", "0.9 x")])):
            await asyncio.sleep(5)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(routed(), 0.05)
    assert state(lc).in_flight == 0 and lc.ledger.by_route["strong"].failed_calls == 1


# -- budgets under concurrency -----------------------------------------------------------------
def _burst(lc, prompts, max_tokens):
    spent, refused, lock = [], [0], threading.Lock()

    def one(i):
        try:
            call = lc.begin(turn_of([("user", prompts[i])]), max_output_tokens=max_tokens[i])
        except BudgetExceeded:
            with lock:
                refused[0] += 1
            return
        time.sleep(0.001)
        out = int(max_tokens[i] * 0.9)
        record = call.finish({"prompt_tokens": len(prompts[i]) // 4, "completion_tokens": out})
        with lock:
            spent.append(record.cost_usd)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return spent, refused[0]


@pytest.mark.parametrize("mode", ["weak", "raise"])
def test_total_spend_never_passes_the_cap_under_a_burst(mode):
    rng = np.random.default_rng(0)
    prompts = [f"{rng.uniform():.2f} " + "word " * int(rng.integers(5, 400)) for _ in range(200)]
    max_tokens = [int(t) for t in rng.choice([50, 2000], 200)]
    cap = 0.2
    lc = lifecycle(budget=Budget(max_usd=cap, on_exhausted=mode))
    spent, refused = _burst(lc, prompts, max_tokens)
    # the last call admitted may pass the cap, by less than its own cost; no more
    assert refused > 0 and sum(spent) - cap < max(spent)
    assert state(lc).spent_usd == pytest.approx(sum(spent)) and state(lc).in_flight == 0


def test_a_far_cap_routes_exactly_like_no_budget():
    rng = np.random.default_rng(1)
    prompts = [f"{rng.uniform():.3f} " + "word " * 50 for _ in range(300)]
    free, capped = lifecycle(), lifecycle(budget=Budget(max_usd=1000.0))
    calls = [capped.begin(turn_of([("user", p)])) for p in prompts]  # all in flight at once
    assert [c.route for c in calls] == [free.begin(turn_of([("user", p)])).route for p in prompts]
    assert all(c.decision.step_policy == "every_step" for c in calls)
    for c in calls:
        c.finish({"prompt_tokens": 60, "completion_tokens": 100})
    assert state(capped).in_flight == 0


# -- one ledger: the store; the in-process ledger a view of it ---------------------------------
def test_a_call_is_written_once_to_the_store_and_the_ledger_reads_it():
    from routellm_integrations.state import LedgerEntry, MemoryStore

    policy = RoutingPolicy(Fixed(), threshold=0.5, steps="every_step")
    lc = CallLifecycle(policy, strong=STRONG, weak=WEAK, prices=PRICES)
    assert isinstance(lc.store, MemoryStore) and lc.ledger.stores == [lc.store]  # always a store: memory by default
    record = lc.begin(turn_of([("user", "0.2 hi")])).finish({"prompt_tokens": 100, "completion_tokens": 10,
                                                            "prompt_tokens_details": {"cached_tokens": 40}})
    lc.begin(turn_of([("user", "0.9 hi")])).fail(RuntimeError("down"))
    entries = lc.store.entries()
    assert entries[0].call_id == record.call_id and len(entries) == 2  # one entry per call
    assert entries[0] == LedgerEntry.of(record, ts=entries[0].ts)  # the entry is the record's ledger row
    assert record.cache_read_tokens == entries[0].cache_read_tokens == 40
    assert lc.ledger.summary() == lc.store.usage().as_dict()  # one shape, one source
    assert lc.ledger.total.calls == 1 and lc.ledger.total.failed_calls == 1
    lc.ledger.reset()  # the view starts from zero; the store keeps its entries
    assert lc.ledger.total.calls == 0 and lc.ledger.by_route == {} and len(lc.store.entries()) == 2
    lc.begin(turn_of([("user", "0.2 again")])).finish({"prompt_tokens": 10, "completion_tokens": 1})
    assert lc.ledger.total.calls == 1 and set(lc.ledger.by_route) == {"weak"}


def test_a_ledger_handed_in_reads_the_store_the_calls_settle_in():
    from routellm_integrations.state import MemoryStore

    store, ledger = MemoryStore(), CostLedger(PRICES)
    policy = RoutingPolicy(Fixed(), threshold=0.5, budget=Budget(max_usd=1.0), store=store)
    lc = CallLifecycle(policy, strong=STRONG, weak=WEAK, prices=PRICES, ledger=ledger)
    assert lc.store is store and lc.ledger is ledger and ledger.stores == [ledger.store, store]
    lc.begin(turn_of([("user", "0.2 hi")])).finish({"prompt_tokens": 100, "completion_tokens": 10})
    assert len(store.entries()) == 1 and ledger.store.entries() == []  # written once, where the budget settled
    assert ledger.total.calls == 1 and ledger.total.cost_usd == pytest.approx(state(lc).spent_usd)
    # two lifecycles over one ledger (e.g. two models sharing a cost ledger): the view sums their stores
    other = CallLifecycle(RoutingPolicy(Fixed(), threshold=0.5), strong=STRONG, weak=WEAK, prices=PRICES, ledger=ledger)
    other.begin(turn_of([("user", "0.9 hi")])).finish({"prompt_tokens": 10, "completion_tokens": 1})
    assert other.store is ledger.store and ledger.total.calls == 2 and set(ledger.by_route) == {"weak", "strong"}


def test_a_budget_without_a_store_keeps_numbers_only_and_the_call_is_written_once():
    from routellm_integrations.state.memory import IN_PROCESS_MAX_ENTRIES

    lc = lifecycle(budget=Budget(max_usd=1.0))
    for _ in range(3):
        lc.begin(turn_of([("user", "0.2 hi")])).finish({"prompt_tokens": 100, "completion_tokens": 10})
    assert lc.policy.budget.store.entries() == [] and len(lc.store.entries()) == 3
    assert state(lc).spent_usd == pytest.approx(lc.ledger.total.cost_usd) and lc.ledger.total.calls == 3
    assert lc.store._entries.maxlen == IN_PROCESS_MAX_ENTRIES  # an in-process ledger keeps a bounded tail
