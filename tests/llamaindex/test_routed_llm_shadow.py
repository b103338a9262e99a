"""Shadow sampling and feedback on RoutedLLM over the local OpenAI-format server."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.llms.openai import OpenAI

from llamaindex_routellm import RoutedLLM
from routellm_integrations.labels.shadow import ShadowSampler
from routellm_integrations.routers.length import LengthRouter
from routellm_integrations.testing.openai_compat import Reply


def judge_prefers_strong(turn):
    if any("impartial judge" in t for t in turn.texts):
        answer_a = turn.last_user_text.split("[The Start of Assistant A's Answer]")[1].split("[The End")[0]
        return Reply(text="[[A]]" if "gpt-4o." in answer_a else "[[B]]")
    return None


def routed(server, sampler):
    return RoutedLLM(strong=OpenAI(model="gpt-4o", api_base=server.base_url, api_key="sk-test", max_retries=0),
                     weak=OpenAI(model="gpt-4o-mini", api_base=server.base_url, api_key="sk-test", max_retries=0),
                     router=LengthRouter(midpoint=200), threshold=0.5, shadow=sampler)


@pytest.mark.parametrize("mode", ["chat", "complete", "stream_chat", "achat"])
async def test_every_kind_of_call_is_shadowed_once(openai_server, tmp_path, mode):
    openai_server.chat.responder = judge_prefers_strong
    sampler = ShadowSampler(tmp_path / "l.sqlite", rate=1.0, seed=0)
    llm = routed(openai_server, sampler)
    prompt = f"a short {mode} question?"
    if mode == "chat":
        meta = llm.chat([ChatMessage(role="user", content=prompt)]).additional_kwargs["routellm"]
    elif mode == "complete":
        meta = llm.complete(prompt).additional_kwargs["routellm"]
    elif mode == "achat":
        meta = (await llm.achat([ChatMessage(role="user", content=prompt)])).additional_kwargs["routellm"]
    else:
        *_, last = llm.stream_chat([ChatMessage(role="user", content=prompt)])
        meta = last.additional_kwargs["routellm"]
    assert meta["route"] == "weak"
    assert sampler.drain(timeout=20)
    stats = sampler.stats
    assert (stats.recorded, stats.sampled, stats.labelled, stats.failed) == (1, 1, 1, 0), stats
    labels = sampler.store.label_set()
    assert labels.prompts == (prompt,) and labels.strong.tolist() == [1.0]
    llm.record_feedback(meta["call_id"], 0.5)
    assert "feedback" in sampler.store.label_set().sources
    sampler.close()


def test_without_a_sampler_feedback_is_a_clear_error(openai_server):
    from routellm_integrations.errors import DataError

    llm = routed(openai_server, None)
    with pytest.raises(DataError, match="shadow="):
        llm.record_feedback("x", 1.0)
    with pytest.raises(TypeError, match="ShadowSampler"):
        routed(openai_server, "labels.sqlite")
