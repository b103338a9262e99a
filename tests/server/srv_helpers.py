"""Helpers of the routing-server suite (fixtures are in conftest.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

#: the provider keys the backends are given: no response, header, log line or metric may show them
OPENAI_SECRET = "sk-proj-PROVIDERSECRET-openai-0123456789"
ANTHROPIC_SECRET = "sk-ant-api03-PROVIDERSECRET-anthropic-9876543210"
SECRETS = (OPENAI_SECRET, ANTHROPIC_SECRET, "PROVIDERSECRET")
CLIENT_KEY = "rk-client-alice-000111222"
OTHER_KEY = "rk-client-bob-333444555"
REPO = Path(__file__).resolve().parents[2]


def assert_no_secret(*texts: Any) -> None:
    for text in texts:
        s = text if isinstance(text, str) else repr(text)
        for secret in SECRETS:
            assert secret not in s, f"a provider key leaked: {s[:300]!r}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    app: Any
    port: int
    server: Any = None
    thread: threading.Thread | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def client(self) -> Any:
        return self.app.state.client

    def get(self, path: str, key: str | None = CLIENT_KEY, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.get(self.url + path, headers=headers, timeout=30, **kw)

    def post(self, path: str, body: Any, key: str | None = CLIENT_KEY, **kw: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.post(self.url + path, json=body, headers=headers, timeout=30, **kw)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)
            assert not self.thread.is_alive(), "the server did not stop"


def start_in_thread(app: Any) -> RunningServer:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="info",
                            timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="routellm-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "the server failed to start"
        assert time.monotonic() < deadline, "the server did not start within 60 s"
        time.sleep(0.02)
    return RunningServer(app, port, server, thread)


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy (bounded; not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 60) -> bool:
        """SIGTERM, then wait: True when it shut down gracefully (uvicorn re-raises the
        signal after its graceful shutdown, so the exit status is -SIGTERM or 0)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        log = self.log()
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in log and \
            "every call in flight settled" in log
