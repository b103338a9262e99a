"""The main job's demo, over an OpenAI-compatible server (the path a vLLM/Ollama user takes)."""

from routellm_integrations.cli import DEMO_PROMPTS
from routellm_integrations.testing import OpenAICompatServer


def test_demo_routes_every_prompt_and_prices_the_traffic(monkeypatch, capsys):
    from langchain_routellm.demo import main

    with OpenAICompatServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("ROUTELLM_STRONG_MODEL", "big-model")
        monkeypatch.setenv("ROUTELLM_WEAK_MODEL", "small-model")
        assert main([]) == 0
        served = server.chat.usage_totals()
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("strong ", "weak "))]
    assert len(rows) == len(DEMO_PROMPTS)
    n_strong = sum(line.startswith("strong") for line in rows)
    assert 0 < n_strong < len(DEMO_PROMPTS)
    assert f"strong-call share: {n_strong}/{len(DEMO_PROMPTS)}" in out
    assert served["big-model"]["calls"] == n_strong and served["small-model"]["calls"] == len(DEMO_PROMPTS) - n_strong
    assert "all-strong" in out and "saves" in out
    assert "Hello from small-model" in out  # answer excerpts are printed
