"""Evaluation: the metrics on benchmarks small enough to work out by hand, the real
benchmarks' contamination counts and controls, the plot, and users' own outcome files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from routellm_integrations.errors import DataError
from routellm_integrations.evaluation import (BENCHMARKS, Benchmark, all_benchmark_prompts,
                                              evaluate_scores, format_table,
                                              load_benchmark, load_pair_outcomes,
                                              paired_bootstrap_apgr, plot_quality_curves)


def tiny(strong: list[float], weak: list[float]) -> Benchmark:
    return Benchmark("tiny", tuple(f"p{i}" for i in range(len(strong))), np.array(strong),
                     np.array(weak), "S", "W", "accuracy")


# Strong always right; weak right on prompts 2 and 3. strong_q = 100, weak_q = 50.
# Decile edges of the oracle's scores [100, 100, 0, 0] are 0 x4, 20, 50, 80, 100 x4, so
# the curve is (0%, 50) and (50%, 100), (100%, 100): AUC = .5*75 + .5*100 = 87.5.
ORACLE = tiny([100, 100, 100, 100], [0, 0, 100, 100])


def test_oracle_router_by_hand() -> None:
    r = evaluate_scores([100, 100, 0, 0], ORACLE, "oracle")
    assert r.auc == pytest.approx(87.5)
    assert r.apgr == pytest.approx((87.5 - 50) / (100 - 50))  # 0.75: deciles are coarse
    assert r.cpt50 == pytest.approx(25.0)  # quality 75 halfway between (0, 50) and (50, 100)
    assert r.cpt80 == pytest.approx(40.0)
    assert r.cpt20 == pytest.approx(10.0)
    assert len(r.points) == 11
    assert r.points[0].strong_pct == 100.0 and r.points[-1].strong_pct == 0.0


def test_inverted_router_by_hand() -> None:
    # Sends the two prompts the weak model gets right to strong first: (0,50), (50,50), (100,100).
    r = evaluate_scores([-100, -100, 0, 0], ORACLE, "inverted")
    assert r.auc == pytest.approx(0.5 * 50 + 0.5 * 75)
    assert r.apgr == pytest.approx(0.25)
    assert r.cpt50 == pytest.approx(75.0)
    assert r.cpt80 == pytest.approx(90.0)


def test_constant_scores_are_a_coin_flip() -> None:
    b = tiny([100, 0, 100, 100], [0, 0, 100, 0])
    r = evaluate_scores([3.0] * 4, b, "constant")
    # Every edge equals 3: all strong at the first ten, none at the last ("> edge").
    assert [p.strong_pct for p in r.points] == [100.0] * 10 + [0.0]
    assert r.apgr == pytest.approx(0.5)
    assert r.cpt50 == pytest.approx(50.0)
    assert r.cpt80 == pytest.approx(80.0)


def test_tied_scores_move_together() -> None:
    # Edges of [0, 1, 1, 1]: 0, .3, .6, .9, then 1 x7. The three tied prompts go strong
    # together (75%), and only the last edge (> 1) reaches 0%.
    b = tiny([100, 100, 100, 100], [100, 0, 0, 0])
    r = evaluate_scores([0, 1, 1, 1], b, "ties")
    assert sorted({p.strong_pct for p in r.points}) == [0.0, 75.0, 100.0]
    assert r.auc == pytest.approx(0.75 * (25 + 100) / 2 + 0.25 * 100)
    assert r.apgr == pytest.approx((71.875 - 25) / 75)
    assert r.cpt50 == pytest.approx(37.5)


def test_scores_are_validated() -> None:
    with pytest.raises(DataError, match="3 scores .* 4 prompts"):
        evaluate_scores([1, 2, 3], ORACLE, "short")
    with pytest.raises(ValueError, match="finite"):
        evaluate_scores([1, float("nan"), 3, 4], ORACLE, "nan")
    with pytest.raises(DataError, match="undefined"):
        evaluate_scores([1, 2, 3, 4], tiny([100, 0, 0, 0], [0, 100, 0, 0]), "equal")
    with pytest.raises(ValueError):
        evaluate_scores([1, 2, 3, 4], ORACLE, "x", num_results=0)


def test_format_table_lists_every_result() -> None:
    rows = [evaluate_scores([100, 100, 0, 0], ORACLE, "oracle"),
            evaluate_scores([1, 1, 1, 1], ORACLE, "a-long-router-name")]
    table = format_table(rows).splitlines()
    assert table[0].split() == ["router", "benchmark", "n", "APGR", "CPT(50%)", "CPT(80%)"]
    assert "0.750" in table[2] and "25.0%" in table[2]
    assert table[3].startswith("a-long-router-name") and "0.500" in table[3]
    assert len({len(line) for line in table[:2]}) == 1  # fixed width


# --- the real benchmarks ---------------------------------------------------------------

EXPECTED = {"mmlu": (14037, 5), "gsm8k": (1307, 12), "mt-bench": (72, 8)}
LENGTH_APGR = {"mmlu": 0.584, "gsm8k": 0.598, "mt-bench": 0.556}


@pytest.mark.parametrize("name", BENCHMARKS)
def test_contamination_filter_counts(name: str) -> None:
    b = load_benchmark(name)
    assert (len(b), b.n_dropped_contaminated) == EXPECTED[name]
    assert b.strong_outcome.shape == b.weak_outcome.shape == (len(b),)
    assert b.strong_quality > b.weak_quality


def test_qualities_and_aliases() -> None:
    mt = load_benchmark("MT_Bench")
    assert mt is load_benchmark("mt-bench")  # cached
    assert mt.outcome_kind == "judge score"
    assert mt.strong_quality == pytest.approx(9.212, abs=0.01)
    assert mt.weak_quality == pytest.approx(8.281, abs=0.01)
    mmlu = load_benchmark("mmlu")
    assert (mmlu.strong_quality, mmlu.weak_quality) == pytest.approx((80.59, 68.09), abs=0.01)
    with pytest.raises(DataError, match="mt-bench, mmlu, gsm8k"):
        load_benchmark("humaneval")


def test_mt_bench_filter_drops_on_either_turn(tmp_path: Path) -> None:
    # The real list only hits first turns, so build a folder where one hits a second turn.
    d = tmp_path / "benchmarks" / "routellm" / "mt_bench"
    d.mkdir(parents=True)
    qs = [{"question_id": i, "turns": [f"q{i} t1", f"q{i} t2"]} for i in (1, 2, 3)]
    (d / "question.jsonl").write_text("\n".join(map(json.dumps, qs)))
    (d / "contaminated_prompts.jsonl").write_text(
        json.dumps({"eval_prompt": "q1 t1"}) + "\n" + json.dumps({"eval_prompt": "q2 t2"}))
    judgements = [{"question_id": i, "model": m, "turn": t, "score": s}
                  for i in (1, 2, 3) for t in (1, 2)
                  for m, s in (("gpt-4-1106-preview", 9 + t % 2),
                               ("mistralai/Mixtral-8x7B-Instruct-v0.1", 2 * t))]
    (d / "judgements.jsonl").write_text("\n".join(map(json.dumps, judgements)))
    b = load_benchmark("mt-bench", data_dir=tmp_path)
    assert b.prompts == ("q3 t1",) and b.n_dropped_contaminated == 2
    assert list(b.strong_outcome) == [9.5] and list(b.weak_outcome) == [3.0]  # turn means


def test_all_benchmark_prompts_include_contaminated_and_second_turns() -> None:
    prompts = set(all_benchmark_prompts())
    from routellm_integrations.paths import resolve_data_dir

    root = resolve_data_dir(None) / "benchmarks"
    for sub in ("mmlu", "gsm8k", "mt_bench"):
        path = root / "routellm" / sub / "contaminated_prompts.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines():
            assert json.loads(line)["eval_prompt"] in prompts
    questions = [json.loads(x) for x in
                 (root / "routellm" / "mt_bench" / "question.jsonl").read_text().splitlines()]
    assert all(t in prompts for q in questions for t in q["turns"])
    assert set(load_benchmark("gsm8k").prompts) <= prompts


def test_random_router_is_near_half_on_mmlu() -> None:
    b = load_benchmark("mmlu")
    r = evaluate_scores(np.random.default_rng(0).random(len(b)), b, "random")
    assert abs(r.apgr - 0.5) < 0.05
    assert abs(r.cpt50 - 50) < 5


@pytest.mark.parametrize("name", BENCHMARKS)
def test_length_control_reproduces_the_notes(name: str) -> None:
    b = load_benchmark(name)
    r = evaluate_scores([len(p) for p in b.prompts], b, "length")
    assert r.apgr == pytest.approx(LENGTH_APGR[name], abs=0.01)


def test_paired_bootstrap_is_paired_and_reproducible() -> None:
    b = load_benchmark("gsm8k")
    length = np.array([len(p) for p in b.prompts], dtype=float)
    same = paired_bootstrap_apgr(length, length, b, n_boot=20)
    assert same["diff"] == 0 and same["sd"] == 0
    rand = np.random.default_rng(1).random(len(b))
    a1 = paired_bootstrap_apgr(length, rand, b, n_boot=50, seed=3)
    assert a1 == paired_bootstrap_apgr(length, rand, b, n_boot=50, seed=3)
    assert a1["lo"] < a1["diff"] < a1["hi"] and a1["lo"] > 0  # length beats random here


def test_plot_writes_a_png(tmp_path: Path) -> None:
    b = load_benchmark("mt-bench")
    results = [evaluate_scores([len(p) for p in b.prompts], b, "length"),
               evaluate_scores(np.random.default_rng(0).random(len(b)), b, "random")]
    out = plot_quality_curves(results, tmp_path / "sub" / "mt.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(DataError, match="several benchmarks"):
        plot_quality_curves(results + [evaluate_scores([1, 2, 3, 4], ORACLE, "o")],
                            tmp_path / "x.png")


# --- a user's own outcomes ---------------------------------------------------------------

def test_pair_outcomes_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text('prompt,strong,weak\n"line one\nline two",True,False\n'
                    "easy,true,TRUE\nhard,1,0\nhardest,1,0\n", encoding="utf-8")
    b = load_pair_outcomes(path, strong_model="big", weak_model="small")
    assert b.prompts[0] == "line one\nline two" and len(b) == 4
    assert b.outcome_kind == "accuracy"
    assert list(b.strong_outcome) == [100, 100, 100, 100]
    assert list(b.weak_outcome) == [0, 100, 0, 0]
    r = evaluate_scores([1, 0, 1, 1], b, "mine")
    assert r.weak_quality == 25 and r.strong_quality == 100 and r.benchmark == "mine"


def test_pair_outcomes_from_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "judged.jsonl"
    rows = [{"prompt": "a", "strong": 9, "weak": 7.5}, {"prompt": "b", "strong": "8", "weak": 8}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    b = load_pair_outcomes(path)
    assert b.outcome_kind == "score"
    assert list(b.strong_outcome) == [9, 8] and list(b.weak_outcome) == [7.5, 8]


@pytest.mark.parametrize("text, pattern", [
    ("prompt,strong,weak\na,1,0\nb,yes,0\n", r"row 2, column 'strong'"),
    ("prompt,strong,weak\na,1,0\nb,1,\n", r"row 2, column 'weak': missing"),
    ("prompt,strong\na,1\n", r"missing column.*'weak'"),
    ("prompt,strong,weak\n", "no rows"),
    ("prompt,strong,weak\n  ,1,0\n", r"row 1, column 'prompt'"),
    ("prompt,strong,weak\na,inf,0\n", "not finite"),
])
def test_pair_outcomes_reject_bad_csv(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=pattern):
        load_pair_outcomes(path)


def test_pair_outcomes_reject_bad_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "strong": 1, "weak": 0}\n'
                    '{"prompt": "b", "strong": [1], "weak": 0}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"row 2, column 'strong'"):
        load_pair_outcomes(path)
    path.write_text('{"prompt": "a", "strong": 1, "weak": 0}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2"):
        load_pair_outcomes(path)
    with pytest.raises(DataError, match="not found"):
        load_pair_outcomes(tmp_path / "missing.jsonl")
