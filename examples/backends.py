"""Which strong/weak pair the examples use, so each example reads like user code.

- ``OPENAI_API_KEY`` (and optionally ``OPENAI_BASE_URL`` for any OpenAI-compatible server
  such as vLLM or Ollama): the OpenAI models ``ROUTELLM_STRONG_MODEL`` / ``ROUTELLM_WEAK_MODEL``
  (default gpt-4o / gpt-4o-mini).
- ``ANTHROPIC_API_KEY`` alone: claude-sonnet-4-5 / claude-3-5-haiku-latest.
- neither: the local models that ship in PyPI packages (see ``routellm_integrations.local_engine``).
"""

from __future__ import annotations

import contextlib
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
    from langchain_routellm.local_chat import local_pair

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
    from llamaindex_routellm.local_llm import local_pair

    return local_pair()


@contextlib.contextmanager
def tool_calling_pair():
    """(strong, weak) LangChain chat models that can call tools. The local model cannot, so
    without a key this starts the scripted OpenAI-format server from
    ``routellm_integrations.testing`` (it calls the tool a question names, then reports
    the result) and points ChatOpenAI at it."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY"):
        yield langchain_pair()
        return
    from langchain_openai import ChatOpenAI

    from routellm_integrations.testing import OpenAICompatServer

    print("(no API key: agents run against the local scripted OpenAI-format server)")
    with OpenAICompatServer() as server:
        yield (ChatOpenAI(model="gpt-4o", base_url=server.base_url, api_key="offline", stream_usage=True),
               ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="offline", stream_usage=True))
