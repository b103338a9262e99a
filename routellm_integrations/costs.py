"""Prices, usage -> dollars, and the totals a ledger adds up. Framework-free.

Both integrations (LangChain, LlamaIndex) price calls with the same :class:`PriceTable`
and read their totals through the same :class:`~routellm_integrations.state.CostLedger`
(a view of the state store every settled call is written to, once)::

    from routellm_integrations.costs import PriceTable, Usage
    from routellm_integrations.state import CostLedger

    prices = PriceTable.default().with_prices({"openai": {"my-ft-model": (3.0, 12.0)}})
    prices.cost("gpt-4o", Usage(input_tokens=1200, output_tokens=300))   # 0.006
    prices.source("gemini-1.5-flash")                                     # "genai-prices"
    ledger = CostLedger(prices)
    ledger.record(route="weak", model="claude-3-5-haiku-20241022", usage=Usage(1200, 300),
                  strong_model="gpt-4o")
    ledger.summary()["savings_usd"]

Prices are USD per million tokens, keyed by provider (LangChain's ``ls_provider``
names: ``"openai"``, ``"anthropic"``, ``"google_genai"``, ``"mistralai"``, ...) and model.
:meth:`PriceTable.default` layers three sources, first match wins:

1. overrides given with :meth:`PriceTable.with_prices` (negotiated rates, fine-tunes);
2. the `genai-prices <https://pypi.org/project/genai-prices/>`_ data bundled in that
   package (OpenAI, Anthropic, Google, Mistral, Groq, Together, Fireworks, Bedrock, Azure,
   DeepSeek, xAI, ... list prices). Only the data shipped inside the installed package is
   read: its background auto-updater (``genai_prices.UpdatePrices``, which downloads
   prices from GitHub) is never started here, so pricing never touches the network;
3. the in-package :data:`DEFAULT_PRICES` table (OpenAI, Anthropic and the free local
   models), used where genai-prices has no price or is not installed.

A model no source knows is reported as *unpriced* (cost ``None``) with one
:class:`UnpricedModelWarning` per model, never as $0. A ``PriceTable(prices)`` built from
an explicit mapping holds exactly those prices (no genai-prices layer).
"""

from __future__ import annotations

import math
import numbers
import re
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal, get_args

from .errors import InvalidUsageError, LedgerError, PriceTableError, UnpricedModelWarning

__all__ = ["LedgerTotals", "ModelPrice", "PriceTable", "Usage", "DEFAULT_PRICES",
           "MAX_TOKENS_PER_CALL", "PriceSource", "LEDGER_STATUSES"]

#: The most tokens (of any one kind) a single call may report; anything above is treated
#: as a corrupt usage report (:class:`InvalidUsageError`), not billed.
MAX_TOKENS_PER_CALL = 100_000_000

