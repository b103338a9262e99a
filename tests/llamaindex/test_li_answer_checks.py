"""RoutedLLM with answer checks (issue 26) over real LlamaIndex OpenAI clients and a local
OpenAI-format server: a missing final answer escalates with its reason in the record;
an agreement check makes one more cheap call (at its temperature, settled and in the
ledger) and escalates on disagreement only, whole and streamed, sync and async; a
verifier-like object and check names are accepted; unknown names fail at construction."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.llms.openai import OpenAI

from fakes import SlipVerifier
from llamaindex_routellm import RoutedLLM
from routellm_integrations.costs import PriceTable
from routellm_integrations.routing.escalation import EscalationCheckError
from routellm_integrations.testing.openai_compat import Reply

PRICES = PriceTable.default().with_prices({"openai": {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}})
MATHS = "Tom has 12 boxes with 7 pens in each box. How many pens does Tom have?"


def _llm(server, **kw):
    def oa(name):
        return OpenAI(model=name, api_base=server.base_url, api_key="sk-test", max_retries=0)
    # threshold 1.0: every call goes to the weak model first (a plain cascade)
    return RoutedLLM(strong=oa("gpt-4o"), weak=oa("gpt-4o-mini"), router="random", threshold=1.0, prices=PRICES,
                     **kw)


def _user(text=MATHS):
    return [ChatMessage(role=MessageRole.USER, content=text)]


def _models(server):
    return [r.json["model"] for r in server.requests_to("/v1/chat/completions")]


def test_missing_final_answer_escalates_with_its_reason(openai_server, events):
    openai_server.chat.push(Reply(text="Let me think about the pens."), model="gpt-4o-mini")
    llm = _llm(openai_server, escalate_if=["final_answer", "answer_flags"])
    reply = llm.chat(_user())
    meta = reply.additional_kwargs["routellm"]
    assert (meta["route"], meta["escalated_from"]) == ("strong", "weak")
    assert [(e.route, e.status) for e in events] == [("weak", "escalated"), ("strong", "ok")]
    assert events[0].escalation_reason == "no stated final answer (a maths-like prompt)"
    # a stated answer stays
    openai_server.chat.push(Reply(text="12 * 7 = 84, so the answer is 84."), model="gpt-4o-mini")
    assert llm.chat(_user()).additional_kwargs["routellm"]["route"] == "weak"


@pytest.mark.parametrize("second, escalates", [("The answer is 84.", False), ("The answer is 82.", True)])
def test_agreement_one_more_cheap_call(openai_server, events, second, escalates):
    openai_server.chat.push(Reply(text="So Tom has 84 pens."), Reply(text=second), model="gpt-4o-mini")
    llm = _llm(openai_server, escalate_if="agreement")
    meta = llm.chat(_user()).additional_kwargs["routellm"]
    assert _models(openai_server) == ["gpt-4o-mini", "gpt-4o-mini"] + (["gpt-4o"] if escalates else [])
    bodies = [r.json for r in openai_server.requests_to("/v1/chat/completions")]
    assert bodies[1]["temperature"] == 0.7 and bodies[0].get("temperature") != 0.7
    sample = next(e for e in events if e.record.reason == "second_sample")
    assert sample.record.status == "ok" and sample.record.cost_usd > 0
    summary = llm.ledger.summary()
    assert summary["calls"] == (3 if escalates else 2) and summary["escalated_calls"] == int(escalates)
    assert meta["route"] == ("strong" if escalates else "weak")
    if escalates:
        first = next(e for e in events if e.record.status == "escalated")
        assert first.escalation_reason == "agreement: the answer (84) disagrees with a second sample (82)"
        assert sample.record.sample_of == first.record.call_id
    else:
        assert sample.record.sample_of == meta["call_id"]


async def test_async_agreement_and_a_held_stream(openai_server, events):
    llm = _llm(openai_server, escalate_if="agreement")
    openai_server.chat.push(Reply(text="So Tom has 84 pens."), Reply(text="The answer is 82."), model="gpt-4o-mini")
    reply = await llm.achat(_user())
    assert reply.additional_kwargs["routellm"]["route"] == "strong"
    assert _models(openai_server) == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]
    openai_server.reset()
    # a stream is held while its answer is reviewed; the second call is a whole one
    openai_server.chat.push(Reply(text="So Tom has 84 pens."), Reply(text="The answer is 84."), model="gpt-4o-mini")
    chunks = [c async for c in await llm.astream_chat(_user())]
    assert chunks[-1].message.content == "So Tom has 84 pens."
    assert chunks[-1].additional_kwargs["routellm"]["route"] == "weak"
    assert _models(openai_server) == ["gpt-4o-mini", "gpt-4o-mini"]


def test_sync_stream_with_agreement_escalates_before_its_first_chunk(openai_server):
    llm = _llm(openai_server, escalate_if=["final_answer", "agreement"])
    openai_server.chat.push(Reply(text="So Tom has 84 pens."), Reply(text="The answer is 82."), model="gpt-4o-mini")
    chunks = list(llm.stream_chat(_user()))
    assert all("84" not in c.message.content for c in chunks)  # no weak chunk was released
    assert chunks[-1].message.content.startswith("Hello from gpt-4o")
    assert _models(openai_server) == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]


def test_a_verifier_object_as_escalate_if_and_typed_errors(openai_server, events):
    llm = _llm(openai_server, escalate_if=SlipVerifier(0.5, low=0.1, prompt=MATHS))
    openai_server.chat.push(Reply(text="So the answer is 82."), model="gpt-4o-mini")
    assert llm.chat(_user()).additional_kwargs["routellm"]["route"] == "strong"
    assert events[0].escalation_reason == "verifier: P(strong better) 0.900 >= 0.500"
    with pytest.raises(EscalationCheckError, match="neither a check name"):
        _llm(openai_server, escalate_if=["final_answer", "agreemnt"])
    # names survive serialisation as written
    assert _llm(openai_server, escalate_if=["final_answer", "agreement"]).to_dict()["escalate_if"] == \
        ["final_answer", "agreement"]


def test_a_truncated_answer_escalates_from_the_providers_finish_reason(openai_server, events):
    llm = _llm(openai_server, escalate_if="answer_flags")
    openai_server.chat.push(Reply(text="Tom has twelve boxes of seven pens each so he has 84"), model="gpt-4o-mini")
    meta = llm.chat(_user(), max_tokens=4).additional_kwargs["routellm"]
    assert meta["escalated_from"] == "weak" and "truncated" in events[0].escalation_reason
