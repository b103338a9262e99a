"""RoutedChat with answer checks (issue 26) over real ChatOpenAI clients and a local
OpenAI-format server: flag checks escalate with their reason in the record; an agreement
check makes one more cheap call (its temperature, settled, counted by the cost tracker
and the ledger) and escalates on disagreement only, sync, async and streamed; a
verifier-like object; typed errors at construction."""

from __future__ import annotations

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_openai import ChatOpenAI

from fakes import SlipVerifier
from langchain_routellm import RoutedChat, routellm_cost_tracker
from routellm_integrations.costs import PriceTable
from routellm_integrations.routing.escalation import EscalationCheckError
from routellm_integrations.testing.openai_compat import Reply

PRICES = PriceTable.default().with_prices({"openai": {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}})
MATHS = "Tom has 12 boxes with 7 pens in each box. How many pens does Tom have?"


def _chat(server, **kw):
    def oa(name):
        return ChatOpenAI(model=name, base_url=server.base_url, api_key="sk-test", max_retries=0, stream_usage=True)
    # threshold 1.0: every call goes to the weak model first (a plain cascade)
    return RoutedChat(strong=oa("gpt-4o"), weak=oa("gpt-4o-mini"), router="random", threshold=1.0, prices=PRICES,
                      **kw)


class Records(BaseCallbackHandler):
    """Hears every routed call's settled record (as the cost tracker does)."""

    def __init__(self) -> None:
        self.records = []

    def on_routed_call(self, record) -> None:
        self.records.append(record)


def _bodies(server):
    return [r.json for r in server.requests_to("/v1/chat/completions")]


def test_an_arithmetic_slip_escalates_with_its_reason(openai_server):
    llm = _chat(openai_server, escalate_if=["final_answer", "answer_flags"])
    openai_server.chat.push(Reply(text="12 * 7 = 82, so the answer is 82."), model="gpt-4o-mini")
    heard = Records()
    reply = llm.invoke(MATHS, config={"callbacks": [heard]})
    meta = reply.response_metadata["routellm"]
    assert (meta["route"], meta["escalated_from"]) == ("strong", "weak")
    escalated = [r for r in heard.records if r.status == "escalated"]
    assert escalated[0].escalation_reason == "answer flags: arithmetic slip: 12 * 7 = 82"
    # the reply a caller reads says why it is not the cheap model's
    assert meta["escalation_reason"] == "answer flags: arithmetic slip: 12 * 7 = 82"


@pytest.mark.parametrize("second, escalates", [("The answer is 84.", False), ("The answer is 82.", True)])
def test_agreement_makes_one_more_cheap_call(openai_server, second, escalates):
    llm = _chat(openai_server, escalate_if="agreement")
    openai_server.chat.push(Reply(text="So Tom has 84 pens."), Reply(text=second), model="gpt-4o-mini")
    heard = Records()
    with routellm_cost_tracker(prices=PRICES) as tracker:
        meta = llm.invoke(MATHS, config={"callbacks": [heard]}).response_metadata["routellm"]
    bodies = _bodies(openai_server)
    assert [b["model"] for b in bodies] == ["gpt-4o-mini", "gpt-4o-mini"] + (["gpt-4o"] if escalates else [])
    assert bodies[1]["temperature"] == 0.7 and bodies[0].get("temperature") != 0.7
    sample = next(r for r in heard.records if r.reason == "second_sample")
    assert sample.status == "ok" and sample.cost_usd > 0 and sample.route == "weak"
    # the tracker and the ledger count the second call's cost
    assert tracker.summary()["calls"] == len(bodies) == llm.ledger.summary()["calls"]
    assert meta["route"] == ("strong" if escalates else "weak")
    if escalates:
        first = next(r for r in heard.records if r.status == "escalated")
        assert first.escalation_reason == "agreement: the answer (84) disagrees with a second sample (82)"
        assert sample.sample_of == first.call_id


async def test_async_and_streamed_agreement(openai_server):
    llm = _chat(openai_server, escalate_if="agreement")
    openai_server.chat.push(Reply(text="So Tom has 84 pens."), Reply(text="The answer is 82."), model="gpt-4o-mini")
    reply = await llm.ainvoke(MATHS)
    assert reply.response_metadata["routellm"]["route"] == "strong"
    openai_server.reset()
    openai_server.chat.push(Reply(text="So Tom has 84 pens."), Reply(text="The answer is 82."), model="gpt-4o-mini")
    chunks = [c async for c in llm.astream(MATHS)]
    text = "".join(c.content for c in chunks)
    assert text.startswith("Hello from gpt-4o") and "84" not in text  # no chunk of the weak answer
    bodies = _bodies(openai_server)
    assert [b["model"] for b in bodies] == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]
    assert bodies[0]["stream"] is True and not bodies[1].get("stream")
    openai_server.reset()
    openai_server.chat.push(Reply(text="So Tom has 84 pens."), Reply(text="The answer is 84."), model="gpt-4o-mini")
    text = "".join(c.content for c in llm.stream(MATHS))
    assert text == "So Tom has 84 pens."
    assert [b["model"] for b in _bodies(openai_server)] == ["gpt-4o-mini", "gpt-4o-mini"]


def test_a_verifier_object_and_typed_errors(openai_server):
    llm = _chat(openai_server, escalate_if=[SlipVerifier(0.5, low=0.1, prompt=MATHS)])
    openai_server.chat.push(Reply(text="So the answer is 82."), model="gpt-4o-mini")
    assert llm.invoke(MATHS).response_metadata["routellm"]["route"] == "strong"
    openai_server.chat.push(Reply(text="So the answer is 84."), model="gpt-4o-mini")
    assert llm.invoke(MATHS).response_metadata["routellm"]["route"] == "weak"
    with pytest.raises(EscalationCheckError, match="neither a check name"):
        _chat(openai_server, escalate_if="final-answer")


def test_a_truncated_answer_escalates_from_the_providers_finish_reason(openai_server):
    llm = _chat(openai_server, escalate_if="answer_flags", max_tokens=4)
    openai_server.chat.push(Reply(text="Tom has twelve boxes of seven pens each so he has 84"), model="gpt-4o-mini")
    heard = Records()
    meta = llm.invoke(MATHS, config={"callbacks": [heard]}).response_metadata["routellm"]
    assert meta["escalated_from"] == "weak"
    assert "truncated" in next(r for r in heard.records if r.status == "escalated").escalation_reason
