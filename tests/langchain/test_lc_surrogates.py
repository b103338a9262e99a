"""A prompt holding a lone surrogate (what Python makes of undecodable bytes) is routed by
RoutedChat with the real ``mf`` router, in every call style; the decision comes back."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_routellm import RoutedChat
from lc_fakes import ScriptedChatModel

BAD = "caf\udce9 ok?"


@pytest.fixture(scope="module")
def llm():
    strong = ScriptedChatModel(model="gpt-4o", provider="openai")
    weak = ScriptedChatModel(model="gpt-4o-mini", provider="openai")
    return RoutedChat(strong=strong, weak=weak, router="mf", threshold=0.5)


def decided(message, router: str = "mf") -> dict:
    info = message.response_metadata["routellm"]
    assert info["route"] in ("strong", "weak") and info["reason"] == "scored" and info["router"] == router
    assert 0.0 <= info["score"] <= 1.0 and info["model"] in ("gpt-4o", "gpt-4o-mini")
    return info


def joined(chunks):
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    return full


def test_invoke_routes_and_the_backend_gets_the_prompt_unchanged(llm):
    info = decided(llm.invoke(BAD))
    backend = llm.strong if info["route"] == "strong" else llm.weak
    assert backend.calls[-1]["messages"][-1].content == BAD  # routing cleans its own copy only


def test_stream_batch_and_async_route(llm):
    decided(joined(list(llm.stream(BAD))))
    for message in llm.batch([BAD, [SystemMessage(content="sys \udcff"), HumanMessage(content=BAD)]]):
        decided(message)


async def test_ainvoke_and_astream_route(llm):
    decided(await llm.ainvoke(BAD))
    decided(joined([c async for c in llm.astream(BAD)]))


def test_conversation_routing_with_surrogates_in_every_message():
    strong = ScriptedChatModel(model="gpt-4o", provider="openai")
    weak = ScriptedChatModel(model="gpt-4o-mini", provider="openai")
    llm = RoutedChat(strong=strong, weak=weak, router="mf", threshold=0.5, route_on="conversation")
    decided(llm.invoke([SystemMessage(content="\ud800 system"), HumanMessage(content=BAD),
                        HumanMessage(content="and \udcc3\udca9 more")]))


def test_a_misspelt_option_is_an_error_not_a_silent_default() -> None:
    import pydantic

    from langchain_routellm import RoutedChat
    from langchain_routellm.local_chat import ChatLocalModel

    with pytest.raises(pydantic.ValidationError, match="thresold"):
        RoutedChat(strong=ChatLocalModel(), weak=ChatLocalModel(), router="length", thresold=0.3)
