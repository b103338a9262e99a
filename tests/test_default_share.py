"""What a user gets with no threshold: a held share of strong calls on any traffic, and a
router that scores the two models it routes between.

Each surface (RoutedChat, RoutedLLM, the routed client behind the server) is built with
defaults only, over real HTTP to the local OpenAI-format server, and fed 300-prompt
streams of one kind each (chat, maths, multiple choice). A fixed threshold sends a
different share of each kind strong; the default holds 30% on every one, and every
record says so (``strong_fraction``) and names the pair it scored.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from langchain_openai import ChatOpenAI
from traffic import STREAMS

from langchain_routellm import RoutedChat
from routellm_integrations import RoutingPolicy, load_router
from routellm_integrations.calibration import reference_prompts, reference_threshold
from routellm_integrations.policy import DEFAULT_STRONG_FRACTION
from routellm_integrations.routers.pair import UnscoredPairWarning, score_pair

STRONG, WEAK = "gpt-4o", "gpt-4o-mini"
PAIR = ["gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"]  # the checkpoint's names for them
N = 300
TOLERANCE = 0.05  # 300 calls: the controller's share settles within a few points of its target


def _chat(openai_server, **kw):
    def model(name):
        return ChatOpenAI(model=name, base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    return RoutedChat(strong=model(STRONG), weak=model(WEAK), **kw)


@pytest.mark.parametrize("kind", sorted(STREAMS))
def test_routedchat_defaults_hold_the_documented_share_on_each_kind_of_traffic(kind, openai_server):
    llm = _chat(openai_server)
    records = [llm.invoke(p).response_metadata["routellm"] for p in STREAMS[kind](N, seed=7)]
    share = np.mean([r["route"] == "strong" for r in records])
    assert abs(share - DEFAULT_STRONG_FRACTION) <= TOLERANCE, f"{kind}: {share:.3f} strong"
    assert all(r["strong_fraction"] == DEFAULT_STRONG_FRACTION for r in records)
    assert all(r["scored_pair"] == PAIR and r["scored_pair_source"] == "backends" for r in records)
    # the backend really answered what the record says
    served = [req.json["model"] for req in openai_server.requests_to("/v1/chat/completions")]
    assert served == [STRONG if r["route"] == "strong" else WEAK for r in records]


def test_routedllm_defaults_hold_the_share_and_name_the_pair(openai_server):
    from llama_index.llms.openai import OpenAI

    from llamaindex_routellm import RoutedLLM

    def model(name):
        return OpenAI(model=name, api_base=openai_server.base_url, api_key="sk-test", max_retries=0)

    llm = RoutedLLM(strong=model(STRONG), weak=model(WEAK))
    assert llm.strong_fraction == DEFAULT_STRONG_FRACTION and llm.threshold is None
    records = [llm.complete(p).additional_kwargs["routellm"] for p in STREAMS["maths"](N, seed=3)]
    share = np.mean([r["route"] == "strong" for r in records])
    assert abs(share - DEFAULT_STRONG_FRACTION) <= TOLERANCE, share
    assert {tuple(r["scored_pair"]) for r in records} == {tuple(PAIR)}


def test_the_routed_client_default_model_name_holds_the_share(openai_server):
    from routellm_integrations.client import RoutedClient

    with RoutedClient(f"openai:{STRONG}", f"openai:{WEAK}", openai_base_url=openai_server.base_url,
                      openai_api_key="sk-test") as client:
        replies = [client.chat.completions.create(model="router-mf", messages=[{"role": "user", "content": p}])
                   for p in STREAMS["multiple_choice"](N, seed=5)]
    share = np.mean([r.routellm["route"] == "strong" for r in replies])
    assert abs(share - DEFAULT_STRONG_FRACTION) <= TOLERANCE, share
    assert all(r.routellm["strong_fraction"] == DEFAULT_STRONG_FRACTION for r in replies)
    assert all(r.routellm["scored_pair"] == PAIR for r in replies)


def test_the_share_starts_right_from_the_reference_mix():
    """Before 10 calls the controller has no traffic of its own: it starts from the
    threshold that sends the default share of the reference mix strong."""
    policy = RoutingPolicy("mf")
    policy.score_pair(STRONG, WEAK)
    router = policy.router
    assert policy.threshold == pytest.approx(reference_threshold(router, DEFAULT_STRONG_FRACTION))
    assert np.mean(router.score(list(reference_prompts())) >= policy.threshold) == pytest.approx(
        DEFAULT_STRONG_FRACTION, abs=0.01)


def test_the_router_scores_the_pair_it_routes():
    default = load_router("mf")
    paired = score_pair(default, "openai/gpt-4o", "gpt-4o-mini")
    assert paired.pair == [default.resolve_model("gpt-4o"), PAIR[1]] and paired.source == "backends"
    prompts = ["Prove that there are infinitely many primes.", "Hi! How are you today?"]
    assert not np.allclose(paired.router.score(prompts), default.score(prompts))
    assert np.allclose(paired.router.score(prompts),
                       load_router("mf", strong_model=PAIR[0], weak_model=PAIR[1]).score(prompts))
    # a dated snapshot the checkpoint lacks resolves to the nearest one it has
    assert score_pair(default, "gpt-4o-2024-11-20", "gpt-4o-mini").pair == ["gpt-4o-2024-08-06", PAIR[1]]


def test_an_unknown_backend_model_falls_back_to_the_default_pair_with_one_warning():
    router = load_router("mf")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = score_pair(router, "gpt-4o", "my-finetuned-llama-unknown")
        second = score_pair(router, "gpt-4o", "my-finetuned-llama-unknown")
    pair_warnings = [w for w in caught if issubclass(w.category, UnscoredPairWarning)]
    assert len(pair_warnings) == 1 and "my-finetuned-llama-unknown" in str(pair_warnings[0].message)
    assert first.pair == second.pair == [router.strong_model, router.weak_model]
    assert first.source == "default" and first.router is router


def test_router_options_and_explicit_router_objects_keep_their_pair(openai_server):
    llm = _chat(openai_server, router_options={"strong_model": "claude-3-opus-20240229",
                                               "weak_model": "llama-3-8b-instruct"})
    rec = llm.invoke("What is 2+2?").response_metadata["routellm"]
    assert rec["scored_pair"] == ["claude-3-opus-20240229", "llama-3-8b-instruct"]
    assert rec["scored_pair_source"] == "router_options"
    chosen = load_router("mf", strong_model="gpt-4-0314", weak_model="gemma-2-9b-it")
    rec = _chat(openai_server, router=chosen).invoke("What is 2+2?").response_metadata["routellm"]
    assert rec["scored_pair"] == ["gpt-4-0314", "gemma-2-9b-it"] and rec["scored_pair_source"] == "router"


def test_a_fixed_threshold_is_kept_and_says_it_holds_no_share(openai_server):
    rec = _chat(openai_server, threshold=0.5).invoke("What is 2+2?").response_metadata["routellm"]
    assert rec["threshold"] == 0.5 and rec["strong_fraction"] is None
