"""Prices, usage -> dollars, and a thread-safe ledger of routed calls. Framework-free.

Both integrations (LangChain, LlamaIndex) price calls with the same :class:`PriceTable`
and total them in the same :class:`CostLedger`::

    from routellm_integrations.costs import PriceTable, Usage, CostLedger

    prices = PriceTable.default().with_prices({"openai": {"my-ft-model": (3.0, 12.0)}})
    prices.cost("gpt-4o", Usage(input_tokens=1200, output_tokens=300))   # 0.006
    ledger = CostLedger(prices)
    ledger.record(route="weak", model="claude-3-5-haiku-20241022", usage=Usage(1200, 300),
                  strong_model="gpt-4o")
    ledger.summary()["savings_usd"]

Prices are USD per million tokens, keyed by provider (LangChain's ``ls_provider``
names: ``"openai"``, ``"anthropic"``) and model. A model the table does not know is
reported as *unpriced* (cost ``None``) with one :class:`UnpricedModelWarning` per model,
never as $0. The shipped prices are list prices for standard (non-batch) API calls as
published by OpenAI and Anthropic; override or extend them for negotiated rates, batch
pricing or new models.
"""

from __future__ import annotations

import math
import re
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import PriceTableError, UnpricedModelWarning

__all__ = ["CostLedger", "LedgerTotals", "ModelPrice", "PriceTable", "Usage", "DEFAULT_PRICES"]


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens. Cache prices default to the input price when unknown."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cache_read", "cache_write"):
            v = getattr(self, name)
            if v is None and name in ("cache_read", "cache_write"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
                raise PriceTableError(f"price {name!r} must be a non-negative number of USD per "
                                      f"million tokens, got {v!r}")

    @classmethod
    def coerce(cls, value: Any) -> "ModelPrice":
        """A :class:`ModelPrice`, an ``(input, output[, cache_read[, cache_write]])`` tuple
        or a mapping with ``input``/``output`` (and optional cache) keys."""
        if isinstance(value, ModelPrice):
            return value
        if isinstance(value, Mapping):
            if "input" not in value or "output" not in value:
                raise PriceTableError(f"a price needs 'input' and 'output' (USD per 1M tokens), got {dict(value)!r}")
            extra = set(value) - {"input", "output", "cache_read", "cache_write"}
            if extra:
                raise PriceTableError(f"unknown price keys {sorted(extra)}; use input, output, cache_read, cache_write")
            return cls(**{k: value[k] for k in value})
        if isinstance(value, (tuple, list)) and 2 <= len(value) <= 4:
            return cls(*value)
        raise PriceTableError(f"cannot read a price from {value!r}: give (input, output) USD per 1M tokens")


@dataclass(frozen=True)
class Usage:
    """Token counts of one call. ``input_tokens`` is the total prompt size, *including*
    cached tokens (LangChain's and OpenAI's convention); ``cache_read_tokens`` and
    ``cache_write_tokens`` say how much of it was read from / written to a prompt cache.
    Reasoning tokens are part of ``output_tokens``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_read_tokens + other.cache_read_tokens,
                     self.cache_write_tokens + other.cache_write_tokens)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "Usage | None":
        """Read any of: LangChain ``usage_metadata`` (``input_tokens``, ``output_tokens``,
        ``input_token_details``), an OpenAI ``usage`` object (``prompt_tokens``,
        ``completion_tokens``, ``prompt_tokens_details.cached_tokens``), or an Anthropic
        ``usage`` object (``input_tokens`` *excluding* ``cache_read_input_tokens`` and
        ``cache_creation_input_tokens``). ``None`` when ``d`` holds no token counts."""
        if not d:
            return None

        def num(x: Any) -> int:
            return int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 else 0

        if "prompt_tokens" in d or "completion_tokens" in d:  # OpenAI wire format
            details = d.get("prompt_tokens_details") or {}
            return cls(num(d.get("prompt_tokens")), num(d.get("completion_tokens")),
                       num(details.get("cached_tokens")), 0)
        if "cache_read_input_tokens" in d or "cache_creation_input_tokens" in d:  # Anthropic wire format
            read, write = num(d.get("cache_read_input_tokens")), num(d.get("cache_creation_input_tokens"))
            return cls(num(d.get("input_tokens")) + read + write, num(d.get("output_tokens")), read, write)
        if "input_tokens" in d or "output_tokens" in d:  # LangChain usage_metadata
            details = d.get("input_token_details") or {}
            write = num(details.get("cache_creation"))
            if not write:
                write = num(details.get("ephemeral_5m_input_tokens")) + num(details.get("ephemeral_1h_input_tokens"))
            return cls(num(d.get("input_tokens")), num(d.get("output_tokens")),
                       num(details.get("cache_read")), write)
        return None


def _p(inp: float, out: float, read: float | None = None, write: float | None = None) -> ModelPrice:
    return ModelPrice(inp, out, read, write)


#: List prices, USD per million tokens (standard tier; cache_read = cached input,
#: cache_write = Anthropic's 5-minute cache write). Checked against the providers'
#: pricing pages in 2025; override with PriceTable.with_prices when they move.
DEFAULT_PRICES: dict[str, dict[str, ModelPrice]] = {
    "openai": {
        "gpt-5": _p(1.25, 10.00, 0.125),
        "gpt-5-mini": _p(0.25, 2.00, 0.025),
        "gpt-5-nano": _p(0.05, 0.40, 0.005),
        "gpt-5-chat-latest": _p(1.25, 10.00, 0.125),
        "gpt-4.1": _p(2.00, 8.00, 0.50),
        "gpt-4.1-mini": _p(0.40, 1.60, 0.10),
        "gpt-4.1-nano": _p(0.10, 0.40, 0.025),
        "gpt-4.5-preview": _p(75.00, 150.00, 37.50),
        "gpt-4o": _p(2.50, 10.00, 1.25),
        "gpt-4o-2024-05-13": _p(5.00, 15.00),
        "chatgpt-4o-latest": _p(5.00, 15.00),
        "gpt-4o-mini": _p(0.15, 0.60, 0.075),
        "o1": _p(15.00, 60.00, 7.50),
        "o1-mini": _p(1.10, 4.40, 0.55),
        "o1-pro": _p(150.00, 600.00),
        "o3": _p(2.00, 8.00, 0.50),
        "o3-mini": _p(1.10, 4.40, 0.55),
        "o3-pro": _p(20.00, 80.00),
        "o4-mini": _p(1.10, 4.40, 0.275),
        "gpt-4-turbo": _p(10.00, 30.00),
        "gpt-4-turbo-preview": _p(10.00, 30.00),
        "gpt-4-1106-preview": _p(10.00, 30.00),
        "gpt-4-0125-preview": _p(10.00, 30.00),
        "gpt-4": _p(30.00, 60.00),
        "gpt-4-32k": _p(60.00, 120.00),
        "gpt-3.5-turbo": _p(0.50, 1.50),
        "gpt-3.5-turbo-0125": _p(0.50, 1.50),
    },
    # the offline default pair (routellm_integrations.local_engine): free
    "local": {
        "smollm2-135m-instruct": _p(0.0, 0.0),
        "smollm2-135m-instruct-reasoning": _p(0.0, 0.0),
        "smollm2-135m-instruct-brief": _p(0.0, 0.0),
    },
    "anthropic": {
        "claude-opus-4-5": _p(5.00, 25.00, 0.50, 6.25),
        "claude-opus-4-1": _p(15.00, 75.00, 1.50, 18.75),
        "claude-opus-4": _p(15.00, 75.00, 1.50, 18.75),
        "claude-opus-4-0": _p(15.00, 75.00, 1.50, 18.75),
        "claude-sonnet-4-5": _p(3.00, 15.00, 0.30, 3.75),
        "claude-sonnet-4": _p(3.00, 15.00, 0.30, 3.75),
        "claude-sonnet-4-0": _p(3.00, 15.00, 0.30, 3.75),
        "claude-haiku-4-5": _p(1.00, 5.00, 0.10, 1.25),
        "claude-3-7-sonnet": _p(3.00, 15.00, 0.30, 3.75),
        "claude-3-5-sonnet": _p(3.00, 15.00, 0.30, 3.75),
        "claude-3-5-haiku": _p(0.80, 4.00, 0.08, 1.00),
        "claude-3-opus": _p(15.00, 75.00, 1.50, 18.75),
        "claude-3-sonnet": _p(3.00, 15.00, 0.30, 3.75),
        "claude-3-haiku": _p(0.25, 1.25, 0.03, 0.30),
    },
}

# dated snapshots and aliases resolve to their family: gpt-4o-2024-08-06 -> gpt-4o,
# claude-3-5-haiku-20241022 -> claude-3-5-haiku, claude-3-5-haiku-latest -> claude-3-5-haiku
_SUFFIXES = (re.compile(r"-\d{4}-\d{2}-\d{2}$"), re.compile(r"-\d{8}$"), re.compile(r"-latest$"),
             re.compile(r"-v\d+(:\d+)?$"))


def _candidates(model: str) -> list[str]:
    names = [model]
    base = model.rsplit("/", 1)[-1]  # "openai/gpt-4o" or a Bedrock-style "anthropic.claude-..."
    if base.startswith("anthropic."):
        base = base[len("anthropic."):]
    if base != model:
        names.append(base)
    changed = True
    while changed:
        changed = False
        for rx in _SUFFIXES:
            stripped = rx.sub("", base)
            if stripped != base:
                base = stripped
                names.append(base)
                changed = True
    return names


class PriceTable:
    """Per-million-token prices keyed by ``(provider, model)``; immutable, cheap to copy.

    ``price(model, provider)`` resolves exact names first, then dated snapshots and
    ``-latest`` aliases to their family. With ``provider=None`` every provider is
    searched. Unknown models return ``None`` and warn once per table.
    """

    def __init__(self, prices: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._prices: dict[str, dict[str, ModelPrice]] = {}
        for provider, models in (prices or {}).items():
            if not isinstance(models, Mapping):
                raise PriceTableError(f"prices for provider {provider!r} must be a mapping of model -> price")
            self._prices[str(provider).lower()] = {str(m): ModelPrice.coerce(v) for m, v in models.items()}
        self._warned: set[tuple[str | None, str]] = set()
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> "PriceTable":
        """The shipped OpenAI and Anthropic list prices."""
        return cls(DEFAULT_PRICES)

    def with_prices(self, prices: Mapping[str, Mapping[str, Any]]) -> "PriceTable":
        """A new table with ``prices`` added or overriding (``{provider: {model: price}}``,
        a price being ``(input, output)``, a mapping, or a :class:`ModelPrice`)."""
        merged: dict[str, dict[str, Any]] = {p: dict(m) for p, m in self._prices.items()}
        for provider, models in prices.items():
            merged.setdefault(str(provider).lower(), {}).update(models)
        return PriceTable(merged)

    def providers(self) -> list[str]:
        return sorted(self._prices)

    def models(self, provider: str | None = None) -> list[str]:
        if provider is not None:
            return sorted(self._prices.get(provider.lower(), {}))
        return sorted({m for ms in self._prices.values() for m in ms})

    def as_dict(self) -> dict[str, dict[str, dict[str, float | None]]]:
        return {p: {m: {"input": v.input, "output": v.output, "cache_read": v.cache_read,
                        "cache_write": v.cache_write} for m, v in ms.items()}
                for p, ms in self._prices.items()}

    def price(self, model: str, provider: str | None = None, *, warn: bool = True) -> ModelPrice | None:
        """The price of ``model`` (``None`` if unknown: warns once unless ``warn=False``)."""
        found = self._lookup(model, provider) if isinstance(model, str) and model else None
        if found is None and warn:
            key = (provider.lower() if provider else None, str(model))
            with self._lock:
                first = key not in self._warned
                self._warned.add(key)
            if first:
                where = f"provider {provider!r}" if provider else "any provider"
                warnings.warn(f"no price for model {model!r} ({where}) in the price table: its calls are "
                              "reported as unpriced (cost None), not $0. Add it with "
                              "PriceTable.with_prices({provider: {model: (input_usd_per_1M, output_usd_per_1M)}}).",
                              UnpricedModelWarning, stacklevel=3)
        return found

    def _lookup(self, model: str, provider: str | None) -> ModelPrice | None:
        tables = ([self._prices.get(provider.lower(), {})] if provider and provider.lower() in self._prices
                  else list(self._prices.values()))
        for name in _candidates(model):
            for table in tables:
                if name in table:
                    return table[name]
        return None

    def cost(self, model: str, usage: Usage, provider: str | None = None, *, warn: bool = True) -> float | None:
        """USD for one call, or ``None`` when the model is unpriced."""
        price = self.price(model, provider, warn=warn)
        if price is None:
            return None
        read = min(usage.cache_read_tokens, usage.input_tokens)
        write = min(usage.cache_write_tokens, usage.input_tokens - read)
        fresh = usage.input_tokens - read - write
        total = (fresh * price.input
                 + read * (price.cache_read if price.cache_read is not None else price.input)
                 + write * (price.cache_write if price.cache_write is not None else price.input)
                 + usage.output_tokens * price.output)
        return total / 1_000_000

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self._lookup(model, None) is not None

    def __repr__(self) -> str:
        return f"PriceTable({sum(len(m) for m in self._prices.values())} models, providers={self.providers()})"


@dataclass
class LedgerTotals:
    """Totals over a set of calls. ``cost_usd`` sums the priced calls only;
    ``unpriced_calls`` counts the rest (their tokens are still in the token totals)."""

    calls: int = 0
    failed_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0
    strong_equivalent_usd: float = 0.0
    strong_equivalent_unpriced: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def savings_usd(self) -> float | None:
        """What the same tokens would have cost on the strong model, minus what they cost;
        ``None`` when any call could not be priced on either side."""
        if self.unpriced_calls or self.strong_equivalent_unpriced:
            return None
        return self.strong_equivalent_usd - self.cost_usd

    def _add(self, usage: Usage, cost: float | None, strong_cost: float | None) -> None:
        self.calls += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read_tokens += usage.cache_read_tokens
        self.cache_write_tokens += usage.cache_write_tokens
        if cost is None:
            self.unpriced_calls += 1
        else:
            self.cost_usd += cost
        if strong_cost is None:
            self.strong_equivalent_unpriced += 1
        else:
            self.strong_equivalent_usd += strong_cost

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "failed_calls": self.failed_calls,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "total_tokens": self.total_tokens, "cache_read_tokens": self.cache_read_tokens,
                "cache_write_tokens": self.cache_write_tokens, "cost_usd": self.cost_usd,
                "unpriced_calls": self.unpriced_calls, "strong_equivalent_usd": self.strong_equivalent_usd,
                "savings_usd": self.savings_usd}


class CostLedger:
    """Thread-safe totals of calls, tokens and dollars, per route and per model.

    ``record`` one entry per successful call (``failure`` for a failed one: counted, no
    tokens, no cost). Savings compare each call with what the same token counts would
    have cost on ``strong_model``: an estimate, since a different model would have
    written a different number of output tokens.
    """

    def __init__(self, prices: PriceTable | None = None) -> None:
        self.prices = prices if prices is not None else PriceTable.default()
        self._lock = threading.Lock()
        self._total = LedgerTotals()
        self._by_route: dict[str, LedgerTotals] = {}
        self._by_model: dict[str, LedgerTotals] = {}

    def record(self, *, route: str | None, model: str, usage: Usage | Mapping[str, Any] | None,
               provider: str | None = None, strong_model: str | None = None,
               strong_provider: str | None = None) -> float | None:
        """Add one call; returns its cost in USD (``None`` if unpriced, or if ``usage`` is
        ``None``: a call whose tokens were not reported is unpriced, not $0). ``route`` is
        ``"strong"``, ``"weak"`` or ``None`` for a call that was not routed; a call that went
        strong costs exactly its strong equivalent."""
        if not isinstance(usage, Usage):
            usage = Usage.from_dict(usage)
        route_key = route or "unrouted"
        if usage is None:  # no token counts reported: the call cannot be priced (never $0)
            usage, cost, strong_cost = Usage(), None, None
            with self._lock:
                for t in (self._total, self._by_route.setdefault(route_key, LedgerTotals()),
                          self._by_model.setdefault(model, LedgerTotals())):
                    t._add(usage, cost, strong_cost)
            return None
        cost = self.prices.cost(model, usage, provider)
        if route == "strong" or strong_model is None or strong_model == model:
            strong_cost = cost  # the call already ran on the strong model (or no alternative is known)
        else:
            strong_cost = self.prices.cost(strong_model, usage, strong_provider)
        with self._lock:
            self._total._add(usage, cost, strong_cost)
            self._by_route.setdefault(route_key, LedgerTotals())._add(usage, cost, strong_cost)
            self._by_model.setdefault(model, LedgerTotals())._add(usage, cost, strong_cost)
        return cost

    def record_failure(self, *, route: str | None, model: str | None = None) -> None:
        """Count a failed call (no tokens, no dollars)."""
        with self._lock:
            self._total.failed_calls += 1
            self._by_route.setdefault(route or "unrouted", LedgerTotals()).failed_calls += 1
            if model:
                self._by_model.setdefault(model, LedgerTotals()).failed_calls += 1

    def reset(self) -> None:
        with self._lock:
            self._total = LedgerTotals()
            self._by_route.clear()
            self._by_model.clear()

    # -- views (copies, safe to read while other threads record) -------------------
    def _copy(self, t: LedgerTotals) -> LedgerTotals:
        return LedgerTotals(**{f: getattr(t, f) for f in t.__dataclass_fields__})

    @property
    def total(self) -> LedgerTotals:
        with self._lock:
            return self._copy(self._total)

    @property
    def by_route(self) -> dict[str, LedgerTotals]:
        with self._lock:
            return {k: self._copy(v) for k, v in self._by_route.items()}

    @property
    def by_model(self) -> dict[str, LedgerTotals]:
        with self._lock:
            return {k: self._copy(v) for k, v in self._by_model.items()}

    def summary(self) -> dict[str, Any]:
        with self._lock:
            total = self._copy(self._total)
            by_route = {k: v.as_dict() for k, v in self._by_route.items()}
            by_model = {k: v.as_dict() for k, v in self._by_model.items()}
        out = total.as_dict()
        out["by_route"] = by_route
        out["by_model"] = by_model
        out["strong_fraction"] = (by_route.get("strong", {}).get("calls", 0) / total.calls) if total.calls else None
        return out

    def __str__(self) -> str:
        t = self.total
        cost = f"${t.cost_usd:.6f}" + (f" (+{t.unpriced_calls} unpriced calls)" if t.unpriced_calls else "")
        savings = t.savings_usd
        lines = [f"Calls: {t.calls} ({t.failed_calls} failed)",
                 f"Tokens: {t.total_tokens} (input {t.input_tokens}, output {t.output_tokens})",
                 f"Cost (USD): {cost}",
                 "Savings vs all-strong (USD): " + ("n/a (unpriced calls)" if savings is None else f"${savings:.6f}")]
        for route, rt in sorted(self.by_route.items()):
            lines.append(f"  {route}: {rt.calls} calls, {rt.total_tokens} tokens, ${rt.cost_usd:.6f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        t = self.total
        return f"CostLedger(calls={t.calls}, tokens={t.total_tokens}, cost_usd={t.cost_usd:.6f})"
