"""The cascade engine on its own (no framework): a toy integration is a hooks class, and
every exit of a call, a cascade and a held stream settles each call exactly once."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from routellm_integrations.budgets import Budget
from routellm_integrations.costs import PriceTable
from routellm_integrations.state import CostLedger
from routellm_integrations.policy import RoutingPolicy
from routellm_integrations.routers.base import BaseRouter
from routellm_integrations.routing import Backend, CallLifecycle, engine, turn_of
from routellm_integrations.routing.escalation import Answer, empty_or_refusal

PRICES = PriceTable({"openai": {"dear": (10.0, 30.0), "cheap": (0.5, 1.5)}})
CHECKS = (empty_or_refusal(),)


class Fixed(BaseRouter):
    name = "fixed"

    def _score(self, prompts):
        return np.array([float(p.split()[0]) for p in prompts])


def lifecycle():
    policy = RoutingPolicy(Fixed(), threshold=0.5, budget=Budget(max_usd=10.0), steps="every_step")
    return CallLifecycle(policy, strong=Backend("strong", "dear", "openai"), weak=Backend("weak", "cheap", "openai"),
                         prices=PRICES, ledger=CostLedger(PRICES))


class Toy(engine.Hooks):
    """Answers are strings; a stream is its words. ``answers[route]``: the text, or an
    exception to raise; ``cut[route]``: raise after that many chunks."""

    def __init__(self, answers, checks=(), cut=None):
        self.answers, self.checks, self.cut = answers, checks, cut or {}
        self.sent: list[str] = []

    def _answer(self, call):
        self.sent.append(call.route)
        answer = self.answers[call.route]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def send(self, call):
        return self._answer(call)

    async def asend(self, call):
        await asyncio.sleep(0)
        return self._answer(call)

    def _words(self, call):
        text = self._answer(call)
        for i, word in enumerate(text.split(" ")):
            if self.cut.get(call.route) == i:
                raise ConnectionError("the provider dropped the connection")
            yield word + " "

    def open(self, call):
        return self._words(call)

    async def aopen(self, call):
        async def words():
            for w in self._words(call):
                await asyncio.sleep(0)
                yield w
        return words()

    def delta_of(self, chunk):
        return chunk

    def text_of(self, answer):
        return answer

    def held(self, call):
        return engine.holds(call, self.checks)

    def review(self, call, answer, streamed):
        if not engine.holds(call, self.checks):
            return None
        text = "".join(answer) if streamed else answer
        return call.review(self.checks, Answer(text=text), text=None if streamed else text)

    def tally(self, call, held):
        return _Words(call, held)

    def stamp(self, answer, record, escalated):
        return answer, record, [r.status for r in escalated]


class _Words(engine.Tally):
    def __init__(self, call, held):
        super().__init__(call, held)
        self.words = []

    def add(self, chunk):
        self.words.append(chunk)
        return (chunk,)

    def end(self, stream):
        return self.words

    def tail(self, record, escalated):
        return (record,)


SETTLED: list = []


def begin(lc, text="0.1 hi"):
    """A call whose settlements (and its escalations') are listed in SETTLED."""
    SETTLED.clear()
    call = lc.begin(turn_of([("user", text)]))
    call.on_settled(SETTLED.append)
    return call


def settled_once(lc, n):
    """n calls settled, each once, and nothing is left reserved."""
    assert lc.policy.budget.state("global").reserved_usd == 0
    assert len(SETTLED) == n and len({r.call_id for r in SETTLED}) == n


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_answer_settles_ok_and_is_stamped(mode):
    lc = lifecycle()
    call = begin(lc)
    hooks = Toy({"weak": "hello there"})
    out = engine.run(call, hooks) if mode == "sync" else asyncio.run(engine.arun(call, hooks))
    text, record, escalated = out
    assert text == "hello there" and record.status == "ok" and record.route == "weak" and escalated == []
    settled_once(lc, 1)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failed_answer_escalates_once_and_the_model_up_answers(mode):
    lc = lifecycle()
    call = begin(lc)
    hooks = Toy({"weak": "I can't help with that", "strong": "sure: 42"}, CHECKS)
    out = engine.run(call, hooks) if mode == "sync" else asyncio.run(engine.arun(call, hooks))
    text, record, escalated = out
    assert text == "sure: 42" and record.route == "strong" and record.escalated_from == "weak"
    assert escalated == ["escalated"] and hooks.sent == ["weak", "strong"]
    settled_once(lc, 2)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_exception_settles_failed_and_names_the_route(mode):
    lc = lifecycle()
    call = begin(lc)
    hooks = Toy({"weak": ValueError("boom")})
    with pytest.raises(ValueError) as info:
        engine.run(call, hooks) if mode == "sync" else asyncio.run(engine.arun(call, hooks))
    assert call.record.status == "failed" and info.value.routellm_record["status"] == "failed"
    assert any("the weak route (cheap) failed" in n for n in info.value.__notes__)
    settled_once(lc, 1)


def test_a_cancelled_call_settles_cancelled_without_a_note():
    lc = lifecycle()
    call = begin(lc)

    class Slow(Toy):
        async def asend(self, call):
            await asyncio.sleep(10)

    async def main():
        await asyncio.wait_for(engine.arun(call, Slow({})), 0.01)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(main())
    assert call.record.status == "cancelled"
    settled_once(lc, 1)


def test_a_held_stream_releases_no_chunk_of_an_escalated_answer():
    lc = lifecycle()
    call = begin(lc)
    hooks = Toy({"weak": "I can't help with that", "strong": "the answer is 42"}, CHECKS)
    got = list(engine.stream(call, hooks, engine.open_stream(call, hooks)))
    *chunks, record = got
    assert "".join(chunks) == "the answer is 42 " and record.route == "strong" and record.status == "ok"
    settled_once(lc, 2)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_consumer_that_stops_reading_settles_abandoned(mode):
    lc = lifecycle()
    call = begin(lc)
    hooks = Toy({"weak": "one two three four"})
    if mode == "sync":
        stream = engine.stream(call, hooks, engine.open_stream(call, hooks))
        assert next(stream) == "one "
        stream.close()
    else:
        async def main():
            stream = engine.astream(call, hooks, await engine.aopen_stream(call, hooks))
            assert await stream.__anext__() == "one "
            await stream.aclose()
        asyncio.run(main())
    assert call.record.status == "abandoned" and call.record.output_tokens > 0
    settled_once(lc, 1)


def test_a_cut_stream_is_charged_for_what_it_delivered():
    lc = lifecycle()
    call = begin(lc)
    hooks = Toy({"weak": "one two three four"}, cut={"weak": 2})
    got = []
    with pytest.raises(ConnectionError) as info:
        for chunk in engine.stream(call, hooks):
            got.append(chunk)
    assert got == ["one ", "two "] and call.record.status == "cut" and call.record.estimated
    assert info.value.routellm_route == "weak"
    settled_once(lc, 1)
