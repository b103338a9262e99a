"""Prices from genai-prices layered over the in-package table, usage validation, and
pre-priced ledger entries (routellm_integrations.costs; no framework, no network)."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import warnings

import pytest

from routellm_integrations.costs import DEFAULT_PRICES, MAX_TOKENS_PER_CALL, ModelPrice, PriceTable, Usage
from routellm_integrations.state import CostLedger
from routellm_integrations.errors import (InvalidUsageError, LedgerError, PriceTableError, RouteLLMError,
                                          UnpricedModelWarning)

pytest.importorskip("genai_prices")


# -- sources ----------------------------------------------------------------------
@pytest.mark.parametrize("model, provider", [
    ("gemini-1.5-flash", None), ("gemini-1.5-flash", "google_genai"), ("gemini-1.5-flash", "google_vertexai"),
    ("models/gemini-1.5-flash", "google_genai"),
    ("mistral-large-latest", None), ("mistral-large-latest", "mistralai"),
    ("llama-3.1-8b-instant", "groq"), ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "together"),
    ("accounts/fireworks/models/llama-v3p1-8b-instruct", "fireworks"), ("grok-3", "xai"),
])
def test_genai_prices_prices_models_the_table_lacks(model, provider):
    assert model not in {m for ms in DEFAULT_PRICES.values() for m in ms}
    t = PriceTable.default()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnpricedModelWarning)
        p = t.price(model, provider)
    assert isinstance(p, ModelPrice) and p.input > 0 and p.output >= p.input
    assert t.source(model, provider) == "genai-prices"
    assert t.cost(model, Usage(1_000_000, 0), provider) == pytest.approx(p.input)
    if provider is None:  # `in` asks without a provider: genai-prices finds it from the model name
        assert model in t


def test_gemini_and_mistral_prices_match_genai_prices_own_calculation():
    import genai_prices

    t = PriceTable.default()
    for model, gp_provider, provider in (("gemini-1.5-flash", "google", "google_genai"),
                                         ("mistral-large-latest", "mistral", "mistralai")):
        u = Usage(input_tokens=12_000, output_tokens=3_000)
        ref = genai_prices.calc_price(genai_prices.Usage(input_tokens=12_000, output_tokens=3_000), model,
                                      provider_id=gp_provider)
        assert t.cost(model, u, provider) == pytest.approx(float(ref.total_price), rel=1e-9)


def test_cache_prices_come_along_from_genai_prices():
    t = PriceTable.default()
    p = t.price("claude-3-5-haiku-20241022", "anthropic")
    assert t.source("claude-3-5-haiku-20241022", "anthropic") == "genai-prices"
    assert (p.input, p.output, p.cache_read, p.cache_write) == (0.80, 4.00, 0.08, 1.00)
    assert t.price("gemini-1.5-flash").cache_read is not None


def test_table_is_the_fallback_for_models_genai_prices_lacks():
    t = PriceTable.default()
    for provider in ("local", None):
        assert t.price("smollm2-135m-instruct", provider) == ModelPrice(0.0, 0.0)
        assert t.source("smollm2-135m-instruct", provider) == "table"
    assert t.cost("smollm2-135m-instruct", Usage(1000, 1000), "local") == 0.0  # priced $0, not unpriced


def test_provider_names_map_and_local_providers_get_no_genai_guess():
    t = PriceTable.default()
    # a provider genai-prices does not know gets no guess from the model name (a local
    # "ollama" llama is not billed at a cloud provider's rate) ...
    assert t.price("llama-3.1-8b-instant", "ollama", warn=False) is None
    # ... but the in-package table still answers for its own models under any provider
    assert t.source("gpt-4o", "my-proxy") == "table"
    assert t.price("gpt-4o", "anthropic", warn=False) is None  # wrong provider: not priced
    assert t.source("claude-sonnet-4-5", "bedrock") in ("genai-prices", "table")


def test_overrides_win_over_genai_prices_and_the_table():
    base = PriceTable.default()
    t = base.with_prices({"google_genai": {"gemini-1.5-flash": (9.0, 99.0)},
                          "local": {"smollm2-135m-instruct": (1.0, 2.0)},
                          "openai": {"gpt-4o": ModelPrice(1.0, 2.0, 0.5)}})
    assert t.price("gemini-1.5-flash", "google_genai") == ModelPrice(9.0, 99.0)
    assert t.source("gemini-1.5-flash", "google_genai") == "override"
    assert t.price("smollm2-135m-instruct", "local") == ModelPrice(1.0, 2.0)
    assert t.price("gpt-4o-2024-08-06", "openai").input == 1.0  # the family override covers snapshots
    assert t.source("mistral-large-latest") == "genai-prices"  # genai-prices is kept underneath
    assert base.source("gemini-1.5-flash", "google_genai") == "genai-prices"  # base unchanged
    assert t.with_prices({"openai": {"gpt-4o": (3.0, 4.0)}}).price("gpt-4o").input == 3.0


def test_an_explicit_table_is_exactly_that_table():
    t = PriceTable({"scripted": {"big": (10.0, 30.0)}})
    assert t.price("gemini-1.5-flash", warn=False) is None and t.source("gemini-1.5-flash") is None
    assert t.source("big") == "table" and t.providers() == ["scripted"]
    t2 = t.with_prices({"scripted": {"small": (0.5, 1.5)}})
    assert t2.source("small") == "override" and t2.price("gpt-4o", warn=False) is None
    assert t2.models() == ["big", "small"] and t2.as_dict()["scripted"]["small"]["input"] == 0.5


def test_truly_unknown_model_is_unpriced_with_one_warning():
    t = PriceTable.default()
    with pytest.warns(UnpricedModelWarning, match="zz-no-such-model-42") as rec:
        assert t.cost("zz-no-such-model-42", Usage(10, 10)) is None
        assert t.cost("zz-no-such-model-42", Usage(10, 10)) is None
    assert len([w for w in rec if issubclass(w.category, UnpricedModelWarning)]) == 1
    assert t.source("zz-no-such-model-42") is None and "zz-no-such-model-42" not in t


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, -1.0, -1, True, "1.0", None])
def test_bad_prices_are_price_table_errors(bad):
    with pytest.raises(PriceTableError):
        ModelPrice(bad, 1.0)
    with pytest.raises(PriceTableError):
        PriceTable({"p": {"m": (1.0, bad)}})
    with pytest.raises(PriceTableError):
        PriceTable.default().with_prices({"openai": {"m": {"input": bad, "output": 1.0}}})
    if bad is not None:
        with pytest.raises(PriceTableError):
            ModelPrice(1.0, 1.0, cache_read=bad)


def test_cached_cost_lookup_is_fast():
    t = PriceTable.default()
    u = Usage(1200, 300, 100, 0)
    for model, provider in (("gemini-1.5-flash", "google_genai"), ("gpt-4o", "openai"),
                            ("smollm2-135m-instruct", "local")):
        t.cost(model, u, provider)  # warm the cache
        n = 20_000
        start = time.perf_counter()
        for _ in range(n):
            t.cost(model, u, provider)
        per_call = (time.perf_counter() - start) / n
        assert per_call < 50e-6, f"{model}: {per_call * 1e6:.1f} us per cached cost()"


def test_no_network_on_import_default_and_lookups():
    code = """
