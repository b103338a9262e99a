"""The call ledger as a program reads it: :class:`CostLedger`, a view of the ledger a
state store keeps (one entry per settled call, written by the call lifecycle). Prices and
the totals it adds up live in :mod:`~routellm_integrations.costs`."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import Any

from ..costs import LEDGER_STATUSES, LedgerTotals, PriceTable, Usage, check_usd
from ..errors import LedgerError
from .base import LedgerEntry
from .memory import IN_PROCESS_MAX_ENTRIES, MemoryStore

__all__ = ["CostLedger"]


class CostLedger:
    """A view of a call ledger: the totals of calls, tokens and dollars, per route and per
    model, that a state store keeps (``store``: by default a new in-memory one, whose
    totals count every call and which keeps the last 1,000 entries for queries; a
    :class:`~routellm_integrations.routing.CallLifecycle` writes each settled call to its
    store once, and its ``ledger`` reads that store). Thread-safe.

    ``record`` adds a call priced here (``record_failure`` a failed one: counted, no
    tokens, no cost; ``record_priced`` one the caller already priced, with its status;
    :meth:`add` a settled :class:`~routellm_integrations.routing.CallRecord`): each is one
    :class:`~routellm_integrations.state.LedgerEntry` written to ``store``. Savings compare
    each call with what the same token counts would have cost on ``strong_model``: an
    estimate, since a different model would have written a different number of output
    tokens. :meth:`summary` is the one usage shape (``store.usage()``'s): the totals flat,
    with ``by_route`` and ``by_model``. With a shared store (SQLite, Redis) the view shows
    every call in that store; :meth:`reset` starts this view from zero and deletes nothing.
    """

    def __init__(self, prices: PriceTable | None = None, *, store: Any = None) -> None:
        from .stores import open_store

        self.prices = prices if prices is not None else PriceTable.default()
        self.store = open_store(store) if store is not None else MemoryStore(max_entries=IN_PROCESS_MAX_ENTRIES)
        self._stores = [self.store]
        self._lock = threading.Lock()
        self._baseline: Any = None  # the report at the last reset (subtracted from what the stores say)

    def attach(self, store: Any) -> None:
        """Read ``store``'s ledger too: a lifecycle handed this ledger writes its calls to
        its own store (the one its budget settles in), and the view sums both."""
        with self._lock:
            if not any(s is store for s in self._stores):
                self._stores.append(store)

    @property
    def stores(self) -> list[Any]:
        """The stores this view reads (``store`` first)."""
        with self._lock:
            return list(self._stores)

    # -- writing: one ledger entry per call ------------------------------------------------
    def _write(self, route: str | None, model: str | None, usage: Usage, cost: float | None,
               strong_cost: float | None, status: str, estimated: bool, provider: str | None = None) -> None:
        self.store.record(LedgerEntry(
            call_id=uuid.uuid4().hex, route=route, model=model or "", provider=provider, status=status,  # type: ignore[arg-type]
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
            cost_usd=cost, strong_cost_usd=strong_cost, estimated=estimated))

    def add(self, record: Any, *, api_key: str | None = None) -> None:
        """Add a settled :class:`~routellm_integrations.routing.CallRecord` (or its
        ``metadata()`` dict) as it is: its ledger entry is built from the record, nothing
        is priced again."""
        self.store.record(LedgerEntry.of(record, api_key=api_key))

    def record(self, *, route: str | None, model: str, usage: Usage | Mapping[str, Any] | None,
               provider: str | None = None, strong_model: str | None = None,
               strong_provider: str | None = None) -> float | None:
        """Add one call; returns its cost in USD (``None`` if unpriced, or if ``usage`` is
        ``None``: a call whose tokens were not reported is unpriced, not $0). ``route`` is
        ``"strong"``, ``"weak"`` or ``None`` for a call that was not routed; a call that went
        strong costs exactly its strong equivalent."""
        if not isinstance(usage, Usage):
            usage = Usage.from_dict(usage)
        if usage is None:  # no token counts reported: the call cannot be priced (never $0)
            self._write(route, model, Usage(), None, None, "ok", False, provider)
            return None
        cost = self.prices.cost(model, usage, provider)
        if route == "strong" or strong_model is None or strong_model == model:
            strong_cost = cost  # the call already ran on the strong model (or no alternative is known)
        else:
            strong_cost = self.prices.cost(strong_model, usage, strong_provider)
        self._write(route, model, usage, cost, strong_cost, "ok", False, provider)
        return cost

    def record_priced(self, *, route: str | None, model: str, usage: Usage, cost_usd: float | None,
                      strong_cost_usd: float | None, status: str = "ok", estimated: bool = False) -> None:
        """Add one call priced by the caller (the ledger does not price it again).

        ``status``: ``"ok"``, ``"abandoned"`` or ``"cut"`` (a stream stopped early) count in
        ``calls`` with their tokens and dollars; ``"failed"``/``"cancelled"`` count in
        ``failed_calls``, and their tokens and dollars are added too when ``usage`` has
        tokens (a cut stream the provider billed); ``"cached"`` counts in ``cached_calls``
        only (no tokens, $0, not in ``calls``). ``cost_usd``/``strong_cost_usd`` are
        ``None`` for unpriced. ``estimated=True`` (usage estimated, not reported) also
        counts in ``estimated_calls``. Raises :class:`~routellm_integrations.errors.LedgerError`
        for an unknown status or a cost that is not a finite, non-negative number."""
        if status not in LEDGER_STATUSES:
            raise LedgerError(f"unknown ledger status {status!r}; use one of {', '.join(LEDGER_STATUSES)}")
        check_usd("cost_usd", cost_usd)
        check_usd("strong_cost_usd", strong_cost_usd)
        if usage is None:
            usage = Usage()
        elif not isinstance(usage, Usage):
            usage = Usage.from_dict(usage) or Usage()
        self._write(route, model, usage, cost_usd, strong_cost_usd, status, bool(estimated))

    def record_failure(self, *, route: str | None, model: str | None = None) -> None:
        """Count a failed call (no tokens, no dollars)."""
        self._write(route, model, Usage(), None, None, "failed", False)

    def reset(self) -> None:
        """Count from zero from now on (in this view; the store keeps its entries)."""
        with self._lock:
            self._baseline = None
        baseline = self.usage()
        with self._lock:
            self._baseline = baseline

    # -- reading (copies, safe to read while other threads record) -----------------------
    def usage(self) -> Any:
        """The :class:`~routellm_integrations.state.UsageReport` of the calls in view."""
        with self._lock:
            stores, baseline = list(self._stores), self._baseline
        report = stores[0].usage()
        for store in stores[1:]:
            report = report.combined(store.usage())
        return report.combined(baseline, -1) if baseline is not None else report

    @property
    def total(self) -> LedgerTotals:
        return self.usage().total

    @property
    def by_route(self) -> dict[str, LedgerTotals]:
        return self.usage().by_route

    @property
    def by_model(self) -> dict[str, LedgerTotals]:
        return self.usage().by_model

    def summary(self) -> dict[str, Any]:
        """The one usage shape: ``{"calls", "cost_usd", ..., "strong_fraction", "by_route",
        "by_model"}`` (what ``store.usage().as_dict()`` and ``GET /v1/routing/usage`` give)."""
        return self.usage().as_dict()

    def __str__(self) -> str:
        report = self.usage()
        t = report.total
        cost = f"${t.cost_usd:.6f}" + (f" (+{t.unpriced_calls} unpriced calls)" if t.unpriced_calls else "")
        savings = t.savings_usd
        cached = f", {t.cached_calls} cached" if t.cached_calls else ""
        lines = [f"Calls: {t.calls} ({t.failed_calls} failed{cached})",
                 f"Tokens: {t.total_tokens} (input {t.input_tokens}, output {t.output_tokens})",
                 f"Cost (USD): {cost}",
                 "Savings vs all-strong (USD): " + ("n/a (unpriced calls)" if savings is None else f"${savings:.6f}")]
        for route, rt in sorted(report.by_route.items()):
            lines.append(f"  {route}: {rt.calls} calls, {rt.total_tokens} tokens, ${rt.cost_usd:.6f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        t = self.total
        return f"CostLedger(calls={t.calls}, tokens={t.total_tokens}, cost_usd={t.cost_usd:.6f})"
