"""Cascade evaluation: APGR against the escalation share, cost-normalised APGR with the
cheap call always paid, the route-then-verify hybrid, paired bootstrap; the loaders of
recorded answers on the real data files; ``routellm evaluate --cascade`` end to end.

The hand-made sets are small enough to work the figures out on paper; each expected
value below is derived in its test's comment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from routellm_integrations import cli
from routellm_integrations.errors import DataError, RouteLLMError
from routellm_integrations.evaluation import (
    AnswerSet,
    bootstrap,
    cost_normalised_apgr,
    evaluate_cascade,
    evaluate_hybrid,
    evaluate_router_cost,
    evaluate_scores,
    load_answer_outcomes,
    load_answer_set,
    policy,
)
from routellm_integrations.evaluation.benchmarks import Benchmark
from routellm_integrations.evaluation.cascade import OperatingPoint
from routellm_integrations.evaluation.cascade_run import agreement_scores

# strong always right; weak wrong on the first two prompts only
TINY = Benchmark("tiny", ("a", "b", "c", "d"), np.array([1.0, 1, 1, 1]) * 100, np.array([0.0, 0, 1, 1]) * 100,
                 "S", "W", "accuracy")
GOOD = np.array([1.0, 1.0, 0.0, 0.0])  # escalates exactly the weak model's mistakes first


def test_a_plain_router_costs_what_its_share_says() -> None:
    rng = np.random.default_rng(0)
    n = 300
    strong = (rng.random(n) < 0.8) * 100.0
    weak = np.where(rng.random(n) < 0.6, strong, 0.0)  # right on 60% of what the strong model gets right
    bench = Benchmark("rand", tuple(map(str, range(n))), strong, weak, "S", "W", "accuracy")
    scores = rng.normal(size=n) + (strong > weak)
    res = evaluate_router_cost(scores, bench, "r")
    assert res.apgr == pytest.approx(evaluate_scores(scores, bench, "r").apgr, abs=1e-12)
    # x = cost-normalised spend is the strong share for a router: the same area at every price ratio
    assert res.cost_apgr[4.0] == pytest.approx(res.apgr, abs=1e-12)
    assert res.cost_apgr[16.0] == pytest.approx(res.apgr, abs=1e-12)
    cascade = evaluate_cascade(scores, bench, "c")
    assert cascade.apgr == pytest.approx(res.apgr, abs=1e-12)  # same escalations, same quality
    assert cascade.cost_apgr[4.0] < cascade.cost_apgr[16.0] < cascade.apgr  # the cheap call is paid


def test_cascade_cost_figures_by_hand() -> None:
    # num_results=2: thresholds 0, 0.5, 1 -> shares 1, 0.5, 0 with PGR 1, 1, 0.
    # share APGR: 0.5*0.5*1 (0 -> 0.5) + 0.5*1 (0.5 -> 1) = 0.75
    # ratio 4: x = 4s/3 -> (0, 0), (2/3, 1), (4/3, 1) cut at 1: 1/3 + 1/3 = 2/3
    # ratio 16: x = 16s/15 -> (0, 0), (8/15, 1), cut at 1: 4/15 + 7/15 = 11/15
    res = evaluate_cascade(GOOD, TINY, "c", num_results=2)
    assert res.apgr == pytest.approx(0.75)
    assert res.cost_apgr[4.0] == pytest.approx(2 / 3)
    assert res.cost_apgr[16.0] == pytest.approx(11 / 15)
    # agreement pays two cheap calls: x = (1 + 4s)/3 -> (1/3, 0), (1, 1); joined to (0, 0): area 1/3
    agree = evaluate_cascade(GOOD, TINY, "a", cheap_calls=2.0, num_results=2)
    assert agree.apgr == pytest.approx(0.75)
    assert agree.cost_apgr[4.0] == pytest.approx(1 / 3)
    # the plain router with the same scores: 0.75 at every ratio
    assert evaluate_router_cost(GOOD, TINY, "r", num_results=2).cost_apgr == {4.0: 0.75, 16.0: 0.75}


def test_hybrid_by_hand() -> None:
    # router scores put prompts 0 and 2 on top: with straight_share 0.5 they go straight to
    # the strong model (no cheap call); 1 and 3 are cascaded, the check escalating 1 first.
    # points (share, cheap calls, quality): (0, 1, .5) router alone; (.5, .5, .75) top half
    # straight; (.75, .5, 1) escalating prompt 1; (1, .5, 1) escalating both.
    # ratio 4, x = (cheap + 4 s - 1)/3: 0, .5, 5/6, 7/6 with PGR 0, .5, 1, 1:
    # .125 + .75 * (1/3) + 1/6 = 13/24. Share APGR: .125 + .1875 + .25 = .5625.
    res = evaluate_hybrid(np.array([1.0, 0, 1, 0]), np.array([0.0, 1, 0, 0]), TINY, "h", straight_share=0.5,
                          num_results=2)
    assert res.points[0] == (0.0, 1.0, 50.0)
    assert (0.5, 0.5, 75.0) in res.points and (0.75, 0.5, 100.0) in res.points
    assert res.cost_apgr[4.0] == pytest.approx(13 / 24)
    assert res.apgr == pytest.approx(0.5625)
    with pytest.raises(ValueError):
        evaluate_hybrid(GOOD, GOOD, TINY, "h", straight_share=1.0)


def test_cost_curve_conventions() -> None:
    # a single point past x = 1 is interpolated from (0, 0); nothing right of 1 counts
    pts = [OperatingPoint(1.0, 1.0, 100.0)]  # escalate everything: cost 1 + 4 = 5, x = 4/3
    assert cost_normalised_apgr(pts, 100.0, 0.0, 4.0) == pytest.approx(0.5 * 0.75)
    with pytest.raises(ValueError):
        cost_normalised_apgr(pts, 100.0, 0.0, 1.0)


def test_bad_scores_and_flat_sets_are_refused() -> None:
    with pytest.raises(DataError, match="one score per prompt"):
        evaluate_cascade(np.ones(3), TINY, "c")
    with pytest.raises(DataError, match="finite"):
        evaluate_cascade(np.array([1.0, np.nan, 0, 0]), TINY, "c")
    flat = Benchmark("flat", ("a", "b"), np.array([1.0, 0]), np.array([0.0, 1]), "S", "W", "accuracy")
    with pytest.raises(DataError, match="undefined"):
        evaluate_cascade(np.array([1.0, 0]), flat, "c")


def test_paired_bootstrap_is_paired() -> None:
    rng = np.random.default_rng(1)
    n = 400
    strong = rng.integers(0, 2, n) * 100.0
    weak = np.where(rng.random(n) < 0.5, strong, 0.0)
    bench = Benchmark("rand", tuple(map(str, range(n))), strong, weak, "S", "W", "accuracy")
    oracle = (strong > weak).astype(float) + 0.01 * rng.random(n)
    noise = rng.random(n)
    boot = bootstrap({"oracle": policy("cascade", oracle, name="oracle"),
                      "oracle again": policy("cascade", oracle, name="oracle again"),
                      "noise": policy("router", noise, name="noise")}, bench, n_boot=100, seed=0)
    same = boot.paired("oracle", "oracle again")
    assert same["diff"] == 0.0 and same["lo"] == 0.0 and same["hi"] == 0.0
    better = boot.paired("oracle", "noise")
    assert better["lo"] > 0.2 and better["p_a_better"] == 1.0
    lo, hi = boot.interval("oracle", 16.0)
    assert lo <= boot.full["oracle"].cost_apgr[16.0] <= hi
    with_iv = boot.with_intervals()["noise"]
    assert with_iv.lo is not None and with_iv.lo < with_iv.apgr < with_iv.hi


def test_agreement_score_orders_disagreement_first() -> None:
    prompts = ["What is 2 + 3?"] * 3
    weak = ["2 + 3 = 5. The answer is 5.", "2 + 3 = 5. The answer is 5.", ""]  # the last states no answer
    second = ["The answer is 5.", "The answer is 6.", "The answer is 5."]
    s = agreement_scores(prompts, weak, second)
    assert s[1] > s[2] > s[0]
    with pytest.raises(DataError):
        agreement_scores(prompts, weak, second[:2])


# --- the loaders, on the real data files ------------------------------------------------

@pytest.mark.slow
def test_gsm8k_answers_line_up_with_the_benchmark() -> None:
    from routellm_integrations.evaluation import load_benchmark

    data = load_answer_set("gsm8k")
    bench = load_benchmark("gsm8k")
    assert len(data) == len(bench) == 1307 and data.prompts == bench.prompts
    assert data.strong_answers is not None and data.second_answers is None
    # Mixtral's recorded answers end in GSM8K's "#### <number>" marker far more often than GPT-4's
    assert np.mean(["####" in a for a in data.weak_answers]) > 0.5
    assert np.mean(["####" in a for a in data.strong_answers]) < 0.5
    half = data.subset(np.arange(10))
    assert len(half) == 10 and half.weak_answers == data.weak_answers[:10]


@pytest.mark.slow
def test_mt_bench_first_turn_answers() -> None:
    data = load_answer_set("MT_Bench")
    assert len(data) == 72 and data.bench.outcome_kind == "judge score"
    assert all(a.strip() and "[The End of" not in a and "[The Start of" not in a for a in data.weak_answers)
    assert data.weak_answers != data.strong_answers


@pytest.mark.slow
def test_routerbench_tasks_with_a_second_cheap_answer() -> None:
    arc = load_answer_set("routerbench/arc_challenge")
    assert len(arc) == 1019 and arc.second_model == "gpt-3.5-turbo-1106"  # rows lacking a label dropped
    assert arc.bench.strong_model == "gpt-4-1106-preview" and arc.bench.weak_model == "mistralai/mixtral-8x7b-chat"
    assert np.mean([a.strip() in "ABCD" for a in arc.weak_answers]) > 0.9  # single letters
    assert not arc.prompts[0].startswith("[")  # the final question block, not the list literal
    wino = load_answer_set("routerbench/winograde", second_model="mistralai/mistral-7b-chat")
    assert wino.name == "routerbench/winogrande" and wino.second_model == "mistralai/mistral-7b-chat"
    with pytest.raises(DataError, match="no column"):
        load_answer_set("routerbench/mbpp", second_model="no-such-model")
    with pytest.raises(DataError, match="no recorded answers"):
        load_answer_set("mmlu")


# --- a user's file and the command line ---------------------------------------------------

def _answers_file(tmp_path: Path, with_answers: bool = True) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        a, b = int(rng.integers(2, 50)), int(rng.integers(2, 50))
        slip = i % 3 == 0  # a third of the cheap answers get their arithmetic wrong, and the outcome with it
        shown = a * b + (7 if slip else 0)
        row = {"prompt": f"A crate holds {a} boxes of {b} pens. How many pens are in the crate?",
               "strong": 1, "weak": 0 if slip else int(rng.random() < 0.9)}
        if with_answers:
            row["weak_answer"] = f"{a} * {b} = {shown}. The answer is {shown}."
        rows.append(row)
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_user_file_needs_the_weak_answer(tmp_path: Path) -> None:
    data = load_answer_outcomes(_answers_file(tmp_path))
    assert isinstance(data, AnswerSet) and len(data) == 60 and data.second_answers is None
    bare = tmp_path / "bare.csv"
    bare.write_text("prompt,strong,weak\nhi,1,0\n")
    with pytest.raises(DataError, match="weak_answer"):
        load_answer_outcomes(bare)
    gap = tmp_path / "gap.jsonl"
    gap.write_text('{"prompt": "a", "strong": 1, "weak": 0, "weak_answer": "x"}\n{"prompt": "b", "strong": 1, '
                   '"weak": 0}\n')
    with pytest.raises(DataError, match="row 2, column 'weak_answer'"):
        load_answer_outcomes(gap)


def _figures(stdout: str, policy_name: str) -> list[float]:
    """A table row's numbers after its kind: cheap calls, APGR, lo, hi, then per ratio value, lo, hi."""
    line = next(x for x in stdout.splitlines() if x.startswith(policy_name + "  "))
    rest = line[len(policy_name):].split()
    return [float(t.strip("[],")) for t in rest[1:]]


