"""Every exit path of an answer check's second call (issue 26), over real local HTTP.

The ``agreement`` check makes a second cheap call through the call lifecycle (admitted
by the budget, priced, settled in the ledger with reason ``second_sample``). Whatever
ends a cascade that makes one (a cancelled task while the second call is in flight,
sequential or sent ahead with ``parallel=True``; a second call that fails or times out;
a held stream whose consumer stops reading; a budget with room for the first call only;
a first call that fails while the second one is in flight; a cut stream), the books
must balance to the cent: no reservation left open (``reserved_usd == 0``, nothing in
flight), each call settled once (one ledger entry per call id), every answer that
arrived billed at the provider's usage, and ``spent_usd`` equal to the ledger's total.

Costs are recomputed by hand from what the local server reported (``chat.usage``) and
the test prices, so a cost that is lost or counted twice fails here.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest

from fakes import SlipVerifier
from routellm_integrations.budgets import Budget
from routellm_integrations.client import AsyncRoutedClient, RouteConfig, RoutedClient
from routellm_integrations.client.errors import BackendError
from routellm_integrations.costs import PriceTable
from routellm_integrations.routing.answer_checks import agreement
from routellm_integrations.testing.openai_compat import Reply, Response

PER_TOKEN = {"gpt-4o": (2.5e-6, 10.0e-6), "gpt-4o-mini": (0.15e-6, 0.6e-6)}
PRICES = PriceTable.default().with_prices({"openai": {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}})
MATHS = "Tom has 12 boxes with 7 pens in each box. How many pens does Tom have?"  # the length router: weak
MESSAGES = [{"role": "user", "content": MATHS}]
CHAT = ("POST", "/v1/chat/completions")
SCOPE = "u1"


def is_sample(body: dict[str, Any]) -> bool:
    """The second sample is the request sent at the check's temperature (the first has none)."""
    return "temperature" in body


def is_first(body: dict[str, Any]) -> bool:
    return "temperature" not in body and body.get("model") == "gpt-4o-mini"


def cost(usage: dict[str, Any]) -> float:
    """What the server's reported usage costs at the test prices."""
    p_in, p_out = PER_TOKEN[usage["model"]]
    return usage["input_tokens"] * p_in + usage["output_tokens"] * p_out


class Gate:
    """The server's chat route, with the requests ``which`` picks held at the server
    until ``release`` is set (a slow provider), then answered by ``reply(request)``
    (default: an HTTP 500, without the model answering: nothing to bill). ``arrived``
    is set once one was received."""

    def __init__(self, server: Any, monkeypatch: pytest.MonkeyPatch, which: Callable[[dict[str, Any]], bool],
                 reply: Callable[[Any], Response] | None = None, release: threading.Event | None = None) -> None:
        self.inner = server.routes[CHAT]
        self.which, self.reply = which, reply
        self.arrived, self.release = threading.Event(), release or threading.Event()
        monkeypatch.setitem(server.routes, CHAT, self.handle)

    def handle(self, req: Any) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        if not self.which(body):
            return self.inner(req)
        self.arrived.set()
        self.release.wait(timeout=30)
        return self.reply(req) if self.reply is not None else Response.error(500, "held, then failed", "server_error")


@pytest.fixture
def gates(openai_server, monkeypatch):
    """Build gates on the server; every gate still holding a request is released at teardown."""
    made: list[Gate] = []

    def gate(which: Callable[[dict[str, Any]], bool], **kw: Any) -> Gate:
        g = Gate(openai_server, monkeypatch, which, **kw)
        made.append(g)
        return g

    yield gate
    for g in made:
        g.release.set()


@pytest.fixture
def first_answered(monkeypatch):
    """Set once the client has the first (checked) call's answer in hand."""
    from routellm_integrations.client import routed

    answered = threading.Event()
    original = routed._ClientHooks.asend

    async def asend(self, call):
        out = await original(self, call)
        if call.sample_of is None:
            answered.set()
        return out

    monkeypatch.setattr(routed._ClientHooks, "asend", asend)
    return answered


def _options(openai_server, parallel: bool = False, budget: Budget | None = None, **kw: Any) -> dict[str, Any]:
    check = agreement(parallel=parallel)
    return dict(openai_base_url=openai_server.base_url, openai_api_key="sk-test-0123456789", prices=PRICES,
                max_retries=0, budget=budget if budget is not None else Budget(max_usd=5.0),
                routes={"auto": RouteConfig(router="length", threshold=0.3, escalate_if=[check])}, **kw)


