"""Routing state in Redis: one cap, one ledger and one online share for every process on
every host that points at the same server (``pip install "routellm-integrations[redis]"``).

Admission and settlement are Lua scripts, so each runs atomically in the server: the scope's
spend, its live reservations and the new reservation are read and written with nothing in
between, whatever the number of clients. The script applies the same rule as
:func:`~.base.choose` (the store tests hold the two equal). Keys, under ``prefix``:

- ``<prefix>:scope:<scope>``: hash ``spent``, ``strong_calls``
- ``<prefix>:res:<scope>``: hash reservation id -> ``route|amount|expires_at`` (a lease:
  expired ones are reclaimed by the next admission in the scope)
- ``<prefix>:ledger``: sorted set of JSON ledger entries, scored by time
- ``<prefix>:online:<key>``: the online share controller's checkpoint (JSON)

- ``<prefix>:epoch`` (and ``<prefix>:epoch:acked``): the marker written when the store is
  first set up (see below)
- ``<prefix>:owner:<host>:<pid>:<id>``: a process's heartbeat (TTL ``heartbeat_s``)
- ``<prefix>:settled``: sorted set of settled reservation ids (a settlement applies once)
- ``<prefix>:online_index``: sorted set of the online keys by save time

Redis Cluster is not supported (the scripts touch keys of several hash slots).

Faults (issue 25):

- **bounded waits**: ``socket_connect_timeout`` and ``socket_timeout`` (default 2 s each;
  ``?socket_timeout=5&socket_connect_timeout=1`` in the URL or the same keyword options), one
  reconnect-and-retry, no backoff. A server that refuses, drops or does not answer in time
  raises :class:`~routellm_integrations.errors.StoreUnavailableError` naming the store (its
  URL without the password), never redis-py's ``ConnectionError``.
- **a server that comes back empty** (restarted without persistence, flushed): the first
  store to use a prefix writes ``<prefix>:epoch``; every budget script checks it. A store
  that joined that epoch and finds it gone raises
  :class:`~routellm_integrations.errors.StoreResetError` from ``reserve``, ``settle`` and
  ``budget_state`` (and ``ping``) until an operator calls ``acknowledge_reset()`` (any
  process: the others see the acknowledgement and resume). Settlements refused meanwhile go
  to the write-ahead file and are replayed after. With ``$ROUTELLM_WAL`` (or ``wal=``) the
  epoch this host last saw is kept beside the write-ahead file, so a process started after
  the wipe refuses too; without it only the processes that were running notice.
- **dead processes**: each reservation names its owner's heartbeat key, renewed every
  ``heartbeat_s / 3`` by a daemon thread; a reservation whose owner's heartbeat expired (the
  process was killed) is not counted and is deleted by the next admission in its scope, long
  before its lease runs out.
- **online keys**: at most ``max_online`` (default 1,000), the least recently saved dropped.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..budgets import Budget, BudgetState, ScopeTotals, refusal, state_of
from ..decision import Route
from ..errors import BudgetExceeded, StoreResetError, StoreUnavailableError
from ..costs import check_usd
from .base import DEFAULT_LEASE_S, LedgerEntry, Reservation, UsageQuery, UsageReport

# the reservations still live now, summed (shared by both scripts): a lease not expired and
# an owner whose heartbeat key still exists
_LIVE = """
if redis.call('GET', KEYS[#KEYS]) ~= ARGV[#ARGV] then return {'!reset'} end
local function live(res_key, now, reclaim)
  local res = redis.call('HGETALL', res_key)
  local reserved, in_flight, strong_in_flight = 0, 0, 0
  for i = 1, #res, 2 do
    local route, amount, expires, owner = string.match(res[i + 1], '^([^|]+)|([^|]+)|([^|]+)|?([^|]*)$')
    if tonumber(expires) < now or (owner ~= '' and redis.call('EXISTS', owner) == 0) then
      if reclaim then redis.call('HDEL', res_key, res[i]) end
    else
      reserved = reserved + tonumber(amount)
      in_flight = in_flight + 1
      if route == 'strong' then strong_in_flight = strong_in_flight + 1 end
    end
  end
  if in_flight == 0 then reserved = 0 end
  return reserved, in_flight, strong_in_flight
end
local function num(key, field)
  return tonumber(redis.call('HGET', key, field) or '0')
end
local function f(x) return string.format('%.17g', x) end
"""

# KEYS: scope hash, reservations hash, epoch. ARGV: now, lease, route, max_usd|'', max_strong|'',
# on_exhausted, bound_strong|'', bound_weak|'', reservation id, owner key, heartbeat ms, epoch
_RESERVE = _LIVE + """
local now = tonumber(ARGV[1])
local reserved, in_flight, strong_in_flight = live(KEYS[2], now, true)
local spent, strong_calls = num(KEYS[1], 'spent'), num(KEYS[1], 'strong_calls')
local max_usd, max_strong = tonumber(ARGV[4]), tonumber(ARGV[5])
local has_bounds = ARGV[7] ~= ''
local function amount(r)
  if not has_bounds then return nil end
  if r == 'strong' then return tonumber(ARGV[7]) end
  return tonumber(ARGV[8])
end
local function fits(r, amt, whole)
  if r == 'strong' and max_strong and strong_calls + strong_in_flight >= max_strong then return false end
  if not max_usd then return true end
  if whole and amt then return spent + reserved + amt <= max_usd + 1e-12 end
  return spent + reserved < max_usd
end
local route, chosen = ARGV[3], false
if route == 'strong' and ARGV[6] == 'weak' then
  if fits('strong', amount('strong'), true) then chosen = 'strong'
  elseif fits('weak', amount('weak'), false) then chosen = 'weak' end
elseif fits(route, amount(route), false) then chosen = route end
if chosen then
  local amt = amount(chosen) or 0
  redis.call('SET', ARGV[10], '1', 'PX', ARGV[11])
  redis.call('HSET', KEYS[2], ARGV[9], chosen .. '|' .. f(amt) .. '|' .. f(now + tonumber(ARGV[2])) .. '|' .. ARGV[10])
  reserved, in_flight = reserved + amt, in_flight + 1
  if chosen == 'strong' then strong_in_flight = strong_in_flight + 1 end
end
return {chosen or '', f(spent), f(reserved), strong_calls, strong_in_flight, in_flight}
"""

# KEYS: scope hash, reservations hash, ledger, settled ids, epoch. ARGV: now, id, cost,
# strong 0|1, entry|'', ts, keep_s, epoch
_SETTLE = _LIVE + """
redis.call('HDEL', KEYS[2], ARGV[2])
if redis.call('ZADD', KEYS[4], 'NX', ARGV[1], ARGV[2]) == 1 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[7]))
  if tonumber(ARGV[3]) > 0 then redis.call('HINCRBYFLOAT', KEYS[1], 'spent', ARGV[3]) end
  if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[1], 'strong_calls', 1) end
  if ARGV[5] ~= '' then redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5]) end
