"""Route, then verify (issue 26): with escalation checks and a held share, the prompts the
router is surest of go straight to the strong model (no cheap call), the rest to the
weak one, and the share of calls answered strong (direct or escalated) holds at
``strong_fraction``: RoutedChat over real ChatOpenAI clients and a local OpenAI-format
server; the controller on its own."""

from __future__ import annotations

import re

import numpy as np
import pytest
from langchain_openai import ChatOpenAI

from langchain_routellm import RoutedChat
from routellm_integrations.budgets import Budget
from routellm_integrations.choosers import CascadeShareController
from routellm_integrations.costs import PriceTable
from routellm_integrations.online import OnlineShareController
from routellm_integrations.routers.base import BaseRouter
from routellm_integrations.testing.openai_compat import Reply

PRICES = PriceTable.default().with_prices({"openai": {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}})
_TAG = re.compile(r"\[s=([0-9.]+)\]")


class Tagged(BaseRouter):
    """Scores a prompt by the ``[s=0.123]`` tag it carries: the test sets every score."""

    name = "tagged"

    def _score(self, prompts):
        return np.array([float(m.group(1)) if (m := _TAG.search(p)) else 0.5 for p in prompts])


def _prompt(i: int, score: float) -> str:
    return f"Question {i}: Tom has {i % 9 + 2} boxes with 7 pens in each. How many pens does he have? [s={score:.4f}]"


def _weak_fails(turn) -> bool:
    """The weak model fails (states no final answer) on 1 prompt in 4, more often when hard."""
    score = float(_TAG.search(turn.last_user_text).group(1))
    i = int(re.search(r"Question (\d+)", turn.last_user_text).group(1))
    return (i * 7919) % 100 < 100 * (0.1 + 0.3 * score)


def _answers(turn):
    if turn.model == "gpt-4o-mini" and _weak_fails(turn):
        return Reply(text="Let me think about the boxes.")
    return Reply(text="Each box holds 7 pens, so the answer is 42.")


def _chat(openai_server, **kw):
    def oa(name):
        return ChatOpenAI(model=name, base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    return RoutedChat(strong=oa("gpt-4o"), weak=oa("gpt-4o-mini"), router=Tagged(), prices=PRICES, **kw)


def test_the_share_counts_escalations_and_confident_prompts_skip_the_cheap_call(openai_server):
    openai_server.chat.responder = _answers
    llm = _chat(openai_server, strong_fraction=0.3, escalate_if="final_answer")
    rng = np.random.default_rng(7)
    answered_strong, direct = [], []
    for i, score in enumerate(rng.uniform(size=400)):
        reply = llm.invoke(_prompt(i, score))
        meta = reply.response_metadata["routellm"]
        answered_strong.append(meta["route"] == "strong")
        direct.append(meta["route"] == "strong" and meta["escalated_from"] is None)
    share = float(np.mean(answered_strong[100:]))
    # the share of calls answered strong holds the target, escalations included
    assert share == pytest.approx(0.3, abs=0.05)
    # ...so fewer prompts go straight to the strong model than the target share
    assert float(np.mean(direct[100:])) < 0.25
    online = llm.policy.online
    assert isinstance(online, CascadeShareController) and online.escalations > 0
    assert online.direct_target < 0.3 and online.realised_share == pytest.approx(np.mean(answered_strong), abs=1e-9)
    # a prompt sent straight to the strong model made no cheap call: one request per call plus one per escalation
    usage = llm.ledger.summary()
    requests = openai_server.requests_to("/v1/chat/completions")
    assert len(requests) == 400 + usage["escalated_calls"]
    assert sum(r.json["model"] == "gpt-4o-mini" for r in requests) == 400 - sum(direct)


def test_without_checks_the_share_is_the_routers_alone(openai_server):
    openai_server.chat.responder = _answers
    llm = _chat(openai_server, strong_fraction=0.3)
    rng = np.random.default_rng(7)
    routes = [llm.invoke(_prompt(i, s)).response_metadata["routellm"]["route"] for i, s in
              enumerate(rng.uniform(size=200))]
    assert float(np.mean([r == "strong" for r in routes[50:]])) == pytest.approx(0.3, abs=0.07)
    assert llm.ledger.summary()["escalated_calls"] == 0


def test_a_budget_counts_both_calls_of_a_cascade(openai_server):
    openai_server.chat.responder = lambda turn: Reply(text="Let me think about the boxes.") \
        if turn.model == "gpt-4o-mini" else Reply(text="So the answer is 42.")
    llm = _chat(openai_server, threshold=1.0, escalate_if="final_answer", budget=Budget(max_usd=1.0),
                scope="team")
    reply = llm.invoke(_prompt(1, 0.2))
    meta = reply.response_metadata["routellm"]
    assert meta["route"] == "strong" and meta["escalated_from"] == "weak"
    entries = llm.ledger.store.entries()
    assert [e.status for e in entries] == ["escalated", "ok"]
    assert meta["budget"]["spent_usd"] == pytest.approx(sum(e.cost_usd for e in entries))
    assert meta["budget"]["strong_calls"] == 1


def test_the_controller_on_its_own():
    rng = np.random.default_rng(0)
    plain, cascade = OnlineShareController(0.3), CascadeShareController(0.3)
    strong_total = 0
    for n in range(3000):
        s = float(rng.uniform())
        for c in (plain, cascade):
            go = s >= c.threshold()
            c.observe(s, go)
            if c is cascade:
                strong_total += go
                if not go and rng.uniform() < 0.2:  # a fifth of the weak answers fail their check
                    c.escalated()
                    strong_total += 1
    assert cascade.escalation_rate == pytest.approx(0.2, abs=0.05)
    assert cascade.direct_target == pytest.approx((0.3 - 0.2) / 0.8, abs=0.05)
    assert strong_total / 3000 == pytest.approx(0.3, abs=0.03)
    assert cascade.realised_share == pytest.approx(strong_total / 3000)
    # with no escalations it is the plain controller
    assert plain.realised_share == pytest.approx(0.3, abs=0.03)
    fresh = CascadeShareController(0.3, warm_threshold=0.6)
    assert fresh.threshold() == 0.6 and fresh.direct_target == 0.3
    # a checkpoint restores into the cascade controller (the escalation rate is re-learnt)
    restored = CascadeShareController.from_state_dict(cascade.state_dict())
    assert isinstance(restored, CascadeShareController) and restored.realised_share == cascade.realised_share


def test_a_restored_cascade_controller_keeps_its_escalation_rate():
    """A restart must not forget how often weak answers escalate: the restored controller
    sends the same share straight to the strong model (without the counts in the
    checkpoint it would send the whole target straight again, 0.3 instead of ~0.125)."""
    c = CascadeShareController(0.3, window=200, min_samples=20)
    rng = np.random.default_rng(0)
    for i in range(200):
        s = float(rng.random())
        strong = s > 0.9
        c.observe(s, strong)
        if not strong and i % 5 == 0:
            c.escalated()
    assert c.escalation_rate is not None and c.direct_target < 0.2
    restored = CascadeShareController.from_state_dict(c.state_dict())
    assert restored.escalation_rate == pytest.approx(c.escalation_rate)
    assert restored.direct_target == pytest.approx(c.direct_target)
    assert restored.threshold() == pytest.approx(c.threshold())
    # an older checkpoint (no counts) still loads, and learns the rate again
    old = {k: v for k, v in c.state_dict().items() if k not in ("weak_n", "escalated_n")}
    assert CascadeShareController.from_state_dict(old).escalation_rate is None