def sync_client(openai_server, records: list, **kw: Any) -> RoutedClient:
    client = RoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", **_options(openai_server, **kw))
    client.on_settled(lambda record, call: records.append(record))
    return client


def async_client(openai_server, records: list, **kw: Any) -> AsyncRoutedClient:
    client = AsyncRoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", **_options(openai_server, **kw))
    client.on_settled(lambda record, call: records.append(record))
    return client


async def cancel_when(work: Any, *events: threading.Event, before: Callable[[], None] | None = None) -> None:
    """Run ``work`` as a task, wait until each of ``events`` is set (a request held at the
    server, an answer in hand), run ``before`` (a check of the state just then), cancel the
    task and check that it ended cancelled."""
    task = asyncio.ensure_future(work)
    for event in events:
        assert await asyncio.to_thread(event.wait, 10)
    if before is not None:
        before()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def books(client: Any, records: list) -> dict[str, Any]:
    """The budget and the ledger agree with the settled records: nothing reserved or in
    flight, one ledger entry per call, spend = the ledger's total = the records' costs.
    Returns the records by reason (``scored``, ``second_sample``, ``escalated``)."""
    state = client.budget_state(SCOPE)
    assert state.reserved_usd == 0.0 and state.in_flight == 0, state
    entries = client.store.entries()
    ids = [e.call_id for e in entries]
    assert len(ids) == len(set(ids)) == len(records), (ids, records)
    assert set(ids) == {r.call_id for r in records}
    billed = sum(r.cost_usd or 0.0 for r in records)
    assert state.spent_usd == pytest.approx(billed, rel=1e-9, abs=1e-15)
    assert client.store.usage().as_dict()["cost_usd"] == pytest.approx(billed, rel=1e-9, abs=1e-15)
    by: dict[str, Any] = {}
    for r in records:
        assert r.reason not in by, f"two {r.reason} calls"
        by[r.reason] = r
    return by


def _exact(record: Any, usage: dict[str, Any]) -> None:
    """``record`` was billed at the provider's usage, not an estimate."""
    assert (record.input_tokens, record.output_tokens) == (usage["input_tokens"], usage["output_tokens"])
    assert not record.estimated and record.cost_usd == pytest.approx(cost(usage), rel=1e-12)


# -- (1) the caller's task is cancelled while the second call is in flight ----------------------

@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
async def test_cancelled_while_the_second_call_is_in_flight(openai_server, gates, first_answered, parallel, store,
                                                            tmp_path):
    """The first call answered, the second is held at the server, the task is cancelled.
    The first call is settled once, billed at its usage (``ok``: the provider answered and
    bills it; before the fix it settled ``cancelled`` at no cost). The second call is
    released: ``cancelled``, nothing charged, as no response (and no usage) ever
    arrived; its reservation is freed. Over SQLite the settlements run in worker threads
    (a store doing I/O), the same books."""
    held = gates(is_sample)
    openai_server.chat.push(Reply(text="Tom has 84 pens."), model="gpt-4o-mini")
    records: list = []
    client = async_client(openai_server, records, parallel=parallel,
                          store=f"sqlite:///{tmp_path / 'state.db'}" if store == "sqlite" else None)
    try:
        def both_reserved() -> None:
            assert client.budget_state(SCOPE).in_flight == 2  # both calls hold a reservation now

        await cancel_when(client.create(model="auto", messages=MESSAGES, scope=SCOPE), held.arrived, first_answered,
                          before=both_reserved)
    finally:
        await client.aclose()
    by = books(client, records)
    (first_usage,) = openai_server.chat.usage  # only the first call was answered
    first, sample = by["scored"], by["second_sample"]
    assert first.status == "ok" and first.route == "weak"
    _exact(first, first_usage)
    assert sample.status == "cancelled" and sample.cost_usd is None and sample.sample_of == first.call_id
    assert client.budget_state(SCOPE).spent_usd == pytest.approx(cost(first_usage), rel=1e-12)


async def test_cancelled_while_both_parallel_calls_are_in_flight(openai_server, gates):
    """Nothing answered yet: both calls settle ``cancelled``, nothing spent, nothing reserved."""
    first_held, sample_held = gates(is_first), gates(is_sample)
    records: list = []
    client = async_client(openai_server, records, parallel=True)
    try:
        await cancel_when(client.create(model="auto", messages=MESSAGES, scope=SCOPE), first_held.arrived,
                          sample_held.arrived)
    finally:
        await client.aclose()
    by = books(client, records)
    assert by["scored"].status == by["second_sample"].status == "cancelled"
    assert client.budget_state(SCOPE).spent_usd == 0.0 and openai_server.chat.usage == []