end
local reserved, in_flight, strong_in_flight = live(KEYS[2], tonumber(ARGV[1]), false)
return {'', f(num(KEYS[1], 'spent')), f(reserved), num(KEYS[1], 'strong_calls'), strong_in_flight, in_flight}
"""

# KEYS: reservations hash. ARGV: id, new expiry
_RENEW = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local route, amount, expires, owner = string.match(v, '^([^|]+)|([^|]+)|([^|]+)|?([^|]*)$')
  local tail = ''
  if owner ~= '' then tail = '|' .. owner end
  redis.call('HSET', KEYS[1], ARGV[1], route .. '|' .. amount .. '|' .. ARGV[2] .. tail)
end
return 0
"""

# KEYS: the online key, the index. ARGV: state, now, max keys, the online key prefix
_SAVE_ONLINE = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], KEYS[1])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  for _, k in ipairs(old) do
    if k ~= KEYS[1] then
      redis.call('DEL', k)
      redis.call('ZREM', KEYS[2], k)
    end
  end
end
return 0
"""

#: settled reservation ids are remembered this long (older write-ahead lines replay anew)
SETTLED_KEEP_S = 30 * 86400.0
DEFAULT_TIMEOUT_S = 2.0
DEFAULT_HEARTBEAT_S = 10.0
DEFAULT_MAX_ONLINE = 1_000
_UNSET: Any = object()


def _heartbeat(ref: "weakref.ref[RedisStore]", key: str, ttl_ms: int, stop: threading.Event) -> None:
    """Renew ``key`` every third of its TTL until the store is closed or collected."""
    while not stop.wait(ttl_ms / 3000.0):
        store = ref()
        if store is None:
            return
        try:
            store._r.set(key, "1", px=ttl_ms)
        except Exception:  # noqa: BLE001 - a store that is down: the next beat tries again
            pass
        del store

_STATE = _LIVE + """
local reserved, in_flight, strong_in_flight = live(KEYS[2], tonumber(ARGV[1]), false)
return {'', f(num(KEYS[1], 'spent')), f(reserved), num(KEYS[1], 'strong_calls'), strong_in_flight, in_flight}
"""


def redact_url(url: str) -> str:
    """``redis://user:secret@host/0`` -> ``redis://user:***@host/0`` (safe to log)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


