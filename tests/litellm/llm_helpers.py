"""Helpers of the LiteLLM plug-in's tests (imported by conftest and the tests)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: the bundled cost map

from litellm.integrations.custom_logger import CustomLogger

#: how long a litellm proxy process may take to start on a loaded machine
START_TIMEOUT_S = 180
STRONG_MODEL = "gpt-4o"
WEAK_MODEL = "gpt-4o-mini"


def _last_text(messages: Any) -> str | None:
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        content = messages[-1].get("content")
        return content if isinstance(content, str) else None
    return None


class Recorder(CustomLogger):
    """What LiteLLM's success/failure callbacks were given: the call's metadata
    ``routellm`` entry and the model the call went to."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def _keep(self, kind: str, kwargs: dict[str, Any]) -> None:
        metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
        self.events.append({"kind": kind, "model": kwargs.get("model"), "routellm": metadata.get("routellm"),
                            "stream": bool(kwargs.get("stream")), "text": _last_text(kwargs.get("messages"))})

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._keep("success", kwargs)

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._keep("failure", kwargs)


def group(name: str, model: str, base_url: str) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": f"openai/{model}", "api_base": base_url,
                                                     "api_key": "sk-test-local"}}


def models_called(server) -> list[str]:
    """The model of each chat request the local server answered, in order."""
    return [r.json["model"] for r in server.requests_to("/v1/chat/completions")]


async def logged(recorder: Recorder, texts: list[str], timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """The recorder's events of the calls whose last message was one of ``texts`` (in
    the order logged), once there is one per text: LiteLLM logs after the call returns,
    on its own worker, so a previous test's events may still come in. Fewer after
    ``timeout_s`` fails the caller's assert."""
    import asyncio

    wanted = set(texts)
    for _ in range(int(timeout_s / 0.02)):
        mine = [e for e in recorder.events if e["text"] in wanted]
        if len(mine) >= len(texts):
            break
        await asyncio.sleep(0.02)
    return mine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_command(folder: Path, port: int) -> list[str]:
    exe = shutil.which("litellm", path=str(Path(sys.executable).parent)) or "litellm"
    return [exe, "--config", str(folder / "config.yaml"), "--port", str(port), "--host", "127.0.0.1"]


def proxy_env(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "HF_HUB_OFFLINE": "1",
                "ROUTELLM_TEST_RECORD": str(folder / "record.jsonl"), "NO_PROXY": "127.0.0.1,localhost",
                "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])})
    return env


def wait_live(process: subprocess.Popen, url: str, log_path: Path, timeout: float = START_TIMEOUT_S) -> None:
    """Until the proxy at ``url`` answers its liveness route; the test fails with the tail
    of its log when it exits first or does not answer within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"the proxy exited ({process.returncode}):\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the proxy did not start:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.5)
