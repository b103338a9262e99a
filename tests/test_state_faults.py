"""A state store that hangs, dies or comes back empty, and processes that die (issue 25):
a real ``redis-server`` stopped with SIGSTOP and killed with SIGKILL, a SQLite file held
locked by another connection, real subprocesses killed holding reservations.

- a store call that cannot reach its store raises ``StoreUnavailableError`` naming the
  store (never its password), bounded by the store's timeouts (never a hang);
- a billed call whose settlement cannot be written goes to the write-ahead file and is
  replayed exactly once: the ledger equals the number of calls the backend answered;
- a store whose epoch marker vanished refuses budget calls (``StoreResetError``) until an
  operator acknowledges, in every process;
- reservations of a killed process are reclaimed without waiting for their lease;
- the online controller rows are capped.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from routellm_integrations import RoutingPolicy, StoreResetError, StoreUnavailableError
from routellm_integrations.budgets import Budget
from routellm_integrations.costs import PriceTable
from routellm_integrations.routing.call import Backend, CallLifecycle
from routellm_integrations.routing.turn import turn_of
from routellm_integrations.state import UsageQuery, open_store, wal
from routellm_integrations.testing.redis_server import RedisServer

PRICES = PriceTable({"test": {"big": (10.0, 30.0), "small": (0.5, 1.5)}})
USAGE = {"input_tokens": 100, "output_tokens": 50}


@pytest.fixture(autouse=True)
def _wal_dir(tmp_path, monkeypatch):
    """Each test's write-ahead files (and remembered epochs) in its own folder."""
    monkeypatch.setenv(wal.WAL_ENV, str(tmp_path / "wal"))


@pytest.fixture
def own_redis():
    """A redis-server of this test alone (it is stopped and killed)."""
    server = RedisServer().start()
    yield server
    if server._proc is not None and server._proc.poll() is None:
        os.kill(server._proc.pid, signal.SIGCONT)
    server.stop()


def _restart(server: RedisServer) -> None:
    """Start the killed server again on its port (empty: no persistence)."""
    server._proc = None
    server.start()


def _lifecycle(store, budget: Budget | None = Budget(max_usd=100.0)) -> CallLifecycle:
    policy = RoutingPolicy("random", strong_fraction=0.5, budget=budget, store=store)
    return CallLifecycle(policy, strong=Backend("strong", "big", "test"), weak=Backend("weak", "small", "test"),
                         prices=PRICES)


def _calls(store) -> int:
    return len(store.entries(UsageQuery()))


# -- bounded store I/O --------------------------------------------------------------------------

def test_a_stopped_redis_raises_store_unavailable_not_a_hang(own_redis):
    store = open_store(own_redis.url + "?prefix=stop&socket_timeout=0.3", socket_connect_timeout=0.3)
    budget = Budget(max_usd=1.0)
    r, _ = store.reserve(budget, "s", "weak", {"strong": 0.1, "weak": 0.01})
    os.kill(own_redis._proc.pid, signal.SIGSTOP)
    try:
        for call in (lambda: store.reserve(budget, "s", "weak", None), lambda: store.budget_state(budget, "s"),
                     store.ping, lambda: store.usage(), lambda: store.save_online("k", {"a": 1})):
            with pytest.raises(StoreUnavailableError, match="did not answer in time") as err:
                call()
            assert err.value.store == store.url and store.url in str(err.value)
            assert not isinstance(err.value, ConnectionError)  # never redis-py's error
    finally:
        os.kill(own_redis._proc.pid, signal.SIGCONT)
    store.ping()
    assert store.settle(budget, r, 0.01, succeeded=True).spent_usd == pytest.approx(0.01)


def test_a_dead_redis_raises_store_unavailable_without_the_password(own_redis, caplog):
    url = f"redis://:hunter2@127.0.0.1:{own_redis.port}/0?prefix=dead"
    own_redis._proc.kill()
    own_redis._proc.wait()
    store = open_store(url, socket_timeout=0.3, socket_connect_timeout=0.3)  # opening does not raise
    with pytest.raises(StoreUnavailableError, match="cannot be reached") as err:
        store.ping()
    with pytest.raises(StoreUnavailableError):
        store.reserve(Budget(max_usd=1.0), "s", "weak", None)
    assert "hunter2" not in str(err.value) and "hunter2" not in repr(err.value.store)
    assert "hunter2" not in caplog.text


