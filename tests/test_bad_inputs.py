"""Crafted or bad inputs get a typed error (a RouteLLMError) or are handled, never a raw
crash: lone surrogates in prompts, non-embedders, misspelt config fields, bad prices,
broken custom routers, a corrupt embedding cache."""

from __future__ import annotations

import math
import os
import re
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from fakes import HashingEmbedder
from routellm_integrations import BaseRouter, Budget, RoutingDecision, RoutingPolicy, load_router
from routellm_integrations.costs import PriceTable
from routellm_integrations.embedders import (CachedEmbedder, InvalidEmbedderError, UnknownEmbedderError,
                                             available_embedders, get_embedder)
from routellm_integrations.embedders._common import scrub_surrogates
from routellm_integrations.embedders.cache import text_key
from routellm_integrations.errors import EmbedderError, InvalidScoreError, PriceTableError, RouteLLMError
from routellm_integrations.routers.features import structural_features

BAD = "caf\udce9 ok?"        # what Python makes of b"caf\xe9 ok?" read with surrogateescape
REPLACED = "caf\ufffd ok?"   # what a tolerant UTF-8 decoder makes of it


# ---------------------------------------------------------------------------- surrogates
def test_scrub_replaces_lone_surrogates_joins_pairs_and_keeps_clean_text():
    assert scrub_surrogates(BAD) == REPLACED
    assert scrub_surrogates(BAD) == b"caf\xe9 ok?".decode("utf-8", "replace")
    assert scrub_surrogates("\ud83d\ude00 \ud800") == "\U0001f600 \ufffd"  # a pair is the emoji it encodes
    clean = "Ünïcödé — 日本語 🙂"
    assert scrub_surrogates(clean) is clean and scrub_surrogates("plain") == "plain"


@pytest.mark.parametrize("name", ["length", "random", "mf", "mf_minilm", "bert", "sw_ranking", "causal_llm"])
def test_every_router_routes_a_prompt_with_a_lone_surrogate(name):
    router = load_router(name)
    scores = router.score([BAD, "fine"])
    assert scores.shape == (2,) and np.all(np.isfinite(scores)) and np.all((0 <= scores) & (scores <= 1))
    if name != "random":  # deterministic routers: the surrogate reads as U+FFFD
        assert scores[0] == pytest.approx(router.score([REPLACED])[0], abs=1e-6)
    decision = router.route(BAD, 0.5)
    assert isinstance(decision, RoutingDecision) and decision.route in ("strong", "weak")


@pytest.mark.parametrize("name", ["wordllama", "minilm-onnx", "minilm-onnx-int8"])
def test_embedders_embed_lone_surrogates_as_the_replacement_character(name):
    emb = get_embedder(name)
    v = emb.embed([BAD, REPLACED])
    assert v.shape == (2, emb.dim) and np.all(np.isfinite(v))
    np.testing.assert_allclose(v[0], v[1], atol=1e-6)


def test_openai_embedder_sends_lone_surrogates_as_utf8(openai_server):
    from routellm_integrations.embedders import OpenAIEmbedder

    emb = OpenAIEmbedder(api_key="sk-test", base_url=openai_server.base_url)
    assert emb.embed([BAD]).shape == (1, emb.dim)
    assert openai_server.requests_to("/v1/embeddings")[-1].json["input"] == [REPLACED]


def test_cache_keys_and_stores_surrogate_texts(tmp_path):
    assert len(text_key(BAD)) == 32  # hashing never raises
    inner = HashingEmbedder()
    with CachedEmbedder(inner, tmp_path / "c.db") as cache:
        first = cache.embed([BAD])
        assert np.array_equal(cache.embed([REPLACED]), first) and inner.calls == 1  # one text, one key
    with CachedEmbedder(HashingEmbedder(), tmp_path / "c.db") as again:
        assert np.array_equal(again.embed([BAD]), first) and again.hits == 1


