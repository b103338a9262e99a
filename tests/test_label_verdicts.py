"""Unreadable judge verdicts (no [[A]]/[[B]]/[[C]]): never a tie, never a label, counted,
retried by a rerun that reuses the answers, and a run whose judge is mostly unreadable
fails with a typed error. Over real HTTP against the local OpenAI-format server."""

from __future__ import annotations

import json
import re

import pytest

from routellm_integrations.cli import main
from routellm_integrations.errors import JudgeVerdictError, RouteLLMError
from routellm_integrations.labels import JUDGE_SYSTEM_PROMPT, OpenAIChatClient, label_prompts
from routellm_integrations.labels.labelling import EXAMPLE_CHARS, MIN_JUDGED_TO_FAIL
from routellm_integrations.labels import LabelStore
from routellm_integrations.testing import OpenAICompatServer, Reply

STRONG, WEAK, JUDGE = "gpt-4o", "gpt-4o-mini", "gpt-4.1"
KEY = "sk-test-0123456789abcdef"
MARK = "EXCELLENT"
GARBAGE = "As an AI language model I think both answers have merit. Final verdict: Assistant A!"
_ANSWER_RX = re.compile(r"\[The Start of Assistant (A|B)'s Answer\]\n(.*?)\n\[The End of Assistant \1's Answer\]",
                        re.S)


def is_judge(turn) -> bool:
    return any(JUDGE_SYSTEM_PROMPT in t for t in turn.texts)


def backends(turn):
    """Backends whose answer holds MARK when the prompt says they win (else the default)."""
    winner = re.search(r"winner=(\w+)", turn.last_user_text).group(1)
    if (winner == "strong" and turn.model == STRONG) or (winner == "weak" and turn.model == WEAK):
        return Reply(text=f"An {MARK} answer.")
    return None


def marker_judge(turn):
    """Prefers the answer holding MARK ([[C]] when both or neither do)."""
    if not is_judge(turn):
        return backends(turn)
    shown = dict(_ANSWER_RX.findall(turn.last_user_text))
    a, b = MARK in shown["A"], MARK in shown["B"]
    return Reply(text="Reasoning... " + ("[[A]]" if a > b else "[[B]]" if b > a else "[[C]]"))


def garbage_judge(turn):
    return Reply(text=GARBAGE) if is_judge(turn) else backends(turn)


def prompts_for(winners):
    return [f"question {i:02d} winner={w}" for i, w in enumerate(winners)]


def clients(server):
    kw = dict(base_url=server.base_url, api_key=KEY, max_retries=0)
    return OpenAIChatClient(STRONG, **kw), OpenAIChatClient(WEAK, **kw), OpenAIChatClient(JUDGE, **kw)


def n_judge_requests(server) -> int:
    return sum(any(m.get("content") == JUDGE_SYSTEM_PROMPT for m in r.json["messages"])
               for r in server.requests_to("/v1/chat/completions"))


def n_answer_requests(server) -> int:
    return len(server.requests_to("/v1/chat/completions")) - n_judge_requests(server)


@pytest.fixture
def server():
    with OpenAICompatServer() as s:
        yield s


def _cli(tmp_path, server, prompts, *extra):
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n", encoding="utf-8")
    return main(["label", "--prompts", str(tmp_path / "prompts.txt"), "--store", str(tmp_path / "labels.sqlite"),
                 "--strong-model", STRONG, "--weak-model", WEAK, "--judge", JUDGE, "--base-url", server.base_url,
                 "--api-key-env", "MY_LLM_KEY", *extra])


def test_cli_garbage_judge_stores_nothing_stops_early_and_exits_1(server, tmp_path, monkeypatch, capsys):
    """The issue's run: 60 prompts, a judge that never gives a verdict. Before: 30 ties, exit 0."""
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    server.chat.responder = garbage_judge
    rc = _cli(tmp_path, server, prompts_for(["strong", "weak"] * 30), "--concurrency", "1", "--quiet")
    out = capsys.readouterr()
    assert rc == 1
    report = json.loads(out.out)  # the report still comes out, then one error line
    judged = MIN_JUDGED_TO_FAIL  # one prompt at a time: the run stops right after the handful
    assert report["n_unparsable"] == judged == report["n_judged"] and report["n_unparsable_verdicts"] == 2 * judged
    assert report["n_labelled"] == 0 and report["verdicts"] == {"strong": 0, "weak": 0, "tie": 0}
    assert report["n_stopped"] == 60 - judged and report["n_failed"] == 0
    assert report["unparsable_example"] == GARBAGE
    err_lines = out.err.strip().splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith("error: ")
    assert f"no readable verdict for {judged} of {judged} judged prompts" in err_lines[0]
    assert GARBAGE in err_lines[0] and f"{60 - judged} prompts were not started" in err_lines[0]
    with LabelStore(tmp_path / "labels.sqlite") as store:
        assert store.count() == 0  # not one tie
    assert n_judge_requests(server) == 2 * judged  # nothing paid for the prompts it did not start