def test_timeouts_come_from_the_url_or_the_options_and_are_checked(redis_server):
    store = open_store(f"{redis_server.url}?prefix=t&socket_timeout=5&socket_connect_timeout=1.5")
    assert (store.socket_timeout, store.socket_connect_timeout) == (5.0, 1.5)
    assert "socket_timeout" not in store.url
    default = open_store(f"{redis_server.url}?prefix=t2")
    assert (default.socket_timeout, default.socket_connect_timeout) == (2.0, 2.0)
    with pytest.raises(ValueError, match="socket_timeout"):
        open_store(f"{redis_server.url}?prefix=t3", socket_timeout=0)
    with pytest.raises(ValueError, match="timeout_s"):
        open_store("sqlite:///x.db", timeout_s=float("inf"))


def test_a_sqlite_file_locked_past_its_busy_timeout_raises_store_unavailable(tmp_path):
    path = tmp_path / "locked.db"
    store = open_store(f"sqlite:///{path}", timeout_s=0.2)
    store.ping()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process's writer that does not let go
    try:
        with pytest.raises(StoreUnavailableError, match="locked") as err:
            store.reserve(Budget(max_usd=1.0), "s", "weak", None)
        assert str(path) in str(err.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.reserve(Budget(max_usd=1.0), "s", "weak", None)


def test_opening_a_locked_file_still_gives_up_after_its_timeout(tmp_path):
    path = tmp_path / "held.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE other_writer (a)")
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailableError, match="locked"):
            open_store(f"sqlite:///{path}", timeout_s=0.3)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_memory_ping_is_a_no_op():
    store = open_store("memory://")
    store.ping()
    assert store.was_reset is False


# -- a billed call is never lost ---------------------------------------------------------------

def test_settlements_during_a_redis_sigstop_are_replayed_exactly_once(own_redis, caplog):
    store = open_store(own_redis.url + "?prefix=wal", socket_timeout=0.3, socket_connect_timeout=0.3)
    lifecycle = _lifecycle(store)
    backend_calls = 0
    for i in range(5):  # the store answers
        with lifecycle.begin(turn_of([("user", f"q{i}")])) as call:
            backend_calls += 1
            call.finish(USAGE)
    held = [lifecycle.begin(turn_of([("user", f"held{i}")])) for i in range(4)]  # reserved, then the store stops
    lost = wal.lost_writes()
    os.kill(own_redis._proc.pid, signal.SIGSTOP)
    caplog.set_level(logging.WARNING, logger="routellm_integrations.state")
    try:
        for call in held:
            backend_calls += 1
            record = call.finish(USAGE)  # the provider answered: billed, whatever the store does
            assert record.status == "ok" and record.cost_usd > 0
        assert wal.lost_writes() - lost == 4 and wal.pending(store) == 4
        assert all(c.call_id in caplog.text for c in held) and "write-ahead" in caplog.text
    finally:
        os.kill(own_redis._proc.pid, signal.SIGCONT)
    # the timed-out settlements may still have reached the server after SIGCONT; the replay
    # must not count them twice
    with lifecycle.begin(turn_of([("user", "after")])) as call:  # a settlement that reaches the store replays the file
        backend_calls += 1
        call.finish(USAGE)
    assert wal.pending(store) == 0
    assert _calls(store) == backend_calls == 10
    spent = store.budget_state(Budget(max_usd=100.0), "global")
    assert spent.spent_usd == pytest.approx(store.usage().cost_usd) and spent.in_flight == 0
    wal.replay(store)  # nothing left: nothing counted again
    assert _calls(store) == 10


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_write_ahead_line_replayed_twice_counts_once(kind, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'w.db'}" if kind == "sqlite" else request.getfixturevalue("redis_url")
    store = open_store(url)
    budget = Budget(max_usd=10.0)
    lifecycle = _lifecycle(store, budget)
    call = lifecycle.begin(turn_of([("user", "hello")]))
    record = call.finish(USAGE)
    entry = store.entries()[0]
    assert entry.call_id == record.call_id
    # a settlement that reached the store but whose answer was lost: written ahead as well
    from routellm_integrations.budgets import Reservation

    r = call.ticket.reservation
    for _ in range(2):
        wal.write_ahead(store, reservation=Reservation(r.scope, r.route, r.amount, id=r.id),
                        cost_usd=record.cost_usd, succeeded=True, entry=entry)
    assert wal.replay(store) == 2 and wal.pending(store) == 0
    assert _calls(store) == 1
    assert store.budget_state(budget, r.scope).spent_usd == pytest.approx(record.cost_usd)


