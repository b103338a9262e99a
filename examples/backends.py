"""Which strong/weak pair the examples use, so each example reads like user code.

- ``OPENAI_API_KEY`` (and optionally ``OPENAI_BASE_URL`` for any OpenAI-compatible server
  such as vLLM or Ollama): the OpenAI models ``ROUTELLM_STRONG_MODEL`` / ``ROUTELLM_WEAK_MODEL``
  (default gpt-4o / gpt-4o-mini).
- ``ANTHROPIC_API_KEY`` alone: claude-sonnet-4-5 / claude-3-5-haiku-latest.
- neither: the local models that ship in PyPI packages (see ``routellm_integrations.local_models``).
"""

from __future__ import annotations

import os


def _names(strong: str, weak: str) -> tuple[str, str]:
    return os.environ.get("ROUTELLM_STRONG_MODEL", strong), os.environ.get("ROUTELLM_WEAK_MODEL", weak)


def langchain_pair():
    """(strong, weak) LangChain chat models."""
    if os.environ.get("OPENAI_API_KEY"):
        from langchain_openai import ChatOpenAI

        strong, weak = _names("gpt-4o", "gpt-4o-mini")
        return ChatOpenAI(model=strong, stream_usage=True), ChatOpenAI(model=weak, stream_usage=True)
    if os.environ.get("ANTHROPIC_API_KEY"):
        from langchain_anthropic import ChatAnthropic

        strong, weak = _names("claude-sonnet-4-5", "claude-3-5-haiku-latest")
        return ChatAnthropic(model=strong), ChatAnthropic(model=weak)
    from langchain_routellm.local import local_pair

    return local_pair()


def llamaindex_pair():
    """(strong, weak) LlamaIndex LLMs."""
    if os.environ.get("OPENAI_API_KEY"):
        from llama_index.llms.openai import OpenAI

        strong, weak = _names("gpt-4o", "gpt-4o-mini")
        base = os.environ.get("OPENAI_BASE_URL")
        return OpenAI(model=strong, api_base=base), OpenAI(model=weak, api_base=base)
    if os.environ.get("ANTHROPIC_API_KEY"):
        from llama_index.llms.anthropic import Anthropic

        strong, weak = _names("claude-sonnet-4-5", "claude-3-5-haiku-latest")
        return Anthropic(model=strong), Anthropic(model=weak)
    from llamaindex_routellm.local import local_pair

    return local_pair()
