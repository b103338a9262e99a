"""RoutedLLM over the real llama-index OpenAI and Anthropic LLMs, talking HTTP (JSON and
SSE) to the local provider-format servers the LangChain tests use."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.llms.anthropic import Anthropic
from llama_index.llms.openai import OpenAI

from llamaindex_routellm import RoutedLLM
from routellm_integrations.costs import PriceTable
from routellm_integrations.state import CostLedger
from routellm_integrations.routers.length import LengthRouter

SHORT = "What is the capital of France?"
LONG = "Derive the closed form of the sum of the first n cubes, proving each step by induction. " * 6


@pytest.fixture
def pair(openai_server, anthropic_server):
    strong = OpenAI(model="gpt-4o", api_key="sk-test-not-a-real-key", api_base=openai_server.base_url,
                    max_retries=0)
    weak = Anthropic(model="claude-3-5-haiku-20241022", api_key="sk-ant-test", base_url=anthropic_server.base_url,
                     max_retries=0)
    return strong, weak


def make(pair, **kw) -> RoutedLLM:
    strong, weak = pair
    return RoutedLLM(strong=strong, weak=weak, router=LengthRouter(), threshold=0.5,
                     ledger=CostLedger(PriceTable.default()), **kw)


def msgs(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


def by_model(server) -> dict:
    return server.chat.usage_totals()


def test_chat_goes_to_the_chosen_provider_over_http(pair, openai_server, anthropic_server):
    llm = make(pair)
    weak = llm.chat(msgs(SHORT))
    strong = llm.chat(msgs(LONG))
    assert "Hello from claude-3-5-haiku-20241022" in weak.message.content
    assert "Hello from gpt-4o" in strong.message.content
    assert len(openai_server.requests_to("/v1/chat/completions")) == 1
    assert len(anthropic_server.requests_to("/v1/messages")) == 1
    # tokens: exactly what each server reported; dollars: the price table by hand
    o, a = by_model(openai_server)["gpt-4o"], by_model(anthropic_server)["claude-3-5-haiku-20241022"]
    t = llm.ledger.total
    assert t.input_tokens == o["input_tokens"] + a["input_tokens"]
    assert t.output_tokens == o["output_tokens"] + a["output_tokens"]
    p_strong, p_weak = PriceTable.default().price("gpt-4o"), PriceTable.default().price("claude-3-5-haiku-20241022")
    expected = (o["input_tokens"] * p_strong.input + o["output_tokens"] * p_strong.output
                + a["input_tokens"] * p_weak.input + a["output_tokens"] * p_weak.output) / 1e6
    assert t.cost_usd == pytest.approx(expected)
    assert strong.additional_kwargs["routellm"]["cost_usd"] > 0


async def test_streaming_and_async_over_sse(pair, openai_server, anthropic_server):
    llm = make(pair)
    chunks = [c async for c in await llm.astream_chat(msgs(LONG))]
    assert len(chunks) > 1 and chunks[-1].message.content.startswith("Hello from gpt-4o")
    assert chunks[-1].additional_kwargs["routellm"]["route"] == "strong"
    text = "".join(c.delta or "" for c in llm.stream_chat(msgs(SHORT)))
    assert text.startswith("Hello from claude-3-5-haiku")
    totals = llm.ledger.total
    reported = [by_model(openai_server)["gpt-4o"], by_model(anthropic_server)["claude-3-5-haiku-20241022"]]
    assert totals.input_tokens == sum(r["input_tokens"] for r in reported)
    assert totals.output_tokens == sum(r["output_tokens"] for r in reported)


def test_token_counting_handler_counts_each_call_once(pair, openai_server, anthropic_server):
    counter = TokenCountingHandler()
    llm = make(pair, callback_manager=CallbackManager([counter]))
    llm.chat(msgs(SHORT))
    llm.chat(msgs(LONG))
    assert len(counter.llm_token_counts) == 2
    reported = [by_model(openai_server)["gpt-4o"], by_model(anthropic_server)["claude-3-5-haiku-20241022"]]
    assert counter.prompt_llm_token_count == sum(r["input_tokens"] for r in reported)
    assert counter.completion_llm_token_count == sum(r["output_tokens"] for r in reported)


async def test_tool_calls_use_each_providers_format(pair, openai_server, anthropic_server):
    from llama_index.core.tools import FunctionTool

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    tool = FunctionTool.from_defaults(add)
    llm = make(pair)
    for text, backend in ((LONG + " Use add on 2 and 3.", "gpt-4o"), ("Please add 2 and 3.", "claude")):
        response = await llm.achat_with_tools([tool], user_msg=text, tool_required=True)
        calls = llm.get_tool_calls_from_response(response)
        assert [(c.tool_name, c.tool_kwargs) for c in calls] == [("add", {"a": 2, "b": 3})]
        assert response.additional_kwargs["routellm"]["model"].startswith(backend)
    assert "tools" in openai_server.requests_to("/v1/chat/completions")[-1].json
    assert "tools" in anthropic_server.requests_to("/v1/messages")[-1].json


def test_provider_error_names_the_route_and_costs_nothing(pair, anthropic_server):
    llm = make(pair)
    anthropic_server.fail_next(500, times=1)
    with pytest.raises(Exception) as info:
        llm.chat(msgs(SHORT))
    assert any("weak route (claude-3-5-haiku-20241022) failed" in n for n in getattr(info.value, "__notes__", []))
    assert "sk-ant-test" not in str(info.value)
    t = llm.ledger.total
    assert t.calls == 0 and t.cost_usd == 0 and t.failed_calls == 1
