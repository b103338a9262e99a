"""Routing state in a store: the same admission rule in memory, SQLite and Redis (a real
redis-server on 127.0.0.1), one cap across processes, spend that survives a restart and a
``kill -9``, leases that free a dead process's reservations, validated checkpoints."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from routellm_integrations import RoutingPolicy
from routellm_integrations.budgets import Budget
from routellm_integrations.state import BudgetTracker
from routellm_integrations.costs import PriceTable, Usage
from routellm_integrations.errors import BudgetExceeded, InvalidStateError, InvalidStoreURL
from routellm_integrations.online import OnlineShareController
from routellm_integrations.routing.call import Backend, CallLifecycle
from routellm_integrations.routing.turn import turn_of
from routellm_integrations.state import LedgerEntry, MemoryStore, UsageQuery, UsageReport, open_store
from routellm_integrations.budgets import ScopeTotals, admit

PRICES = PriceTable({"test": {"big": (10.0, 30.0), "small": (0.5, 1.5)}})


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("redis_url")


def test_every_store_applies_the_one_admission_rule(store_url):
    """Random budgets and calls, in lockstep against the reference rule on plain numbers:
    the Redis Lua script and the SQL transaction admit exactly what ``admit`` admits."""
    rng = random.Random(7)
    store = open_store(store_url)
    for case in range(12):
        budget = Budget(max_usd=rng.choice([None, 0.5, 1.0, 3.0]), max_strong_calls=rng.choice([None, 0, 2, 5]),
                        on_exhausted=rng.choice(["weak", "raise"]))
        scope = f"case-{case}"
        ref, live = ScopeTotals(), []
        for _ in range(60):
            if live and rng.random() < 0.4:
                r, ref_amount = live.pop(rng.randrange(len(live)))
                cost = rng.choice([None, 0.0, rng.uniform(0, 0.6)])
                ok = rng.random() < 0.8
                state = store.settle(budget, r, cost, succeeded=ok)
                ref.in_flight -= 1
                ref.reserved = ref.reserved - ref_amount if ref.in_flight else 0.0
                ref.spent += cost or 0.0
                if r.route == "strong":
                    ref.strong_in_flight -= 1
                    ref.strong_calls += ok
            else:
                route = rng.choice(["strong", "weak"])
                bounds = rng.choice([None, {"strong": rng.uniform(0, 0.8), "weak": rng.uniform(0, 0.1)}])
                want = admit(budget, ref, route, bounds)
                if want is None:
                    with pytest.raises(BudgetExceeded, match=scope):
                        store.reserve(budget, scope, route, bounds)
                    continue
                r, state = store.reserve(budget, scope, route, bounds)
                assert r.route == want
                amount = bounds[want] if bounds else 0.0
                live.append((r, amount))
                ref.reserved += amount
                ref.in_flight += 1
                ref.strong_in_flight += want == "strong"
            assert state.spent_usd == pytest.approx(ref.spent, abs=1e-9)
            assert state.reserved_usd == pytest.approx(ref.reserved, abs=1e-9)
            assert (state.in_flight, state.strong_calls, state.strong_in_flight) == \
                (ref.in_flight, ref.strong_calls, ref.strong_in_flight)
    store.close()


def _lifecycle(url: str, cap: float) -> CallLifecycle:
    policy = RoutingPolicy("random", threshold=0.5, budget=Budget(max_usd=cap, on_exhausted="raise"), store=url)
    return CallLifecycle(policy, strong=Backend("strong", "big", "test"), weak=Backend("weak", "small", "test"),
                         prices=PRICES)


def _spend_in_process(url: str, cap: float, calls: int, seed: int, out: "mp.Queue[tuple[int, int]]") -> None:
    lc = _lifecycle(url, cap)
    rng = random.Random(seed)
    tokens = [(rng.randint(50, 400), rng.randint(20, 200)) for _ in range(calls)]

    def one(i: int) -> int:
        try:
            # the bound reserves a token per input byte: the prompt is longer than any reported input,
            # as a real provider's count would be (the cap's guarantee assumes calls cost what they reserved)
            call = lc.begin(turn_of([("user", f"prompt {seed}-{i} " + "x" * 400)]), max_output_tokens=200,
                            api_key=f"proc-{seed}")
        except BudgetExceeded:
            return 0
        with call:
            time.sleep(rng.random() * 0.01)
            call.finish(Usage(input_tokens=tokens[i][0], output_tokens=tokens[i][1]))
        return 1

    with ThreadPoolExecutor(50) as pool:
        admitted = sum(pool.map(one, range(calls)))
    out.put((seed, admitted))


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_four_processes_share_one_cap(kind, tmp_path, request):
    """4 processes x 50 concurrent calls over one store: the cap holds within one call, and
    the ledger has exactly the calls the processes made, at the spend the budget counted."""
    url = f"sqlite:///{tmp_path / 'shared.db'}" if kind == "sqlite" else request.getfixturevalue("redis_url")
    cap = 0.3
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_spend_in_process, args=(url, cap, 50, seed, out)) for seed in range(4)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = open_store(url)
    budget = Budget(max_usd=cap, on_exhausted="raise")
    state = store.budget_state(budget, "global")
    entries = store.entries()
    one_call = PRICES.cost("big", Usage(input_tokens=400, output_tokens=200), "test")
    assert state.in_flight == 0 and state.reserved_usd == 0.0
    assert cap * 0.5 < state.spent_usd <= cap + one_call  # the cap was reached, and passed by less than one call
    assert 0 < len(entries) == sum(results.values()) < 200  # some calls were refused
    assert math.isclose(sum(e.cost_usd for e in entries), state.spent_usd, rel_tol=1e-9)
    assert {e.api_key for e in entries} == {f"proc-{s}" for s in range(4) if results[s]}
    by_key = store.usage(UsageQuery(api_key="proc-0"))
    assert by_key.calls == results[0]
    store.close()


@pytest.fixture(params=["sqlite", "redis"])
def persistent_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("redis_url")


def test_restart_keeps_spend_and_ledger(persistent_url):
    store_url = persistent_url
    lc = _lifecycle(store_url, 1.0)
    for i in range(5):
        with lc.begin(turn_of([("user", f"q{i}")]), scope="run", api_key="k1") as call:
            call.finish(Usage(input_tokens=100, output_tokens=50))
    spent = lc.policy.budget.state("run").spent_usd
    lc.policy.store.close()

    again = _lifecycle(store_url, 1.0)
    assert again.policy.budget.state("run").spent_usd == pytest.approx(spent) and spent > 0
    report = again.store.usage(UsageQuery(scope="run"))
    assert report.calls == 5 and report.input_tokens == 500
    assert report.cost_usd == pytest.approx(spent)


def test_restart_restores_the_online_controller(store_url):
    if store_url == "memory://":
        store = open_store(store_url)  # one store object, two policies: a restart within the process
    else:
        store = store_url
    first = RoutingPolicy("random", strong_fraction=0.3, store=store, checkpoint_every=10)
    for i in range(45):
        first.decide(f"prompt {i}")
    first.close()
    before = first.online.state_dict()
    second = RoutingPolicy("random", strong_fraction=0.3, store=first.store if store_url == "memory://" else store)
    after = second.online.state_dict()
    assert after == before and after["seen"] == 45 and second.threshold == pytest.approx(first.threshold)
    # a different target starts afresh rather than inheriting another share's threshold
    assert RoutingPolicy("random", strong_fraction=0.6, store=first.store).online.state_dict()["seen"] == 0


@pytest.mark.parametrize("bad, field", [
    ({"scores": [0.2, float("nan")]}, "scores"), ({"gain": -0.1}, "gain"), ({"strong": 9, "seen": 3}, "strong"),
    ({"target": 1.5}, "target"), ({"offset": float("inf")}, "offset"), ({"surprise": 1}, "surprise")])
def test_a_restored_online_state_is_validated(bad, field):
    good = OnlineShareController(0.3).state_dict()
    with pytest.raises(InvalidStateError, match=field):
        OnlineShareController.from_state_dict({**good, **bad})
    store = MemoryStore()
    store.save_online("random:share0.3", {**good, **bad})
    with pytest.raises(InvalidStateError):
        RoutingPolicy("random", strong_fraction=0.3, store=store).decide("hello")


_DIE_HOLDING = textwrap.dedent("""
    import os, signal, sys
    from routellm_integrations.budgets import Budget
    from routellm_integrations.state import open_store
    store = open_store(sys.argv[1], lease_s=float(sys.argv[2]))
    budget = Budget(max_usd=1.0)
    for _ in range(3):
        r, _ = store.reserve(budget, "run", "weak", {"strong": 0.2, "weak": 0.1})
        store.settle(budget, r, 0.05, succeeded=True)
    store.reserve(budget, "run", "strong", {"strong": 0.4, "weak": 0.1})  # in flight when we die
    print("ready", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_kill_9_loses_nothing_committed_and_a_dead_reservation_expires(kind, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'crash.db'}" if kind == "sqlite" else request.getfixturevalue("redis_url")
    lease = 1.0
    proc = subprocess.run([sys.executable, "-c", _DIE_HOLDING, url, str(lease)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL and "ready" in proc.stdout, proc.stderr
    store = open_store(url, lease_s=lease)
    budget = Budget(max_usd=1.0)
    held = store.budget_state(budget, "run")
    assert held.spent_usd == pytest.approx(0.15) and held.in_flight == 1 and held.reserved_usd == pytest.approx(0.4)
    deadline = time.monotonic() + 30
    while store.budget_state(budget, "run").in_flight and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.budget_state(budget, "run").in_flight == 0  # the lease ran out
    r, state = store.reserve(budget, "run", "strong", {"strong": 0.8, "weak": 0.1})
    assert r.route == "strong" and state.reserved_usd == pytest.approx(0.8)  # the dead call's money is free again


def test_a_settlement_after_the_lease_expired_still_counts_its_cost(store_url):
    options = {} if store_url == "memory://" else {"lease_s": 0.2}
    store = open_store(store_url, **options)
    budget = Budget(max_usd=1.0)
    r, _ = store.reserve(budget, "slow", "strong", {"strong": 0.5, "weak": 0.1})
    time.sleep(0.5)
    other, _ = store.reserve(budget, "slow", "weak", {"strong": 0.5, "weak": 0.1})  # reclaims the expired lease
    state = store.settle(budget, r, 0.3, succeeded=True)
    assert state.spent_usd == pytest.approx(0.3) and state.strong_calls == 1
    assert store.settle(budget, r, 0.3, succeeded=True).spent_usd == pytest.approx(0.3)  # twice: a no-op
    store.settle(budget, other, 0.01, succeeded=True)
    assert store.budget_state(budget, "slow").in_flight == 0


def test_ledger_queries_filter_by_scope_key_route_model_and_time(store_url):
    store = open_store(store_url)
    t0 = time.time()
    statuses = ["ok", "ok", "failed", "cut", "cached", "ok", "cancelled", "abandoned", "ok", "failed", "ok", "ok"]
    rows = [LedgerEntry(call_id=f"c{i}", ts=t0 + i, scope=f"s{i % 2}", api_key=f"k{i % 3}",
                        route="strong" if i % 4 == 0 else "weak", model="big" if i % 4 == 0 else "small",
                        status=statuses[i], input_tokens=0 if statuses[i] in ("failed", "cached") else 10 * i,
                        output_tokens=0 if statuses[i] in ("failed", "cached") else i, estimated=i % 5 == 3,
                        cost_usd=None if i == 7 or statuses[i] == "failed" else (0.0 if statuses[i] == "cached" else 0.01 * i),
                        strong_cost_usd=0.02 * i) for i in range(12)]
    for e in rows:
        store.record(e)
    assert [e.call_id for e in store.entries()] == [e.call_id for e in rows]
    for q in (UsageQuery(scope="s1"), UsageQuery(api_key="k2"), UsageQuery(route="strong"), UsageQuery(model="small"),
              UsageQuery(since=t0 + 3, until=t0 + 7), UsageQuery(api_key="k0", route="weak")):
        want = [e for e in rows if q.matches(e)]
        assert store.entries(q) == want and want
        report = store.usage(q)
        assert report.cost_usd == pytest.approx(sum(e.cost_usd or 0.0 for e in want))
        assert sum(t.calls + t.failed_calls + t.cached_calls for t in report.by_route.values()) == len(want)
        assert _rounded(report) == _rounded(UsageReport.of(want))  # SQLite aggregates in SQL: same totals


def _rounded(report: UsageReport) -> dict:
    def r(v):  # type: ignore[no-untyped-def]
        return None if v is None else round(v, 9)

    def groups(d: dict) -> dict:
        return {m: {f: r(v) for f, v in t.items()} for m, t in d.items()}

    return {k: (groups(v) if k in ("by_route", "by_model") else r(v)) for k, v in report.as_dict().items()}


def test_store_urls_are_checked_and_secrets_stay_out_of_reprs(redis_server):
    with pytest.raises(InvalidStoreURL, match="unknown state store URL"):
        open_store("postgres://u:pw@db/1")
    with pytest.raises(InvalidStoreURL, match="sqlite:///"):
        open_store("sqlite://relative.db")
    with pytest.raises(TypeError):
        open_store(42)  # type: ignore[arg-type]
    from routellm_integrations.state.redis import RedisStore, redact_url

    assert redact_url("redis://user:hunter2@h:1/0") == "redis://user:***@h:1/0"
    store = RedisStore(f"redis://:hunter2@127.0.0.1:{redis_server.port}/0?prefix=x")
    assert "hunter2" not in repr(store) and "hunter2" not in store.url and store.prefix == "x"
    with pytest.raises(InvalidStoreURL) as err:
        open_store("ftp://:hunter2@h/0")
    assert "hunter2" not in str(err.value)


def test_a_tracker_over_a_shared_store_holds_the_cap_under_threads(store_url):
    tracker = BudgetTracker(Budget(max_usd=1.0, on_exhausted="raise"), store=store_url)
    spent, lock = [], threading.Lock()

    def call(cost: float) -> None:
        try:
            r = tracker.reserve("run", "weak", {"strong": 0.05, "weak": 0.05})
        except BudgetExceeded:
            return
        tracker.settle(r, cost)
        with lock:
            spent.append(cost)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(call, [0.03 + 0.02 * random.Random(i).random() for i in range(200)]))
    state = tracker.state("run")
    assert 1.0 - 0.05 <= state.spent_usd <= 1.0 + 0.05 and state.spent_usd == pytest.approx(sum(spent))
    assert state.in_flight == 0


def test_routed_chat_and_routed_llm_write_the_ledger_to_the_store(openai_server, tmp_path):
    from langchain_openai import ChatOpenAI
    from llama_index.llms.openai import OpenAI

    from langchain_routellm import RoutedChat
    from llamaindex_routellm import RoutedLLM

    url = f"sqlite:///{tmp_path / 'apps.db'}"
    chat = RoutedChat(strong=ChatOpenAI(model="gpt-4o", base_url=openai_server.base_url, api_key="sk-test"),
                      weak=ChatOpenAI(model="gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test"),
                      router="length", router_options={"midpoint": 40}, threshold=0.5,
                      budget=Budget(max_usd=5.0), store=url)
    for p in ("hi", "explain the proof of the prime number theorem in detail please, step by step"):
        chat.invoke(p)
    llm = RoutedLLM(strong=OpenAI(model="gpt-4o", api_base=openai_server.base_url, api_key="sk-test"),
                    weak=OpenAI(model="gpt-4o-mini", api_base=openai_server.base_url, api_key="sk-test"),
                    router="length", threshold=0.5, store=url)
    llm.complete("hello there")
    store = open_store(url)
    entries = store.entries()
    backend = openai_server.chat.usage_totals()
    assert len(entries) == 3 and {e.route for e in entries[:2]} == {"strong", "weak"}
    assert sum(e.input_tokens for e in entries) == sum(u["input_tokens"] for u in backend.values())
    assert sum(e.output_tokens for e in entries) == sum(u["output_tokens"] for u in backend.values())
    assert store.budget_state(Budget(max_usd=5.0), "global").spent_usd == pytest.approx(
        sum(e.cost_usd for e in entries[:2]))
    assert "sqlite" not in repr(chat)


def test_a_long_stream_renews_its_lease(persistent_url):
    """A stream running past its lease keeps its reservation: another call does not get the
    money, and the stream's cost is counted once it ends."""
    store = open_store(persistent_url, lease_s=0.3)
    policy = RoutingPolicy("random", threshold=0.0, budget=Budget(max_usd=0.05, on_exhausted="raise"), store=store)
    lc = CallLifecycle(policy, strong=Backend("strong", "big", "test"), weak=Backend("weak", "small", "test"),
                       prices=PRICES)
    call = lc.begin(turn_of([("user", "stream me a long story")]), max_output_tokens=2000)  # bound > the cap
    held = policy.budget.state("global").reserved_usd
    for _ in range(12):  # 1.2 s of chunks: four leases
        call.delivered("chunk ")
        time.sleep(0.1)
    assert policy.budget.state("global").in_flight == 1
    assert policy.budget.state("global").reserved_usd == pytest.approx(held)
    with pytest.raises(BudgetExceeded):  # the money is still held for the stream
        lc.begin(turn_of([("user", "a short one")]), max_output_tokens=10)
    record = call.finish(Usage(input_tokens=10, output_tokens=500))
    assert policy.budget.state("global").spent_usd == pytest.approx(record.cost_usd)


def test_usage_is_one_flat_shape_and_memory_totals_outlive_the_kept_entries():
    store = MemoryStore(max_entries=3)
    for i in range(5):
        store.record(LedgerEntry(call_id=f"c{i}", route="weak" if i % 2 else "strong", model="m", status="ok",
                                 input_tokens=10, output_tokens=1, cost_usd=0.5, strong_cost_usd=1.0))
    report = store.usage()
    assert len(store.entries()) == 3 and report.calls == 5 and report.cost_usd == pytest.approx(2.5)
    d = report.as_dict()
    assert d["calls"] == 5 and d["by_route"]["strong"]["calls"] == 3 and d["by_model"]["m"]["calls"] == 5
    assert d["strong_fraction"] == pytest.approx(0.6) and "total" not in d
    assert report.total.calls == report.calls  # the flat totals alone, same numbers
    assert store.usage(UsageQuery(model="m")).calls == 3  # a filtered query reads the kept entries