async def test_a_held_stream_cancelled_while_the_second_call_is_in_flight(openai_server, gates):
    """The weak stream ended and is held for the review; the consumer's task is cancelled
    while the second call is in flight. The weak call is billed at the usage the stream
    reported (``ok``; before the fix: ``cut``, an estimate from the text), the second
    call ``cancelled`` at no cost, nothing reserved."""
    held = gates(is_sample)
    openai_server.chat.push(Reply(text="Tom has 84 pens."), model="gpt-4o-mini")
    records: list = []
    got: list = []
    client = async_client(openai_server, records)

    async def read() -> None:
        stream = await client.create(model="auto", messages=MESSAGES, scope=SCOPE, stream=True)
        async for chunk in stream:
            got.append(chunk)

    try:
        await cancel_when(read(), held.arrived)
    finally:
        await client.aclose()
    by = books(client, records)
    assert got == []  # held: nothing of the weak answer was released
    (first_usage,) = openai_server.chat.usage
    assert by["scored"].status == "ok"
    _exact(by["scored"], first_usage)
    assert by["second_sample"].status == "cancelled" and by["second_sample"].cost_usd is None


# -- (2) the second call raises: the first answer stands ----------------------------------------

@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
@pytest.mark.parametrize("failure", ["http500", "timeout"])
def test_a_second_call_that_fails_leaves_the_first_answer_and_exact_costs(openai_server, gates, failure,
                                                                           parallel):
    release = threading.Event()
    if failure == "http500":
        release.set()  # answered at once with a 500
    gates(is_sample, release=release)  # a timeout: held past the client's timeout
    openai_server.chat.push(Reply(text="Tom has 84 pens."), model="gpt-4o-mini")
    records: list = []
    with sync_client(openai_server, records, parallel=parallel, timeout=1.0) as client:
        reply = client.chat.completions.create(model="auto", messages=MESSAGES, scope=SCOPE)
        by = books(client, records)
    meta = reply.routellm
    assert meta["route"] == "weak" and meta["status"] == "ok" and "escalations" not in meta
    assert reply.choices[0].message.content == "Tom has 84 pens."
    (first_usage,) = openai_server.chat.usage
    _exact(by["scored"], first_usage)
    sample = by["second_sample"]
    assert sample.status == "failed" and sample.cost_usd is None
    # the record says why the agreement check gave no verdict
    ((key, why),) = meta["no_verdict"].items()
    assert key.startswith("agreement:self:") and why == f"the second call {sample.call_id} ended failed (BackendError)"
    assert client.budget_state(SCOPE).spent_usd == pytest.approx(cost(first_usage), rel=1e-12)


# -- (3) a held stream whose consumer stops reading -----------------------------------------------

def test_a_held_stream_closed_early_is_billed_once_in_full(openai_server):
    """The weak answer is held for the review (the second sample agrees), settled whole,
    then released: a consumer that stops after two chunks leaves both calls billed at
    their usage, once."""
    openai_server.chat.push(Reply(text="Tom has 84 pens in all."), Reply(text="The answer is 84."),
                            model="gpt-4o-mini")
    records: list = []
    with sync_client(openai_server, records) as client:
        stream = client.chat.completions.create(model="auto", messages=MESSAGES, scope=SCOPE, stream=True)
        got = [next(stream), next(stream)]
        stream.close()
        by = books(client, records)
    assert got[1].choices[0].delta.content == "Tom "
    first_usage, sample_usage = openai_server.chat.usage
    assert by["scored"].status == "ok" and by["second_sample"].status == "ok"
    _exact(by["scored"], first_usage)
    _exact(by["second_sample"], sample_usage)
    assert stream.record.call_id == by["scored"].call_id