PriceSource = Literal["override", "genai-prices", "table"]


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
            if (isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or math.isinf(v)
                    or v < 0):
                raise PriceTableError(f"price {name!r} must be a finite, non-negative number of USD per "
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
    Reasoning tokens are part of ``output_tokens``.

    Every count is an ``int`` in ``[0, MAX_TOKENS_PER_CALL]``; anything else raises
    :class:`~routellm_integrations.errors.InvalidUsageError` (a ``ValueError``)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v > MAX_TOKENS_PER_CALL:
                raise InvalidUsageError(f"{name} must be an int in [0, {MAX_TOKENS_PER_CALL}] "
                                        f"(MAX_TOKENS_PER_CALL), got {v!r}")

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
        ``cache_creation_input_tokens``). ``None`` when ``d`` holds no token counts.

        A missing, ``None`` or zero count is 0. Ints, integral or fractional floats
        (truncated) and numeric strings are read; a count that is not a number (junk
        strings, lists, booleans, ...), not finite (``inf``, ``nan``), negative, or above
        :data:`MAX_TOKENS_PER_CALL` raises :class:`InvalidUsageError` naming the field and
        the value, so a corrupt usage report can never surface as a raw ``OverflowError``."""
        if not d:
            return None
        if not isinstance(d, Mapping):
            raise InvalidUsageError(f"usage must be a mapping of token counts, got {type(d).__name__}: {d!r:.200}")

        def num(x: Any, field: str) -> int:
            return _token_count(x, field)

        def details_of(key: str) -> Mapping[str, Any]:
            v = d.get(key)
            if v is None:
                return {}
            if not isinstance(v, Mapping):
                raise InvalidUsageError(f"usage field {key!r} must be a mapping, got {type(v).__name__}: {v!r:.200}")
            return v

        if "prompt_tokens" in d or "completion_tokens" in d:  # OpenAI wire format
            details = details_of("prompt_tokens_details")
            return cls(num(d.get("prompt_tokens"), "prompt_tokens"),
                       num(d.get("completion_tokens"), "completion_tokens"),
                       num(details.get("cached_tokens"), "prompt_tokens_details.cached_tokens"), 0)
        if "cache_read_input_tokens" in d or "cache_creation_input_tokens" in d:  # Anthropic wire format
            read = num(d.get("cache_read_input_tokens"), "cache_read_input_tokens")
            write = num(d.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
            return cls(num(d.get("input_tokens"), "input_tokens") + read + write,
                       num(d.get("output_tokens"), "output_tokens"), read, write)
        if "input_tokens" in d or "output_tokens" in d:  # LangChain usage_metadata
            details = details_of("input_token_details")
            write = num(details.get("cache_creation"), "input_token_details.cache_creation")
            if not write:
                write = (num(details.get("ephemeral_5m_input_tokens"), "input_token_details.ephemeral_5m_input_tokens")
                         + num(details.get("ephemeral_1h_input_tokens"),
                               "input_token_details.ephemeral_1h_input_tokens"))
            return cls(num(d.get("input_tokens"), "input_tokens"), num(d.get("output_tokens"), "output_tokens"),
                       num(details.get("cache_read"), "input_token_details.cache_read"), write)
        return None


def _token_count(x: Any, field: str) -> int:
    """One reported token count as an int in [0, MAX_TOKENS_PER_CALL]; None -> 0."""
    if x is None:
        return 0
    value: Any = x
    if isinstance(x, str):
        s = x.strip()
        try:
            value = int(s)
        except ValueError:
            try:
                value = float(s)
            except ValueError:
                raise InvalidUsageError(f"usage field {field!r} is not a number: {x!r:.200}") from None
    elif isinstance(x, bool) or not isinstance(x, (numbers.Real, Decimal)):
        raise InvalidUsageError(f"usage field {field!r} must be a number of tokens, got "
                                f"{type(x).__name__}: {x!r:.200}")
    if not isinstance(value, numbers.Integral):
        try:
            f = float(value)
        except (TypeError, ValueError, OverflowError):
            raise InvalidUsageError(f"usage field {field!r} is not a usable number: {x!r:.200}") from None
        if not math.isfinite(f):
            raise InvalidUsageError(f"usage field {field!r} is not finite: {x!r:.200}")
        value = f
    if value < 0:
        raise InvalidUsageError(f"usage field {field!r} is negative: {x!r:.200}")
    if value > MAX_TOKENS_PER_CALL:
        raise InvalidUsageError(f"usage field {field!r} is {x!r:.200}, above MAX_TOKENS_PER_CALL "
                                f"({MAX_TOKENS_PER_CALL}): not a plausible count for one call")
    return int(value)


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


# LangChain ``ls_provider`` (and LlamaIndex provider) names -> genai-prices provider ids, where
# genai-prices' own provider matching (``find_provider_by_id``) would not find the right one.
# Names not listed are looked up in genai-prices as they are ("openai", "anthropic", "groq",
# "together", "fireworks", "deepseek", "cohere", "perplexity", "openrouter", "azure", ...).
_GENAI_PROVIDER_IDS: dict[str, str] = {
    "google_genai": "google", "google_vertexai": "google", "google_anthropic_vertex": "google",
    "vertex": "google", "vertexai": "google", "gemini": "google", "google": "google",
    "mistralai": "mistral", "mistral": "mistral",
    "fireworks": "fireworks", "fireworks_ai": "fireworks", "fireworks-ai": "fireworks", "fireworksai": "fireworks",
    "together": "together", "together_ai": "together", "together-ai": "together", "togetherai": "together",
    "xai": "x-ai", "x-ai": "x-ai",
    "bedrock": "aws", "amazon_bedrock": "aws", "bedrock_converse": "aws", "aws": "aws",
    "azure": "azure", "azure_openai": "azure", "azure_ai": "azure",
    "moonshot": "moonshotai", "moonshotai": "moonshotai",
    "litellm": "litellm",  # genai-prices reads the provider from a "provider/model" ref
}
# Seconds a genai-prices price stays cached when the model's price depends on the date or
# time of day (genai-prices ConditionalPrice); static prices are cached for good.
_TIME_DEPENDENT_TTL_S = 300.0
_CACHE_LIMIT = 4096
_NEVER = math.inf


def _as_float(v: Any) -> float | None:
    """A genai-prices price (Decimal, or TieredPrices whose ``base`` is the first tier)."""
    if v is None:
        return None
    v = getattr(v, "base", v)  # TieredPrices -> its base (below the first threshold) price
    return float(v)


class _GenaiPrices:
    """Read-only access to the price data bundled in the installed genai-prices package.

    Uses a private ``DataSnapshot`` over ``genai_prices.data.providers``, so neither a
    ``genai_prices.UpdatePrices`` started elsewhere in the process nor a custom snapshot can
    change what we read, and nothing here ever fetches (this module never starts the
    updater). Loaded lazily on the first lookup (~0.1 s); if the package is missing or its
    internals differ, genai-prices is simply treated as knowing no model."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self._snapshot: Any = None
        self._find_provider_by_id: Any = None
        self._providers: dict[str, str | None] = {}
        self._cache: dict[tuple[str | None, str], tuple[ModelPrice | None, float]] = {}

    def _load(self) -> Any:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    try:
                        from genai_prices import data as gp_data
                        from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id

                        self._snapshot = DataSnapshot(providers=gp_data.providers, from_auto_update=False)
                        self._find_provider_by_id = find_provider_by_id
                    except Exception:  # noqa: BLE001 - not installed, or an incompatible version
                        self._snapshot = None
                    self._loaded = True
        return self._snapshot

    @property
    def available(self) -> bool:
        return self._load() is not None

    def provider_id(self, provider: str | None) -> str | None:
        """genai-prices' id for a LangChain/LlamaIndex provider name; ``None`` if it has none."""
        if provider is None or self._load() is None:
            return None
        if provider in self._providers:
            return self._providers[provider]
        pid = _GENAI_PROVIDER_IDS.get(provider)
        if pid is None:
            try:
                found = self._find_provider_by_id(self._snapshot.providers, provider)
                pid = found.id if found is not None else None
            except Exception:  # noqa: BLE001
                pid = None
        self._providers[provider] = pid
        return pid

    def price(self, model: str, provider: str | None) -> tuple[ModelPrice | None, float]:
        """``(price, expires)``: the price genai-prices gives ``model`` now (or ``None``)
        and the ``time.monotonic()`` until which it may be cached.

        ``provider`` is a LangChain/LlamaIndex provider name: mapped to genai-prices' id;
        a provider genai-prices does not know (``"local"``, ``"ollama"``, ``"huggingface"``,
        a custom proxy) gets no genai-prices price at all, rather than a guess from the model
        name. With ``provider=None`` genai-prices picks the provider from the model name."""
        snapshot = self._load()
        if snapshot is None:
            return (None, _NEVER)
        pid = self.provider_id(provider) if provider is not None else None
        if provider is not None and pid is None:
            return (None, _NEVER)
        key = (pid, model)
        hit = self._cache.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit
        price, expires = None, _NEVER
        refs = [model]
        base = model.rsplit("/", 1)[-1]
        if base and base != model:
            refs.append(base)
        for ref in refs:
            try:
                with self._lock:  # genai-prices' own lookup caches are plain dicts
                    _, info = snapshot.find_provider_model(ref, None, pid, None)
                gp = info.get_prices(datetime.now(tz=timezone.utc))
                inp, outp = _as_float(getattr(gp, "input_mtok", None)), _as_float(getattr(gp, "output_mtok", None))
                if inp is None or outp is None:  # e.g. an audio/embedding-only price: not a chat price
                    continue
                price = ModelPrice(inp, outp, _as_float(getattr(gp, "cache_read_mtok", None)),
                                   _as_float(getattr(gp, "cache_write_mtok", None)))
                if isinstance(getattr(info, "prices", None), list):  # date/time-dependent prices
                    expires = time.monotonic() + _TIME_DEPENDENT_TTL_S
                break
            except Exception:  # noqa: BLE001 - LookupError (unknown), malformed data: not priced here
                continue
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = out = (price, expires)
        return out


