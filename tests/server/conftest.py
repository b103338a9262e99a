"""Fixtures of the routing-server suite: our server on real HTTP (uvicorn in a thread, or
a subprocess), over the local OpenAI- and Anthropic-format test servers as backends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from srv_helpers import (ANTHROPIC_SECRET, CLIENT_KEY, OPENAI_SECRET, REPO, RunningServer, ServerProcess, free_port,
                         start_in_thread)

from routellm_integrations.testing.anthropic_compat import AnthropicCompatServer
from routellm_integrations.testing.openai_compat import OpenAICompatServer


@pytest.fixture
def provider_env(openai_server: OpenAICompatServer, anthropic_server: AnthropicCompatServer,
                 monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Provider keys and base URLs in the environment, as a deployment sets them."""
    env = {"OPENAI_API_KEY": OPENAI_SECRET, "OPENAI_BASE_URL": openai_server.base_url,
           "ANTHROPIC_API_KEY": ANTHROPIC_SECRET, "ANTHROPIC_BASE_URL": anthropic_server.base_url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("ROUTELLM_SERVER_API_KEYS", raising=False)
    return env


@pytest.fixture
def serve(provider_env: dict[str, str]) -> Iterator[Callable[..., RunningServer]]:
    """``serve(**config)``: our server on a free port (config as ServerConfig fields;
    defaults: strong openai:gpt-4o, weak anthropic:claude-3-5-haiku-latest, routers
    random+length, key ``CLIENT_KEY`` labelled alice)."""
    from routellm_integrations.server.app import create_app
    from routellm_integrations.server.config import load_config

    started: list[RunningServer] = []

    def make(**config: Any) -> RunningServer:
        defaults: dict[str, Any] = {"strong": "openai:gpt-4o", "weak": "anthropic:claude-3-5-haiku-latest",
                                    "routers": ["random", "length"],
                                    "keys": [{"label": "alice", "key": CLIENT_KEY}]}
        defaults.update(config)
        running = start_in_thread(create_app(load_config(None, **defaults)))
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def serve_process(provider_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``serve_process(*flags)``: ``python -m routellm_integrations serve <flags>`` on a
    free port, waited for until ``/health`` answers; killed at teardown if still running."""
    procs: list[ServerProcess] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> ServerProcess:
        port = free_port()
        log_path = tmp_path / f"server-{port}.log"
        full_env = {**os.environ, **provider_env, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                    "ROUTELLM_SERVER_API_KEYS": f"alice={CLIENT_KEY}", **(env or {})}
        log_file = open(log_path, "wb")
        proc = subprocess.Popen([sys.executable, "-m", "routellm_integrations", "serve", "--host", "127.0.0.1",
                                 "--port", str(port), *flags], cwd=REPO, env=full_env, stdout=log_file,
                                stderr=subprocess.STDOUT)
        log_file.close()
        sp = ServerProcess(proc, port, log_path)
        procs.append(sp)
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"the server exited ({proc.returncode}):\n{sp.log()}"
            try:
                if httpx.get(sp.url + "/health", timeout=2).status_code == 200:
                    return sp
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the server did not start:\n{sp.log()}"
            time.sleep(0.1)

    yield start
    for sp in procs:
        if sp.proc.poll() is None:
            sp.proc.kill()
            sp.proc.wait(timeout=30)