def test_structural_features_of_a_surrogate_prompt_are_finite():
    f = structural_features([BAD, REPLACED])
    assert np.all(np.isfinite(f)) and np.array_equal(f[0], f[1])


def test_policy_decides_settles_and_swaps_on_a_surrogate_prompt(tmp_path):
    policy = RoutingPolicy("mf", threshold=0.5, store=f"sqlite:///{tmp_path / 'state.db'}",
                           budget=Budget(max_usd=1.0))
    try:
        ticket = policy.decide(BAD, scope="thread-1")
        assert ticket.decision.route in ("strong", "weak") and 0 <= ticket.decision.score <= 1
        policy.settle(ticket, 0.001)
        report = policy.swap_router("length")  # re-calibrates on recent prompts, the surrogate one included
        assert report.new_router == "length" and report.n_prompts == 1
        assert policy.decide(BAD).decision.router == "length"
    finally:
        policy.close()


# ---------------------------------------------------------------------------- embedders
@pytest.mark.parametrize("bad", [5, None, 2.5, object(), ["minilm"], HashingEmbedder()])
def test_get_embedder_refuses_non_names_listing_the_valid_ones(bad):
    with pytest.raises(InvalidEmbedderError) as info:
        get_embedder(bad)
    assert isinstance(info.value, (EmbedderError, TypeError, UnknownEmbedderError))
    assert type(bad).__name__ in str(info.value) and all(n in str(info.value) for n in available_embedders())


@pytest.mark.parametrize("name", ["nosuch", "", "openai:", "openai:m@x"])
def test_get_embedder_unknown_names(name):
    with pytest.raises(UnknownEmbedderError, match="unknown embedder"):
        get_embedder(name)


@pytest.mark.parametrize("bad", [5, object(), 2.5])
def test_load_router_refuses_an_object_that_is_not_an_embedder(bad):
    with pytest.raises(RouteLLMError, match="embedder"):
        load_router("mf", embedder=bad)


# ---------------------------------------------------------------------- config fields
def _routed_llm(**kw):
    from llama_index.core.llms.mock import MockLLM

    from llamaindex_routellm import RoutedLLM
    return RoutedLLM(strong=MockLLM(), weak=MockLLM(), router="length", **kw)


def _lazy(module: str, cls: str):
    """A constructor that imports its class when called (the integrations stay unimported)."""
    def build(**kw):
        import importlib
        return getattr(importlib.import_module(module), cls)(**kw)
    return build


TRAINING = "routellm_integrations.training"
CONFIGS = {
    "Budget": (Budget, {"max_usd": 1.0}, "max_cost"),
    "MFTrainingConfig": (_lazy(f"{TRAINING}.mf", "MFTrainingConfig"), {"epochs": 2}, "epoch"),
    "SWRankingConfig": (_lazy(f"{TRAINING}.sw_ranking", "SWRankingConfig"), {"n_tiers": 4}, "n_tier"),
    "BertTrainingConfig": (_lazy(f"{TRAINING}.bert", "BertTrainingConfig"), {"epochs": 2}, "learning_rate"),
    "CausalLLMTrainingConfig": (_lazy(f"{TRAINING}.causal_llm", "CausalLLMTrainingConfig"), {"epochs": 2}, "epoch"),
    "ServerConfig": (_lazy("routellm_integrations.server.config", "ServerConfig"), {"port": 7000}, "prot"),
    "ChatLocalModel": (_lazy("langchain_routellm.local_chat", "ChatLocalModel"), {"max_tokens": 8}, "max_token"),
    "RoutedLLM": (_routed_llm, {"threshold": 0.5}, "thresold"),
    "LocalLLM": (_lazy("llamaindex_routellm.local_llm", "LocalLLM"), {"max_tokens": 8}, "max_token"),
    "RouteLLMEmbedding": (_lazy("llamaindex_routellm.embeddings", "RouteLLMEmbedding"), {"embed_batch_size": 4},
                          "embed_batch_sise"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_public_configs_refuse_a_misspelt_field_and_name_it(name):
    build, good, misspelt = CONFIGS[name]
    build(**good)  # the correct spelling is accepted
    with pytest.raises(ValidationError, match=misspelt) as info:
        build(**{misspelt: 1.0})
    assert "extra" in str(info.value).lower() or "not permitted" in str(info.value)


# ---------------------------------------------------------------------------- prices
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, -0.01, np.float64("nan")])
@pytest.mark.parametrize("where", ["input", "output", "cache_read"])
def test_bad_prices_are_price_table_errors_naming_the_model(bad, where):
    price = {"input": 1.0, "output": 2.0, where: bad}
    with pytest.raises(PriceTableError, match="my-ft-model"):
        PriceTable({"acme": {"my-ft-model": price}})
    with pytest.raises(PriceTableError, match="my-ft-model.*acme"):
        PriceTable.default().with_prices({"acme": {"my-ft-model": price}})