import socket
def refuse(*a, **k):
    raise AssertionError("network connection attempted")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
import routellm_integrations.costs as c
t = c.PriceTable.default()
assert t.source("gemini-1.5-flash") == "genai-prices", t.source("gemini-1.5-flash")
assert t.cost("mistral-large-latest", c.Usage(10, 10), "mistralai") > 0
import threading
assert not any(th.name.startswith("genai_prices") for th in threading.enumerate())
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# -- usage --------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [1e400, float("nan"), float("-inf"), -5, -0.5, 10**12, MAX_TOKENS_PER_CALL + 1,
                                 "abc", "1e400", "nan", "", [1], {"n": 1}, object(), True])
@pytest.mark.parametrize("field", ["completion_tokens", "prompt_tokens", "input_tokens", "output_tokens"])
def test_usage_from_dict_rejects_bad_counts_with_a_typed_error(bad, field):
    with pytest.raises(InvalidUsageError, match=field) as exc:
        Usage.from_dict({field: bad})
    assert isinstance(exc.value, RouteLLMError) and isinstance(exc.value, ValueError)
    assert not isinstance(exc.value, OverflowError)


def test_usage_from_dict_names_nested_fields_and_value():
    with pytest.raises(InvalidUsageError, match=r"prompt_tokens_details\.cached_tokens.*inf"):
        Usage.from_dict({"prompt_tokens": 10, "completion_tokens": 1,
                         "prompt_tokens_details": {"cached_tokens": 1e400}})
    with pytest.raises(InvalidUsageError, match="cache_read_input_tokens"):
        Usage.from_dict({"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": -3})
    with pytest.raises(InvalidUsageError, match="input_token_details"):
        Usage.from_dict({"input_tokens": 1, "input_token_details": "oops"})
    with pytest.raises(InvalidUsageError):
        Usage.from_dict(["prompt_tokens"])  # not a mapping


def test_usage_from_dict_still_reads_real_usage_dicts():
    oa = {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
          "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
          "completion_tokens_details": {"reasoning_tokens": 10}}
    assert Usage.from_dict(oa) == Usage(120, 30, 64, 0)
    an = {"input_tokens": 6, "output_tokens": 5, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 1,
          "service_tier": "standard"}
    assert Usage.from_dict(an) == Usage(10, 5, 3, 1)
    lc = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
          "input_token_details": {"cache_read": 4, "ephemeral_5m_input_tokens": 2}}
    assert Usage.from_dict(lc) == Usage(10, 5, 4, 2)
    assert Usage.from_dict({"prompt_tokens": 7.0, "completion_tokens": "3", "prompt_tokens_details": None}) \
        == Usage(7, 3, 0, 0)
    assert Usage.from_dict({"input_tokens": None, "output_tokens": 0}) == Usage()
    assert Usage.from_dict({"prompt_tokens": MAX_TOKENS_PER_CALL}).input_tokens == MAX_TOKENS_PER_CALL
    assert Usage.from_dict({}) is None and Usage.from_dict(None) is None and Usage.from_dict({"x": 1}) is None


