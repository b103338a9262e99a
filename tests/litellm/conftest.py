"""Fixtures of the LiteLLM plug-in's tests: two model groups over the local OpenAI-format
server (the model name each request reaches says which group LiteLLM sent it to), a
recording ``CustomLogger``, and ``litellm.callbacks`` restored after each test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

# offline: LiteLLM reads its bundled model cost map instead of downloading it
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")

import litellm
from llm_helpers import STRONG_MODEL, WEAK_MODEL, Recorder, group

_RECORDER = Recorder()


@pytest.fixture(autouse=True)
def _callbacks() -> Iterator[None]:
    """Each test ends with the plug-ins it built out of LiteLLM's callbacks."""
    yield
    from routellm_integrations.litellm import RouteLLMPlugin

    litellm.callbacks[:] = [cb for cb in litellm.callbacks if not isinstance(cb, RouteLLMPlugin)]


@pytest.fixture
def recorder() -> Recorder:
    """One recorder for the session (LiteLLM keeps the callbacks it has seen), emptied for each test."""
    if not any(cb is _RECORDER for cb in litellm.callbacks):
        litellm.callbacks.append(_RECORDER)
    _RECORDER.events.clear()
    return _RECORDER


@pytest.fixture
def model_list(openai_server) -> list[dict[str, Any]]:
    """Two model groups, ``big`` (gpt-4o) and ``small`` (gpt-4o-mini), on the local server."""
    return [group("big", STRONG_MODEL, openai_server.base_url), group("small", WEAK_MODEL, openai_server.base_url)]


