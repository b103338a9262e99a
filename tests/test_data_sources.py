"""Model-name canonicalisation and the training-source loaders.

Unit tests build a miniature copy of the ``train/`` layout in a temporary folder so each
rule (pair expansion, ties, missing outputs, dropped rows, 5-shot prompts) is checked on
rows whose answer is known. The ``slow`` tests read the real shared data.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest

from routellm_integrations.data.battles import WINNER_CODES, BattleTable
from routellm_integrations.data.models import (DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL,
                                               canonical_model_name)
from routellm_integrations.data.sources import (SOURCES, OutcomeTable, load_alpaca_eval, load_battles,
                                                load_outcomes, load_report, load_source,
                                                routerbench_question, source_family)
from routellm_integrations.errors import DataError

# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize("raw, canonical", [
    ("gpt4_1106_preview", "gpt-4-1106-preview"),
    ("gpt-4-1106-preview", "gpt-4-1106-preview"),
    ("mistralai/mixtral-8x7b-chat", "mixtral-8x7b-instruct-v0.1"),
    ("Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b-instruct-v0.1"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b-instruct-v0.1"),
    ("gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106"),
    ("claude-v2", "claude-2"),
    ("claude-2", "claude-2"),
    ("claude-v1", "claude-1"),
    ("claude", "claude-1"),
    ("zero-one-ai/Yi-34B-Chat", "yi-34b-chat"),
    ("Yi-34B-Chat", "yi-34b-chat"),
    ("meta/llama-2-70b-chat", "llama-2-70b-chat"),
    ("llama-2-70b-chat-hf", "llama-2-70b-chat"),
    ("Meta-Llama-3.1-8B-Instruct", "llama-3.1-8b-instruct"),
    ("llama-3.1-8b-instruct", "llama-3.1-8b-instruct"),
    ("Qwen2.5-7B-Instruct", "qwen2.5-7b-instruct"),
    ("gpt4_0314", "gpt-4-0314"),
    ("gpt-4-0314", "gpt-4-0314"),
    ("claude-3-opus-20240229", "claude-3-opus-20240229"),
    ("  Some-Org/New_Model X ", "new-model-x"),
])
def test_canonical_model_name(raw: str, canonical: str) -> None:
    assert canonical_model_name(raw) == canonical
    assert canonical_model_name(canonical) == canonical  # idempotent


def test_defaults_are_canonical() -> None:
    assert canonical_model_name(DEFAULT_STRONG_MODEL) == DEFAULT_STRONG_MODEL == "gpt-4-1106-preview"
    assert canonical_model_name(DEFAULT_WEAK_MODEL) == DEFAULT_WEAK_MODEL == "mixtral-8x7b-instruct-v0.1"


def test_provider_variants_stay_distinct() -> None:
    names = {canonical_model_name(n) for n in ("Meta-Llama-3.1-70B-Instruct", "Meta-Llama-3.1-70B-Instruct@hyperbolic",
                                               "gpt-3.5-turbo-1106", "gpt-3.5-turbo-1106_concise")}
    assert len(names) == 4


def test_empty_model_name_is_an_error() -> None:
    with pytest.raises(DataError):
        canonical_model_name("  ")


# ----------------------------------------------------------------------------- fake data

SHOT = 'Q{n}?\nA) x\nB) y\nPrint only a single choice  from "A" or "B" without explanation.\nAnswer:\nA\n\n'


def _five_shot(question: str) -> str:
    return repr(["".join(SHOT.format(n=i) for i in range(5)) + question])


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _rb_header(models: list[str]) -> list[str]:
    cols = ["", "sample_id", "prompt", "eval_name", *models]
    for m in models:
        cols += [f"{m}|model_response", f"{m}|total_cost"]
    return cols + ["oracle_model_to_route_to"]


def _rb_row(i: int, prompt: str, task: str, labels: list[str]) -> list[object]:
    return [i, f"{task}.{i}", prompt, task, *labels, *(["resp", "0.1"] * len(labels)), "x"]


@pytest.fixture()
def fake_data(tmp_path: Path) -> Path:
    train = tmp_path / "train"
    for d in ("alpaca_eval", "routerbench", "zeroeval", "llmrouter"):
        (train / d).mkdir(parents=True)
    (tmp_path / "README.md").write_text("fake")

    ae = train / "alpaca_eval"
    (ae / "instructions.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"idx": 0, "instruction": "Write a poem.", "dataset": "x"},
        {"idx": 3, "instruction": "Explain tides.", "dataset": "x"}]) + "\n")
    hdr = ["idx", "baseline", "model", "folder", "preference"]
    _write_csv(ae / "preferences_weighted_alpaca_eval_gpt4_turbo.csv", hdr, [
        [0, "gpt4_1106_preview", "claude-2", "f", "1.9"],           # model wins
        [3, "gpt4_1106_preview", "claude-2", "f", "1.05"],          # baseline wins
        [0, "gpt4_1106_preview", "Yi-34B-Chat", "f", "1.55"],       # inside tie band
        [3, "gpt4_1106_preview", "Yi-34B-Chat", "f", "1.65"],       # outside tie band
        [0, "gpt4_1106_preview", "gpt4_1106_preview", "f", "1.5"],  # self battle: dropped
    ])
    _write_csv(ae / "preferences_alpaca_eval_gpt4.csv", hdr, [
        [0, "text_davinci_003", "claude", "f", "2.0"],
        [3, "text_davinci_003", "claude", "f", "0.0"],   # legacy draw
        [0, "text_davinci_003", "gpt4", "f", ""],        # missing: dropped
        [3, "text_davinci_003", "gpt4", "f", "1.0"],
    ])

    rb = train / "routerbench"
    models = ["gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat", "claude-v2"]
    _write_csv(rb / "arc_challenge_train.csv", _rb_header(models), [
        _rb_row(0, _five_shot("Final ARC question?\nA) p\nB) q\nAnswer:"), "arc-challenge", ["1.0", "0.0", "1.0"]),
        _rb_row(1, _five_shot("Second ARC question?\nAnswer:"), "arc-challenge", ["1.0", "", "0.0"]),
        _rb_row(2, repr(["dup", "dup"]), "arc-challenge", ["", "", "1.0"]),  # label for one model: dropped
    ])
    _write_csv(rb / "mbpp_train.csv", _rb_header(models), [
        _rb_row(0, repr(["Write a function to add two numbers."]), "mbpp", ["0.0", "0.0", "1.0"])])
    _write_csv(rb / "winograde_train.csv", _rb_header(models), [
        _rb_row(0, _five_shot("The _ was heavy.\nA) box\nB) bag\nAnswer:"), "winogrande", ["1.0", "1.0", "1.0"])])

    ze = train / "zeroeval"
    for stem, qs in (("math-l5", [(0, "What is 2+2?"), (1, "Solve x^2=4.")]),
                     ("crux", [("crux-test-#0", "f(1) == ??")])):
        (ze / f"{stem}_questions.jsonl").write_text(
            "\n".join(json.dumps({"id": i, "question": q, "answer": "a"}) for i, q in qs) + "\n")
    _write_csv(ze / "math-l5_correctness.csv", ["id", "gpt-4-0314", "Meta-Llama-3-8B-Instruct"],
               [[0, 1, 0], [1, "", 1], [99, 1, 1]])  # id 99 has no question: dropped
    _write_csv(ze / "crux_correctness.csv", ["id", "gpt-4-0314", "Mixtral-8x7B-Instruct-v0.1"],
               [["crux-test-#0", 0, 1]])

    lr = train / "llmrouter"
    (lr / "dcrouter_preprocessed__train.json").write_text(json.dumps([
        {"question": "Capital of France?", "scores": "{'qwen2.5-7b-instruct': 1.0, 'gemma-2-9b-it': 0.0, "
                                                     "'llama-3.1-8b-instruct': 1.0}", "cluster_id": "0"},
        {"question": "Translate cat.", "scores": {"qwen2.5-7b-instruct": 0.5, "gemma-2-9b-it": 0.75,
                                                  "llama-3.1-8b-instruct": None}, "cluster_id": "1"},
    ]))
    (lr / "example_data__query_data__default_query_train.jsonl").write_text(
        json.dumps({"task_name": "trivia_qa", "query": "Capital of France?"}) + "\n")
    return tmp_path


def _battles_as_set(t: BattleTable) -> set[tuple[str, str, str, str]]:
    """{(prompt, winner model or 'tie', model, model)} with the pair sorted."""
    out = set()
    for b in t:
        x, y = sorted((b.model_a, b.model_b))
        w = {"a": b.model_a, "b": b.model_b, "tie": "tie"}[b.winner]
        out.add((b.prompt, w, x, y))
    return out


# ----------------------------------------------------------------------------- loaders


def test_routerbench_question_keeps_only_final_block() -> None:
    q = routerbench_question(_five_shot("Which is hot?\nA) ice\nB) fire\nAnswer:"))
    assert q == "Which is hot?\nA) ice\nB) fire\nAnswer:"
    assert routerbench_question(repr(["Write a function."])) == "Write a function."
    with pytest.raises(DataError):
        routerbench_question("[unclosed")


def test_alpaca_eval_preferences_and_tie_band(fake_data: Path) -> None:
    t = load_source("alpaca_eval", fake_data)
    assert t.sources == ["alpaca_eval"]
    assert _battles_as_set(t) == {
        ("Write a poem.", "claude-2", "claude-2", "gpt-4-1106-preview"),
        ("Explain tides.", "gpt-4-1106-preview", "claude-2", "gpt-4-1106-preview"),
        ("Write a poem.", "tie", "gpt-4-1106-preview", "yi-34b-chat"),
        ("Explain tides.", "yi-34b-chat", "gpt-4-1106-preview", "yi-34b-chat"),
    }
    assert load_report(fake_data, ["alpaca_eval"])["alpaca_eval"].dropped["self_battle"] == 1
    # with no tie band the 1.55 judgement is a win for the model
    strict = load_alpaca_eval(fake_data, tie_band=0.0)
    assert (strict.winner == WINNER_CODES["tie"]).sum() == 0


def test_alpaca_eval_other_judge_draws_and_missing(fake_data: Path) -> None:
    t = load_alpaca_eval(fake_data, judge="alpaca_eval_gpt4")
    assert _battles_as_set(t) == {
        ("Write a poem.", "claude-1", "claude-1", "text-davinci-003"),
        ("Explain tides.", "tie", "claude-1", "text-davinci-003"),
        ("Explain tides.", "text-davinci-003", "gpt-4-0613", "text-davinci-003"),
    }
    with pytest.raises(DataError, match="no_such_judge"):
        load_alpaca_eval(fake_data, judge="no_such_judge")


def test_routerbench_pairs_ties_and_missing(fake_data: Path) -> None:
    t = load_source("routerbench", fake_data)
    g, m, c = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", "claude-2"
    arc1 = 'Final ARC question?\nA) p\nB) q\nAnswer:'
    arc2 = "Second ARC question?\nAnswer:"
    mbpp = "Write a function to add two numbers."
    wino = "The _ was heavy.\nA) box\nB) bag\nAnswer:"
    expected = {
        (arc1, g, g, m), (arc1, "tie", c, g), (arc1, c, c, m),
        (arc2, g, c, g),  # mixtral has no label on arc2: left out
        (mbpp, "tie", g, m), (mbpp, c, c, g), (mbpp, c, c, m),
        (wino, "tie", g, m), (wino, "tie", c, g), (wino, "tie", c, m),
    }
    assert _battles_as_set(t) == expected
    assert len(t) == len(expected)
    assert set(t.sources) == {"routerbench/arc_challenge", "routerbench/mbpp", "routerbench/winogrande"}
    assert not any("Q0?" in p for p in t.prompts)  # few-shot examples are not routed on
    rep = load_report(fake_data, ["routerbench"])["routerbench"]
    assert rep.dropped == {"rows_without_labels": 1, "missing_outcomes": 1}
    assert rep.battles == len(t)


def test_zeroeval_and_llmrouter(fake_data: Path) -> None:
    ze = load_source("zeroeval", fake_data)
    assert _battles_as_set(ze) == {
        ("What is 2+2?", "gpt-4-0314", "gpt-4-0314", "llama-3-8b-instruct"),
        ("f(1) == ??", "mixtral-8x7b-instruct-v0.1", "gpt-4-0314", "mixtral-8x7b-instruct-v0.1"),
    }
    rep = load_report(fake_data, ["zeroeval"])["zeroeval"]
    assert rep.dropped["rows_without_question"] == 1
    assert rep.dropped["missing_outcomes"] == 1
    assert rep.dropped["prompts_with_fewer_than_2_models"] == 1

    lr = load_source("llmrouter", fake_data)
    q, g, l8 = "qwen2.5-7b-instruct", "gemma-2-9b-it", "llama-3.1-8b-instruct"
    assert _battles_as_set(lr) == {
        ("Capital of France?", q, g, q), ("Capital of France?", "tie", l8, q), ("Capital of France?", l8, g, l8),
        ("Translate cat.", g, g, q),  # partial scores compared by value; None is missing
    }
    assert set(lr.sources) == {"llmrouter/trivia_qa", "llmrouter/unknown"}
    assert load_report(fake_data, ["llmrouter"])["llmrouter"].dropped["queries_without_task"] == 1


def test_load_battles_concat_and_fine_sources(fake_data: Path) -> None:
    all_ = load_battles(fake_data)
    parts = [load_source(s, fake_data) for s in SOURCES]
    assert len(all_) == sum(len(p) for p in parts)
    assert {source_family(s) for s in all_.sources} == set(SOURCES)
    mbpp = load_battles(fake_data, ["routerbench/mbpp"])
    assert set(mbpp.sources[i] for i in np.unique(mbpp.source_idx)) == {"routerbench/mbpp"}
    assert len(mbpp) == 3
    both = load_battles(fake_data, ["routerbench/mbpp", "routerbench"])
    assert len(both) == len(load_source("routerbench", fake_data))


def test_outcomes(fake_data: Path) -> None:
    o = load_outcomes(fake_data)
    assert isinstance(o, OutcomeTable)
    # routerbench 3+2+3+3 (dropped row excluded, missing cell excluded), zeroeval 2+1+2, llmrouter 3+2
    assert len(o) == 11 + 5 + 5
    acc = o.accuracy_by_model()
    assert acc["claude-2"] == pytest.approx(3 / 4)
    assert o.correct.dtype == np.float32
    row = [i for i in range(len(o)) if o.prompts[o.prompt_idx[i]] == "Translate cat."
           and o.models[o.model_idx[i]] == "gemma-2-9b-it"]
    assert o.correct[row].tolist() == [0.75]
    with pytest.raises(DataError, match="alpaca_eval"):
        load_outcomes(fake_data, ["alpaca_eval"])


def test_errors_name_the_problem(fake_data: Path) -> None:
    with pytest.raises(DataError, match="nosuch"):
        load_source("nosuch", fake_data)
    with pytest.raises(DataError, match="routerbench/nosuch"):
        load_battles(fake_data, ["routerbench/nosuch"])
    (fake_data / "train" / "zeroeval" / "crux_correctness.csv").unlink()
    with pytest.raises(DataError, match="crux_correctness.csv"):
        load_source("zeroeval", fake_data)
    with pytest.raises(DataError, match="does not exist"):
        load_battles(fake_data / "nowhere")


def test_bad_number_is_reported_with_location(fake_data: Path) -> None:
    _write_csv(fake_data / "train" / "zeroeval" / "crux_correctness.csv", ["id", "gpt-4-0314", "x"],
               [["crux-test-#0", "yes", 1]])
    with pytest.raises(DataError, match="crux_correctness.csv.*gpt-4-0314"):
        load_source("zeroeval", fake_data)


def test_loaded_tables_are_independent_copies(fake_data: Path) -> None:
    a = load_source("routerbench", fake_data)
    a.winner[:] = 2
    b = load_source("routerbench", fake_data)
    assert (b.winner != 2).any()


# ----------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_real_pool_loads_fast_with_canonical_names() -> None:
    t0 = time.perf_counter()
    table = load_battles()
    elapsed = time.perf_counter() - t0
    assert elapsed < 30
    counts = {s: 0 for s in SOURCES}
    for s, n in table.counts_by_source().items():
        counts[source_family(s)] += n
    assert counts["alpaca_eval"] > 20_000
    assert counts["routerbench"] > 100_000
    assert counts["zeroeval"] > 1_000_000
    assert counts["llmrouter"] > 150_000
    assert DEFAULT_STRONG_MODEL in table.models and DEFAULT_WEAK_MODEL in table.models
    assert all(m == canonical_model_name(m) for m in table.models)
    # the default strong/weak pair meets directly on every RouterBench prompt
    g, m = table.models.index(DEFAULT_STRONG_MODEL), table.models.index(DEFAULT_WEAK_MODEL)
    pair = ((table.model_a == g) & (table.model_b == m)) | ((table.model_a == m) & (table.model_b == g))
    assert pair.sum() > 2000
    assert {source_family(table.sources[s]) for s in np.unique(table.source_idx[pair])} == {"routerbench"}
    # routing text is the final question, never the shared 5-shot examples
    rb = load_source("routerbench")
    assert all("Answer:\nA\n\n" not in p and "Answer:\nB\n\n" not in p for p in rb.prompts)
    assert load_report()["routerbench"].dropped["rows_without_labels"] == 8
    acc = load_outcomes(sources=["routerbench"]).accuracy_by_model()
    assert acc[DEFAULT_STRONG_MODEL] > acc[DEFAULT_WEAK_MODEL]


# ----------------------------------------------------------------------------- parsers, cache, paths

import os  # noqa: E402
from dataclasses import FrozenInstanceError  # noqa: E402

from routellm_integrations.data import sources as sources_pkg  # noqa: E402
from routellm_integrations.data.sources import PARSERS, check_sources  # noqa: E402
from routellm_integrations.errors import UnknownSourceError  # noqa: E402
from routellm_integrations.paths import DATA_ENV, default_data_dir, resolve_data_dir  # noqa: E402


def test_every_source_has_a_parser_and_unknown_ones_are_named(fake_data: Path) -> None:
    assert tuple(PARSERS) == SOURCES == ("alpaca_eval", "routerbench", "zeroeval", "llmrouter")
    assert all(callable(p) for p in PARSERS.values())
    for call in (lambda: load_battles(fake_data, ["routerbench", "nosuch"]), lambda: load_source("nosuch", fake_data),
                 lambda: load_report(fake_data, ["nosuch/task"]), lambda: check_sources(["nosuch"])):
        with pytest.raises(UnknownSourceError, match="nosuch.*known: alpaca_eval, routerbench, zeroeval, llmrouter"):
            call()
    with pytest.raises(UnknownSourceError):  # checked before any folder is looked at
        load_battles(fake_data / "nowhere", ["nosuch"])
    assert check_sources(["routerbench/mbpp", "zeroeval"]) == {"routerbench": {"routerbench/mbpp"}, "zeroeval": None}


def test_sources_are_parsed_once_and_reparsed_when_a_file_changes(fake_data: Path, monkeypatch) -> None:
    calls = []
    real = PARSERS["zeroeval"]
    monkeypatch.setitem(PARSERS, "zeroeval", lambda root, **kw: calls.append(root) or real(root, **kw))
    first = load_source("zeroeval", fake_data)
    again = load_source("zeroeval", fake_data)
    assert len(calls) == 1 and _battles_as_set(first) == _battles_as_set(again)
    path = fake_data / "train" / "zeroeval" / "crux_correctness.csv"
    _write_csv(path, ["id", "gpt-4-0314", "Mixtral-8x7B-Instruct-v0.1"], [["crux-test-#0", 1, 1]])
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert len(load_source("zeroeval", fake_data)) == 2 and len(calls) == 2


def test_callers_cannot_corrupt_the_cache(fake_data: Path) -> None:
    a = load_source("routerbench", fake_data)
    expected = _battles_as_set(a)
    a.winner[:] = 2
    a.model_a[:], a.model_b[:] = a.model_b.copy(), a.model_a.copy()
    a.prompts.append("injected")
    a.models[0] = "someone-else"
    assert _battles_as_set(load_source("routerbench", fake_data)) == expected
    o = load_outcomes(fake_data, ["zeroeval"])
    o.correct[:] = 0
    assert load_outcomes(fake_data, ["zeroeval"]).correct.sum() > 0
    # what the cache holds is read-only itself
    parsed = sources_pkg._parse("routerbench", fake_data)
    for arr in (parsed.battles.winner, parsed.battles.prompt_idx, parsed.outcomes.correct):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 1
    assert isinstance(parsed.battles.prompts, tuple) and isinstance(parsed.outcomes.models, tuple)
    # reports are handed out as they are cached, so they are frozen
    rep = load_report(fake_data, ["routerbench"])["routerbench"]
    with pytest.raises(TypeError):
        rep.dropped["rows_without_labels"] = 0  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        rep.battles = 0  # type: ignore[misc]
    assert isinstance(rep.models, tuple)
    assert load_report(fake_data, ["routerbench"])["routerbench"].dropped["rows_without_labels"] == 1


def test_data_dir_argument_then_env_never_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    given, env = tmp_path / "given", tmp_path / "env"
    given.mkdir()
    env.mkdir()
    monkeypatch.setenv(DATA_ENV, str(env))
    assert resolve_data_dir(given) == given.resolve()  # the argument wins
    assert resolve_data_dir(None) == default_data_dir() == env.resolve()
    # no argument, no variable: an error saying how to pass it, even when a data folder sits
    # where a checkout's sibling would be (../shared/data seen from the working directory)
    monkeypatch.delenv(DATA_ENV)
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "README.md").write_text("data")
    monkeypatch.chdir(project)
    with pytest.raises(DataError, match=f"--data-dir.*{DATA_ENV}"):
        resolve_data_dir(None)
    with pytest.raises(DataError, match=DATA_ENV):
        load_battles()


def test_relative_and_missing_data_dirs(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a" / "data").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    assert resolve_data_dir("data") == (tmp_path / "a" / "data").resolve()  # against the cwd of the call
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="'data'.*does not exist.*--data-dir"):
        resolve_data_dir("data")
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "gone"))
    with pytest.raises(DataError, match=f"gone.*from \\${DATA_ENV}.*does not exist"):
        resolve_data_dir(None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        resolve_data_dir(tmp_path / "file")