async def test_an_escalated_stream_closed_early_charges_what_was_delivered(openai_server):
    """The second sample disagrees: the strong model streams live. The consumer stops after
    three chunks: the weak call escalated and the sample are billed at their usage, the
    strong call ``abandoned``, charged for its input and the two words it delivered."""
    openai_server.chat.push(Reply(text="Tom has 84 pens."), Reply(text="The answer is 82."), model="gpt-4o-mini")
    openai_server.chat.push(Reply(text="Twelve boxes of seven pens: the answer is 84."), model="gpt-4o")
    records: list = []
    client = async_client(openai_server, records)
    try:
        stream = await client.create(model="auto", messages=MESSAGES, scope=SCOPE, stream=True)
        got = [await stream.__anext__() for _ in range(3)]
        await stream.aclose()
    finally:
        await client.aclose()
    by = books(client, records)
    delivered = "".join(c.choices[0].delta.content or "" for c in got)
    assert delivered == "Twelve boxes "  # no chunk of the weak answer reached the consumer
    weak_usage, sample_usage, _strong_usage = openai_server.chat.usage
    _exact(by["scored"], weak_usage)
    _exact(by["second_sample"], sample_usage)
    assert by["scored"].status == "escalated" and "disagrees" in by["scored"].escalation_reason
    strong = by["escalated"]
    assert strong.status == "abandoned" and strong.estimated
    assert strong.output_tokens == math.ceil(len(delivered) / 4)
    assert strong.cost_usd == pytest.approx(strong.input_tokens * 2.5e-6 + strong.output_tokens * 10e-6, rel=1e-12)


# -- (4) a budget with room for the first call only -----------------------------------------------

@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_a_budget_with_room_for_one_call_gives_no_verdict_and_says_why(openai_server, parallel):
    """The first call's reservation (its bound: 4,096 output tokens) fills the cap, so the
    second call is not admitted: no request is sent, the check gives no verdict, the
    first answer stays, and its record says why."""
    cap = 0.001
    openai_server.chat.push(Reply(text="Tom has 84 pens."), model="gpt-4o-mini")
    records: list = []
    with sync_client(openai_server, records, parallel=parallel, budget=Budget(max_usd=cap)) as client:
        reply = client.chat.completions.create(model="auto", messages=MESSAGES, scope=SCOPE)
        by = books(client, records)
        spent = client.budget_state(SCOPE).spent_usd
    meta = reply.routellm
    assert [r.reason for r in records] == ["scored"]
    assert len(openai_server.requests_to("/v1/chat/completions")) == 1  # no second call was sent
    assert meta["route"] == "weak" and meta["status"] == "ok" and "escalations" not in meta
    ((key, why),) = meta["no_verdict"].items()
    assert key.startswith("agreement:self:") and why == "the second call did not fit the budget (not made)"
    (first_usage,) = openai_server.chat.usage
    _exact(by["scored"], first_usage)
    assert spent == pytest.approx(cost(first_usage), rel=1e-12) and spent <= cap


# -- (5) parallel=True and the first call fails ------------------------------------------------------

def test_parallel_first_call_fails_while_the_second_is_in_flight(openai_server, gates):
    """The first call gets a 500 while the second is held at the server: the error reaches
    the caller, the second call is cancelled (no response: nothing to charge) and its
    reservation released."""
    sample_held = gates(is_sample)
    gates(is_first, release=sample_held.arrived)  # the first fails once the second is in flight
    records: list = []
    with sync_client(openai_server, records, parallel=True) as client:
        with pytest.raises(BackendError) as err:
            client.chat.completions.create(model="auto", messages=MESSAGES, scope=SCOPE)
        by = books(client, records)
    assert err.value.status_code == 500
    assert by["scored"].status == "failed" and by["second_sample"].status == "cancelled"
    assert client.budget_state(SCOPE).spent_usd == 0.0


async def test_parallel_first_call_fails_after_the_second_answered(openai_server, gates):
    """The second call answered before the first failed: its cost stays settled (``ok``,
    at its usage) and in the budget; the first failed at no cost."""
    sampled = threading.Event()
    gates(is_first, release=sampled)
    records: list = []
    client = async_client(openai_server, records, parallel=True)
    client.on_settled(lambda record, call: sampled.set() if record.reason == "second_sample" else None)
    openai_server.chat.push(Reply(text="The answer is 84."), model="gpt-4o-mini")
    try:
        with pytest.raises(BackendError):
            await client.create(model="auto", messages=MESSAGES, scope=SCOPE)
    finally:
        await client.aclose()
    by = books(client, records)
    (sample_usage,) = openai_server.chat.usage
    assert by["scored"].status == "failed" and by["scored"].cost_usd is None
    assert by["second_sample"].status == "ok"
    _exact(by["second_sample"], sample_usage)
    assert client.budget_state(SCOPE).spent_usd == pytest.approx(cost(sample_usage), rel=1e-12)