def test_a_redis_killed_and_restarted_empty_is_detected_and_the_write_ahead_replays_after_acknowledgement(own_redis):
    url = own_redis.url + "?prefix=kill"
    store = open_store(url, socket_timeout=0.3, socket_connect_timeout=0.3)
    other = open_store(url, socket_timeout=0.3, socket_connect_timeout=0.3)  # a second worker
    lifecycle = _lifecycle(store)
    held = [lifecycle.begin(turn_of([("user", f"h{i}")])) for i in range(3)]
    own_redis._proc.kill()
    own_redis._proc.wait()
    for call in held:
        call.finish(USAGE)
    assert wal.pending(store) == 3
    _restart(own_redis)  # no persistence: it comes back empty
    budget = Budget(max_usd=100.0)
    for s in (store, other):
        with pytest.raises(StoreResetError, match="came back empty"):
            s.reserve(budget, "global", "weak", None)
        with pytest.raises(StoreResetError):
            s.ping()
        assert s.was_reset
    with pytest.raises(StoreUnavailableError):  # a reset is a store unavailable: a server answers 503
        store.budget_state(budget, "global")
    # a process started after the wipe on this host refuses too (it remembers the epoch)
    late = open_store(url)
    with pytest.raises(StoreResetError):
        late.reserve(budget, "global", "weak", None)
    other.acknowledge_reset()  # the operator, from any worker (the pending lines are replayed)
    store.ping()  # the acknowledgement is seen; the pending settlements are replayed
    assert not store.was_reset and wal.pending(store) == 0
    assert _calls(store) == 3
    late.reserve(budget, "global", "weak", None)


def test_a_sqlite_file_replaced_by_an_empty_one_is_detected(tmp_path):
    path = tmp_path / "r.db"
    store = open_store(f"sqlite:///{path}")
    budget = Budget(max_usd=1.0)
    r, _ = store.reserve(budget, "s", "weak", None)
    store.settle(budget, r, 0.5, succeeded=True)
    store.close()
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"r.db{suffix}").unlink(missing_ok=True)
    fresh = open_store(f"sqlite:///{path}")  # a new process on this host: it remembers the epoch
    with pytest.raises(StoreResetError, match="came back empty"):
        fresh.reserve(budget, "s", "weak", None)
    assert fresh.was_reset
    fresh.acknowledge_reset()
    assert fresh.reserve(budget, "s", "weak", None)[1].spent_usd == 0.0  # accepted as it is


def test_a_flushed_prefix_is_refused_until_acknowledged(redis_url):
    store = open_store(redis_url)
    budget = Budget(max_usd=1.0)
    store.reserve(budget, "s", "weak", None)
    import redis

    raw = redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
    prefix = store.prefix
    for key in raw.scan_iter(f"{prefix}:*"):
        raw.delete(key)
    with pytest.raises(StoreResetError):
        store.budget_state(budget, "s")
    store.acknowledge_reset()
    assert store.budget_state(budget, "s").spent_usd == 0.0


# -- crash recovery ------------------------------------------------------------------------------

