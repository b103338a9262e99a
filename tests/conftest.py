"""Shared fixtures. Keep this small: suites own their helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from routellm_integrations.testing.anthropic_compat import AnthropicCompatServer
from routellm_integrations.testing.openai_compat import OpenAICompatServer

# The package never guesses where the training data is (``--data-dir`` or
# $ROUTELLM_DATA_DIR). The suite takes $ROUTELLM_DATA_DIR, else the workspace layout the
# project is checked out into for CI: a ``shared/data`` folder beside the checkout. Tests
# that need the data fail, not skip, when neither is there.
_WORKSPACE_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not os.environ.get("ROUTELLM_DATA_DIR") and _WORKSPACE_DATA.is_dir():
    os.environ["ROUTELLM_DATA_DIR"] = str(_WORKSPACE_DATA)


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


@pytest.fixture(scope="session")
def redis_server() -> Iterator["RedisServer"]:
    """A real redis-server on 127.0.0.1 for the session (missing: the test errors, never skips)."""
    from routellm_integrations.testing.redis_server import RedisServer

    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: "RedisServer", request: pytest.FixtureRequest) -> str:
    """The session's Redis, under a key prefix of this test's own."""
    import re
    import uuid

    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:40]
    return f"{redis_server.url}?prefix=t_{name}_{uuid.uuid4().hex[:6]}"
