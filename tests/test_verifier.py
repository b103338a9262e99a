"""The learned answer verifier: fit, guard, save/load, the weak_answer column, ``routellm
adapt`` writing a folder that serves both the prompt router and the verifier, and the
label store keeping both answers."""

from __future__ import annotations

import csv
import json
import random
import sqlite3

import numpy as np
import pytest

from routellm_integrations import (NoVerifierError, RouteLLMError, UnservedVerifierError, adapt_router,
                                   fit_verifier, load_router, load_verifier)
from routellm_integrations.embedders import get_embedder
from routellm_integrations.errors import CheckpointError, DataError, InvalidThresholdError
from routellm_integrations.labels import LabelStore
from routellm_integrations.labels.labelset import load_outcome_labels

NAMES = ["Ann", "Bob", "Cid", "Dee", "Eve", "Fay"]
ITEMS = ["pens", "apples", "books", "cups", "coins", "shells"]


@pytest.fixture(scope="module")
def wordllama():
    return get_embedder("wordllama")


def maths(n: int, seed: int = 0) -> list[tuple[str, float, float, str]]:
    """(prompt, strong, weak, weak answer): the strong model is always right; the weak one
    slips in its multiplication 40% of the time, and its answer shows it. The prompts
    say nothing about which (the slip is random)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rng.randint(3, 60), rng.randint(3, 60)
        ok = rng.random() < 0.6
        c = a * b if ok else a * b + rng.randint(1, 12) * rng.choice([-1, 1])
        prompt = (f"{rng.choice(NAMES)} buys {a} boxes with {b} {rng.choice(ITEMS)} in each box. "
                  f"How many is that in total? (case {i})")
        rows.append((prompt, 1.0, float(ok), f"There are {a} boxes with {b} each, so {a} * {b} = {c}.\n#### {c}"))
    return rows


def letters(n: int, seed: int = 0) -> list[tuple[str, float, float, str]]:
    """Letter-answer multiple choice where the answer letter says nothing about whether
    it is right: there is nothing for a verifier to read."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        prompt = (f"Which of these is a {rng.choice(ITEMS)}? A) {rng.choice(NAMES)} B) {rng.choice(ITEMS)} "
                  f"C) {rng.choice(NAMES)} D) {rng.choice(NAMES)} (question {i})\nAnswer:")
        rows.append((prompt, float(rng.random() < 0.9), float(rng.random() < 0.7), rng.choice("ABCD")))
    return rows


def write_outcomes(path, rows, *, header=("prompt", "strong", "weak", "weak_answer")) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def split(rows):
    return [r[0] for r in rows], [r[3] for r in rows], np.array([[r[1], r[2]] for r in rows])


# --------------------------------------------------------------------------- fit / guard / files


def test_verifier_reads_the_answer_is_served_and_round_trips(tmp_path, wordllama):
    prompts, answers, labels = split(maths(200))
    fit = fit_verifier(prompts, answers, labels, embedder=wordllama, n_boot=100)
    assert fit.served and fit.report.served
    names = [c.name for c in fit.report.candidates]
    assert names == ["verifier", "prompt router", "answer checks", "length"]
    verifier_apgr, prompt_apgr = fit.report.candidates[0].apgr, fit.report.candidates[1].apgr
    assert verifier_apgr > 0.7 > prompt_apgr  # the slips are in the answers, not the prompts
    assert "verifier served: yes" in fit.report.summary()

    fresh_p, fresh_a, fresh_y = split(maths(60, seed=7))
    scores = fit.verifier.score(fresh_p, fresh_a)
    assert scores.shape == (60,) and np.all((scores > 0) & (scores < 1))
    wrong = fresh_y[:, 1] == 0
    assert scores[wrong].mean() > 0.5 > scores[~wrong].mean()  # P(strong better): high exactly on the slips

    fit.verifier.save(tmp_path / "v")
    loaded = load_verifier(tmp_path / "v")
    np.testing.assert_allclose(loaded.score(fresh_p, fresh_a), scores, rtol=1e-6)
    assert loaded.served and loaded.report is not None and loaded.report.n_labels == 200
    assert loaded.escalates(fresh_p, fresh_a).tolist() == (scores >= loaded.threshold).tolist()