_HOLD_AND_WAIT = textwrap.dedent("""
    import sys, time
    from routellm_integrations.budgets import Budget
    from routellm_integrations.state import open_store
    store = open_store(sys.argv[1], **({"heartbeat_s": 1.0} if sys.argv[1].startswith("redis") else {}))
    budget = Budget(max_usd=1.0)
    for _ in range(3):
        store.reserve(budget, "run", "weak", {"strong": 0.4, "weak": 0.4})
    print("ready", flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_reservations_of_a_killed_process_are_reclaimed_without_waiting_for_the_lease(kind, tmp_path, request):
    url = f"sqlite:///{tmp_path / 'crash.db'}" if kind == "sqlite" else request.getfixturevalue("redis_url")
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_AND_WAIT, url], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        store = open_store(url)  # the default lease (15 minutes) would hold the money far longer
        budget = Budget(max_usd=1.0, on_exhausted="raise")
        with pytest.raises(Exception, match="exhausted"):  # alive: its reservations hold the cap
            store.reserve(budget, "run", "weak", {"strong": 0.4, "weak": 0.4})
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 60
    while True:  # the heartbeat (Redis: 1 s here) runs out; SQLite sees the pid is gone at once
        try:
            r, state = store.reserve(budget, "run", "weak", {"strong": 0.3, "weak": 0.9})
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert state.in_flight == 1 and state.reserved_usd == pytest.approx(0.9)


def test_a_live_process_keeps_its_redis_reservations_past_its_heartbeat_ttl(redis_url):
    store = open_store(redis_url, heartbeat_s=0.5)
    budget = Budget(max_usd=1.0, on_exhausted="raise")
    store.reserve(budget, "run", "weak", {"strong": 0.6, "weak": 0.6})
    observer = open_store(redis_url)
    for _ in range(3):  # the owner's heartbeat thread renews it
        time.sleep(0.5)
        assert observer.budget_state(budget, "run").in_flight == 1
    store.close()


def test_sqlite_reclaim_dead_at_start_up_frees_every_scope(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    script = _HOLD_AND_WAIT.replace('"run"', 'sys.argv[2]')
    procs = [subprocess.Popen([sys.executable, "-c", script, url, f"scope{i}"], stdout=subprocess.PIPE, text=True)
             for i in range(2)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGKILL)
        p.wait()
    store = open_store(url)
    assert store.budget_state(Budget(), "scope0").in_flight == 3
    assert store.reclaim_dead() == 6
    assert store.budget_state(Budget(), "scope1").in_flight == 0


# -- online rows -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_online_rows_are_capped_oldest_first(kind, tmp_path, request):
    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp_path / 'o.db'}"}.get(kind) or \
        request.getfixturevalue("redis_url")
    store = open_store(url, max_online=5)
    for i in range(8):
        store.save_online(f"router-mf-share{i}", {"i": i})
    assert [store.load_online(f"router-mf-share{i}") for i in range(3)] == [None] * 3
    assert [store.load_online(f"router-mf-share{i}")["i"] for i in range(3, 8)] == [3, 4, 5, 6, 7]
    store.save_online("router-mf-share3", {"i": 33})  # saved again: the newest now
    store.save_online("router-mf-share8", {"i": 8})
    assert store.load_online("router-mf-share3") == {"i": 33} and store.load_online("router-mf-share4") is None
    if kind == "redis":
        import redis

        raw = redis.Redis.from_url(url.split("?")[0], decode_responses=True)
        assert len(list(raw.scan_iter(f"{store.prefix}:online:*"))) == 5


def test_the_operator_commands_ping_and_acknowledge_a_reset(redis_url):
    store = open_store(redis_url)
    budget = Budget(max_usd=1.0)
    store.reserve(budget, "s", "weak", None)
    import redis

    raw = redis.Redis.from_url(redis_url.split("?")[0], decode_responses=True)
    raw.delete(f"{store.prefix}:epoch")  # the marker gone: as after a restart without persistence

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "routellm_integrations.state", *args], capture_output=True,
                              text=True, timeout=120)

    ping = command("ping", redis_url)
    assert ping.returncode == 4 and "came back empty" in ping.stderr, ping.stderr
    with pytest.raises(StoreResetError):
        store.reserve(budget, "s", "weak", None)
    ack = command("acknowledge-reset", redis_url)
    assert ack.returncode == 0 and "acknowledged" in ack.stdout, ack.stderr
    store.reserve(budget, "s", "weak", None)  # the running process sees the acknowledgement
    assert command("ping", redis_url).returncode == 0
    dead = command("ping", "redis://:hunter2@127.0.0.1:1/0")
    assert dead.returncode == 3 and "hunter2" not in dead.stderr + dead.stdout


def test_a_write_ahead_file_that_cannot_be_written_leaves_the_call_in_the_log(tmp_path, monkeypatch, caplog):
    """The last resort: the store and the local disk both refuse; the call's line is logged
    at ERROR (never a secret) and counted, and the call still returns its record."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    monkeypatch.setenv(wal.WAL_ENV, str(blocked / "wal"))
    store = open_store(f"sqlite:///{tmp_path / 'x.db'}", timeout_s=0.2)
    lifecycle = _lifecycle(store)
    call = lifecycle.begin(turn_of([("user", "hello")]))
    holder = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    before = wal.stats()["unwritten"]
    try:
        record = call.finish(USAGE)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert record.status == "ok" and wal.stats()["unwritten"] == before + 1
    assert record.call_id in caplog.text and "recorded only here" in caplog.text


def test_a_sqlite_file_deleted_under_a_running_store_is_detected_not_written_into_the_void(tmp_path):
    path = tmp_path / "gone.db"
    store = open_store(f"sqlite:///{path}")
    budget = Budget(max_usd=1.0)
    r, _ = store.reserve(budget, "s", "weak", None)
    store.settle(budget, r, 0.5, succeeded=True)
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"gone.db{suffix}").unlink(missing_ok=True)
    with pytest.raises(StoreResetError):  # the old connection would write into the unlinked file
        store.reserve(budget, "s", "weak", None)
    store.acknowledge_reset()
    r, state = store.reserve(budget, "s", "weak", None)
    assert state.spent_usd == 0.0 and path.exists()
    store.settle(budget, r, 0.25, succeeded=True)
    assert open_store(f"sqlite:///{path}").budget_state(budget, "s").spent_usd == pytest.approx(0.25)