@pytest.mark.parametrize("bad", [-1, 1.5, 10**12, True, "3", None, math.inf])
def test_usage_constructor_rejects_the_same(bad):
    with pytest.raises(InvalidUsageError, match="output_tokens"):
        Usage(1, bad)


# -- ledger -------------------------------------------------------------------------
def _ledger() -> CostLedger:
    return CostLedger(PriceTable({"p": {"m": (1.0, 1.0)}}))


def test_record_priced_ok_does_not_reprice():
    led = _ledger()
    led.record_priced(route="weak", model="m", usage=Usage(100, 50), cost_usd=0.25, strong_cost_usd=1.0)
    t = led.total
    assert (t.calls, t.failed_calls, t.cached_calls, t.total_tokens) == (1, 0, 0, 150)
    assert t.cost_usd == 0.25 and t.strong_equivalent_usd == 1.0 and t.savings_usd == pytest.approx(0.75)
    assert led.by_route["weak"].calls == 1 and led.by_model["m"].cost_usd == 0.25


@pytest.mark.parametrize("status", ["abandoned", "cut"])
def test_record_priced_stopped_streams_count_as_calls(status):
    led = _ledger()
    led.record_priced(route="strong", model="m", usage=Usage(10, 3), cost_usd=0.01, strong_cost_usd=0.01,
                      status=status)
    t = led.total
    assert (t.calls, t.failed_calls, t.total_tokens, t.cost_usd) == (1, 0, 13, 0.01)


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_record_priced_failed_without_tokens_is_a_failure_only(status):
    led = _ledger()
    led.record_priced(route="weak", model="m", usage=Usage(), cost_usd=None, strong_cost_usd=None, status=status)
    t = led.total
    assert (t.calls, t.failed_calls, t.total_tokens, t.cost_usd, t.unpriced_calls) == (0, 1, 0, 0.0, 0)
    assert t.savings_usd == 0.0 and led.by_route["weak"].failed_calls == 1 and led.by_model["m"].failed_calls == 1


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_record_priced_failed_with_billed_tokens_adds_them(status):
    led = _ledger()
    led.record_priced(route="weak", model="m", usage=Usage(200, 40), cost_usd=0.002, strong_cost_usd=0.02,
                      status=status)
    t = led.total
    assert (t.calls, t.failed_calls, t.input_tokens, t.output_tokens) == (0, 1, 200, 40)
    assert t.cost_usd == 0.002 and t.strong_equivalent_usd == 0.02
    led.record_priced(route="weak", model="m", usage=Usage(5, 5), cost_usd=None, strong_cost_usd=None, status=status)
    assert led.total.unpriced_calls == 1 and led.total.savings_usd is None


def test_record_priced_cached_and_estimated():
    led = _ledger()
    led.record_priced(route="weak", model="m", usage=Usage(999, 999), cost_usd=5.0, strong_cost_usd=5.0,
                      status="cached")
    led.record_priced(route="weak", model="m", usage=Usage(10, 10), cost_usd=0.1, strong_cost_usd=0.2,
                      estimated=True)
    t = led.total
    assert (t.calls, t.cached_calls, t.estimated_calls, t.total_tokens, t.cost_usd) == (1, 1, 1, 20, 0.1)
    d = led.summary()
    assert d["cached_calls"] == 1 and d["estimated_calls"] == 1 and d["by_route"]["weak"]["cached_calls"] == 1
    assert d["strong_fraction"] == 0.0


def test_record_priced_rejects_bad_status_and_costs():
    led = _ledger()
    with pytest.raises(LedgerError, match="status"):
        led.record_priced(route=None, model="m", usage=Usage(), cost_usd=0.0, strong_cost_usd=0.0, status="done")
    for bad in (math.nan, math.inf, -1.0, True):
        with pytest.raises(LedgerError):
            led.record_priced(route=None, model="m", usage=Usage(1, 1), cost_usd=bad, strong_cost_usd=0.0)
    assert led.total.calls == 0


def test_record_and_record_failure_unchanged():
    led = _ledger()
    assert led.record(route="weak", model="m", usage=Usage(500_000, 500_000)) == pytest.approx(1.0)
    led.record_failure(route="weak")
    t = led.total
    assert (t.calls, t.failed_calls, t.cached_calls, t.estimated_calls) == (1, 1, 0, 0)
    assert "m" in led.by_model and led.by_model["m"].failed_calls == 0
