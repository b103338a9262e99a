"""Every example runs offline: LLM calls go to the local OpenAI-format server (the
examples' "OpenAI-compatible server" path), LangSmith to a local recording server."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from routellm_integrations.testing.openai_compat import OpenAICompatServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STRONG, WEAK = "gpt-4o", "gpt-4o-mini"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    with OpenAICompatServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        monkeypatch.syspath_prepend(str(EXAMPLES))
        monkeypatch.chdir(tmp_path)
        yield server


def load(name: str):
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def test_agent_swap_routes_steps_and_prints_costs(offline, capsys):
    rows = load("agent_swap").main()
    by_question: dict[str, set] = {}
    for r in rows:
        by_question.setdefault(r["question"], set()).add(r["model"])
    assert any(r["tools"] for r in rows)
    # one backend per turn, tool step included, and each question on its own route (which
    # question goes strong is the router's ranking of the two for gpt-4o vs gpt-4o-mini)
    assert sorted(by_question.values(), key=lambda models: sorted(models)) == [{STRONG}, {WEAK}]
    assert all(r["model"] == next(iter(by_question[r["question"]])) for r in rows)
    out = capsys.readouterr().out
    assert "Cost (USD): $" in out and "strong:" in out and "weak:" in out


def test_rag_per_query_in_llamaindex_and_lcel(offline):
    result = load("rag_per_query").main()
    for framework in ("llamaindex", "langchain"):
        (q1, m1, a1), (q2, m2, a2) = result[framework]
        assert m1 == WEAK and m2 == STRONG
        assert a1.startswith(f"Hello from {WEAK}") and a2.startswith(f"Hello from {STRONG}")
    # the LlamaIndex prompt carried the retrieved document
    asked = [r.json for r in offline.requests_to("/v1/chat/completions")]
    assert any("$8 per user" in str(body["messages"]) for body in asked)


def test_langsmith_tracing_shows_route_model_and_cost(offline):
    import langsmith

    from routellm_integrations.testing.langsmith_recorder import LangSmithRecorder

    with LangSmithRecorder() as recorder:
        shown = load("langsmith_tracing").main(client=langsmith.Client(api_url=recorder.url, api_key="x"))
    llm_runs = {r["id"]: r for r in recorder.llm_runs()}
    assert len(llm_runs) == 2
    traced = {(r["extra"]["metadata"]["routellm_route"], r["extra"]["metadata"]["ls_model_name"])
              for r in llm_runs.values()}
    assert traced == {("weak", WEAK), ("strong", STRONG)}
    assert all(s["cost_usd"] > 0 for s in shown)


def test_langsmith_tracing_without_a_key_traces_to_a_local_recorder(offline, monkeypatch, capsys, caplog):
    import logging

    for var in ("LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANGSMITH_ENDPOINT", "http://127.0.0.1:9")  # a default client would fail to post here
    with caplog.at_level(logging.DEBUG, logger="langsmith"):
        shown = load("langsmith_tracing").main()
    out = capsys.readouterr().out
    assert "local recording server" in out
    recorded = [line for line in out.splitlines() if line.startswith("recorded LLM run:")]
    assert sorted(recorded) == ["recorded LLM run: tags=['routellm:strong'] routellm_route=strong ls_model_name=gpt-4o",
                                "recorded LLM run: tags=['routellm:weak'] routellm_route=weak ls_model_name=gpt-4o-mini"]
    assert [s["route"] for s in shown] == ["weak", "strong"]
    assert not [r for r in caplog.records if r.name.startswith("langsmith") and r.levelno >= logging.WARNING]
    assert "127.0.0.1:9" not in out + caplog.text


def test_calibrate_and_evaluate(offline):
    out = load("calibrate_and_evaluate").main(["--benchmark", "mt-bench", "--plot", "plot.png"])
    assert 0 < out["threshold"] < 1 and 0.6 < out["apgr"] < 1
    assert Path(out["plot"]).read_bytes()[:4] == b"\x89PNG"
