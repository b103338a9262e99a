"""The offline default: SmolLM2-135M-Instruct generating for real, with usage, through the
engine, LangChain's ChatLocalModel and LlamaIndex's LocalLLM (short answers keep it quick)."""

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler

from langchain_routellm import RoutedChat
from langchain_routellm.local_chat import ChatLocalModel, local_pair
from llamaindex_routellm import RoutedLLM
from llamaindex_routellm.local_llm import local_pair as li_local_pair
from routellm_integrations import InvalidPromptError
from routellm_integrations.local_engine import STRONG_MODEL, WEAK_MODEL, shared_engine


@pytest.fixture(scope="module")
def engine():
    return shared_engine()


def test_engine_generates_and_counts_tokens(engine):
    out = engine.generate([{"role": "user", "content": "What is the capital of France?"}], max_new_tokens=12)
    assert "Paris" in out.text
    assert 0 < out.output_tokens <= 12 and out.input_tokens > 5
    cut = engine.generate([{"role": "user", "content": "What is the capital of France?"}], 12, stop=["Paris"])
    assert "Paris" not in cut.text and cut.output_tokens < out.output_tokens
    with pytest.raises(InvalidPromptError):
        engine.generate([], 4)


def test_chat_local_model_reports_usage_counted_by_the_tokenizer(engine):
    model = ChatLocalModel(max_tokens=8)
    message = model.invoke("Name a colour.")
    u = message.usage_metadata
    assert 0 < u["output_tokens"] <= 8 and u["total_tokens"] == u["input_tokens"] + u["output_tokens"]
    assert 0 < engine.count_tokens(message.content) <= u["output_tokens"]  # the answer is stripped of spaces
    assert message.response_metadata["model_name"] == WEAK_MODEL
    assert model._get_ls_params()["ls_provider"] == "local"
    with pytest.raises(NotImplementedError, match="cannot call tools"):
        model.bind_tools([])


def test_routed_chat_over_the_local_pair_is_free(engine):
    strong, weak = local_pair(max_tokens=6)
    strong.max_tokens = 8  # keep the test quick; the demo uses the larger reasoning budget
    llm = RoutedChat(strong=strong, weak=weak, router="length", threshold=0.5)
    short = llm.invoke("Hi!")
    long = llm.invoke("Explain in detail " * 40)
    assert short.response_metadata["routellm"]["model"] == WEAK_MODEL
    assert long.response_metadata["routellm"]["model"] == STRONG_MODEL
    assert short.response_metadata["routellm"]["cost_usd"] == 0.0


def test_llamaindex_local_llm_usage_reaches_token_counting_and_routed_llm(engine):
    counter = TokenCountingHandler()
    strong, weak = li_local_pair(max_tokens=6)
    llm = RoutedLLM(strong=strong, weak=weak, router="length", threshold=0.5,
                    callback_manager=CallbackManager([counter]))
    response = llm.chat([ChatMessage(role=MessageRole.USER, content="Name a fruit.")])
    info = response.additional_kwargs["routellm"]
    assert info["model"] == WEAK_MODEL and info["cost_usd"] == 0.0 and 0 < info["output_tokens"] <= 6
    assert counter.completion_llm_token_count == info["output_tokens"]
    assert counter.prompt_llm_token_count == info["input_tokens"]
    assert weak.metadata.context_window > 0 and not weak.metadata.is_function_calling_model


def test_the_demo_runs_offline_on_the_local_default(monkeypatch, capsys, engine):
    from langchain_routellm.demo import main
    from routellm_integrations.cli import DEMO_PROMPTS

    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    assert main(["--max-tokens", "4", "--strong-max-tokens", "6"]) == 0
    out = capsys.readouterr().out
    assert "local models (no API key set)" in out
    rows = [line for line in out.splitlines() if line.startswith(("strong ", "weak "))]
    assert len(rows) == len(DEMO_PROMPTS)
    assert {STRONG_MODEL, WEAK_MODEL} <= {part for line in rows for part in line.split()}
    n_strong = sum(line.startswith("strong ") for line in rows)
    # the defaults: the router scores the priced pair, 30% of calls strong held online from the reference mix
    assert "scoring ['gpt-4o-2024-08-06', 'gpt-4o-mini-2024-07-18']; default: 30% of calls strong" in out
    assert 1 <= n_strong <= 6 and f"strong-call share: {n_strong}/12" in out
    assert "spent: $0.000000" in out and "all-strong" in out