_GENAI = _GenaiPrices()


def _normalize(prices: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, ModelPrice]]:
    out: dict[str, dict[str, ModelPrice]] = {}
    if prices is not None and not isinstance(prices, Mapping):
        raise PriceTableError(f"prices must be a mapping of provider -> {{model: price}}, got {prices!r:.200}")
    for provider, models in (prices or {}).items():
        if not isinstance(models, Mapping):
            raise PriceTableError(f"prices for provider {provider!r} must be a mapping of model -> price")
        out.setdefault(str(provider).lower(), {}).update({str(m): _price_of(provider, m, v) for m, v in models.items()})
    return out


def _price_of(provider: Any, model: Any, value: Any) -> ModelPrice:
    """``ModelPrice.coerce(value)``, its error naming the provider and model it was for."""
    try:
        return ModelPrice.coerce(value)
    except PriceTableError as exc:
        raise PriceTableError(f"price of model {str(model)!r} (provider {str(provider)!r}): {exc}") from None


def _lookup_in(layer: dict[str, dict[str, ModelPrice]], model: str, provider: str | None) -> ModelPrice | None:
    """Exact names first, then dated snapshots / ``-latest`` aliases to their family; only
    ``provider``'s models when the layer has that provider, else every provider's."""
    if not layer:
        return None
    tables = [layer[provider]] if provider and provider in layer else list(layer.values())
    for name in _candidates(model):
        for table in tables:
            if name in table:
                return table[name]
    return None


