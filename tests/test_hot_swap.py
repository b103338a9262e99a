"""Hot swap: a running policy, RoutedChat or RoutedLLM takes a new router without a
restart and keeps its share of strong calls (the threshold is re-set for the new scores)."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from routellm_integrations import RoutingPolicy
from routellm_integrations.routers.base import BaseRouter
from routellm_integrations.routers.length import LengthRouter

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()


class ShortFirst(BaseRouter):
    """The reverse of length: short prompts score high. Scores live on another scale."""

    name = "short_first"

    def _score(self, prompts):
        return np.array([10.0 / (10.0 + len(p)) for p in prompts]) * 0.2


def traffic(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40))) + f" #{i}" for i in range(n)]


def share(policy: RoutingPolicy, prompts) -> tuple[float, list[str]]:
    routes = [policy.decide(p, scope=f"s{i}").decision.route for i, p in enumerate(prompts)]
    return routes.count("strong") / len(routes), routes


def test_fixed_threshold_swap_keeps_the_share_and_changes_the_decisions():
    prompts = traffic(400)
    policy = RoutingPolicy("length", threshold=0.6, router_options={"midpoint": 100})
    before, routes_before = share(policy, prompts[:300])
    report = policy.swap_router(ShortFirst())
    assert report.share_kept and report.n_prompts == 300 and report.new_router == "short_first"
    assert report.strong_share == pytest.approx(before)
    assert report.new_threshold != report.old_threshold and policy.threshold == report.new_threshold
    after, routes_after = share(policy, prompts[:300])
    assert abs(after - before) <= 0.02  # ties at the quantile may move a few prompts
    assert policy.decide(prompts[0]).decision.router == "short_first"
    changed = sum(a != b for a, b in zip(routes_before, routes_after))
    assert changed > 100  # the new router disagrees with length on most prompts


def test_target_share_swap_restarts_the_controller_on_the_new_scores():
    prompts = traffic(600, seed=1)
    policy = RoutingPolicy("length", strong_fraction=0.25, router_options={"midpoint": 100})
    share(policy, prompts[:300])
    report = policy.swap_router(ShortFirst())
    assert report.strong_share == 0.25 and report.share_kept
    assert abs(policy.online.threshold() - report.new_threshold) < 0.005  # a quantile of the same scores
    after, _ = share(policy, prompts[300:])
    assert abs(after - 0.25) < 0.05


def test_swap_with_no_traffic_yet_keeps_the_threshold_and_says_so():
    policy = RoutingPolicy("length", threshold=0.5, recent_prompts=0)
    policy.decide("hello there")
    report = policy.swap_router(ShortFirst())
    assert not report.share_kept and report.new_threshold == 0.5 and report.n_prompts == 0
    explicit = policy.swap_router("length", prompts=traffic(50))
    assert explicit.share_kept and explicit.n_prompts == 50


def test_swap_while_calls_are_in_flight_from_threads():
    prompts = traffic(200, seed=2)
    policy = RoutingPolicy("length", threshold=0.6, router_options={"midpoint": 100})
    share(policy, prompts[:100])
    seen: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def worker(k: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                seen.append(policy.decide(prompts[(k * 31 + i) % len(prompts)], scope=f"t{k}-{i}").decision.router)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            i += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    swapped_to: list[str] = []
    for r in (ShortFirst(), "length", ShortFirst()):
        policy.swap_router(r)
        swapped_to.append(policy.router_name)
        # Let the threads make decisions under each router before the next swap:
        # a swap that returns before any thread saw the new router proves nothing.
        start, give_up = len(seen), time.monotonic() + 60
        while swapped_to[-1] not in seen[start:] and time.monotonic() < give_up:
            time.sleep(0.001)
        assert swapped_to[-1] in seen[start:], f"no decision under {swapped_to[-1]} after the swap"
    stop.set()
    for t in threads:
        t.join()
    assert not errors and set(seen) <= {"length", "short_first"}
    assert swapped_to == ["short_first", "length", "short_first"]


def test_routed_chat_and_routed_llm_swap(openai_server):
    from langchain_openai import ChatOpenAI
    from llama_index.llms.openai import OpenAI

    from langchain_routellm import RoutedChat
    from llamaindex_routellm import RoutedLLM

    def pair_lc():
        return dict(strong=ChatOpenAI(model="gpt-4o", base_url=openai_server.base_url, api_key="sk-test"),
                    weak=ChatOpenAI(model="gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test"))

    prompts = traffic(60, seed=3)
    chat = RoutedChat(**pair_lc(), router="length", router_options={"midpoint": 100}, threshold=0.6)
    before = [chat.invoke(p).response_metadata["routellm"]["route"] for p in prompts[:30]]
    report = chat.swap_router(ShortFirst())
    assert chat.router_name == "short_first" and report.share_kept
    after = [chat.invoke(p).response_metadata["routellm"] for p in prompts[:30]]
    assert {m["router"] for m in after} == {"short_first"}
    assert sum(a != b["route"] for a, b in zip(before, after)) > 10
    assert abs(sum(r == "strong" for r in before) - sum(m["route"] == "strong" for m in after)) <= 2

    llm = RoutedLLM(strong=OpenAI(model="gpt-4o", api_base=openai_server.base_url, api_key="sk-test"),
                    weak=OpenAI(model="gpt-4o-mini", api_base=openai_server.base_url, api_key="sk-test"),
                    router=LengthRouter(midpoint=100), threshold=0.6)
    routes = [llm.complete(p).additional_kwargs["routellm"]["route"] for p in prompts[:30]]
    llm.swap_router(ShortFirst())
    swapped = [llm.complete(p).additional_kwargs["routellm"] for p in prompts[:30]]
    assert {m["router"] for m in swapped} == {"short_first"}
    assert sum(a != b["route"] for a, b in zip(routes, swapped)) > 10