def test_bad_price_tuple_names_the_model():
    with pytest.raises(PriceTableError, match="'gpt-x'"):
        PriceTable.default().with_prices({"openai": {"gpt-x": (1.0, math.inf)}})
    with pytest.raises(PriceTableError, match="'gpt-y'"):
        PriceTable({"openai": {"gpt-y": (1.0,)}})


# ----------------------------------------------------------------- custom router output
class Custom(BaseRouter):
    name = "my-custom-router"

    def __init__(self, out):
        self.out = out

    def _score(self, prompts):
        return self.out(len(prompts)) if callable(self.out) else self.out


@pytest.mark.parametrize("out, why", [
    ([math.nan], "nan"), ([math.inf], "inf"), ([-math.inf], "inf"), ([1.5], "1.5"), ([-0.2], "-0.2"),
    (lambda n: np.full(n + 1, 0.5), r"shape \(2,\)"), (np.full((1, 2), 0.5), r"shape \(1, 2\)"),
    (np.array([], dtype=float), r"shape \(0,\)"), (["high"], "not an array of numbers"),
    (np.array(["0.5"]), "not an array of numbers"), ([1 + 2j], "not an array of numbers"),
    ([None], "nan"), (object(), "not an array of numbers"), ([[0.1], [0.2, 0.3]], "not an array of numbers"),
])
def test_bad_scores_from_a_custom_router_are_typed_errors_naming_it(out, why):
    router = Custom(out)
    for call in (lambda: router.score(["a prompt"]), lambda: router.route("a prompt", 0.5),
                 lambda: router.route_batch(["a prompt"], 0.5)):
        with pytest.raises(InvalidScoreError, match="my-custom-router") as info:
            call()
        assert isinstance(info.value, ValueError)
        assert re.search(why, str(info.value), re.I)


@pytest.mark.parametrize("out, expected", [
    ([0.25], [0.25]), ([[0.25]], [0.25]), (np.float32(0.25), [0.25]), ([True], [1.0]),
    ([1 + 1e-9], [1.0]), ([-1e-9], [0.0]),  # float rounding is clipped, not an error
])
def test_good_scores_pass_in_any_one_per_prompt_shape(out, expected):
    scores = Custom(out).score(["a prompt"])
    assert scores.dtype == np.float64 and scores.tolist() == expected


# ------------------------------------------------------------------- corrupt cache
def _real_cache(path: Path, n: int = 2000) -> list[str]:
    texts = [f"prompt number {i} " * 8 for i in range(n)]
    with CachedEmbedder(HashingEmbedder(), path) as cache:
        cache.embed(texts)
    return texts


