"""The plug-in in a real ``litellm`` proxy process on 127.0.0.1, over the local
OpenAI-format server, called with the openai SDK: requests to the alias route by our
router's scores (plain, streamed sync and async), LiteLLM's callbacks see each decision,
and a bad plug-in config makes the proxy exit non-zero with our message."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path

import openai
import pytest
from llm_helpers import (
    START_TIMEOUT_S,
    STRONG_MODEL,
    WEAK_MODEL,
    free_port,
    models_called,
    proxy_command,
    proxy_env,
    wait_live,
)

from routellm_integrations.litellm import proxy_deployment_yaml
from routellm_integrations.testing.openai_compat import OpenAICompatServer
from routellm_integrations.testing.processes import stop_process

MASTER_KEY = "sk-proxy-test-0123456789abcdef"
ALIAS = "routellm-router"

PLUGIN = '''
import json, os
from pathlib import Path

from litellm.integrations.custom_logger import CustomLogger
from routellm_integrations.litellm import RouteLLMPlugin

routing = RouteLLMPlugin.from_proxy_config(Path(__file__).with_name("config.yaml"), router={router!r}, threshold=0.5)


class Recorder(CustomLogger):
    """Writes what LiteLLM's success callback was given, one JSON line per call."""

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        metadata = (kwargs.get("litellm_params") or {{}}).get("metadata") or {{}}
        line = {{"model": kwargs.get("model"), "routellm": metadata.get("routellm"),
                "text": kwargs["messages"][-1]["content"], "stream": bool(kwargs.get("stream"))}}
        with open(os.environ["ROUTELLM_TEST_RECORD"], "a") as f:
            f.write(json.dumps(line) + "\\n")


recorder = Recorder()
'''

CONFIG = '''
model_list:
  - model_name: big
    litellm_params: {{model: openai/{strong}, api_base: "{url}", api_key: sk-test-local}}
  - model_name: small
    litellm_params: {{model: openai/{weak}, api_base: "{url}", api_key: sk-test-local}}
{marker}litellm_settings:
  callbacks: routellm_plugin.recorder
general_settings:
  master_key: {key}
'''


def write(folder: Path, url: str, *, router: str = "length", strong_group: str = "big") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # the plug-in's marker entry as users get it (the helper docs/litellm.md's snippet is checked against)
    marker = proxy_deployment_yaml(strong=strong_group, weak="small", model_name=ALIAS)
    (folder / "config.yaml").write_text(textwrap.dedent(CONFIG).format(
        strong=STRONG_MODEL, weak=WEAK_MODEL, url=url, key=MASTER_KEY, marker=marker))
    (folder / "routellm_plugin.py").write_text(PLUGIN.format(router=router))


@pytest.fixture(scope="module")
def backend():
    with OpenAICompatServer() as server:
        yield server


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, backend):
    """One proxy process for the module (it takes seconds to start)."""
    folder = tmp_path_factory.mktemp("proxy")
    write(folder, backend.base_url)
    port = free_port()
    log = open(  # noqa: SIM115 - the proxy writes to it until the fixture ends
        folder / "proxy.log", "wb")
    process = subprocess.Popen(proxy_command(folder, port), cwd=folder, env=proxy_env(folder), stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_live(process, base, folder / "proxy.log")
        yield base, folder
    finally:
        stop_process(process, timeout=20)
        log.close()


def records(folder: Path, texts: list[str], timeout_s: float = 15.0) -> dict[str, dict]:
    """The recorder's lines of the calls with these last messages, once all are written."""
    path = folder / "record.jsonl"
    found: dict[str, dict] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                if row["text"] in texts:
                    found[row["text"]] = row
        if len(found) == len(texts):
            break
        time.sleep(0.1)
    return found


def test_the_proxy_routes_by_score_and_logs_the_decision(proxy, backend):
    base, folder = proxy
    backend.reset()
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=MASTER_KEY, max_retries=0)
    prompts = ["short one", "L" * 700]
    for p in prompts:
        reply = client.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": p}])
        assert reply.choices[0].message.content
    assert models_called(backend) == [WEAK_MODEL, STRONG_MODEL]
    rows = records(folder, prompts)
    assert rows[prompts[0]]["routellm"]["route"] == "weak" and rows[prompts[0]]["routellm"]["model_group"] == "small"
    assert rows[prompts[1]]["routellm"]["route"] == "strong" and rows[prompts[1]]["routellm"]["router"] == "length"
    assert rows[prompts[1]]["routellm"]["threshold"] == 0.5
    raw = client.chat.completions.with_raw_response.create(model=ALIAS, messages=[{"role": "user", "content": "H" * 900}])
    # LiteLLM's tier header, and ours (LiteLLM prefixes a deployment hook's headers with llm_provider-)
    assert raw.headers["x-litellm-complexity-router-tier"] == "strong"
    assert raw.headers["llm_provider-x-routellm-route"] == "strong"
    assert raw.headers["llm_provider-x-routellm-model-group"] == "big"
    assert float(raw.headers["llm_provider-x-routellm-score"]) == pytest.approx(900 / 1300, abs=1e-5)


def test_the_proxy_streams_sync_and_async(proxy, backend):
    import asyncio

    base, folder = proxy
    backend.reset()
    sync_client = openai.OpenAI(base_url=f"{base}/v1", api_key=MASTER_KEY, max_retries=0)
    text = "".join(c.choices[0].delta.content or "" for c in sync_client.chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": "S" * 800}], stream=True) if c.choices)
    assert text

    async def astream() -> str:
        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=MASTER_KEY, max_retries=0)
        out = []
        async for c in await client.chat.completions.create(
                model=ALIAS, messages=[{"role": "user", "content": "tiny"}], stream=True):
            if c.choices:
                out.append(c.choices[0].delta.content or "")
        await client.close()
        return "".join(out)

    assert asyncio.run(astream())
    assert models_called(backend) == [STRONG_MODEL, WEAK_MODEL]
    rows = records(folder, ["S" * 800, "tiny"])
    assert rows["S" * 800]["routellm"]["route"] == "strong" and rows["tiny"]["routellm"]["route"] == "weak"


@pytest.mark.parametrize("router, strong_group, words", [
    ("no-such-router", "big", "no-such-router"),
    ("length", "huge", "huge"),
])
def test_a_bad_plugin_config_stops_the_proxy(tmp_path, backend, router, strong_group, words):
    write(tmp_path, backend.base_url, router=router, strong_group=strong_group)
    done = subprocess.run(proxy_command(tmp_path, free_port()), cwd=tmp_path, env=proxy_env(tmp_path),
                          check=False, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    assert done.returncode != 0
    assert words in done.stderr + done.stdout
    assert "UnknownRouterError" in done.stderr + done.stdout or "LiteLLMConfigError" in done.stderr + done.stdout
