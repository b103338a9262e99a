"""routellm_integrations.costs: price resolution, usage formats, the ledger (framework-free)."""

from __future__ import annotations

import threading
import warnings

import pytest

from routellm_integrations.costs import ModelPrice, PriceTable, Usage
from routellm_integrations.state import CostLedger
from routellm_integrations.errors import PriceTableError, UnpricedModelWarning


def test_resolves_snapshots_and_aliases_per_provider():
    t = PriceTable.default()
    assert t.price("gpt-4o-2024-08-06") == t.price("gpt-4o") == ModelPrice(2.5, 10.0, 1.25)
    assert t.price("gpt-4o-2024-05-13").input == 5.0  # an exact snapshot price wins over the family
    assert t.price("claude-3-5-haiku-20241022", "anthropic") == t.price("claude-3-5-haiku-latest")
    assert t.price("gpt-4o-mini").output == 0.60
    assert "claude-sonnet-4-5" in t and "gpt-5" in t and set(t.providers()) == {"anthropic", "openai", "local"}


def test_cost_by_hand_including_cache_reads_and_writes():
    t = PriceTable.default()
    assert t.cost("gpt-4o", Usage(1_000, 500)) == pytest.approx((1_000 * 2.5 + 500 * 10) / 1e6)
    u = Usage(input_tokens=1_000, output_tokens=100, cache_read_tokens=600, cache_write_tokens=200)
    expected = (200 * 0.80 + 600 * 0.08 + 200 * 1.00 + 100 * 4.00) / 1e6
    assert t.cost("claude-3-5-haiku", u, "anthropic") == pytest.approx(expected)


def test_usage_from_langchain_openai_and_anthropic_dicts():
    lc = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15, "input_token_details": {"cache_read": 4}}
    assert Usage.from_dict(lc) == Usage(10, 5, 4, 0)
    oa = {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 3}}
    assert Usage.from_dict(oa) == Usage(10, 5, 3, 0)
    an = {"input_tokens": 6, "output_tokens": 5, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 1}
    assert Usage.from_dict(an) == Usage(10, 5, 3, 1)  # Anthropic's input_tokens excludes the cache
    assert Usage.from_dict({}) is None and Usage.from_dict(None) is None
    with pytest.raises(ValueError):
        Usage(-1, 0)


def test_unknown_model_warns_once_and_is_unpriced():
    t = PriceTable.default()
    with pytest.warns(UnpricedModelWarning, match="mystery-model"):
        assert t.cost("mystery-model", Usage(10, 10)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert t.cost("mystery-model", Usage(10, 10)) is None


def test_override_and_extend_without_mutating_the_default():
    base = PriceTable.default()
    t = base.with_prices({"openai": {"gpt-4o": (1.0, 2.0), "ft:gpt-4o:me": {"input": 3.75, "output": 15.0}},
                          "mistral": {"mistral-large": ModelPrice(2.0, 6.0)}})
    assert t.price("gpt-4o").input == 1.0 and base.price("gpt-4o").input == 2.5
    assert t.cost("ft:gpt-4o:me", Usage(1_000_000, 0)) == pytest.approx(3.75)
    assert t.price("mistral-large", "mistral").output == 6.0
    for bad in ({"openai": {"x": (-1, 2)}}, {"openai": {"x": {"input": 1}}}, {"openai": {"x": "cheap"}}):
        with pytest.raises(PriceTableError):
            PriceTable(bad)


@pytest.mark.filterwarnings("ignore::routellm_integrations.errors.UnpricedModelWarning")
def test_ledger_totals_per_route_and_model_savings_and_failures():
    ledger = CostLedger()
    ledger.record(route="strong", model="gpt-4o", usage=Usage(1000, 100), strong_model="gpt-4o")
    ledger.record(route="weak", model="gpt-4o-mini", usage={"input_tokens": 1000, "output_tokens": 100},
                  strong_model="gpt-4o")
    ledger.record_failure(route="weak", model="gpt-4o-mini")
    s = ledger.summary()
    strong_cost, weak_cost = (1000 * 2.5 + 100 * 10) / 1e6, (1000 * 0.15 + 100 * 0.6) / 1e6
    assert s["calls"] == 2 and s["failed_calls"] == 1 and s["total_tokens"] == 2200
    assert s["cost_usd"] == pytest.approx(strong_cost + weak_cost)
    assert s["savings_usd"] == pytest.approx(strong_cost - weak_cost)
    assert s["by_route"]["weak"]["failed_calls"] == 1 and s["strong_fraction"] == 0.5
    assert ledger.by_model["gpt-4o-mini"].cost_usd == pytest.approx(weak_cost)
    ledger.record(route="weak", model="unknown-x", usage=Usage(5, 5), strong_model="gpt-4o")
    ledger.record(route="weak", model="gpt-4o-mini", usage=None, strong_model="gpt-4o")  # no usage: unpriced
    assert ledger.total.unpriced_calls == 2 and ledger.total.savings_usd is None
    ledger.reset()
    assert ledger.total.calls == 0


def test_ledger_is_thread_safe():
    ledger = CostLedger()

    def work():
        for _ in range(500):
            ledger.record(route="weak", model="gpt-4o-mini", usage=Usage(3, 2), strong_model="gpt-4o")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t = ledger.total
    assert t.calls == 4000 and t.input_tokens == 12000 and t.output_tokens == 8000
    assert t.cost_usd == pytest.approx(4000 * (3 * 0.15 + 2 * 0.6) / 1e6)


def test_costs_module_imports_no_framework():
    import subprocess
    import sys
    code = ("import sys, routellm_integrations.costs; print([m for m in sys.modules "
            "if m.split('.')[0] in ('langchain_core', 'llama_index', 'torch')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
