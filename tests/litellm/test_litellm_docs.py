"""docs/litellm.md's snippets run as written, against the local OpenAI-format server
(``OPENAI_BASE_URL`` points at it): the SDK ``Router`` script, and the proxy's
``config.yaml`` with its plug-in module in a real ``litellm`` proxy process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from llm_helpers import (
    STRONG_MODEL,
    WEAK_MODEL,
    free_port,
    models_called,
    proxy_command,
    proxy_env,
    wait_live,
)

from routellm_integrations.testing.openai_compat import OpenAICompatServer
from routellm_integrations.testing.processes import stop_process

DOC = Path(__file__).resolve().parents[2] / "docs" / "litellm.md"
MASTER_KEY = "sk-docs-test-0123456789abcdef"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.fixture(scope="module")
def backend():
    with OpenAICompatServer() as server:
        yield server


def env_for(folder: Path, backend: OpenAICompatServer) -> dict[str, str]:
    env = proxy_env(folder)
    env.update({"OPENAI_API_KEY": "sk-test-local", "OPENAI_BASE_URL": backend.base_url,
                "LITELLM_MASTER_KEY": MASTER_KEY})
    return env


def test_the_router_snippet_runs(tmp_path, backend):
    backend.reset()
    script = blocks("python")[0]
    assert "routing.deployment()" in script and "acompletion" in script
    (tmp_path / "routed.py").write_text(script)
    done = subprocess.run([sys.executable, "routed.py"], cwd=tmp_path, env=env_for(tmp_path, backend),
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    called = models_called(backend)
    assert len(lines) == 2 and len(called) == 2 and set(called) <= {STRONG_MODEL, WEAK_MODEL}
    for line, model in zip(lines, called):
        assert f"-> {model}" in line and ("route strong" in line) == (model == STRONG_MODEL)


def docs_marker() -> dict:
    import yaml

    [config] = blocks("yaml")
    [entry] = [e for e in yaml.safe_load(config)["model_list"] if e["model_name"] == "routellm-router"]
    return entry


def test_the_docs_marker_is_what_the_helper_gives():
    """docs/litellm.md writes the marker entry out; users get it from proxy_deployment()
    or the CLI: the three are the same entry, so the snippet cannot drift."""
    import yaml

    from routellm_integrations.litellm import proxy_deployment

    entry = docs_marker()
    assert entry == proxy_deployment(strong="smart", weak="fast")
    done = subprocess.run([sys.executable, "-m", "routellm_integrations.litellm", "config", "--strong", "smart",
                           "--weak", "fast"], check=True, capture_output=True, text=True, timeout=120)
    assert yaml.safe_load(done.stdout) == [entry]
    assert "python -m routellm_integrations.litellm config --strong smart --weak fast" in DOC.read_text()


def test_the_proxy_snippet_runs(tmp_path, backend):
    backend.reset()
    [config] = blocks("yaml")
    plugin = next(b for b in blocks("python") if "from_proxy_config" in b)
    (tmp_path / "config.yaml").write_text(config)
    (tmp_path / "routellm_plugin.py").write_text(plugin)
    port = free_port()
    log = open(  # noqa: SIM115 - the proxy writes to it until the fixture ends
        tmp_path / "proxy.log", "wb")
    process = subprocess.Popen(proxy_command(tmp_path, port), cwd=tmp_path, env=env_for(tmp_path, backend),
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_live(process, f"http://127.0.0.1:{port}", tmp_path / "proxy.log")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=MASTER_KEY, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="routellm-router", messages=[{"role": "user", "content": "hi!"}])
        route = raw.headers["llm_provider-x-routellm-route"]
        assert raw.parse().choices[0].message.content
        assert models_called(backend) == [STRONG_MODEL if route == "strong" else WEAK_MODEL]
    finally:
        stop_process(process, timeout=20)
        log.close()