def test_evaluate_cascade_end_to_end(tmp_path: Path) -> None:
    path = _answers_file(tmp_path)
    out = CliRunner().invoke(cli.app, ["evaluate", "--routers", "length", "--outcomes", str(path),
                                       "--cascade", "checks", "--price-ratio", "4", "16", "--quiet"])
    assert out.exit_code == 0, out.output
    assert "cost APGR @4x" in out.stdout and "cost APGR @16x" in out.stdout
    cascade, length = _figures(out.stdout, "zero-label checks"), _figures(out.stdout, "length")
    assert cascade[0] == 1 and length[0] == 0  # cheap calls per prompt
    # the checks catch every slipped product (and the weak model is wrong on all of them): the
    # cascade beats prompt length, which knows nothing here. Escalating the 20 slips first and the
    # rest at random gives ~0.70 (a perfect ranking of the 27 wrong answers: 0.775)
    assert cascade[1] > 0.65 and cascade[1] > length[1] + 0.1
    assert cascade[4] < cascade[7] < cascade[1]  # the cheap call is paid, more dearly at ratio 4
    assert "hybrid: length top 20%, then zero-label checks" in out.stdout


def test_evaluate_cascade_refusals(tmp_path: Path) -> None:
    run = CliRunner().invoke
    bare = tmp_path / "bare.csv"
    bare.write_text("prompt,strong,weak\nhi,1,0\n")
    missing = run(cli.app, ["evaluate", "--routers", "length", "--outcomes", str(bare), "--cascade", "checks"])
    assert missing.exit_code == 1 and "weak_answer" in missing.output
    ratio = run(cli.app, ["evaluate", "--routers", "length", "--outcomes", str(_answers_file(tmp_path)),
                          "--cascade", "checks", "--price-ratio", "0.5"])
    assert ratio.exit_code == 2 and "price ratio" in ratio.output
    nodir = run(cli.app, ["evaluate", "--routers", "length", "--outcomes", str(_answers_file(tmp_path)),
                          "--cascade", str(tmp_path / "nosuch")])
    assert nodir.exit_code == 2 and "neither" in nodir.output
    assert issubclass(DataError, RouteLLMError)


