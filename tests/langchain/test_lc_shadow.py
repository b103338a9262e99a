"""Shadow sampling on RoutedChat over the local OpenAI-format server: the other backend
answers and a judge compares (both orders), off the user's path, within its own budget;
every call is recorded so feedback can find it by call_id."""

from __future__ import annotations

import threading

import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from langchain_routellm import RoutedChat
from routellm_integrations import Budget
from routellm_integrations.labels import LabelStore, UnknownCallError
from routellm_integrations.labels.shadow import ShadowSampler
from routellm_integrations.testing.openai_compat import Reply

PROMPTS = [f"short question {i}?" for i in range(8)]  # the length router sends these weak


def judge_prefers_strong(gate: threading.Event | None = None):
    """A judge that prefers the answer the strong model (gpt-4o) gave; with ``gate``, the
    strong model's own (non-judge) answers wait until the test opens it."""
    def respond(turn):
        if any("impartial judge" in t for t in turn.texts):
            answer_a = turn.last_user_text.split("[The Start of Assistant A's Answer]")[1].split("[The End")[0]
            return Reply(text="Explanation... [[A]]" if "gpt-4o." in answer_a else "Explanation... [[B]]")
        if gate is not None and turn.model == "gpt-4o":
            gate.wait(10)
        return None
    return respond


def routed(server, shadow, strong_url: str | None = None, **kw) -> RoutedChat:
    strong = ChatOpenAI(model="gpt-4o", base_url=strong_url or server.base_url, api_key="sk-test", max_retries=0)
    weak = ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test", max_retries=0)
    return RoutedChat(strong=strong, weak=weak, router="length", router_options={"midpoint": 200}, threshold=0.5,
                      shadow=shadow, **kw)


def test_shadow_labels_off_the_critical_path_and_feedback_finds_the_call(openai_server, tmp_path):
    gate = threading.Event()
    openai_server.chat.responder = judge_prefers_strong(gate)
    sampler = ShadowSampler(tmp_path / "labels.sqlite", rate=1.0, budget=Budget(max_usd=1.0), seed=0)
    llm = routed(openai_server, sampler)
    replies = [llm.invoke(p) for p in PROMPTS]  # returns while every shadow answer is held at the gate
    assert {r.response_metadata["routellm"]["route"] for r in replies} == {"weak"}
    assert sampler.stats.labelled == 0 and sampler.stats.sampled == len(PROMPTS)
    gate.set()
    assert sampler.drain(timeout=20)
    stats = sampler.stats
    assert stats.labelled == len(PROMPTS) and stats.failed == 0 and 0 < stats.cost_usd < 1.0
    judge_requests = [r for r in openai_server.requests_to("/v1/chat/completions")
                      if "impartial judge" in str(r.json)]
    assert len(judge_requests) == 2 * len(PROMPTS)  # both orders
    labels = sampler.store.label_set()
    assert labels.strong_model == "gpt-4o" and labels.weak_model == "gpt-4o-mini"
    assert sorted(labels.prompts) == sorted(PROMPTS) and (labels.strong == 1.0).all()
    assert labels.sources == ("shadow:gpt-4o",)
    call_id = replies[0].response_metadata["routellm"]["call_id"]
    llm.record_feedback(call_id, 0.25)
    with pytest.raises(UnknownCallError):
        llm.record_feedback("no-such-call", 0.5)
    assert "feedback" in sampler.store.label_set().sources
    sampler.close()


def test_a_failing_shadow_never_fails_the_call_and_records_no_half_label(openai_server, tmp_path):
    openai_server.chat.responder = judge_prefers_strong()
    sampler = ShadowSampler(tmp_path / "s.sqlite", rate=1.0, seed=0)
    # the strong backend is down; the user's (weak) calls never touch it, the shadow does
    llm = routed(openai_server, sampler, strong_url=openai_server.url + "/down/v1")
    assert "gpt-4o-mini" in llm.invoke(PROMPTS[0]).text  # the user's call succeeds
    assert sampler.drain(timeout=20)
    assert sampler.stats.failed == 1 and sampler.stats.labelled == 0 and "404" in sampler.stats.last_error
    assert sampler.stats.recorded == 1
    with pytest.raises(Exception, match="no labels"):
        sampler.store.label_set()


def test_shadow_budget_and_queue_bounds(openai_server, tmp_path):
    openai_server.chat.responder = judge_prefers_strong()
    sampler = ShadowSampler(tmp_path / "b.sqlite", rate=1.0, budget=Budget(max_usd=0.0005), seed=0)
    llm = routed(openai_server, sampler)
    for p in PROMPTS:
        llm.invoke(p)
        sampler.drain(timeout=20)
    stats = sampler.stats
    # admitted while spent + reserved < cap: the first shadow runs (and overshoots by less
    # than its reserved bound); once spent, every later one is skipped, none half-done
    assert stats.labelled == 1 and stats.skipped_budget == len(PROMPTS) - 1 and stats.failed == 0
    assert sampler.budget.state("shadow").spent_usd == pytest.approx(stats.cost_usd) and stats.cost_usd > 0.0005
    gate = threading.Event()
    openai_server.chat.responder = judge_prefers_strong(gate)
    small = ShadowSampler(tmp_path / "q.sqlite", rate=1.0, max_pending=2, seed=0)
    llm2 = routed(openai_server, small)
    for p in PROMPTS:
        llm2.invoke(p)
    assert small.stats.dropped_queue_full == len(PROMPTS) - 2
    gate.set()
    assert small.drain(timeout=20) and small.stats.labelled == 2


def test_privacy_mode_stores_no_text_and_streams_are_shadowed(openai_server, tmp_path):
    openai_server.chat.responder = judge_prefers_strong()
    sampler = ShadowSampler(tmp_path / "p.sqlite", rate=1.0, record="embedding", seed=0)
    llm = routed(openai_server, sampler)
    text = "".join(c.text for c in llm.stream([HumanMessage(PROMPTS[1])]))
    assert "gpt-4o-mini" in text
    assert sampler.drain(timeout=60) and sampler.stats.labelled == 1
    db = sampler.store._db
    assert db.execute("SELECT COUNT(*) FROM prompts WHERE text IS NOT NULL").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM prompts WHERE embedding IS NOT NULL").fetchone()[0] == 1
    labels = sampler.store.label_set()
    assert labels.prompts == (None,) and labels.embeddings.shape == (1, 384)


def test_shadow_configuration_errors(openai_server, tmp_path):
    from routellm_integrations.errors import BudgetConfigError, DataError

    with pytest.raises(DataError, match="shadow rate"):
        ShadowSampler(tmp_path / "x.sqlite", rate=1.5)
    strong = ChatOpenAI(model="my-private-model", base_url=openai_server.base_url, api_key="sk-test")
    weak = ChatOpenAI(model="gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test")
    with pytest.raises(Exception, match="no price"):
        RoutedChat(strong=strong, weak=weak, router="length",
                   shadow=ShadowSampler(tmp_path / "y.sqlite", budget=Budget(max_usd=1.0)))
    with pytest.raises(Exception, match="ShadowSampler"):
        RoutedChat(strong=strong, weak=weak, router="length", shadow=LabelStore(tmp_path / "z.sqlite"))
    assert issubclass(BudgetConfigError, Exception)