def _totals(reply: list[Any]) -> ScopeTotals:
    _, spent, reserved, strong_calls, strong_in_flight, in_flight = reply
    return ScopeTotals(spent=float(spent), reserved=float(reserved), strong_calls=int(strong_calls),
                       strong_in_flight=int(strong_in_flight), in_flight=int(in_flight))


class RedisStore:
    """``RedisStore("redis://localhost:6379/0")`` or ``open_store("redis://...")``; a
    ``?prefix=name`` query (or ``prefix=``) keeps deployments on one server apart."""

    def __init__(self, url: str = "redis://localhost:6379/0", *, prefix: str | None = None,
                 lease_s: float = DEFAULT_LEASE_S, client: Any = None, socket_timeout: float = _UNSET,
                 socket_connect_timeout: float = _UNSET, heartbeat_s: float = DEFAULT_HEARTBEAT_S,
                 max_online: int = DEFAULT_MAX_ONLINE, wal: str | os.PathLike[str] | None = None) -> None:
        from ..extras import require

        redis = require("redis", extra="redis", feature="RedisStore (a redis:// state store)")
        if not (isinstance(lease_s, (int, float)) and math.isfinite(lease_s) and lease_s > 0):
            raise ValueError(f"lease_s must be a positive number of seconds, got {lease_s!r}")
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.prefix = prefix or (query.pop("prefix", ["routellm"])[0])
        timeouts = {}
        for name, given in (("socket_timeout", socket_timeout), ("socket_connect_timeout", socket_connect_timeout)):
            value = given if given is not _UNSET else float(query.pop(name, [DEFAULT_TIMEOUT_S])[0])
            query.pop(name, None)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
            timeouts[name] = None if value is None else float(value)
        for name, value in (("heartbeat_s", heartbeat_s),):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if int(max_online) < 1:
            raise ValueError("max_online must be at least 1")
        self.socket_timeout, self.socket_connect_timeout = timeouts["socket_timeout"], timeouts["socket_connect_timeout"]
        clean = urlunsplit(parts._replace(query="&".join(f"{k}={v[0]}" for k, v in query.items())))
        self.url = redact_url(clean)
        self._password = urlsplit(clean).password
        self.lease_s, self.heartbeat_s, self.max_online, self.wal = float(lease_s), float(heartbeat_s), int(max_online), wal
        if client is None:
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            client = redis.Redis.from_url(clean, decode_responses=True, retry=Retry(NoBackoff(), 1), **timeouts)
        self._r = client
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                        redis.exceptions.BusyLoadingError)
        self._reserve = self._r.register_script(_RESERVE)
        self._settle = self._r.register_script(_SETTLE)
        self._state = self._r.register_script(_STATE)
        self._renew = self._r.register_script(_RENEW)
        self._save_online = self._r.register_script(_SAVE_ONLINE)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._owner_key = f"{self.prefix}:owner:{self.owner}"
        self._beat_stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._beat_lock = threading.Lock()
        self.epoch: str | None = None
        self.was_reset = False
        try:  # start-up: join the store's epoch and replay what an earlier run could not write
            self._join_epoch()
            from .wal import replay

            replay(self)
        except StoreUnavailableError:
            pass  # a store down at start-up: the first call says so (ping() too)
        except redis.exceptions.RedisError:
            pass

    # -- faults ------------------------------------------------------------------------
    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with redis-py's connection errors and timeouts turned into
        :class:`StoreUnavailableError` naming the store (never its password)."""
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            text = str(exc)
            if self._password:
                text = text.replace(self._password, "***")
            what = "did not answer in time" if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__ \
                else "cannot be reached"
            raise StoreUnavailableError(f"state store {self.url} (prefix {self.prefix!r}) {what}: "
                                        f"{type(exc).__name__}: {text}", self.url) from None

    @property
    def _epoch_key(self) -> str:
        return f"{self.prefix}:epoch"

    def _join_epoch(self) -> None:
        from .wal import remember_epoch, remembered_epoch

        known = remembered_epoch(self)
        cur = self._call(self._r.get, self._epoch_key)
        if cur is None and known is None:
            self._call(self._r.set, self._epoch_key, uuid.uuid4().hex, nx=True)
            cur = self._call(self._r.get, self._epoch_key)
        if cur is not None and (known is None or known == cur
                                or cur == self._call(self._r.get, f"{self._epoch_key}:acked")):
            self.epoch, self.was_reset = cur, False
            remember_epoch(self, cur)
        else:
            self.epoch, self.was_reset = known, True

    def _script(self, script: Any, keys: list[str], args: list[str]) -> Any:
        """Run a budget script under the epoch check (adopting an acknowledged reset)."""
        if self.epoch is None:
            self._join_epoch()
        for _ in range(2):
            reply = self._call(script, keys=[*keys, self._epoch_key], args=[*args, self.epoch or ""])
            if not (reply and reply[0] == "!reset"):
                return reply
            cur = self._call(self._r.get, self._epoch_key)
            if cur is None or cur != self._call(self._r.get, f"{self._epoch_key}:acked"):
                break
            from .wal import remember_epoch

            self.epoch, self.was_reset = cur, False
            remember_epoch(self, cur)
        self.was_reset = True
        raise StoreResetError(f"state store {self.url} (prefix {self.prefix!r}) came back empty: its epoch marker "
                              "is gone, so its budgets would restart from zero; budget calls are refused until an "
                              "operator calls store.acknowledge_reset()", self.url)

    def acknowledge_reset(self) -> str:
        """Accept the store as it is now: write the epoch marker again where it is gone and
        mark it acknowledged (every process on this prefix resumes), then replay pending
        write-ahead lines. Returns the epoch."""
        from .wal import remember_epoch, replay

        self._call(self._r.set, self._epoch_key, uuid.uuid4().hex, nx=True)
        cur = self._call(self._r.get, self._epoch_key)
        self._call(self._r.set, f"{self._epoch_key}:acked", cur)
        self.epoch, self.was_reset = cur, False
        remember_epoch(self, cur)
        replay(self)
        return cur

    def ping(self) -> None:
        """``PING`` and the epoch check: :class:`StoreUnavailableError` when the server does
        not answer in time, :class:`StoreResetError` after it came back empty. Replays
        pending write-ahead lines once it answers."""
        self._call(self._r.ping)
        if self.epoch is None:
            self._join_epoch()
        cur = self._call(self._r.get, self._epoch_key)
        if cur != self.epoch:
            if cur is not None and cur == self._call(self._r.get, f"{self._epoch_key}:acked"):
                self.epoch, self.was_reset = cur, False
            else:
                self.was_reset = True
                raise StoreResetError(f"state store {self.url} (prefix {self.prefix!r}) came back empty: its epoch "
                                      "marker is gone; budget calls are refused until an operator calls "
                                      "store.acknowledge_reset()", self.url)
        from .wal import has_pending, replay

        if has_pending(self):
            replay(self)

    def _start_heartbeat(self) -> None:
        if self._beat is not None and self._beat.is_alive():
            return
        with self._beat_lock:
            if self._beat is None or not self._beat.is_alive():
                self._beat = threading.Thread(target=_heartbeat, name="routellm-redis-heartbeat", daemon=True,
                                              args=(weakref.ref(self), self._owner_key, int(self.heartbeat_s * 1000),
                                                    self._beat_stop))
                self._beat.start()

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self.prefix!r})"

    def _keys(self, scope: str) -> list[str]:
        return [f"{self.prefix}:scope:{scope}", f"{self.prefix}:res:{scope}"]

    @property
    def _ledger(self) -> str:
        return f"{self.prefix}:ledger"

    # -- budgets ---------------------------------------------------------------------------
    def reserve(self, budget: Budget, scope: str, route: Route,
                bounds: Mapping[str, float] | None) -> tuple[Reservation, BudgetState]:
        r = Reservation(scope, route, 0.0)
        args = [repr(time.time()), repr(self.lease_s), route,
                "" if budget.max_usd is None else repr(float(budget.max_usd)),
                "" if budget.max_strong_calls is None else str(int(budget.max_strong_calls)), budget.on_exhausted,
                "" if not bounds else repr(float(bounds.get("strong", 0.0))),
                "" if not bounds else repr(float(bounds.get("weak", 0.0))), r.id, self._owner_key,
                str(int(self.heartbeat_s * 1000))]
        self._start_heartbeat()
        reply = self._script(self._reserve, self._keys(scope), args)
        s = _totals(reply)
        if not reply[0]:
            raise BudgetExceeded(refusal(budget, scope, s, route, bounds))
        r.route = reply[0]
        r.amount = float(bounds.get(r.route, 0.0)) if bounds else 0.0
        return r, state_of(budget, scope, s)

    def settle(self, budget: Budget, reservation: Reservation, cost_usd: float | None, *, succeeded: bool,
               entry: LedgerEntry | None = None) -> BudgetState:
        cost = check_usd("cost_usd", cost_usd) or 0.0
        if reservation.settled:
            return self.budget_state(budget, reservation.scope)
        strong = "1" if reservation.route == "strong" and succeeded else "0"
        reply = self._script(self._settle, [*self._keys(reservation.scope), self._ledger, f"{self.prefix}:settled"],
                             [repr(time.time()), reservation.id, repr(cost), strong,
                              entry.model_dump_json() if entry is not None else "",
                              repr(entry.ts) if entry is not None else "0", repr(SETTLED_KEEP_S)])
        reservation.settled = True
        return state_of(budget, reservation.scope, _totals(reply))

    def renew(self, reservation: Reservation) -> None:
        if not reservation.settled:
            self._call(self._renew, keys=[self._keys(reservation.scope)[1]],
                       args=[reservation.id, repr(time.time() + self.lease_s)])

    def budget_state(self, budget: Budget, scope: str) -> BudgetState:
        return state_of(budget, scope, _totals(self._script(self._state, self._keys(scope), [repr(time.time())])))

    # -- ledger ------------------------------------------------------------------------------
    def record(self, entry: LedgerEntry) -> None:
        self._call(self._r.zadd, self._ledger, {entry.model_dump_json(): entry.ts})

    def entries(self, query: UsageQuery | None = None) -> list[LedgerEntry]:
        q = query or UsageQuery()
        lo = "-inf" if q.since is None else repr(q.since)
        hi = "+inf" if q.until is None else f"({q.until!r}"
        rows = self._call(self._r.zrangebyscore, self._ledger, lo, hi)
        return [e for e in (LedgerEntry.model_validate_json(row) for row in rows) if q.matches(e)]

    def usage(self, query: UsageQuery | None = None) -> UsageReport:
        return UsageReport.of(self.entries(query))

    # -- online share --------------------------------------------------------------------------
    def load_online(self, key: str) -> dict[str, Any] | None:
        text = self._call(self._r.get, f"{self.prefix}:online:{key}")
        return json.loads(text) if text else None

    def save_online(self, key: str, state: Mapping[str, Any]) -> None:
        self._call(self._save_online, keys=[f"{self.prefix}:online:{key}", f"{self.prefix}:online_index"],
                   args=[json.dumps(dict(state), allow_nan=False), repr(time.time()), str(self.max_online)])

    def close(self) -> None:
        self._beat_stop.set()
        self._r.close()