@pytest.mark.slow
def test_evaluate_cascade_with_a_verifier_folder(tmp_path: Path) -> None:
    from routellm_integrations.embedders import get_embedder
    from routellm_integrations.verification import fit_verifier

    data = load_answer_outcomes(_answers_file(tmp_path))
    fit = fit_verifier(list(data.prompts), list(data.weak_answers), data.bench, embedder=get_embedder("wordllama"),
                       n_boot=50, folds=3)
    folder = fit.verifier.save(tmp_path / "adapted")
    out = CliRunner().invoke(cli.app, ["evaluate", "--routers", "length", "--outcomes", str(_answers_file(tmp_path)),
                                       "--cascade", str(folder), "--quiet"])
    assert out.exit_code == 0, out.output
    name = "verifier (adapted)" + ("" if fit.served else ", not served by its guard")
    assert _figures(out.stdout, name)[1] > 0.6  # the slips are in its features too
    empty = tmp_path / "empty"
    empty.mkdir()
    none = CliRunner().invoke(cli.app, ["evaluate", "--routers", "length", "--outcomes", str(_answers_file(tmp_path)),
                                        "--cascade", str(empty)])
    assert none.exit_code == 1 and "holds no verifier" in none.output


@pytest.mark.slow
def test_evaluate_cascade_on_gsm8k_recorded_answers() -> None:
    out = CliRunner().invoke(cli.app, ["evaluate", "--routers", "length", "--benchmark", "gsm8k", "--cascade",
                                       "checks", "--quiet"])
    assert out.exit_code == 0, out.output
    assert "gsm8k: 1307 prompts" in out.stdout
    zero, length = _figures(out.stdout, "zero-label checks"), _figures(out.stdout, "length")
    # the cheap answer carries what the prompt does not: the checks beat length on the share axis,
    # and pay for the cheap call in cost, more at ratio 4 than at 16
    assert zero[1] > length[1] + 0.05
    assert zero[4] < zero[7] < zero[1]
    assert length[4] == length[7] == length[1]
