"""Shared fixtures. Keep this small: suites own their helpers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from routellm_integrations.testing.anthropic_compat import AnthropicCompatServer
from routellm_integrations.testing.openai_compat import OpenAICompatServer


@pytest.fixture(scope="session")
def _openai_server_session() -> Iterator[OpenAICompatServer]:
    server = OpenAICompatServer().start()
    yield server
    server.stop()


@pytest.fixture
def openai_server(_openai_server_session: OpenAICompatServer) -> OpenAICompatServer:
    """A local OpenAI-compatible server (``.base_url``), its request log and injected
    failures cleared for each test. ``/v1/chat/completions`` answers from ``.chat``."""
    _openai_server_session.reset()
    return _openai_server_session


@pytest.fixture(scope="session")
def _anthropic_server_session() -> Iterator[AnthropicCompatServer]:
    server = AnthropicCompatServer().start()
    yield server
    server.stop()


@pytest.fixture
def anthropic_server(_anthropic_server_session: AnthropicCompatServer) -> AnthropicCompatServer:
    """A local Anthropic-messages-compatible server (``.base_url``), reset for each test."""
    _anthropic_server_session.reset()
    return _anthropic_server_session
