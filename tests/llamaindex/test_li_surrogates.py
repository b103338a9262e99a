"""A prompt holding a lone surrogate (what Python makes of undecodable bytes) is routed by
RoutedLLM with the real ``mf`` router, in every call style; the decision comes back."""

from __future__ import annotations

import pytest
from llama_index.core import PromptTemplate
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from scripted_llm import ScriptedLLM

from llamaindex_routellm import RoutedLLM
from routellm_integrations.costs import PriceTable
from routellm_integrations.state import CostLedger

BAD = "caf\udce9 ok?"
PRICES = PriceTable({"scriptedllm": {"big-model": (10.0, 30.0), "small-model": (0.5, 1.5)}})


@pytest.fixture
def llm() -> RoutedLLM:
    return RoutedLLM(strong=ScriptedLLM(name="big-model"), weak=ScriptedLLM(name="small-model"), router="mf",
                     threshold=0.5, ledger=CostLedger(PRICES))


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.SYSTEM, content="be brief \udcff"), ChatMessage(role=MessageRole.USER,
                                                                                         content=text)]


def decided(response) -> dict:
    info = response.additional_kwargs["routellm"]
    assert info["route"] in ("strong", "weak") and info["reason"] == "scored" and info["router"] == "mf"
    assert 0.0 <= info["score"] <= 1.0 and info["model"] in ("big-model", "small-model")
    assert info["cost_usd"] > 0  # priced and in the ledger like any other call
    return info


def test_chat_complete_and_streams_route(llm):
    decided(llm.chat(user(BAD)))
    decided(llm.complete(BAD))
    decided(list(llm.stream_chat(user(BAD)))[-1])
    decided(list(llm.stream_complete(BAD))[-1])
    assert llm.ledger.total.calls == 4


async def test_async_calls_route(llm):
    decided(await llm.achat(user(BAD)))
    decided(await llm.acomplete(BAD))
    decided([c async for c in await llm.astream_chat(user(BAD))][-1])


def test_a_query_engine_question_with_a_surrogate_routes(llm):
    template = PromptTemplate("Context: {context_str}\nQuestion: {query_str}\nAnswer:")
    assert llm.predict(template, context_str="docs \udc80", query_str=BAD)
    assert llm.ledger.total.calls == 1


def test_a_routing_function_returning_a_surrogate_text_routes():
    llm = RoutedLLM(strong=ScriptedLLM(name="big-model"), weak=ScriptedLLM(name="small-model"), router="mf",
                    threshold=0.5, ledger=CostLedger(PRICES), route_on=lambda messages: BAD)
    decided(llm.chat(user("plain text")))
