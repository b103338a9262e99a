"""A cost tracker for routed calls, used like ``get_openai_callback``.

    with routellm_cost_tracker() as tracker:
        agent.invoke({"messages": [...]})
    tracker.total_cost, tracker.by_route["weak"].calls, tracker.savings_usd
    print(tracker)

or as a plain callback handler: ``llm.invoke(..., config={"callbacks": [handler]})``.

A routed call (``RoutedChat``, ``route_between``, ``RoutingMiddleware``: each runs through
the core lifecycle) is counted from the :class:`CallRecord` it settled with
(``on_routed_call``: the record itself becomes the tracker's ledger entry, nothing is
copied or priced again), whichever way it ended: priced once by the call, a stream cut or
abandoned part-way charged for what it delivered (flagged estimated), a cache hit counted
as cached at $0; the runs inside it (they carry ``routellm_call_id``) are not counted again.
Other chat-model runs (plain models) are counted at their end: the route from their ``routellm_*`` metadata, tokens from the
message's ``usage_metadata``, dollars from the price table; a failed one as failed, with
no tokens and no cost. Unknown models are unpriced (cost ``None``), never $0.

The tracker's totals are a :class:`~routellm_integrations.state.CostLedger` view over its
own in-memory store (the calls of its ``with`` block; the model's own ledger is the state
store its calls settle in). ``summary()`` is the one usage shape: ``{"calls", "cost_usd",
..., "by_route": {...}, "by_model": {...}}``, as ``store.usage()`` and
``GET /v1/routing/usage`` give it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from langchain_core.tracers.context import register_configure_hook

from routellm_integrations.costs import LedgerTotals, PriceTable
from routellm_integrations.state import CostLedger
from routellm_integrations.routing import CallRecord

__all__ = ["RoutingCostCallbackHandler", "routellm_cost_tracker"]

_MAX_REMEMBERED_CALLS = 10_000


class RoutingCostCallbackHandler(BaseCallbackHandler):
    """Totals calls, tokens and USD per route and per model: one ledger entry per call in a
    thread-safe :class:`~routellm_integrations.state.CostLedger` (``.ledger``)."""

    run_inline = True  # cheap and lock-protected: no executor hop in async runs
    raise_error = False

    def __init__(self, prices: PriceTable | None = None, ledger: CostLedger | None = None) -> None:
        super().__init__()
        self.ledger = ledger if ledger is not None else CostLedger(prices)
        self._runs: dict[UUID, dict[str, Any]] = {}
        self._recorded: OrderedDict[str, None] = OrderedDict()  # call ids already counted (bounded)
        self._lock = threading.Lock()

    # -- routed calls: the record the call settled with ---------------------------------
    def on_routed_call(self, record: CallRecord | dict[str, Any]) -> None:
        """Count a settled routed call once (its ``call_id`` deduplicates): its
        :class:`CallRecord` (or the record's metadata dict, as stamped) is the entry."""
        r = record if isinstance(record, CallRecord) else CallRecord.model_validate(record)
        with self._lock:
            if r.call_id in self._recorded:
                return
            self._recorded[r.call_id] = None
            if len(self._recorded) > _MAX_REMEMBERED_CALLS:
                self._recorded.popitem(last=False)
        self.ledger.add(r)

    # -- run bookkeeping -----------------------------------------------------------------
    def _start(self, run_id: UUID, tags: list[str] | None, metadata: dict[str, Any] | None) -> None:
        md = metadata or {}
        route = md.get("routellm_route")
        if route is None:
            route = next((t.split(":", 1)[1] for t in tags or [] if t in ("routellm:strong", "routellm:weak")), None)
        info = {"route": route, "model": md.get("routellm_model") or md.get("ls_model_name"),
                "call_id": md.get("routellm_call_id"),
                "provider": md.get("ls_provider"), "strong_model": md.get("routellm_strong_model"),
                "strong_provider": md.get("routellm_strong_provider")}
        with self._lock:
            self._runs[run_id] = info

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID,
                            parent_run_id: UUID | None = None, tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._start(run_id, tags, metadata)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, tags: list[str] | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._start(run_id, tags, metadata)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None,
                   **kwargs: Any) -> None:
        with self._lock:
            info = self._runs.pop(run_id, {})
        for generations in response.generations:
            for gen in generations:
                message = getattr(gen, "message", None)
                usage = getattr(message, "usage_metadata", None) if message is not None else None
                meta = (getattr(message, "response_metadata", None) or {}) if message is not None else {}
                rl = meta.get("routellm") or {}
                if rl.get("call_id") and rl.get("status"):  # a routed call's own stamp
                    self.on_routed_call(rl)
                    continue
                if info.get("call_id"):  # a routed call's backend run: its record comes when it settles
                    continue
                model = rl.get("model") or meta.get("model_name") or info.get("model") or "unknown"
                self.ledger.record(route=rl.get("route") or info.get("route"), model=model, usage=usage,
                                   provider=rl.get("provider") or info.get("provider"),
                                   strong_model=rl.get("strong_model") or info.get("strong_model"),
                                   strong_provider=rl.get("strong_provider") or info.get("strong_provider"))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None,
                     **kwargs: Any) -> None:
        with self._lock:
            info = self._runs.pop(run_id, {})
        record = getattr(error, "routellm_record", None)
        if isinstance(record, dict):  # a routed call that raised: its record says what it cost
            self.on_routed_call(record)
            return
        if info.get("call_id"):  # settles after the error (a stream the consumer closed): reported then
            return
        self.ledger.record_failure(route=info.get("route"), model=info.get("model"))

    # -- get_openai_callback-style totals ---------------------------------------------------
    @property
    def total(self) -> LedgerTotals:
        return self.ledger.total

    @property
    def total_cost(self) -> float:
        """USD over the priced calls (see ``unpriced_calls``)."""
        return self.ledger.total.cost_usd

    @property
    def total_tokens(self) -> int:
        return self.ledger.total.total_tokens

    @property
    def prompt_tokens(self) -> int:
        return self.ledger.total.input_tokens

    @property
    def completion_tokens(self) -> int:
        return self.ledger.total.output_tokens

    @property
    def successful_requests(self) -> int:
        return self.ledger.total.calls

    @property
    def unpriced_calls(self) -> int:
        return self.ledger.total.unpriced_calls

    @property
    def savings_usd(self) -> float | None:
        return self.ledger.total.savings_usd

    @property
    def by_route(self) -> dict[str, LedgerTotals]:
        return self.ledger.by_route

    @property
    def by_model(self) -> dict[str, LedgerTotals]:
        return self.ledger.by_model

    def summary(self) -> dict[str, Any]:
        """The one usage shape (flat totals, ``by_route``, ``by_model``)."""
        return self.ledger.summary()

    def reset(self) -> None:
        self.ledger.reset()

    def __str__(self) -> str:
        return str(self.ledger)

    def __repr__(self) -> str:
        return f"RoutingCostCallbackHandler({self.ledger!r})"


_tracker_var: ContextVar[RoutingCostCallbackHandler | None] = ContextVar("routellm_cost_tracker", default=None)
register_configure_hook(_tracker_var, inheritable=True)


@contextmanager
def routellm_cost_tracker(prices: PriceTable | None = None) -> Iterator[RoutingCostCallbackHandler]:
    """Count every chat-model call made inside the ``with`` block (sync or async, any
    depth of chains/agents), like ``get_openai_callback``."""
    handler = RoutingCostCallbackHandler(prices)
    token = _tracker_var.set(handler)
    try:
        yield handler
    finally:
        _tracker_var.reset(token)
