"""``python -m routellm_integrations serve`` as a process: usage that survives a restart
(SQLite state), graceful shutdown with a request in flight, several workers over one store."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import openai
from srv_helpers import CLIENT_KEY, assert_no_secret, wait_until

from routellm_integrations.state import UsageQuery, open_store
from routellm_integrations.testing.openai_compat import OpenAICompatServer, Reply

HI = [{"role": "user", "content": "hello there"}]
FLAGS = ("--strong", "openai:gpt-4o", "--weak", "openai:gpt-4o-mini", "--router", "random", "--router", "length")


def _usage(url: str) -> dict:
    return httpx.get(url + "/v1/routing/usage", headers={"authorization": f"Bearer {CLIENT_KEY}"}, timeout=30).json()


def test_usage_survives_a_restart_with_a_sqlite_store(serve_process, tmp_path: Path) -> None:
    # a backend of this test's own: a request another test left running on the shared one
    # could land in its usage while this test counts
    own = OpenAICompatServer().start()
    env = {"OPENAI_BASE_URL": own.base_url}
    db = tmp_path / "routing.sqlite"
    first = serve_process(*FLAGS, "--db", f"sqlite:///{db}", env=env)
    client = openai.OpenAI(base_url=first.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    client.chat.completions.create(model="router-random-0.0", messages=HI)
    list(client.chat.completions.create(model="router-random-1.0", messages=HI, stream=True))
    before = _usage(first.url)
    assert first.terminate()
    second = serve_process(*FLAGS, "--db", f"sqlite:///{db}", env=env)
    client = openai.OpenAI(base_url=second.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    client.chat.completions.create(model="router-length-0.5", messages=HI)
    after = _usage(second.url)
    backend = own.chat.usage_totals()
    own.stop()
    assert before["total"]["calls"] == 2 and after["total"]["calls"] == 3
    assert after["key"]["calls"] == 3 and after["key"]["label"] == "alice"
    assert after["total"]["input_tokens"] == sum(t["input_tokens"] for t in backend.values())
    assert after["total"]["output_tokens"] == sum(t["output_tokens"] for t in backend.values())
    assert set(after["total"]["by_model"]) == set(backend)
    assert second.terminate()
    assert_no_secret(first.log(), second.log())


def test_graceful_shutdown_finishes_and_records_the_request_in_flight(serve_process, openai_server,
                                                                      tmp_path: Path) -> None:
    db = tmp_path / "routing.sqlite"
    proc = serve_process(*FLAGS, "--db", f"sqlite:///{db}")
    openai_server.chat.responder = lambda turn: Reply(text=f"a slow answer to {turn.last_user_text}", delay_s=2.0)
    results: dict[str, object] = {}

    def whole() -> None:
        client = openai.OpenAI(base_url=proc.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=60)
        results["whole"] = client.chat.completions.create(
            model="router-random-0.0", messages=[{"role": "user", "content": "whole"}])

    def streamed() -> None:
        client = openai.OpenAI(base_url=proc.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=60)
        results["stream"] = list(client.chat.completions.create(
            model="router-random-0.0", messages=[{"role": "user", "content": "streamed"}], stream=True))

    threads = [threading.Thread(target=whole), threading.Thread(target=streamed)]
    for t in threads:
        t.start()
    wait_until(lambda: len(openai_server.requests_to("/v1/chat/completions")) == 2, what="both requests in flight")
    assert proc.terminate()  # SIGTERM while both wait on the backend
    for t in threads:
        t.join(timeout=60)
    assert results["whole"].choices[0].message.content == "a slow answer to whole"  # type: ignore[attr-defined]
    chunks = results["stream"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a slow answer to streamed"  # type: ignore[union-attr]
    store = open_store(f"sqlite:///{db}")
    try:
        report = store.usage(UsageQuery(api_key="alice"))
        backend = openai_server.chat.usage_totals()["gpt-4o"]
        assert report.total.calls == 2 and report.total.failed_calls == 0
        assert report.total.input_tokens == backend["input_tokens"]
        assert report.total.output_tokens == backend["output_tokens"]
        assert {e.status for e in store.entries()} == {"ok"}
    finally:
        store.close()
    assert "every call in flight settled" in proc.log()


def test_workers_share_one_sqlite_ledger(serve_process, openai_server, tmp_path: Path) -> None:
    db = tmp_path / "routing.sqlite"
    proc = serve_process(*FLAGS, "--db", f"sqlite:///{db}", "--workers", "2")
    client = openai.OpenAI(base_url=proc.url + "/v1", api_key=CLIENT_KEY, max_retries=0)
    n = 8
    for i in range(n):
        client.chat.completions.create(model=f"router-random-{i / n}", messages=HI)
    usage = _usage(proc.url)
    assert usage["total"]["calls"] == n  # whichever worker answers, it reads the one ledger
    metrics = httpx.get(proc.url + "/metrics", timeout=30).text
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith("routellm_calls_total{"))
    assert counted == n  # multiprocess mode: /metrics sums the workers
    assert proc.terminate()
    assert_no_secret(proc.log())
