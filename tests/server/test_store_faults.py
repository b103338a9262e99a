"""The routing server as a process over a state store that stops answering, and clients that
send slowly (issue 25): a real redis-server stopped with SIGSTOP while calls are answered,
raw sockets that dribble headers or a body.

- a call the backend answered while the store was stopped is billed: its ledger entry goes
  to the write-ahead file and is replayed once the store answers; the ledger then equals
  the backend's count;
- a request whose headers (or body) do not arrive within the server's read limits has its
  connection closed; oversized headers are refused; a normal request still works.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import httpx
import openai
from srv_helpers import CLIENT_KEY, assert_no_secret, wait_until

from routellm_integrations.state import open_store, wal
from routellm_integrations.testing.openai_compat import OpenAICompatServer
from routellm_integrations.testing.redis_server import RedisServer

HI = [{"role": "user", "content": "hello there"}]
FLAGS = ("--strong", "openai:gpt-4o", "--weak", "openai:gpt-4o-mini", "--router", "random")


def test_calls_answered_while_redis_is_stopped_reach_the_ledger_once_it_answers(serve_process,
                                                                                 tmp_path: Path) -> None:
    own = OpenAICompatServer().start()
    redis_server = RedisServer().start()
    try:
        url = f"{redis_server.url}?prefix=srv&socket_timeout=0.5&socket_connect_timeout=0.5"
        env = {"OPENAI_BASE_URL": own.base_url, wal.WAL_ENV: str(tmp_path / "wal")}
        proc = serve_process(*FLAGS, "--db", url, env=env)
        client = openai.OpenAI(base_url=proc.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=60)
        for _ in range(3):
            client.chat.completions.create(model="router-random-0.5", messages=HI)
        os.kill(redis_server._proc.pid, signal.SIGSTOP)
        try:
            for _ in range(3):  # answered by the backend; the ledger write times out
                client.chat.completions.create(model="router-random-0.5", messages=HI)
        finally:
            os.kill(redis_server._proc.pid, signal.SIGCONT)
        wal_dir = tmp_path / "wal"

        def pending() -> int:
            return sum(len(p.read_bytes().splitlines()) for p in wal_dir.glob("routellm-pending-*.jsonl"))

        assert pending() == 3  # the server wrote the three calls ahead
        client.chat.completions.create(model="router-random-0.5", messages=HI)  # reaches the store: replays
        assert pending() == 0
        metrics = httpx.get(proc.url + "/metrics", timeout=30).text  # counted, for an operator to see
        assert 'routellm_store_writes_ahead_total{kind="lost_writes"} 3.0' in metrics, metrics[-2000:]
        assert 'routellm_store_writes_ahead_total{kind="replayed_writes"} 3.0' in metrics
        store = open_store(url)
        backend = own.chat.usage_totals()
        ledger = store.usage()
        assert ledger.calls == sum(t["calls"] for t in backend.values()) == 7
        assert ledger.input_tokens == sum(t["input_tokens"] for t in backend.values())
        log = proc.log()
        assert "write-ahead" in log and "hunter2" not in log
        assert_no_secret(log)
    finally:
        redis_server.stop()
        own.stop()


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def test_slow_headers_and_slow_bodies_are_cut_and_big_headers_refused(serve_process, tmp_path: Path) -> None:
    env = {"ROUTELLM_HTTP_HEADER_TIMEOUT_S": "0.5", "ROUTELLM_HTTP_BODY_TIMEOUT_S": "0.5",
           "ROUTELLM_HTTP_MAX_HEADER_BYTES": "8192"}
    proc = serve_process(*FLAGS, env=env)
    host, port = "127.0.0.1", proc.port
    # headers that never finish: the server closes the connection (the client's timeout only guards a hang)
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        assert _read_all(sock) == b""
    # a body that never finishes
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + CLIENT_KEY.encode() + b"\r\nContent-Length: 1000\r\n\r\n{\"mod")
        reply = _read_all(sock)
        assert not reply.startswith(b"HTTP/1.1 200")
    # headers over the limit, still coming: refused before the server buffers more
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000)
        reply = _read_all(sock)
        assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    # a normal request on a kept-alive connection, twice
    with httpx.Client(base_url=proc.url, timeout=60) as http:
        assert http.get("/health").status_code == 200
        assert http.get("/health").status_code == 200
    assert "did not arrive within" in proc.log()


def test_a_stalled_store_holds_no_event_loop(serve_process, tmp_path: Path) -> None:
    """A call waiting on a stopped redis-server waits in a worker thread: the server
    answers /health meanwhile, while that call is still waiting (it then settles ahead)."""
    import threading

    own = OpenAICompatServer().start()
    redis_server = RedisServer().start()
    try:
        url = f"{redis_server.url}?prefix=loop&socket_timeout=4&socket_connect_timeout=4"
        proc = serve_process(*FLAGS, "--db", url, env={"OPENAI_BASE_URL": own.base_url,
                                                        wal.WAL_ENV: str(tmp_path / "wal")})
        client = openai.OpenAI(base_url=proc.url + "/v1", api_key=CLIENT_KEY, max_retries=0, timeout=60)
        client.chat.completions.create(model="router-random-0.5", messages=HI)  # warm: routes built, store seen
        done = threading.Event()
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(client.chat.completions.create(model="router-random-0.5", messages=HI))
            except Exception as exc:  # noqa: BLE001 - the outcome is asserted below
                outcome.append(exc)
            done.set()

        os.kill(redis_server._proc.pid, signal.SIGSTOP)
        try:
            worker = threading.Thread(target=call)
            worker.start()
            wait_until(lambda: own.chat.usage_totals() and sum(t["calls"] for t in own.chat.usage_totals().values())
                       == 2, timeout=30)  # the backend answered: the call now waits on the store
            assert httpx.get(proc.url + "/health", timeout=30).status_code == 200
            assert not done.is_set()  # /health was answered while the call still waited on the store
        finally:
            os.kill(redis_server._proc.pid, signal.SIGCONT)
        worker.join(60)
        assert done.is_set() and outcome and not isinstance(outcome[0], Exception), outcome
    finally:
        redis_server.stop()
        own.stop()


def test_a_server_killed_with_calls_in_flight_leaves_its_key_working_after_restart(serve_process,
                                                                                   tmp_path: Path) -> None:
    """kill -9 of a server whose budgeted call is in flight: the restarted server (same
    SQLite store) reclaims the dead process's reservation at the key's next call instead
    of refusing the key until the 15-minute lease ends."""
    import json
    import threading

    own = OpenAICompatServer().start()
    try:
        config = tmp_path / "server.json"
        # one strong call in flight (max_tokens 10,000 of gpt-4o: ~$0.10 reserved) fills the key's cap:
        # a call is admitted while spent + reserved < cap, and nothing is left
        config.write_text(json.dumps({"keys": [{"label": "alice", "key": CLIENT_KEY,
                                                "budget": {"max_usd": 0.1, "on_exhausted": "raise"}}]}))
        flags = ("--strong", "openai:gpt-4o", "--weak", "openai:gpt-4o-mini", "--router", "random",
                 "--threshold", "0.0", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'routing.db'}")
        env = {"OPENAI_BASE_URL": own.base_url, "ROUTELLM_SERVER_API_KEYS": "", wal.WAL_ENV: str(tmp_path / "wal")}
        first = serve_process(*flags, env=env)
        ask = {"model": "router-random-0.0", "messages": HI, "max_tokens": 10_000}
        own.chat.delay_s = 60.0  # the call hangs at the provider: its reservation is held
        threading.Thread(target=lambda: httpx.post(first.url + "/v1/chat/completions", json=ask, timeout=90,
                                                   headers={"authorization": f"Bearer {CLIENT_KEY}"}),
                         daemon=True).start()
        wait_until(lambda: own.requests_to("/v1/chat/completions"), timeout=30)
        busy = httpx.post(first.url + "/v1/chat/completions", json=ask, timeout=30,
                          headers={"authorization": f"Bearer {CLIENT_KEY}"})
        assert busy.status_code == 429  # the cap is held by the call in flight
        first.proc.kill()  # kill -9: nothing settles, the reservation stays in the store
        first.proc.wait(timeout=30)
        own.chat.delay_s = 0.0
        second = serve_process(*flags, env=env)
        again = httpx.post(second.url + "/v1/chat/completions", json=ask, timeout=30,
                           headers={"authorization": f"Bearer {CLIENT_KEY}"})
        assert again.status_code == 200, again.text  # the dead process's reservation was reclaimed
    finally:
        own.stop()