def test_threshold_for_share(wordllama):
    prompts, answers, labels = split(maths(120, seed=3))
    verifier = fit_verifier(prompts, answers, labels, embedder=wordllama, n_boot=50).verifier
    thresholds = [verifier.threshold_for_share(s) for s in (0.0, 0.1, 0.4, 0.7, 1.0)]
    assert thresholds == sorted(thresholds, reverse=True)
    q = verifier.oof_quantiles
    for share in (0.1, 0.4, 0.7):
        assert abs(np.mean(q >= verifier.threshold_for_share(share)) - share) < 0.05
    assert np.mean(q >= verifier.threshold_for_share(0.0)) == 0.0
    assert np.mean(q >= verifier.threshold_for_share(1.0)) == 1.0
    for bad in (-0.1, 1.5, "half", True):
        with pytest.raises(InvalidThresholdError):
            verifier.threshold_for_share(bad)


def test_a_verifier_with_nothing_to_read_is_not_served(tmp_path, wordllama):
    prompts, answers, labels = split(letters(200))
    fit = fit_verifier(prompts, answers, labels, embedder=wordllama, n_boot=100)
    assert not fit.served
    assert "serving the prompt router" in fit.report.reason
    fit.verifier.save(tmp_path / "v")
    with pytest.raises(UnservedVerifierError) as err:
        load_verifier(tmp_path / "v")
    assert "is not served" in str(err.value) and "needs 95%" in str(err.value)
    assert isinstance(err.value, RouteLLMError) and err.value.verifier is not None
    inspected = load_verifier(tmp_path / "v", allow_unserved=True)
    assert not inspected.served and inspected.score(prompts[:3], answers[:3]).shape == (3,)


def test_the_guard_compares_with_the_prompt_scores_given(wordllama):
    """A prompt router that already knows the outcomes (an oracle) is not beaten."""
    rows = maths(150, seed=5)
    prompts, answers, labels = split(rows)
    oracle = labels[:, 0] - labels[:, 1]
    fit = fit_verifier(prompts, answers, labels, embedder=wordllama, prompt_scores=oracle, prompt_router="oracle",
                       n_boot=100)
    assert not fit.served and "oracle" in fit.report.reason


def test_load_verifier_without_a_verifier(tmp_path):
    with pytest.raises(NoVerifierError, match="does not exist"):
        load_verifier(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoVerifierError, match="weak_answer column") as err:
        load_verifier(tmp_path / "empty")
    assert isinstance(err.value, CheckpointError)