def _fresh_cache_works(path: Path, texts: list[str]) -> None:
    aside = [p for p in path.parent.iterdir() if ".corrupt-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].name.startswith(path.name)
    inner = HashingEmbedder()
    with CachedEmbedder(inner, path) as cache:  # the fresh cache persists what it is given
        assert cache.embed(texts[:3]).shape == (3, inner.dim) and cache.hits == 3


@pytest.mark.parametrize("damage", ["random-bytes", "truncated", "empty-header"])
def test_corrupt_cache_file_is_moved_aside_and_rebuilt_on_open(tmp_path, damage):
    path = tmp_path / "emb.db"
    texts = _real_cache(path)
    data = path.read_bytes()
    path.write_bytes({"random-bytes": os.urandom(20_000), "truncated": data[: len(data) // 3],
                      "empty-header": b"\0" * 100 + data[100:]}[damage])
    inner = HashingEmbedder()
    with pytest.warns(RuntimeWarning, match="corrupt.*moved it to"):
        cache = CachedEmbedder(inner, path)
    with cache:
        assert cache.embed(texts[:3]).shape == (3, inner.dim) and cache.misses == 3
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    _fresh_cache_works(path, texts)


def test_cache_damaged_inside_is_rebuilt_when_a_read_finds_it(tmp_path):
    path = tmp_path / "emb.db"
    texts = _real_cache(path)
    data = path.read_bytes()
    path.write_bytes(data[:8192] + os.urandom(len(data) - 8192))  # schema intact, rows garbage
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache = CachedEmbedder(HashingEmbedder(), path)  # opens: the damage is not visible yet
    with cache, pytest.warns(RuntimeWarning, match="corrupt"):
        assert cache.embed(texts[:5]).shape == (5, 32) and cache.misses == 5
    _fresh_cache_works(path, texts)


def test_a_cache_that_is_only_unwritable_is_an_embedder_error_not_a_rebuild(tmp_path):
    path = tmp_path / "dir-not-file.db"
    path.mkdir()
    with pytest.raises(EmbedderError, match="cannot open embedding cache"):
        CachedEmbedder(HashingEmbedder(), path)
    assert path.is_dir() and not list(tmp_path.glob("*.corrupt-*"))


def test_a_scope_or_key_with_a_lone_surrogate_reaches_every_store(tmp_path) -> None:
    """A thread id or key label from scraped text is kept (as U+FFFD) in SQLite too."""
    from routellm_integrations.budgets import Budget
    from routellm_integrations.costs import PriceTable
    from routellm_integrations.state import CostLedger
    from routellm_integrations.policy import RoutingPolicy, routing_scope
    from routellm_integrations.routing import Backend, CallLifecycle, turn_of
    from routellm_integrations.state import UsageQuery, open_store

    store = open_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    prices = PriceTable({"openai": {"dear": (10.0, 30.0), "cheap": (0.5, 1.5)}})
    policy = RoutingPolicy("length", threshold=0.5, budget=Budget(max_usd=5.0), store=store)
    lc = CallLifecycle(policy, strong=Backend("strong", "dear", "openai"), weak=Backend("weak", "cheap", "openai"),
                       prices=prices, ledger=CostLedger(prices))
    with routing_scope("thread-caf\udce9"):
        with lc.begin(turn_of([("user", "hello")]), api_key="key-\udce9", max_output_tokens=10) as call:
            call.finish({"prompt_tokens": 5, "completion_tokens": 3})
    entries = store.entries(UsageQuery())
    assert [(e.scope, e.api_key) for e in entries] == [("thread-caf\ufffd", "key-\ufffd")]
    store.close()


def test_the_label_store_keeps_a_prompt_with_a_lone_surrogate(tmp_path) -> None:
    from routellm_integrations.labels import LabelStore

    store = LabelStore(tmp_path / "labels.sqlite")
    store.add_verdict("caf\udce9 ok?", "strong", strong_model="gpt-4o", weak_model="gpt-4o-mini", source="judge")
    store.record_call("c1", "caf\udce9 ok?", route="weak", model="gpt-4o-mini", strong_model="gpt-4o",
                      weak_model="gpt-4o-mini")
    labels = store.label_set(strong_model="gpt-4o", weak_model="gpt-4o-mini")
    assert list(labels.prompts) == ["caf\ufffd ok?"]
    store.close()
