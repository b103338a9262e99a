"""A new router end to end from one router file (tests/toy/router.py), one trainer file
(tests/toy/trainer.py) and one registry entry: trained by name through the one pipeline,
saved atomically with a card, loaded by name and from its folder, and served by the
policy, LangChain's RoutedChat and the framework-free client, with no other change."""

from __future__ import annotations

import json

import numpy as np
import pytest
from toy.router import ToyRouter

from routellm_integrations.data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL
from routellm_integrations.routers import load_router
from routellm_integrations.routers.registry import (RouterSpec, available_routers, register_router,
                                                    trainable_routers, unregister_router)

LONG = "Prove that there are infinitely many primes, and then show every step of the argument in full. " * 3
SHORT = "hi friend"


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path / "cache"))
    rows = ["prompt,model_a,model_b,winner"]
    for i in range(100):
        rows.append(f"\"{LONG} ({i})\",{DEFAULT_STRONG_MODEL},{DEFAULT_WEAK_MODEL},a")
        rows.append(f"\"{SHORT} {i}\",{DEFAULT_WEAK_MODEL},{DEFAULT_STRONG_MODEL},tie")
    battles = tmp_path / "battles.csv"
    battles.write_text("\n".join(rows) + "\n")
    register_router(RouterSpec("toy", "toy.router:ToyRouter", trainer="toy.trainer:TRAINER"))
    yield battles
    unregister_router("toy")


def test_a_new_router_is_one_file_one_trainer_one_entry(toy, tmp_path) -> None:
    from fakes import HashingEmbedder

    from routellm_integrations.training.pipeline import train

    assert "toy" in available_routers() and "toy" in trainable_routers()
    out = train("toy", out=tmp_path / "toy", sources=(), battles_files=[toy], reference_embedder=HashingEmbedder(64),
                evaluate=False, progress=False, scale=0.25)
    assert {p.name for p in out.iterdir()} == {"config.json", "README.md"}
    config = json.loads((out / "config.json").read_text())
    assert config["router"] == "toy" and config["scale"] == 0.25
    assert "Toy router: strong above log length" in (out / "README.md").read_text()

    router = load_router(out)  # the folder's config names the kind; the registry finds the class
    assert isinstance(router, ToyRouter)
    long_score, short_score = router.score([LONG, SHORT])
    assert long_score > 0.9 and short_score < 0.1

    unregister_router("toy")
    register_router(RouterSpec("toy", ToyRouter, checkpoint=out, trainer="toy.trainer:TRAINER"))
    assert np.allclose(load_router("toy").score([LONG, SHORT]), [long_score, short_score])

    from routellm_integrations.policy import RoutingPolicy

    policy = RoutingPolicy("toy", threshold=0.5)
    assert [policy.decide(p).decision.route for p in (LONG, SHORT)] == ["strong", "weak"]


def test_the_integrations_serve_it_by_name(toy, tmp_path, openai_server) -> None:
    from fakes import HashingEmbedder
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI

    from langchain_routellm import RoutedChat
    from routellm_integrations.client import RoutedClient
    from routellm_integrations.training.pipeline import train

    out = train("toy", out=tmp_path / "toy", sources=(), battles_files=[toy], reference_embedder=HashingEmbedder(64),
                evaluate=False, validate=False, progress=False)
    unregister_router("toy")
    register_router(RouterSpec("toy", ToyRouter, checkpoint=out))

    def chat(model: str) -> ChatOpenAI:
        return ChatOpenAI(model=model, base_url=openai_server.base_url, api_key="sk-test", max_retries=0)

    llm = RoutedChat(strong=chat("gpt-4o"), weak=chat("gpt-4o-mini"), router="toy", threshold=0.5)
    routes = [llm.invoke([HumanMessage(p)]).response_metadata["routellm"]["route"] for p in (LONG, SHORT)]
    assert routes == ["strong", "weak"]

    client = RoutedClient(strong="openai:gpt-4o", weak="openai:gpt-4o-mini", routers=["toy"],
                          openai_api_key="sk-test", openai_base_url=openai_server.base_url)
    reply = client.chat.completions.create(model="router-toy-0.5", messages=[{"role": "user", "content": LONG}])
    assert reply.routellm["router"] == "toy" and reply.routellm["route"] == "strong"
    client.close()