def test_corrupt_verifier_files_are_checkpoint_errors(tmp_path, wordllama):
    prompts, answers, labels = split(maths(80, seed=2))
    out = fit_verifier(prompts, answers, labels, embedder=wordllama, n_boot=20).verifier.save(tmp_path / "v")
    config = json.loads((out / "verifier.json").read_text())
    for broken, match in [({**config, "features": ["prompt_log_chars"]}, "fitted on features"),
                          ({**config, "format": "something-else"}, "not a verifier config"),
                          ({**config, "calibration": [0, 0, 1, 0]}, "calibration"),
                          ({**config, "threshold": 3}, "threshold"),
                          ({**config, "embedding_dim": 7}, "shape")]:
        (out / "verifier.json").write_text(json.dumps(broken))
        with pytest.raises(CheckpointError, match=match):
            load_verifier(out)
    (out / "verifier.json").write_text(json.dumps(config))
    (out / "verifier.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_verifier(out)


def test_bad_inputs_are_typed_errors(wordllama):
    prompts, answers, labels = split(maths(40))
    with pytest.raises(DataError, match="40 prompts and 39 answers"):
        fit_verifier(prompts, answers[:-1], labels, embedder=wordllama)
    with pytest.raises(DataError, match=r"answer\(s\) at \[3\] are not text"):
        fit_verifier(prompts, answers[:3] + [None] + answers[4:], labels, embedder=wordllama)
    with pytest.raises(DataError, match="shape"):
        fit_verifier(prompts, answers, labels[:10], embedder=wordllama)
    same = np.ones((40, 2))
    with pytest.raises(DataError, match="different outcomes"):
        fit_verifier(prompts, answers, same, embedder=wordllama)
    verifier = fit_verifier(prompts, answers, labels, embedder=wordllama, n_boot=20).verifier
    with pytest.raises(DataError, match="not single strings"):
        verifier.score("a prompt", "an answer")
    assert verifier.score([], []).shape == (0,)


# --------------------------------------------------------------------------- the weak_answer column


def test_outcome_files_carry_the_weak_answer(tmp_path):
    rows = maths(12)
    write_outcomes(tmp_path / "o.csv", rows)
    labels = load_outcome_labels(tmp_path / "o.csv")
    assert labels.weak_answers == tuple(r[3] for r in rows) and labels.strong_answers is None
    assert labels.answered.tolist() == list(range(12))
    with open(tmp_path / "o.jsonl", "w") as fh:
        for p, s, w, a in rows:
            fh.write(json.dumps({"prompt": p, "strong": s, "weak": w, "weak_answer": a, "strong_answer": "x"}) + "\n")
    labels = load_outcome_labels(tmp_path / "o.jsonl")
    assert labels.weak_answers == tuple(r[3] for r in rows) and labels.strong_answers == ("x",) * 12
    # without the column nothing changes
    write_outcomes(tmp_path / "plain.csv", [r[:3] for r in rows], header=("prompt", "strong", "weak"))
    assert load_outcome_labels(tmp_path / "plain.csv").weak_answers is None


def test_a_partly_empty_weak_answer_column_names_the_rows(tmp_path):
    rows = maths(12)
    rows[3] = rows[3][:3] + ("",)
    rows[7] = rows[7][:3] + ("   ",)
    write_outcomes(tmp_path / "o.csv", rows)
    with pytest.raises(DataError, match=r"'weak_answer' is empty in row\(s\) 4, 8 of 12"):
        load_outcome_labels(tmp_path / "o.csv")
    write_outcomes(tmp_path / "none.csv", [r[:3] + ("",) for r in rows])
    with pytest.raises(DataError, match="empty in every row"):
        load_outcome_labels(tmp_path / "none.csv")
    with open(tmp_path / "o.jsonl", "w") as fh:
        for i, (p, s, w, a) in enumerate(maths(5)):
            rec = {"prompt": p, "strong": s, "weak": w}
            if i != 2:
                rec["weak_answer"] = a if i != 4 else 42
            fh.write(json.dumps(rec) + "\n")
    with pytest.raises(DataError, match=r"must hold text; row\(s\) 5 hold int"):
        load_outcome_labels(tmp_path / "o.jsonl")


def test_the_same_prompt_with_different_answers_stays_two_labels(tmp_path):
    rows = [("What is 6 * 7?", 1, 1, "#### 42"), ("What is 6 * 7?", 1, 0, "6 * 7 = 48\n#### 48"),
            ("What is 6 * 7?", 1, 1, "#### 42")]
    write_outcomes(tmp_path / "o.csv", rows)
    labels = load_outcome_labels(tmp_path / "o.csv")
    assert len(labels) == 2 and sorted(labels.weak_answers) == ["#### 42", "6 * 7 = 48\n#### 48"]


# --------------------------------------------------------------------------- adapt writes both


def test_adapt_with_answers_serves_the_prompt_router_and_the_verifier(tmp_path, wordllama):
    write_outcomes(tmp_path / "o.csv", maths(160))
    result = adapt_router("length", outcomes=tmp_path / "o.csv", embedder=wordllama, verifier_embedder=wordllama,
                          n_boot=100, progress=False)
    report = result.report
    assert report.verifier is not None and report.verifier.served
    assert "verifier served: yes" in report.summary()
    out = result.save(tmp_path / "r")
    assert {"config.json", "verifier.json", "verifier.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    assert "## Answer verifier" in (out / "README.md").read_text()
    router = load_router(out)  # the prompt router, as before
    fresh_p, fresh_a, fresh_y = split(maths(40, seed=9))
    assert router.score(fresh_p).shape == (40,)
    verifier = load_verifier(out)
    scores = verifier.score(fresh_p, fresh_a)
    assert scores[fresh_y[:, 1] == 0].min() > scores[fresh_y[:, 1] == 1].max()
    # the guard's comparison is with what the folder serves as its prompt router
    assert report.verifier.candidates[1].detail.startswith(report.serves)


def test_adapt_without_answers_fits_no_verifier(tmp_path, wordllama):
    rows = maths(80)
    write_outcomes(tmp_path / "answered.csv", rows)
    first = adapt_router("length", outcomes=tmp_path / "answered.csv", embedder=wordllama,
                         verifier_embedder=wordllama, n_boot=20, progress=False).save(tmp_path / "r")
    assert load_verifier(first).served
    write_outcomes(tmp_path / "o.csv", [r[:3] for r in rows], header=("prompt", "strong", "weak"))
    result = adapt_router("length", outcomes=tmp_path / "o.csv", embedder=wordllama, n_boot=20, progress=False)
    assert result.report.verifier is None and result.verifier is None
    out = result.save(tmp_path / "r")  # over the folder that held a verifier: none is left behind
    with pytest.raises(NoVerifierError):
        load_verifier(out)
    with pytest.raises(DataError, match="verify=True needs labels with the weak model's answers"):
        adapt_router("length", outcomes=tmp_path / "o.csv", embedder=wordllama, verify=True, progress=False)


def test_adapt_on_letter_answers_keeps_the_prompt_router(tmp_path, wordllama):
    write_outcomes(tmp_path / "o.csv", letters(200, seed=4))
    result = adapt_router("length", outcomes=tmp_path / "o.csv", embedder=wordllama, verifier_embedder=wordllama,
                          n_boot=100, progress=False)
    assert result.report.verifier is not None and not result.report.verifier.served
    out = result.save(tmp_path / "r")
    assert load_router(out).score(["Which is it? A) x B) y"]).shape == (1,)
    with pytest.raises(UnservedVerifierError, match="not served"):
        load_verifier(out)
    assert "**not served**" in (out / "README.md").read_text()


# --------------------------------------------------------------------------- the label store


def test_the_store_keeps_both_answers_and_adapt_fits_on_those_that_have_them(tmp_path, wordllama):
    rows = maths(140, seed=11)
    with LabelStore(tmp_path / "labels.sqlite") as store:
        for p, s, w, a in rows:
            store.add_outcome(p, s, w, strong_model="big", weak_model="small", source="judge:j",
                              strong_answer="#### right", weak_answer=a)
        for i in range(10):  # labels without answers (e.g. from a file) stay labels of the prompt router
            store.add_outcome(f"an unanswered prompt {i}", 1.0, 0.0, strong_model="big", weak_model="small",
                              source="file:x")
        labels = store.label_set()
    assert labels.answered.size == 140 and len(labels) == 150
    assert labels.strong_answers is not None and labels.strong_answers.count("#### right") == 140
    result = adapt_router("length", store=tmp_path / "labels.sqlite", embedder=wordllama,
                          verifier_embedder=wordllama, n_boot=50, progress=False)
    assert result.report.verifier is not None and result.report.verifier.n_labels == 140
    assert result.report.verifier_note == "fitted on the 140 of 150 labels that carry answers"


def test_privacy_mode_keeps_no_answer_text(tmp_path, wordllama):
    vec = wordllama.embed(["What is 6 * 7?"])[0]
    with LabelStore(tmp_path / "p.sqlite") as store:
        store.add_verdict("What is 6 * 7?", "strong", strong_model="big", weak_model="small", source="shadow:j",
                          record="embedding", embedding=vec, embedder=wordllama.name, strong_answer="42",
                          weak_answer="48")
        with pytest.raises(DataError, match="weak_answer must be text"):
            store.add_outcome("q", 1, 0, strong_model="big", weak_model="small", source="x", weak_answer=48)
    db = sqlite3.connect(tmp_path / "p.sqlite")
    assert db.execute("SELECT strong_answer, weak_answer FROM labels").fetchall() == [(None, None)]
    db.close()


def test_a_store_written_before_the_answer_columns_opens_and_migrates(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE prompts (key BLOB PRIMARY KEY, text TEXT, embedder TEXT, embedding BLOB, features TEXT,
                              created REAL NOT NULL);
        CREATE TABLE labels (id INTEGER PRIMARY KEY AUTOINCREMENT, key BLOB NOT NULL REFERENCES prompts(key),
                             strong_model TEXT NOT NULL, weak_model TEXT NOT NULL, strong REAL NOT NULL,
                             weak REAL NOT NULL, source TEXT NOT NULL, call_id TEXT, created REAL NOT NULL);
    """)
    db.close()
    with LabelStore(path) as store:
        store.add_outcome("old prompt", 1.0, 0.0, strong_model="big", weak_model="small", source="file:x")
        store.add_outcome("new prompt", 1.0, 0.0, strong_model="big", weak_model="small", source="judge:j",
                          weak_answer="#### 3")
        labels = store.label_set()
    assert dict(zip(labels.prompts, labels.weak_answers)) == {"old prompt": None, "new prompt": "#### 3"}


# --------------------------------------------------------------------------- the command line


@pytest.mark.slow  # the prompt head embeds with the bundled MiniLM (offline)
def test_cli_adapt_with_answers_writes_a_folder_serving_both(tmp_path, capsys):
    from routellm_integrations.cli import main

    write_outcomes(tmp_path / "o.csv", maths(120, seed=13))
    assert main(["adapt", "--router", "length", "--outcomes", str(tmp_path / "o.csv"), "--out", str(tmp_path / "r"),
                 "--quiet"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert out["verifier"]["served"] is True and out["verifier"]["n_labels"] == 120
    assert [c["name"] for c in out["verifier"]["candidates"]][:2] == ["verifier", "prompt router"]
    assert "verifier served: yes" in captured.err
    fresh_p, fresh_a, fresh_y = split(maths(30, seed=14))
    assert load_router(tmp_path / "r").score(fresh_p).shape == (30,)
    scores = load_verifier(tmp_path / "r").score(fresh_p, fresh_a)
    assert scores[fresh_y[:, 1] == 0].mean() > scores[fresh_y[:, 1] == 1].mean()
    # --no-verify: the same file adapts the prompt router alone
    assert main(["adapt", "--router", "length", "--outcomes", str(tmp_path / "o.csv"), "--out", str(tmp_path / "p"),
                 "--quiet", "--no-verify"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["verifier"] is None
    with pytest.raises(NoVerifierError):
        load_verifier(tmp_path / "p")


def test_cli_adapt_refuses_a_partly_empty_weak_answer_column(tmp_path, capsys):
    from routellm_integrations.cli import main

    rows = maths(20)
    rows[5] = rows[5][:3] + ("",)
    write_outcomes(tmp_path / "o.csv", rows)
    assert main(["adapt", "--router", "length", "--outcomes", str(tmp_path / "o.csv"), "--out",
                 str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "'weak_answer' is empty in row(s) 6 of 20" in err
    assert not (tmp_path / "r").exists()


def test_judge_labelling_over_http_keeps_both_answers_for_the_verifier(tmp_path, openai_server):
    """routellm label's path, over the local OpenAI-format server: the strong model gets
    the sum right, the weak one slips on odd cases; the judge prefers the right answer.
    The store keeps both answers beside each verdict, which is what adapt's verifier reads."""
    import re as _re

    from routellm_integrations.labels import JUDGE_SYSTEM_PROMPT, OpenAIChatClient, label_prompts
    from routellm_integrations.testing import Reply

    def script(turn):
        if any(JUDGE_SYSTEM_PROMPT in t for t in turn.texts):
            shown = dict(_re.findall(r"\[The Start of Assistant (A|B)'s Answer\]\n(.*?)\n\[The End", turn.last_user_text,
                                     _re.S))
            right = {k: "#### 84" in v for k, v in shown.items()}
            verdict = "[[A]]" if right["A"] > right["B"] else "[[B]]" if right["B"] > right["A"] else "[[C]]"
            return Reply(text=f"Checked the arithmetic. {verdict}")
        case = int(_re.search(r"case (\d+)", turn.last_user_text).group(1))
        if turn.model == "gpt-4o-mini" and case % 2:
            return Reply(text="12 * 7 = 82, so 82 pens.\n#### 82")
        return Reply(text="12 * 7 = 84, so 84 pens.\n#### 84")

    openai_server.chat.responder = script
    kw = dict(base_url=openai_server.base_url, api_key="sk-test-0123456789abcdef", max_retries=0)
    prompts = [f"Tom has 12 boxes of 7 pens. How many pens? (case {i})" for i in range(6)]
    with LabelStore(tmp_path / "labels.sqlite") as store:
        report = label_prompts(prompts, strong=OpenAIChatClient("gpt-4o", **kw), weak=OpenAIChatClient("gpt-4o-mini", **kw),
                               judge=OpenAIChatClient("gpt-4.1", **kw), store=store, progress=False)
        assert report.n_labelled == 6
        labels = store.label_set()
    got = {p: (s, w, sa, wa) for p, s, w, sa, wa in zip(labels.prompts, labels.strong, labels.weak,
                                                        labels.strong_answers, labels.weak_answers)}
    for i, p in enumerate(prompts):
        strong, weak, strong_answer, weak_answer = got[p]
        assert strong_answer.endswith("#### 84")
        assert weak_answer.endswith("#### 82" if i % 2 else "#### 84")
        assert (strong, weak) == ((1.0, 0.0) if i % 2 else (0.5, 0.5))


def test_shadow_sampling_keeps_both_answers(openai_server, tmp_path):
    """A routed call answered weak, shadowed: the strong backend answers too, the judge
    compares, and the store keeps the weak answer the user got and the strong one."""
    from langchain_openai import ChatOpenAI

    from langchain_routellm import RoutedChat
    from routellm_integrations import Budget
    from routellm_integrations.labels.shadow import ShadowSampler
    from routellm_integrations.testing import Reply

    def respond(turn):
        if any("impartial judge" in t for t in turn.texts):
            answer_a = turn.last_user_text.split("[The Start of Assistant A's Answer]")[1].split("[The End")[0]
            return Reply(text="[[A]]" if "#### 84" in answer_a else "[[B]]")
        return Reply(text="#### 84" if turn.model == "gpt-4o" else "12 * 7 = 82\n#### 82")

    openai_server.chat.responder = respond
    sampler = ShadowSampler(tmp_path / "labels.sqlite", rate=1.0, budget=Budget(max_usd=1.0), seed=0)
    kw = dict(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    llm = RoutedChat(strong=ChatOpenAI(model="gpt-4o", **kw), weak=ChatOpenAI(model="gpt-4o-mini", **kw),
                     router="length", router_options={"midpoint": 200}, threshold=0.5, shadow=sampler)
    prompts = [f"What is 12 * 7? ({i})" for i in range(3)]
    for p in prompts:
        assert llm.invoke(p).response_metadata["routellm"]["route"] == "weak"
    assert sampler.drain(timeout=20)
    labels = sampler.store.label_set()
    sampler.close()
    assert sorted(labels.prompts) == prompts and (labels.strong == 1.0).all()
    assert labels.weak_answers == ("12 * 7 = 82\n#### 82",) * 3 and labels.strong_answers == ("#### 84",) * 3