# -- (6) a cut stream -------------------------------------------------------------------------------
# Over both HTTP layers: httpx-aiohttp's own transport raised the cut before it handed over the
# events that arrived with it (the call then settled ``failed`` at no cost, 1 run in 6);
# ``client.aiohttp_transport`` hands them over first.
TRANSPORTS = ["httpx", "aiohttp"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("surface", ["sync", "async"])
async def test_a_cut_first_stream_makes_no_second_call(openai_server, surface, transport):
    """The provider cuts the held weak stream: nothing reached the consumer, no second call
    is made, and the weak call is ``cut``, charged for its input and the text delivered."""
    openai_server.chat.push(Reply(text="Tom has twelve boxes of seven pens.", cut_after=4), model="gpt-4o-mini")
    records: list = []
    got: list = []
    if surface == "sync":
        with sync_client(openai_server, records, transport=transport) as client:
            stream = client.chat.completions.create(model="auto", messages=MESSAGES, scope=SCOPE, stream=True)
            with pytest.raises(BackendError, match="cut|stream"):
                for chunk in stream:
                    got.append(chunk)
            by = books(client, records)
    else:
        client = async_client(openai_server, records, transport=transport)
        try:
            stream = await client.create(model="auto", messages=MESSAGES, scope=SCOPE, stream=True)
            with pytest.raises(BackendError, match="cut|stream"):
                async for chunk in stream:
                    got.append(chunk)
        finally:
            await client.aclose()
        by = books(client, records)
    assert got == []  # held: no chunk of a cut answer was released
    assert [r.reason for r in records] == ["scored"]
    assert len(openai_server.requests_to("/v1/chat/completions")) == 1
    cut = by["scored"]
    assert cut.status == "cut" and cut.estimated
    assert cut.output_tokens == math.ceil(len("Tom has twelve ") / 4)  # the three words before the cut
    assert cut.cost_usd == pytest.approx(cut.input_tokens * 0.15e-6 + cut.output_tokens * 0.6e-6, rel=1e-12)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_cut_escalated_stream_after_a_disagreement(openai_server, transport):
    """The sample disagrees, the strong stream is cut live: the weak call (escalated) and the
    sample stay billed at their usage, the strong call is ``cut``, charged for its text."""
    openai_server.chat.push(Reply(text="Tom has 84 pens."), Reply(text="The answer is 82."), model="gpt-4o-mini")
    openai_server.chat.push(Reply(text="Twelve boxes of seven pens: the answer is 84.", cut_after=3),
                            model="gpt-4o")
    records: list = []
    got: list = []
    with sync_client(openai_server, records, transport=transport) as client:
        stream = client.chat.completions.create(model="auto", messages=MESSAGES, scope=SCOPE, stream=True)
        with pytest.raises(BackendError):
            for chunk in stream:
                got.append(chunk)
        by = books(client, records)
    delivered = "".join(c.choices[0].delta.content or "" for c in got)
    assert delivered == "Twelve boxes "
    weak_usage, sample_usage, _ = openai_server.chat.usage
    _exact(by["scored"], weak_usage)
    _exact(by["second_sample"], sample_usage)
    strong = by["escalated"]
    assert strong.status == "cut" and strong.output_tokens == math.ceil(len(delivered) / 4)
    assert strong.cost_usd == pytest.approx(strong.input_tokens * 2.5e-6 + strong.output_tokens * 10e-6, rel=1e-12)


# -- escalations an answer check triggered ----------------------------------------------------------

def is_strong(body: dict[str, Any]) -> bool:
    return body.get("model") == "gpt-4o"


async def test_cancelled_while_the_escalated_call_is_in_flight(openai_server, gates):
    """The second sample disagreed, the strong call is held at the server, the task is
    cancelled: the weak call (escalated) and the sample stay billed at their usage, the
    strong call settles ``cancelled`` at no cost, nothing stays reserved."""
    held = gates(is_strong)
    openai_server.chat.push(Reply(text="Tom has 84 pens."), Reply(text="The answer is 82."), model="gpt-4o-mini")
    records: list = []
    client = async_client(openai_server, records)
    try:
        await cancel_when(client.create(model="auto", messages=MESSAGES, scope=SCOPE), held.arrived)
    finally:
        await client.aclose()
    by = books(client, records)
    weak_usage, sample_usage = openai_server.chat.usage
    assert by["scored"].status == "escalated" and by["second_sample"].status == "ok"
    _exact(by["scored"], weak_usage)
    _exact(by["second_sample"], sample_usage)
    assert by["escalated"].status == "cancelled" and by["escalated"].cost_usd is None
    assert client.budget_state(SCOPE).spent_usd == pytest.approx(cost(weak_usage) + cost(sample_usage), rel=1e-12)


def test_an_escalated_call_that_fails_keeps_the_cascade_billed(openai_server, gates):
    """The strong call an agreement check escalated to gets a 500: the error reaches the
    caller (tagged with the strong route), the weak call and the sample stay billed."""
    release = threading.Event()
    release.set()
    gates(is_strong, release=release)
    openai_server.chat.push(Reply(text="Tom has 84 pens."), Reply(text="The answer is 82."), model="gpt-4o-mini")
    records: list = []
    with sync_client(openai_server, records) as client:
        with pytest.raises(BackendError) as err:
            client.chat.completions.create(model="auto", messages=MESSAGES, scope=SCOPE)
        by = books(client, records)
    assert err.value.status_code == 500 and err.value.routellm_route == "strong"
    weak_usage, sample_usage = openai_server.chat.usage
    _exact(by["scored"], weak_usage)
    _exact(by["second_sample"], sample_usage)
    assert by["scored"].status == "escalated" and by["escalated"].status == "failed"
    assert by["escalated"].cost_usd is None
    assert client.budget_state(SCOPE).spent_usd == pytest.approx(cost(weak_usage) + cost(sample_usage), rel=1e-12)


def test_a_budget_with_room_for_the_sample_but_not_the_escalation(openai_server):
    """The weak call and its sample fit the cap, the strong call they disagree into does
    not (its bound: 4,096 output tokens at the strong price): the weak answer is kept, no
    strong request is sent, and its record says which check it failed
    (``escalation_refused``). Spend stays under the cap."""
    cap = 0.01
    openai_server.chat.push(Reply(text="Tom has 84 pens."), Reply(text="The answer is 82."), model="gpt-4o-mini")
    records: list = []
    with sync_client(openai_server, records, budget=Budget(max_usd=cap)) as client:
        reply = client.chat.completions.create(model="auto", messages=MESSAGES, scope=SCOPE)
        by = books(client, records)
        spent = client.budget_state(SCOPE).spent_usd
    meta = reply.routellm
    assert meta["route"] == "weak" and meta["status"] == "ok" and "escalations" not in meta
    assert meta["escalation_refused"] == ("agreement: the answer (84) disagrees with a second sample (82) "
                                          "(the budget could not take the strong call)")
    assert [b["model"] for b in (r.json for r in openai_server.requests_to("/v1/chat/completions"))] == \
        ["gpt-4o-mini", "gpt-4o-mini"]
    weak_usage, sample_usage = openai_server.chat.usage
    _exact(by["scored"], weak_usage)
    _exact(by["second_sample"], sample_usage)
    assert spent == pytest.approx(cost(weak_usage) + cost(sample_usage), rel=1e-12) and spent <= cap


async def test_cancelled_while_a_verifier_escalates_off_the_loop(openai_server):
    """The verifier reviews in a worker thread; the task is cancelled right as that thread
    escalates (the weak call settled ``escalated``, the strong call admitted). The
    strong call's reservation is released at once (it settles ``cancelled``, at no cost)
    instead of being dropped with the thread's result (left to the garbage collector,
    never in the ledger)."""
    loop = asyncio.get_running_loop()
    holder: dict[str, Any] = {}
    records: list = []

    def on_record(record, call):
        records.append(record)
        if record.status == "escalated":  # in the reviewing thread, before its result reaches the loop
            loop.call_soon_threadsafe(holder["task"].cancel)

    client = AsyncRoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", openai_base_url=openai_server.base_url,
                               openai_api_key="sk-test-0123456789", prices=PRICES, max_retries=0,
                               budget=Budget(max_usd=5.0),
                               routes={"auto": RouteConfig(router="length", threshold=0.3,
                                                           escalate_if=SlipVerifier())})
    client.on_settled(on_record)
    openai_server.chat.push(Reply(text="So the answer is 82."), model="gpt-4o-mini")
    try:
        task = holder["task"] = asyncio.ensure_future(client.create(model="auto", messages=MESSAGES, scope=SCOPE))
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await client.aclose()
    by = books(client, records)
    (weak_usage,) = openai_server.chat.usage
    assert by["scored"].status == "escalated" and by["scored"].escalation_reason.startswith("verifier:")
    _exact(by["scored"], weak_usage)
    assert by["escalated"].status == "cancelled" and by["escalated"].cost_usd is None
    assert len(openai_server.requests_to("/v1/chat/completions")) == 1  # the strong call was never sent
