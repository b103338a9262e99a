"""Judge labelling over real HTTP: the official OpenAI/Anthropic SDKs against the local
servers, a scripted judge that reads the answers it is shown, the label store on disk."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter

import pytest

from routellm_integrations.budgets import Budget
from routellm_integrations.cli import main
from routellm_integrations.costs import PriceTable
from routellm_integrations.data.user_files import load_battles_file
from routellm_integrations.errors import BudgetConfigError, DataError
from routellm_integrations.labels import (JUDGE_SYSTEM_PROMPT, AnthropicChatClient, OpenAIChatClient,
                                             alabel_prompts, export_battles, judge_pair, label_prompts,
                                             parse_verdict)
from routellm_integrations.labels import LabelStore
from routellm_integrations.testing import AnthropicCompatServer, OpenAICompatServer, Reply
from routellm_integrations.testing.openai_compat import RecordedRequest, Response, chat_completions_handler

STRONG, WEAK, JUDGE = "gpt-4o", "gpt-4o-mini", "gpt-4.1"
KEY = "sk-test-0123456789abcdef"
CHAT = ("POST", "/v1/chat/completions")
MARK = "EXCELLENT"
_ANSWER_RX = re.compile(r"\[The Start of Assistant (A|B)'s Answer\]\n(.*?)\n\[The End of Assistant \1's Answer\]",
                        re.S)


def shown_answers(text: str) -> dict[str, str]:
    """The answers a judge request shows, by position."""
    return dict(_ANSWER_RX.findall(text))


def is_judge(turn) -> bool:
    return any(JUDGE_SYSTEM_PROMPT in t for t in turn.texts)


def marker_judge(turn):
    """A judge that prefers the answer holding MARK (a tie when both or neither do), and
    backends whose answer holds MARK when the prompt says they win."""
    if is_judge(turn):
        shown = shown_answers(turn.last_user_text)
        a, b = MARK in shown["A"], MARK in shown["B"]
        return Reply(text="Comparing [[A]] and [[B]] as asked... " + ("[[A]]" if a > b else "[[B]]" if b > a
                                                                        else "[[C]]"))
    winner = re.search(r"winner=(\w+)", turn.last_user_text).group(1)
    if (winner == "strong" and turn.model == STRONG) or (winner == "weak" and turn.model == WEAK):
        return Reply(text=f"An {MARK} answer.")
    return None  # the default: "Hello from <model>. You said: ..."


def biased_judge(turn):
    return Reply(text="Assistant A, clearly. [[A]]") if is_judge(turn) else None


def prompts_for(winners):
    return [f"question {i:02d} winner={w}" for i, w in enumerate(winners)]


def clients(server, *, judge=JUDGE, retries=2):
    kw = dict(base_url=server.base_url, api_key=KEY, max_retries=retries)
    return (OpenAIChatClient(STRONG, **kw), OpenAIChatClient(WEAK, **kw),
            None if judge is None else OpenAIChatClient(judge, **kw))


def priced(usage_entries) -> float:
    table = PriceTable.default()
    total = 0.0
    for u in usage_entries:
        p = table.price(u["model"])
        total += (u["input_tokens"] * p.input + u["output_tokens"] * p.output) / 1e6
    return total


def judge_requests(server) -> list[RecordedRequest]:
    return [r for r in server.requests_to("/v1/chat/completions")
            if any(m.get("content") == JUDGE_SYSTEM_PROMPT for m in r.json["messages"])]


@pytest.fixture
def server():
    with OpenAICompatServer() as s:
        yield s


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as s:
        yield s


def test_parse_verdict_takes_the_last_bracketed_letter():
    assert parse_verdict("Unlike [[A]], B is right. [[B]]") == "B"
    assert parse_verdict("final: [[ C ]]") == "C"
    assert parse_verdict("A is better") is None
    assert parse_verdict("[[D]]") is None


def test_marker_judge_labels_strong_weak_and_tie_and_prices_every_call(server, store):
    winners = ["strong", "weak", "tie"] * 10
    prompts = prompts_for(winners)
    server.chat.responder = marker_judge
    strong, weak, judge = clients(server)
    report = label_prompts(prompts, strong=strong, weak=weak, judge=judge, store=store, progress=False)

    assert (report.n_prompts, report.n_labelled, report.n_failed) == (30, 30, 0)
    assert report.verdicts == {"strong": 10, "weak": 10, "tie": 10}
    assert report.position_disagreements == 0 and report.n_unparsable_verdicts == 0
    assert report.n_paid_calls == 120 and report.source == f"judge:{JUDGE}"
    # the store holds each verdict
    labels = store.label_set(strong_model=STRONG, weak_model=WEAK)
    got = {p: (s, w) for p, s, w in zip(labels.prompts, labels.strong, labels.weak)}
    expected = {"strong": (1.0, 0.0), "weak": (0.0, 1.0), "tie": (0.5, 0.5)}
    assert got == {p: expected[w] for p, w in zip(prompts, winners)}
    assert labels.sources == (f"judge:{JUDGE}",)
    # both orders: two judge requests per prompt, the strong answer once as A and once as B
    reqs = judge_requests(server)
    assert len(reqs) == 60 and all(r.json["model"] == JUDGE for r in reqs)
    orders = Counter()
    for r in reqs:
        user = r.json["messages"][1]["content"]
        prompt = re.search(r"\[User Question\]\n(.*?)\n", user).group(1)
        shown = shown_answers(user)
        strong_pos = next(pos for pos, text in shown.items() if text == _strong_answer(prompt))
        orders[(prompt, strong_pos)] += 1
    assert all(orders[(p, pos)] == 1 for p in prompts for pos in ("A", "B"))
    # costs: the price table applied to the usage the server reported, per role
    by_model = {m: priced([u for u in server.chat.usage if u["model"] == m]) for m in (STRONG, WEAK, JUDGE)}
    assert report.cost_by_role["strong"] == pytest.approx(by_model[STRONG], rel=1e-9)
    assert report.cost_by_role["weak"] == pytest.approx(by_model[WEAK], rel=1e-9)
    assert report.cost_by_role["judge"] == pytest.approx(by_model[JUDGE], rel=1e-9)
    assert report.cost_usd == pytest.approx(priced(server.chat.usage), rel=1e-9) and report.cost_usd > 0
    assert not report.unpriced


def _strong_answer(prompt: str) -> str:
    return f"An {MARK} answer." if "winner=strong" in prompt else f"Hello from {STRONG}. You said: {prompt}"


def test_a_position_biased_judge_yields_only_ties(server, store):
    server.chat.responder = biased_judge
    strong, weak, _ = clients(server)
    prompts = prompts_for(["strong", "weak"] * 6)
    report = label_prompts(prompts, strong=strong, weak=weak, store=store, progress=False)  # judge = strong
    assert report.verdicts == {"strong": 0, "weak": 0, "tie": 12}
    assert report.position_disagreements == 12 and report.judge_model == STRONG
    assert len(judge_requests(server)) == 24
    assert all(r.json["model"] == STRONG for r in judge_requests(server))
    assert set(store.label_set().strong) == {0.5}


def test_unparsable_judgments_are_counted_never_ties(server, store):
    server.chat.responder = lambda t: Reply(text="Both are fine, I cannot decide.") if is_judge(t) else None
    strong, weak, judge = clients(server)
    report = label_prompts(prompts_for(["strong"] * 4), strong=strong, weak=weak, judge=judge, store=store,
                           progress=False)  # 4 judged: below the handful that fails a run
    assert report.verdicts == {"strong": 0, "weak": 0, "tie": 0} and report.n_labelled == 0
    assert report.n_unparsable == 4 and report.n_unparsable_verdicts == 8
    assert report.unparsable_example == "Both are fine, I cannot decide."
    assert report.position_disagreements == 0 and store.count() == 0


def _fail_after(server, k: int):
    """The chat route answers ``k`` requests, then fails every one with a 500 (an outage)."""
    inner, state = chat_completions_handler(server.chat), {"ok": 0}

    def handle(req):
        if state["ok"] >= k:
            return Response.error(500, "provider down", "server_error")
        state["ok"] += 1
        return inner(req)
    server.routes[CHAT] = handle
    return inner


def test_resume_after_an_outage_pays_for_no_step_twice(server, store):
    prompts = prompts_for(["strong", "weak", "tie", "strong"] * 5)
    server.chat.responder = marker_judge
    inner = _fail_after(server, 37)
    strong, weak, judge = clients(server, retries=0)
    first = label_prompts(prompts, strong=strong, weak=weak, judge=judge, store=store, concurrency=4,
                          progress=False)
    assert len(server.chat.usage) == 37 == first.n_paid_calls
    assert first.n_failed > 0 and 0 < first.n_labelled < 20 and first.n_labelled + first.n_failed == 20
    assert "500" in first.first_error
    assert store.count() == first.n_labelled  # nothing half-recorded

    server.routes[CHAT] = inner  # the provider is back
    second = label_prompts(prompts, strong=strong, weak=weak, judge=judge, store=store, concurrency=4,
                           progress=False)
    assert second.n_already_labelled == first.n_labelled
    assert second.n_labelled == 20 - first.n_labelled and second.n_failed == 0
    assert second.n_resumed_steps == 37 - 4 * first.n_labelled  # every paid step of an unfinished prompt
    assert len(server.chat.usage) == 4 * 20  # exactly what one clean run pays
    assert first.verdicts["strong"] + second.verdicts["strong"] == 10
    assert store.count() == 20
    third = label_prompts(prompts, strong=strong, weak=weak, judge=judge, store=store, progress=False)
    assert third.n_already_labelled == 20 and third.n_paid_calls == 0 and len(server.chat.usage) == 80


class _CrashingStore(LabelStore):
    """Cancels the labelling task right after the ``k``-th write (a crash between steps)."""

    def __init__(self, path, k: int) -> None:
        super().__init__(path)
        self.k, self.writes, self.task = k, 0, None

    def put_work(self, key, value):
        super().put_work(key, value)
        self.writes += 1
        if self.writes == self.k and self.task is not None:
            self.task.cancel()


async def test_resume_after_a_crash_mid_run(server, tmp_path):
    prompts = prompts_for(["strong", "weak", "tie"] * 3)
    server.chat.responder = marker_judge
    strong, weak, judge = clients(server)
    # 4 paid steps a prompt (the label and its done-mark are one transaction, not a put_work):
    crashing = _CrashingStore(tmp_path / "l.sqlite", k=4 * 3 + 2)  # 3 prompts done, the 4th's answers paid
    crashing.task = asyncio.create_task(alabel_prompts(prompts, strong=strong, weak=weak, judge=judge,
                                                       store=crashing, concurrency=1, progress=False))
    with pytest.raises(asyncio.CancelledError):
        await crashing.task
    assert crashing.count() == 3 and len(server.chat.usage) == 4 * 3 + 2
    crashing.close()

    with LabelStore(tmp_path / "l.sqlite") as store:  # the process restarts
        report = await alabel_prompts(prompts, strong=strong, weak=weak, judge=judge, store=store,
                                      concurrency=3, progress=False)
        assert (report.n_already_labelled, report.n_labelled, report.n_resumed_steps) == (3, 6, 2)
        assert store.count() == 9
    assert len(server.chat.usage) == 4 * 9
    for c in (strong, weak, judge):
        await c.aclose()


def test_budget_stops_part_way_and_a_bigger_cap_completes(server, tmp_path):
    server.chat.responder = marker_judge
    strong, weak, judge = clients(server)
    kw = dict(strong=strong, weak=weak, judge=judge, max_answer_tokens=64, judge_max_tokens=64, progress=False)
    with LabelStore(tmp_path / "probe.sqlite") as probe:  # what one prompt of this shape costs
        per_prompt = label_prompts(prompts_for(["strong"]), store=probe, **kw).cost_usd
    prompts = prompts_for(["strong"] * 20)
    cap = 5.5 * per_prompt
    with LabelStore(tmp_path / "labels.sqlite") as store:
        first = label_prompts(prompts, store=store, budget=Budget(max_usd=cap), concurrency=4, **kw)
        assert first.n_unlabelled_budget > 0 and first.n_labelled + first.n_unlabelled_budget == 20
        assert cap <= first.cost_usd < cap + per_prompt * 1.0001  # stops at the cap, passes it by < one prompt
        assert first.n_labelled in (6, 7) and first.max_usd == cap
        assert first.cost_usd == pytest.approx(first.n_labelled * per_prompt, rel=1e-9)
        second = label_prompts(prompts, store=store, budget=Budget(max_usd=100 * per_prompt), **kw)
        assert second.n_already_labelled == first.n_labelled
        assert second.n_labelled == first.n_unlabelled_budget and second.n_unlabelled_budget == 0
        assert store.count() == 20
    assert len(server.chat.usage) == 4 * 21  # the probe prompt plus each prompt once


def test_a_failing_backend_on_one_prompt_is_reported_and_the_rest_labelled(server, store):
    server.chat.responder = marker_judge
    inner = chat_completions_handler(server.chat)
    poison = "question 03 winner=weak POISON"

    def handle(req):
        if req.json["model"] == WEAK and any("POISON" in m["content"] for m in req.json["messages"]):
            return Response.error(500, "the weak backend broke", "server_error", headers={"retry-after-ms": "1"})
        return inner(req)
    server.routes[CHAT] = handle
    prompts = prompts_for(["strong", "weak", "tie"]) + [poison] + prompts_for(["weak", "tie"])
    prompts = list(dict.fromkeys(prompts))  # 5 distinct + poison
    strong, weak, judge = clients(server, retries=2)
    report = label_prompts(prompts, strong=strong, weak=weak, judge=judge, store=store, progress=False)
    assert report.n_failed == 1 and "InternalServerError" in report.first_error and "500" in report.first_error
    assert report.n_labelled == len(prompts) - 1 and store.count() == len(prompts) - 1
    poisoned = [r for r in server.requests_to("/v1/chat/completions")
                if r.json["model"] == WEAK and "POISON" in r.json["messages"][-1]["content"]]
    assert len(poisoned) == 3  # the SDK retried twice before giving up
    # the strong answer it paid for is kept: once the backend heals only 3 calls remain
    server.routes[CHAT] = inner
    paid = len(server.chat.usage)
    again = label_prompts(prompts, strong=strong, weak=weak, judge=judge, store=store, progress=False)
    assert again.n_labelled == 1 and again.n_resumed_steps == 1 and len(server.chat.usage) == paid + 3


def test_cli_writes_the_store_and_a_battles_file(server, tmp_path, monkeypatch, capsys):
    server.chat.responder = marker_judge
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    winners = ["strong", "weak", "tie", "strong"]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts_for(winners)) + "\n\n", encoding="utf-8")
    db, battles = tmp_path / "labels.sqlite", tmp_path / "out" / "battles.jsonl"
    rc = main(["label", "--prompts", str(tmp_path / "prompts.txt"), "--store", str(db), "--strong-model", STRONG,
               "--weak-model", WEAK, "--base-url", server.base_url, "--api-key-env", "MY_LLM_KEY",
               "--max-usd", "1", "--concurrency", "2", "--battles-out", str(battles), "--quiet"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    report = json.loads(out.out)
    assert report["n_labelled"] == 4 and report["verdicts"] == {"strong": 2, "weak": 1, "tie": 1}
    assert report["judge_model"] == STRONG and report["max_usd"] == 1.0
    assert report["cost_usd"] == pytest.approx(priced(server.chat.usage), rel=1e-9)
    assert KEY not in out.out + out.err
    reqs = server.requests_to("/v1/chat/completions")
    assert len(reqs) == 16 and {r.headers["authorization"] for r in reqs} == {f"Bearer {KEY}"}
    assert all(r.json.get("temperature") == 0 for r in judge_requests(server))  # MT-Bench judges at 0
    with LabelStore(db) as store:
        assert store.count() == 4
    table = load_battles_file(battles)
    rows = {table.prompts[table.prompt_idx[i]]: (table.models[table.model_a[i]], table.models[table.model_b[i]],
                                                 ["a", "b", "tie"][table.winner[i]]) for i in range(len(table))}
    code = {"strong": "a", "weak": "b", "tie": "tie"}
    assert rows == {p: (STRONG, WEAK, code[w]) for p, w in zip(prompts_for(winners), winners)}


def _cli(tmp_path, server, *extra):
    return main(["label", "--prompts", str(tmp_path / "prompts.txt"), "--store", str(tmp_path / "l.sqlite"),
                 "--base-url", server.base_url, "--quiet", *extra])


def test_cli_bad_input_exits_1_before_any_call(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    (tmp_path / "prompts.txt").write_text("\n  \n", encoding="utf-8")
    assert _cli(tmp_path, server, "--strong-model", STRONG, "--weak-model", WEAK) == 1
    assert "holds no prompts" in capsys.readouterr().err
    (tmp_path / "prompts.txt").write_text("a prompt\n", encoding="utf-8")
    assert _cli(tmp_path, server, "--strong-model", STRONG, "--weak-model", "my-own-finetune", "--max-usd", "2") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "my-own-finetune" in err
    assert _cli(tmp_path, server, "--strong-model", STRONG, "--weak-model", WEAK, "--max-usd", "-1") == 1
    assert "--max-usd must be a positive number" in capsys.readouterr().err
    monkeypatch.delenv("OPENAI_API_KEY")
    assert _cli(tmp_path, server, "--strong-model", STRONG, "--weak-model", WEAK) == 1
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    assert server.requests == []


def test_python_api_bad_input_is_typed(server, store):
    strong, weak, judge = clients(server)
    with pytest.raises(DataError):
        label_prompts([], strong=strong, weak=weak, store=store, progress=False)
    with pytest.raises(DataError):
        label_prompts(["ok", "  "], strong=strong, weak=weak, store=store, progress=False)
    unpriced = OpenAIChatClient("my-own-finetune", base_url=server.base_url, api_key=KEY)
    with pytest.raises(BudgetConfigError, match="my-own-finetune"):
        label_prompts(["ok"], strong=strong, weak=weak, judge=unpriced, store=store, budget=Budget(max_usd=1),
                      progress=False)
    with pytest.raises(BudgetConfigError):
        label_prompts(["ok"], strong=strong, weak=weak, store=store, budget=Budget(max_strong_calls=3),
                      progress=False)
    assert server.requests == []


def test_unpriced_models_without_a_budget_are_reported_not_zero(server, store):
    strong, _, judge = clients(server)
    weak = OpenAIChatClient("my-own-finetune", base_url=server.base_url, api_key=KEY)
    server.chat.responder = marker_judge
    with pytest.warns(UserWarning, match="my-own-finetune"):
        report = label_prompts(prompts_for(["tie"]), strong=strong, weak=weak, judge=judge, store=store,
                               progress=False)
    assert report.unpriced and report.unpriced_models == ["my-own-finetune"]
    assert report.cost_by_role["weak"] == 0 and report.cost_by_role["strong"] > 0


def test_the_api_key_stays_out_of_reprs_and_reports(server, store):
    def leaky(req):  # a server whose error message echoes the request's credentials
        return Response.error(400, f"bad request from {req.headers.get('authorization')}")
    server.routes[CHAT] = leaky
    strong, weak, judge = clients(server)
    anthropic = AnthropicChatClient("claude-haiku-4-5", base_url=server.url, api_key=KEY)
    for c in (strong, weak, judge, anthropic):
        assert KEY not in repr(c) and KEY not in str(c)
    report = label_prompts(["hello"], strong=strong, weak=weak, judge=judge, store=store, progress=False)
    assert report.n_failed == 1 and "bad request from Bearer ***" in report.first_error
    assert KEY not in report.model_dump_json()


def test_anthropic_judge_over_the_messages_wire_format(server, store):
    server.chat.responder = marker_judge
    with AnthropicCompatServer() as anth:
        anth.chat.responder = marker_judge
        strong, weak, _ = clients(server)
        judge = AnthropicChatClient("claude-haiku-4-5", base_url=anth.base_url, api_key=KEY, max_retries=0)
        report = label_prompts(prompts_for(["strong", "weak", "tie"]), strong=strong, weak=weak, judge=judge,
                               store=store, progress=False)
        reqs = anth.requests_to("/v1/messages")
        assert report.verdicts == {"strong": 1, "weak": 1, "tie": 1} and len(reqs) == 6
        assert all(r.json["system"] == JUDGE_SYSTEM_PROMPT for r in reqs)
        assert all(r.headers["x-api-key"] == KEY for r in reqs)
        table = PriceTable.default()
        p = table.price("claude-haiku-4-5", "anthropic")
        expected = sum(u["input_tokens"] * p.input + u["output_tokens"] * p.output for u in anth.chat.usage) / 1e6
        assert report.cost_by_role["judge"] == pytest.approx(expected, rel=1e-9) and expected > 0


async def test_judge_pair_alone_asks_both_orders(server):
    server.chat.responder = marker_judge
    judge = OpenAIChatClient(JUDGE, base_url=server.base_url, api_key=KEY)
    result = await judge_pair(judge, "q", f"an {MARK} reply", "a plain reply", max_tokens=50)
    assert result.verdict == "strong"
    assert (result.strong_first.raw, result.strong_second.raw) == ("A", "B")
    assert not result.position_disagreement
    assert result.cost_usd == pytest.approx(priced(server.chat.usage), rel=1e-9)
    assert [r.json["max_tokens"] for r in judge_requests(server)] == [50, 50]
    await judge.aclose()


def test_export_battles_needs_labels(store, tmp_path):
    with pytest.raises(DataError):
        export_battles(store, tmp_path / "b.jsonl", STRONG, WEAK)
