"""The budgeted research agent example, run offline against the local server."""

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "budgeted_research_agent.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("budgeted_research_agent", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["budgeted_research_agent"] = module
    spec.loader.exec_module(module)
    return module


def test_budget_holds_and_steps_stay_on_their_turns_backend(example, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    budget = 0.01
    rows = example.run(budget)
    assert len(rows) == 2 * len(example.QUESTIONS)  # each turn: a tool call, then the answer
    for first, second in zip(rows[::2], rows[1::2]):
        assert first["tool_calls"] and second["route"] == first["route"]  # the tool step kept the turn's backend
        assert second["step_policy"] == "per_turn:kept"
    assert any(r["route"] == "strong" for r in rows)
    assert rows[-1]["spent_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows)) and rows[-1]["spent_usd"] <= budget
    # the threshold rises as the budget is spent, and turns after the money ran short go weak
    thresholds = [r["threshold"] for r in rows[::2]]
    assert thresholds == sorted(thresholds) and thresholds[-1] > thresholds[0] + 0.1
    assert rows[-1]["route"] == "weak"
    assert example.main(["--budget", str(budget)]) == 0
    out = capsys.readouterr().out
    assert "per_turn:kept" in out and f"of ${budget:.6f}" in out


@pytest.mark.parametrize("expression, expected", [("2*(3+4)", "14"), ("12 * 7 + 3", "87"), ("-2 ** 2", "-4"),
                                                  ("7 // 2 + 7 % 3 - 1 / 4", "3.75"), ("(2) ** -1", "0.5")])
def test_calculator_computes_arithmetic(example, expression, expected):
    assert example.calculator.invoke({"expression": expression}) == expected


@pytest.mark.parametrize("expression, why", [
    ("9**9**9", "too large"), ("2 ** 5000", "too large"), ("(10**300) * (10**300)", "too large"),
    ("1e308 * 10", "too large"), ("__import__('os')", "not allowed"), ("open('/etc/passwd').read()", "not allowed"),
    ("(1).__class__", "not allowed"), ("x + 1", "not allowed"), ("[1, 2]", "not allowed"), ("True + 1", "not allowed"),
    ("1; 2", "not an arithmetic expression"), ("1 / 0", "divides by zero"), ("(-8) ** 0.5", "not a real number"),
    ("1+" * 150 + "1", "longer than"),
])
def test_calculator_refuses_quickly_with_a_clear_message(example, expression, why):
    import time

    start = time.perf_counter()
    out = example.calculator.invoke({"expression": expression})
    assert time.perf_counter() - start < 0.5
    assert out.startswith("refused: ") and why in out


def test_example_never_calls_eval():
    import ast

    tree = ast.parse(EXAMPLE.read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") in ("eval", "exec")]