class PriceTable:
    """Per-million-token prices keyed by ``(provider, model)``; immutable, cheap to copy.

    :meth:`default` resolves a model through three layers, first match wins: overrides
    (:meth:`with_prices`), the data bundled in genai-prices, the in-package
    :data:`DEFAULT_PRICES`. ``PriceTable(prices)`` holds exactly ``prices`` (no genai-prices
    layer), which keeps tables built for tests deterministic.

    Within the override and table layers, ``price(model, provider)`` resolves exact names
    first, then dated snapshots and ``-latest`` aliases to their family; with
    ``provider=None`` every provider is searched. genai-prices does its own model matching
    (aliases, dated snapshots, ``provider/model`` refs). Unknown models return ``None`` and
    warn once per table. Lookups are cached per ``(provider, model)``.

    genai-prices prices that depend on the prompt size (tiers, e.g. Gemini above 128k/200k
    tokens) are taken at their *base* tier, and date/time-dependent prices at the current
    time (re-read every few minutes); batch and service-tier variants are not applied.
    """

    def __init__(self, prices: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._setup(_normalize(prices), {}, genai=False)

    def _setup(self, table: dict[str, dict[str, ModelPrice]], overrides: dict[str, dict[str, ModelPrice]],
               *, genai: bool) -> None:
        self._prices = table          # the base table (DEFAULT_PRICES for .default())
        self._overrides = overrides   # with_prices(...) on top
        self._genai = genai           # genai-prices between the two
        self._warned: set[tuple[str | None, str]] = set()
        self._lock = threading.Lock()
        self._resolved: dict[tuple[str | None, str], tuple[ModelPrice | None, str | None, float]] = {}

    @classmethod
    def _layered(cls, table: dict[str, dict[str, ModelPrice]], overrides: dict[str, dict[str, ModelPrice]],
                 *, genai: bool) -> "PriceTable":
        obj = cls.__new__(cls)
        obj._setup(table, overrides, genai=genai)
        return obj

    @classmethod
    def default(cls) -> "PriceTable":
        """genai-prices' bundled list prices over the shipped :data:`DEFAULT_PRICES` (OpenAI,
        Anthropic, the free local models). Never fetches prices from the network."""
        return cls._layered({p: dict(m) for p, m in DEFAULT_PRICES.items()}, {}, genai=True)

    def with_prices(self, prices: Mapping[str, Mapping[str, Any]]) -> "PriceTable":
        """A new table with ``prices`` on top, overriding every other source
        (``{provider: {model: price}}``, a price being ``(input, output)``, a mapping, or a
        :class:`ModelPrice`). The sources underneath (genai-prices, the table) are kept."""
        merged = {p: dict(m) for p, m in self._overrides.items()}
        for provider, models in _normalize(prices).items():
            merged.setdefault(provider, {}).update(models)
        return PriceTable._layered(self._prices, merged, genai=self._genai)

    def _layers(self) -> dict[str, dict[str, ModelPrice]]:
        """The explicit prices (table with overrides on top): what providers/models/as_dict list."""
        merged = {p: dict(m) for p, m in self._prices.items()}
        for p, ms in self._overrides.items():
            merged.setdefault(p, {}).update(ms)
        return merged

    def providers(self) -> list[str]:
        """Providers with explicit prices (overrides and table; genai-prices' are not listed)."""
        return sorted(self._layers())

    def models(self, provider: str | None = None) -> list[str]:
        """Models with explicit prices (overrides and table; genai-prices' are not listed)."""
        layers = self._layers()
        if provider is not None:
            return sorted(layers.get(provider.lower(), {}))
        return sorted({m for ms in layers.values() for m in ms})

    def as_dict(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """The explicit prices (overrides over table) as plain dicts."""
        return {p: {m: {"input": v.input, "output": v.output, "cache_read": v.cache_read,
                        "cache_write": v.cache_write} for m, v in ms.items()}
                for p, ms in self._layers().items()}

    def price(self, model: str, provider: str | None = None, *, warn: bool = True) -> ModelPrice | None:
        """The price of ``model`` (``None`` if unknown: warns once unless ``warn=False``).

        From genai-prices, tiered prices are the base tier and time-dependent prices those
        in force now (see the class docstring)."""
        found = self._resolve(model, provider)[0]
        if found is None and warn:
            key = (provider.lower() if isinstance(provider, str) and provider else None, str(model))
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

    def source(self, model: str, provider: str | None = None) -> PriceSource | None:
        """Where ``model``'s price comes from: ``"override"`` (:meth:`with_prices`),
        ``"genai-prices"``, ``"table"`` (:data:`DEFAULT_PRICES` or the mapping this table
        was built from), or ``None`` when unpriced. Never warns."""
        return self._resolve(model, provider)[1]  # type: ignore[return-value]

    def _resolve(self, model: Any, provider: Any) -> tuple[ModelPrice | None, str | None, float]:
        if not isinstance(model, str) or not model:
            return (None, None, _NEVER)
        prov = provider.lower() if isinstance(provider, str) and provider else None
        key = (prov, model)
        hit = self._resolved.get(key)
        if hit is not None and hit[2] > time.monotonic():
            return hit
        expires = _NEVER
        found = _lookup_in(self._overrides, model, prov)
        src: str | None = "override" if found is not None else None
        if found is None and self._genai:
            found, expires = _GENAI.price(model, prov)
            if found is not None:
                src = "genai-prices"
        if found is None:
            found = _lookup_in(self._prices, model, prov)
            src = "table" if found is not None else None
        out = (found, src, expires)
        if len(self._resolved) >= _CACHE_LIMIT:
            self._resolved.clear()
        self._resolved[key] = out
        return out

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
        return isinstance(model, str) and self._resolve(model, None)[0] is not None

    def __repr__(self) -> str:
        n = sum(len(m) for m in self._layers().values())
        extra = " + genai-prices" if self._genai else ""
        return f"PriceTable({n} models{extra}, providers={self.providers()})"


#: How a call ended, as the ledgers (in memory and in a state store) count it.
#: ``escalated``: the call completed and was billed, but its answer failed an escalation
#: check and the call was re-sent to the next model up (which has its own entry)
LedgerStatus = Literal["ok", "failed", "cancelled", "abandoned", "cut", "cached", "escalated"]
#: The statuses :meth:`CostLedger.record_priced` accepts.
LEDGER_STATUSES: tuple[str, ...] = get_args(LedgerStatus)


def check_usd(name: str, value: Any) -> float | None:
    """``value`` as a USD amount: ``None`` (unpriced) or a finite, non-negative number;
    anything else is a :class:`~routellm_integrations.errors.LedgerError` naming ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise LedgerError(f"{name} must be None (unpriced) or a finite, non-negative USD amount, got {value!r}")
    return float(value)


@dataclass
class LedgerTotals:
    """Totals over a set of calls. ``cost_usd`` sums the priced calls only;
    ``unpriced_calls`` counts the rest (their tokens are still in the token totals).

    ``calls`` counts calls that reached a backend and completed (``ok``, or a stream that
    was ``abandoned``/``cut`` after it started); ``failed_calls`` those that failed or were
    cancelled (their tokens and dollars are in the totals when the provider billed some);
    ``cached_calls`` answers served from a cache (no tokens, $0, not in ``calls``);
    ``escalated_calls`` completed calls whose answer failed a check and went to the next
    model up (billed, and in ``calls``); ``estimated_calls`` the entries whose usage was
    estimated rather than reported."""

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
    cached_calls: int = 0
    estimated_calls: int = 0
    escalated_calls: int = 0

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

    def add_call(self, status: str, usage: Usage, cost: float | None, strong_cost: float | None,
                 estimated: bool = False) -> None:
        """One settled call. A cache hit, or a failure that billed no tokens, adds no tokens
        and no dollars (and is not unpriced)."""
        billed = status != "cached" and (status not in ("failed", "cancelled") or bool(
            usage.input_tokens or usage.output_tokens or usage.cache_read_tokens or usage.cache_write_tokens))
        if not billed:
            usage, cost, strong_cost = Usage(), 0.0, 0.0
        self.add_group(status, 1, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                       cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens,
                       cost_usd=cost or 0.0, unpriced=int(cost is None), strong_usd=strong_cost or 0.0,
                       strong_unpriced=int(strong_cost is None), estimated=int(estimated))

    def add_group(self, status: str, n: int, *, input_tokens: int = 0, output_tokens: int = 0,
                  cache_read_tokens: int = 0, cache_write_tokens: int = 0, cost_usd: float = 0.0, unpriced: int = 0,
                  strong_usd: float = 0.0, strong_unpriced: int = 0, estimated: int = 0) -> None:
        """``n`` settled calls of one status at once, with the sums over the billed ones (a
        store aggregating in its query language adds what :meth:`add_call` adds one by one)."""
        self.estimated_calls += estimated
        if status == "cached":
            self.cached_calls += n
            return
        if status in ("failed", "cancelled"):
            self.failed_calls += n
        else:
            self.calls += n
        if status == "escalated":
            self.escalated_calls += n
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cache_read_tokens += cache_read_tokens
        self.cache_write_tokens += cache_write_tokens
        self.cost_usd += cost_usd
        self.unpriced_calls += unpriced
        self.strong_equivalent_usd += strong_usd
        self.strong_equivalent_unpriced += strong_unpriced

    def add_entry(self, e: Any) -> None:
        """One ledger entry (:class:`routellm_integrations.state.LedgerEntry`)."""
        self.add_call(e.status, Usage(input_tokens=e.input_tokens, output_tokens=e.output_tokens,
                                      cache_read_tokens=e.cache_read_tokens, cache_write_tokens=e.cache_write_tokens),
                      e.cost_usd, e.strong_cost_usd, e.estimated)

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "failed_calls": self.failed_calls,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "total_tokens": self.total_tokens, "cache_read_tokens": self.cache_read_tokens,
                "cache_write_tokens": self.cache_write_tokens, "cost_usd": self.cost_usd,
                "unpriced_calls": self.unpriced_calls, "strong_equivalent_usd": self.strong_equivalent_usd,
                "savings_usd": self.savings_usd, "cached_calls": self.cached_calls,
                "estimated_calls": self.estimated_calls, "escalated_calls": self.escalated_calls}