def test_cli_a_few_unreadable_verdicts_are_reported_and_exit_1(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    winners = ["strong", "weak", "tie"] * 4  # 12 prompts; those with "garble" get an unreadable judge
    prompts = [p + (" garble" if i in (1, 8) else "") for i, p in enumerate(prompts_for(winners))]

    def judge(turn):
        if is_judge(turn) and "garble" in turn.last_user_text:
            return Reply(text=GARBAGE)
        return marker_judge(turn)
    server.chat.responder = judge
    rc = _cli(tmp_path, server, prompts, "--concurrency", "3")
    out = capsys.readouterr()
    assert rc == 1  # some prompts got no label: a rerun retries them
    report = json.loads(out.out)
    assert (report["n_labelled"], report["n_unparsable"], report["n_judged"], report["n_stopped"]) == (10, 2, 12, 0)
    assert report["verdicts"] == {"strong": 4, "weak": 3, "tie": 3}  # the garbled ones: a weak win, a tie
    assert "judged 12 prompts: 10 parsed (4 strong, 3 weak, 3 ties), 2 unparsable (not labelled)" in out.err
    assert "error:" not in out.err
    with LabelStore(tmp_path / "labels.sqlite") as store:
        assert store.count() == 10
        assert all("garble" not in p for p in store.label_set().prompts)


def test_cli_clean_run_still_exits_0_with_a_summary(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    server.chat.responder = marker_judge
    assert _cli(tmp_path, server, prompts_for(["strong", "tie"])) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["n_unparsable"] == 0
    assert "judged 2 prompts: 2 parsed (1 strong, 0 weak, 1 ties), 0 unparsable" in out.err


def test_python_api_raises_a_typed_error_with_the_report_and_no_key(server, tmp_path):
    long_garbage = f"I refuse to choose; my key is {KEY}. " + "blah " * 400
    server.chat.responder = lambda t: Reply(text=long_garbage) if is_judge(t) else backends(t)
    strong, weak, judge = clients(server)
    with LabelStore(tmp_path / "l.sqlite") as store:
        with pytest.raises(JudgeVerdictError) as info:
            label_prompts(prompts_for(["strong"] * 20), strong=strong, weak=weak, judge=judge, store=store,
                          concurrency=4, progress=False)
        assert store.count() == 0
    exc = info.value
    assert isinstance(exc, RouteLLMError)
    report = exc.report
    # up to concurrency - 1 prompts were already in flight when the handful was reached
    assert MIN_JUDGED_TO_FAIL <= report.n_unparsable <= MIN_JUDGED_TO_FAIL + 3
    assert report.n_stopped == 20 - report.n_unparsable and report.n_labelled == 0
    assert KEY not in str(exc) and KEY not in report.unparsable_example and "***" in report.unparsable_example
    assert len(report.unparsable_example) <= EXAMPLE_CHARS and report.unparsable_example.endswith("...")
    assert f"for {report.n_unparsable} of {report.n_unparsable} judged prompts" in str(exc)


def test_a_rerun_reuses_the_answers_and_asks_the_judge_again(server, tmp_path):
    prompts = prompts_for(["strong", "weak", "tie", "strong"])  # 4: below the handful, no error
    server.chat.responder = garbage_judge
    strong, weak, judge = clients(server)
    with LabelStore(tmp_path / "l.sqlite") as store:
        first = label_prompts(prompts, strong=strong, weak=weak, judge=judge, store=store, progress=False)
        assert (first.n_unparsable, first.n_labelled, store.count()) == (4, 0, 0)
        assert (n_answer_requests(server), n_judge_requests(server)) == (8, 8)

        server.chat.responder = marker_judge  # the judge is fixed
        second = label_prompts(prompts, strong=strong, weak=weak, judge=judge, store=store, progress=False)
        assert second.n_already_labelled == 0 and second.n_labelled == 4 and second.n_unparsable == 0
        assert second.n_resumed_steps == 8  # every answer reused; no unreadable judgment reused
        assert (n_answer_requests(server), n_judge_requests(server)) == (8, 16)
        assert second.verdicts == {"strong": 2, "weak": 1, "tie": 1} and store.count() == 4
        third = label_prompts(prompts, strong=strong, weak=weak, judge=judge, store=store, progress=False)
        assert third.n_already_labelled == 4 and third.n_paid_calls == 0


def test_only_the_unreadable_order_is_asked_again(server, tmp_path):
    """One order readable, the other not: no label; the rerun pays for the unreadable order only."""
    state = {"garble_b": True}

    def judge(turn):
        if is_judge(turn):
            shown = dict(_ANSWER_RX.findall(turn.last_user_text))
            if state["garble_b"] and MARK in shown["B"]:  # the order showing the winner second
                return Reply(text=GARBAGE)
        return marker_judge(turn)
    server.chat.responder = judge
    prompts = prompts_for(["strong", "weak", "strong"])
    strong, weak, judge_client = clients(server)
    with LabelStore(tmp_path / "l.sqlite") as store:
        first = label_prompts(prompts, strong=strong, weak=weak, judge=judge_client, store=store, progress=False)
        assert (first.n_unparsable, first.n_unparsable_verdicts, first.n_labelled) == (3, 3, 0)
        assert first.position_disagreements == 0 and store.count() == 0
        state["garble_b"] = False
        second = label_prompts(prompts, strong=strong, weak=weak, judge=judge_client, store=store, progress=False)
        assert second.n_labelled == 3 and second.n_resumed_steps == 3 * 3  # 2 answers + the readable order
        assert second.n_paid_calls == 3 and n_judge_requests(server) == 6 + 3
        assert second.verdicts == {"strong": 2, "weak": 1, "tie": 0}
