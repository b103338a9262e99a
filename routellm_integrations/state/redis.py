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

Redis Cluster is not supported (the scripts touch keys of several hash slots).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..budgets import Budget, BudgetState, ScopeTotals, refusal, state_of
from ..decision import Route
from ..errors import BudgetExceeded
from ..costs import check_usd
from .base import DEFAULT_LEASE_S, LedgerEntry, Reservation, UsageQuery, UsageReport

# the reservations still live now, summed (shared by both scripts)
_LIVE = """
local function live(res_key, now, reclaim)
  local res = redis.call('HGETALL', res_key)
  local reserved, in_flight, strong_in_flight = 0, 0, 0
  for i = 1, #res, 2 do
    local route, amount, expires = string.match(res[i + 1], '^(%a+)|([^|]+)|([^|]+)$')
    if tonumber(expires) < now then
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

# KEYS: scope hash, reservations hash. ARGV: now, lease, route, max_usd|'', max_strong|'',
# on_exhausted, bound_strong|'', bound_weak|'', reservation id
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
  redis.call('HSET', KEYS[2], ARGV[9], chosen .. '|' .. f(amt) .. '|' .. f(now + tonumber(ARGV[2])))
  reserved, in_flight = reserved + amt, in_flight + 1
  if chosen == 'strong' then strong_in_flight = strong_in_flight + 1 end
end
return {chosen or '', f(spent), f(reserved), strong_calls, strong_in_flight, in_flight}
"""

# KEYS: scope hash, reservations hash, ledger. ARGV: now, id, cost, strong 0|1, entry|'', ts
_SETTLE = _LIVE + """
redis.call('HDEL', KEYS[2], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('HINCRBYFLOAT', KEYS[1], 'spent', ARGV[3]) end
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[1], 'strong_calls', 1) end
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5]) end
local reserved, in_flight, strong_in_flight = live(KEYS[2], tonumber(ARGV[1]), false)
return {'', f(num(KEYS[1], 'spent')), f(reserved), num(KEYS[1], 'strong_calls'), strong_in_flight, in_flight}
"""

# KEYS: reservations hash. ARGV: id, new expiry
_RENEW = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local route, amount = string.match(v, '^(%a+)|([^|]+)|')
  redis.call('HSET', KEYS[1], ARGV[1], route .. '|' .. amount .. '|' .. ARGV[2])
end
return 0
"""

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
                 lease_s: float = DEFAULT_LEASE_S, client: Any = None) -> None:
        from ..extras import require

        redis = require("redis", extra="redis", feature="RedisStore (a redis:// state store)")
        if not (isinstance(lease_s, (int, float)) and math.isfinite(lease_s) and lease_s > 0):
            raise ValueError(f"lease_s must be a positive number of seconds, got {lease_s!r}")
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.prefix = prefix or (query.pop("prefix", ["routellm"])[0])
        clean = urlunsplit(parts._replace(query="&".join(f"{k}={v[0]}" for k, v in query.items())))
        self.url = redact_url(clean)
        self.lease_s = float(lease_s)
        self._r = client if client is not None else redis.Redis.from_url(clean, decode_responses=True)
        self._reserve = self._r.register_script(_RESERVE)
        self._settle = self._r.register_script(_SETTLE)
        self._state = self._r.register_script(_STATE)
        self._renew = self._r.register_script(_RENEW)

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
                "" if not bounds else repr(float(bounds.get("weak", 0.0))), r.id]
        reply = self._reserve(keys=self._keys(scope), args=args)
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
        reservation.settled = True
        strong = "1" if reservation.route == "strong" and succeeded else "0"
        reply = self._settle(keys=[*self._keys(reservation.scope), self._ledger],
                             args=[repr(time.time()), reservation.id, repr(cost), strong,
                                   entry.model_dump_json() if entry is not None else "",
                                   repr(entry.ts) if entry is not None else "0"])
        return state_of(budget, reservation.scope, _totals(reply))

    def renew(self, reservation: Reservation) -> None:
        if not reservation.settled:
            self._renew(keys=[self._keys(reservation.scope)[1]], args=[reservation.id, repr(time.time() + self.lease_s)])

    def budget_state(self, budget: Budget, scope: str) -> BudgetState:
        return state_of(budget, scope, _totals(self._state(keys=self._keys(scope), args=[repr(time.time())])))

    # -- ledger ------------------------------------------------------------------------------
    def record(self, entry: LedgerEntry) -> None:
        self._r.zadd(self._ledger, {entry.model_dump_json(): entry.ts})

    def entries(self, query: UsageQuery | None = None) -> list[LedgerEntry]:
        q = query or UsageQuery()
        lo = "-inf" if q.since is None else repr(q.since)
        hi = "+inf" if q.until is None else f"({q.until!r}"
        rows = self._r.zrangebyscore(self._ledger, lo, hi)
        return [e for e in (LedgerEntry.model_validate_json(row) for row in rows) if q.matches(e)]

    def usage(self, query: UsageQuery | None = None) -> UsageReport:
        return UsageReport.of(self.entries(query))

    # -- online share --------------------------------------------------------------------------
    def load_online(self, key: str) -> dict[str, Any] | None:
        text = self._r.get(f"{self.prefix}:online:{key}")
        return json.loads(text) if text else None

    def save_online(self, key: str, state: Mapping[str, Any]) -> None:
        self._r.set(f"{self.prefix}:online:{key}", json.dumps(dict(state), allow_nan=False))

    def close(self) -> None:
        self._r.close()
