"""Judge labelling with LangChain chat models (ChatOpenAI, ChatAnthropic, a RoutedChat's
backends) over HTTP to the local servers."""

from __future__ import annotations

import re

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

from langchain_routellm import RoutedChat
from langchain_routellm.labelling import LangChainChatClient
from routellm_integrations.costs import PriceTable
from routellm_integrations.labels import JUDGE_SYSTEM_PROMPT, alabel_prompts
from routellm_integrations.labels import LabelStore
from routellm_integrations.testing import Reply

# langchain-openai/-anthropic cache one async HTTP client per base URL: share the session loop
on_session_loop = pytest.mark.asyncio(loop_scope="session")

STRONG, WEAK, CLAUDE = "gpt-4o", "gpt-4o-mini", "claude-haiku-4-5"
KEY = "sk-test-lc-0123456789"
MARK = "EXCELLENT"


def judge_or_answer(turn):
    """Judge turns prefer the answer holding MARK; the strong backend writes MARK when the
    prompt says strong wins, the weak one when it says weak wins."""
    if any(JUDGE_SYSTEM_PROMPT in t for t in turn.texts):
        shown = dict(re.findall(r"\[The Start of Assistant (A|B)'s Answer\]\n(.*?)\n\[The End", turn.last_user_text,
                                re.S))
        a, b = MARK in shown["A"], MARK in shown["B"]
        return Reply(text="[[A]]" if a > b else "[[B]]" if b > a else "[[C]]")
    winner = re.search(r"winner=(\w+)", turn.last_user_text).group(1)
    if (winner, turn.model) in (("strong", STRONG), ("weak", WEAK)):
        return Reply(text=f"An {MARK} answer.")
    return None


def priced(entries, provider=None):
    table, total = PriceTable.default(), 0.0
    for u in entries:
        p = table.price(u["model"], provider)
        total += (u["input_tokens"] * p.input + u["output_tokens"] * p.output) / 1e6
    return total


PROMPTS = [f"question {i} winner={w}" for i, w in enumerate(["strong", "weak", "tie", "strong", "weak"])]


@on_session_loop
async def test_chat_openai_backends_label_and_price(openai_server, tmp_path):
    openai_server.chat.responder = judge_or_answer
    strong = LangChainChatClient(ChatOpenAI(base_url=openai_server.base_url, api_key=KEY, model=STRONG,
                                            max_retries=0))
    weak = LangChainChatClient(ChatOpenAI(base_url=openai_server.base_url, api_key=KEY, model=WEAK, max_retries=0))
    assert (strong.model, strong.provider, weak.model) == (STRONG, "openai", WEAK)
    assert KEY not in repr(strong)
    with LabelStore(tmp_path / "l.sqlite") as store:
        report = await alabel_prompts(PROMPTS, strong=strong, weak=weak, store=store, max_answer_tokens=77,
                                      progress=False)
        assert report.verdicts == {"strong": 2, "weak": 2, "tie": 1} and report.n_failed == 0
        assert store.count() == 5
    reqs = openai_server.requests_to("/v1/chat/completions")
    assert len(reqs) == 20
    answers = [r for r in reqs if r.json["messages"][0]["role"] == "user"]
    assert len(answers) == 10
    assert {r.json.get("max_completion_tokens") or r.json.get("max_tokens") for r in answers} == {77}
    # usage_metadata -> Usage -> the price table, per role (the judge is the strong model)
    usage = openai_server.chat.usage
    assert report.cost_by_role["weak"] == pytest.approx(priced([u for u in usage if u["model"] == WEAK]), rel=1e-9)
    assert report.cost_by_role["strong"] + report.cost_by_role["judge"] == pytest.approx(
        priced([u for u in usage if u["model"] == STRONG]), rel=1e-9)
    assert report.cost_usd > 0 and not report.unpriced


@on_session_loop
async def test_routed_chat_backends_and_a_chat_anthropic_judge(openai_server, anthropic_server, tmp_path):
    openai_server.chat.responder = anthropic_server.chat.responder = judge_or_answer
    anthropic_server.chat.snapshots[CLAUDE] = "claude-haiku-4-5-20251001"  # answers under a dated name
    llm = RoutedChat(strong=ChatOpenAI(base_url=openai_server.base_url, api_key=KEY, model=STRONG),
                     weak=ChatOpenAI(base_url=openai_server.base_url, api_key=KEY, model=WEAK),
                     router="length", router_options={"midpoint": 20}, threshold=0.5)
    judge = LangChainChatClient(ChatAnthropic(base_url=anthropic_server.base_url, api_key=KEY, model=CLAUDE,
                                              max_retries=0), name="claude-judge")
    assert (judge.model, judge.provider) == ("claude-judge", "anthropic")
    with LabelStore(tmp_path / "l.sqlite") as store:
        report = await alabel_prompts(PROMPTS, strong=LangChainChatClient(llm.strong),
                                      weak=LangChainChatClient(llm.weak), judge=judge, store=store, progress=False)
    assert report.verdicts == {"strong": 2, "weak": 2, "tie": 1} and report.source == "judge:claude-judge"
    reqs = anthropic_server.requests_to("/v1/messages")
    assert len(reqs) == 10 and all(r.json["system"] == JUDGE_SYSTEM_PROMPT for r in reqs)
    # priced under the model that answered (the snapshot), though "claude-judge" has no price
    assert report.cost_by_role["judge"] == pytest.approx(priced(anthropic_server.chat.usage, "anthropic"), rel=1e-9)
    assert report.cost_by_role["judge"] > 0 and not report.unpriced


def test_only_chat_models_are_accepted():
    with pytest.raises(TypeError):
        LangChainChatClient("gpt-4o")  # type: ignore[arg-type]
