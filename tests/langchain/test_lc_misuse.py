"""One misuse, one typed error, on every surface, raised when the object is built."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from lc_fakes import ScriptedChatModel

from langchain_routellm import RoutedChat
from llamaindex_routellm import RoutedLLM
from routellm_integrations import InvalidThresholdError, RoutingPolicy, UnknownRouterError


def _pair():
    return ScriptedChatModel(model="gpt-4o", provider="openai"), ScriptedChatModel(model="gpt-4o-mini",
                                                                                     provider="openai")


@pytest.mark.parametrize("options, error", [
    ({"router": "nope"}, UnknownRouterError),
    ({"threshold": 0.5, "strong_fraction": 0.3}, InvalidThresholdError),
    ({"threshold": 2.0}, InvalidThresholdError),
])
def test_a_misuse_is_the_same_typed_error_in_routedchat_routedllm_and_the_policy(options, error) -> None:
    from llama_index.core.llms import MockLLM

    strong, weak = _pair()
    with pytest.raises(error):
        RoutedChat(strong=strong, weak=weak, **options)
    with pytest.raises(error):
        RoutedLLM(strong=MockLLM(), weak=MockLLM(), **options)
    with pytest.raises(error):
        RoutingPolicy(**options)


def test_decide_previews_any_input_invoke_takes() -> None:
    strong, weak = _pair()
    llm = RoutedChat(strong=strong, weak=weak, router="length", router_options={"midpoint": 20}, threshold=0.5)
    assert llm.decide("hi").route == "weak"
    assert llm.decide([HumanMessage("Please prove that the square root of two is irrational, step by step.")]).route \
        == "strong"
    assert strong.calls == weak.calls == []  # a preview calls no model
