"""Prometheus metrics of the routing server (``GET /metrics``), in a registry per app.

- ``routellm_calls_total{route, model, status}``: settled calls (status ``ok``, ``failed``,
  ``cancelled``, ``abandoned``, ``cut``, ``escalated``: each call of a cascade counts);
  ``route`` is the route key (``strong``/``weak``, or among N models the model's key);
- ``routellm_cost_usd_total{route, model}``, ``routellm_tokens_total{route, model, kind}``;
- ``routellm_decision_latency_seconds{router}``: time to score and admit a call;
- ``routellm_requests_total{endpoint, status}``, ``routellm_request_duration_seconds{endpoint}``;
- ``routellm_calls_in_flight``;
- ``routellm_store_writes_ahead_total{kind}``: settlements the state store could not take
  and the write-ahead file kept (``lost_writes``: billed calls written ahead, to reconcile;
  ``replayed_writes``: lines replayed into the store once it answered; ``unwritten``: the
  local file failed too, the call only logged). See :mod:`routellm_integrations.state.wal`.

With ``--workers N`` the server runs prometheus-client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set by ``routellm serve``): every worker writes its values
to files there and ``/metrics`` sums them, whichever worker answers.
Labels never hold a key or a client label: only routes, models, routers and statuses.
``/metrics`` is open unless the server's ``metrics_key`` is set: then it answers only that
key or an admin key (401 in OpenAI's format otherwise).
"""

from __future__ import annotations

import os
from typing import Any

from ..routing import CallRecord

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls = Counter("routellm_calls", "Routed calls settled, by route, model and how they ended",
                             ["route", "model", "status"], registry=r)
        self.cost = Counter("routellm_cost_usd", "USD spent on routed calls", ["route", "model"], registry=r)
        self.tokens = Counter("routellm_tokens", "Tokens of routed calls", ["route", "model", "kind"], registry=r)
        self.decision = Histogram("routellm_decision_latency_seconds", "Time to score and admit a routed call",
                                  ["router"], buckets=_LATENCY_BUCKETS, registry=r)
        self.requests = Counter("routellm_requests", "HTTP requests answered", ["endpoint", "status"], registry=r)
        self.duration = Histogram("routellm_request_duration_seconds", "HTTP request duration (to the last byte)",
                                  ["endpoint"], buckets=_REQUEST_BUCKETS, registry=r)
        self.in_flight = Gauge("routellm_calls_in_flight", "Routed calls in flight", registry=r,
                               multiprocess_mode="livesum")
        self.writes_ahead = Counter("routellm_store_writes_ahead", "Settlements the state store could not take, "
                                    "kept by the write-ahead file", ["kind"], registry=r)
        self._wal_seen: dict[str, int] = {}

    def decided(self, router: str, latency_ms: float | None) -> None:
        if latency_ms is not None:
            self.decision.labels(router).observe(latency_ms / 1000.0)

    def _sync_writes_ahead(self) -> None:
        """Publish what this process's write-ahead file counted since the last look (its
        counts live in :mod:`~routellm_integrations.state.wal`, which knows no metrics)."""
        from ..state import wal

        now = wal.stats()
        for kind, n in now.items():
            if n > self._wal_seen.get(kind, 0):
                self.writes_ahead.labels(kind).inc(n - self._wal_seen.get(kind, 0))
        self._wal_seen = now

    def settled(self, record: CallRecord) -> None:
        self._sync_writes_ahead()  # a settlement is when the store was (or was not) written
        self.calls.labels(record.route, record.model, record.status).inc()
        if record.cost_usd:
            self.cost.labels(record.route, record.model).inc(record.cost_usd)
        if record.input_tokens:
            self.tokens.labels(record.route, record.model, "input").inc(record.input_tokens)
        if record.output_tokens:
            self.tokens.labels(record.route, record.model, "output").inc(record.output_tokens)

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.duration.labels(endpoint).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        self._sync_writes_ahead()
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
