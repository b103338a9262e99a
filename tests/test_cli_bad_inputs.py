"""The `routellm` command line, made hard to break: every bad invocation ends in one
message that names the problem, exit status 2 for a usage error (click's) and 1 for an
error found while working ("error: ..."), and never a traceback. Plus --version, the help
pages, `route -` (stdin), per-prompt latency, model names for model-free routers, a prompt
with a lone surrogate, the evaluate header and the calibrate warning.

No test needs the network, an API key or the training data: the train cases point
--data-dir at an empty folder and replace the trainers with a tripwire, so a case only
passes if the argument is refused before any data would be read."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from routellm_integrations import __version__
from routellm_integrations import cli
from routellm_integrations.data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL
from routellm_integrations.errors import UnknownRouterError
from routellm_integrations.routers.base import BaseRouter

COMMANDS = ["route", "demo", "calibrate", "evaluate", "train", "train mf", "train sw_ranking", "train bert",
            "train causal_llm", "adapt", "label", "rescore", "serve"]
LONG = "Prove that there are infinitely many primes p with p = 3 (mod 4), step by step, in full detail. " * 6


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cli_inputs")
    (d / "emptydir").mkdir()
    (d / "datadir").mkdir()
    texts = {
        "prompts.txt": "What is 2+2?\nWrite a sonnet about the sea.\n",
        "empty.txt": "",
        "blank.txt": "\n   \n\t\n",
        "nokey.jsonl": '{"text": "hello"}\n',
        "notjson.jsonl": "{not json\n",
        "numprompt.jsonl": '{"prompt": 3}\n',
        "pair.csv": "prompt,strong,weak\nhello,1,0\nprove it,1,1\n",
        "nocol.csv": "prompt,strong\nhello,1\n",
        "badvalue.csv": "prompt,strong,weak\nhello,abc,1\n",
        "log.jsonl": '{"id": 1, "text": "no prompt field"}\n',
        "afile": "not a folder\n",
    }
    for name, text in texts.items():
        (d / name).write_text(text, encoding="utf-8")
    (d / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (d / "latin1.txt").write_bytes(b"caf\xe9 au lait\n")
    return {"dir": str(d), **{name.replace(".", "_"): str(d / name) for name in [*texts, "binary.txt", "latin1.txt"]},
            "emptydir": str(d / "emptydir"), "datadir": str(d / "datadir"), "out": str(d / "out")}


@pytest.fixture(autouse=True)
def no_side_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tripwires: no case may start a server, read training data or call an API."""
    import routellm_integrations.server.run as server_run
    import routellm_integrations.training.pipeline as pipeline

    def tripwire(*args, **kwargs):
        raise AssertionError("the command went past argument checking (data would be read / a server started)")

    monkeypatch.setattr(server_run, "serve", tripwire)
    monkeypatch.setattr(pipeline, "prepare_pool", tripwire)  # where `routellm train NAME` starts reading data
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ROUTELLM_DEBUG"):
        monkeypatch.delenv(var, raising=False)


def invoke(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(cli.app, list(args), input=input)


# (arguments, exit status, a word the message must hold); {name} is a file of the fixture
LABEL = ["label", "--prompts", "{prompts_txt}", "--store", "{dir}/labels.sqlite", "--strong-model", "gpt-4o",
         "--weak-model", "gpt-4o-mini"]
TRAIN = ["train", "mf", "--out", "{out}", "--data-dir", "{datadir}"]
CASES = [
    (["nosuch"], 2, "No such command"),
    (["route", "--nosuch", "x"], 2, "No such option"),
    (["route"], 2, "Missing argument"),
    (["route", "--threshold", "abc", "x"], 2, "not a number"),
    (["route", "--threshold", "2", "x"], 2, "not in [0, 1]"),
    (["route", "--threshold", "nan", "x"], 2, "not in [0, 1]"),
    (["route", "x", "--threshold"], 2, "requires an argument"),
    (["route", ""], 1, "prompt 1 is empty"),
    (["route", "hello", "   "], 1, "prompt 2 is empty"),
    (["route", "--router", "nosuchrouter", "x"], 1, "unknown router 'nosuchrouter'"),
    (["route", "--router", "{emptydir}", "x"], 1, "config.json"),
    (["route", "--router", "mf", "--strong-model", "gpt-7", "x"], 1, "gpt-7"),
    (["demo", "--threshold", "-0.1"], 2, "not in [0, 1]"),
    (["demo", "--router", "nosuch"], 1, "unknown router"),
    (["calibrate", "--prompts", "{prompts_txt}"], 2, "--strong-fraction"),
    (["calibrate", "--strong-fraction", "0.3"], 2, "--prompts"),
    (["calibrate", "--strong-fraction", "-1", "--prompts", "{prompts_txt}"], 2, "not in [0, 1]"),
    (["calibrate", "--strong-fraction", "1.5", "--prompts", "{prompts_txt}"], 2, "not in [0, 1]"),
    (["calibrate", "--strong-fraction", "0.3", "--prompts", "/nonexistent/prompts.txt"], 2, "does not exist"),
    (["calibrate", "--strong-fraction", "0.3", "--prompts", "{emptydir}"], 2, "is a directory"),
    (["calibrate", "--strong-fraction", "0.3", "--prompts", "{empty_txt}"], 1, "holds no prompts"),
    (["calibrate", "--strong-fraction", "0.3", "--prompts", "{blank_txt}"], 1, "holds no prompts"),
    (["calibrate", "--strong-fraction", "0.3", "--prompts", "{binary_txt}"], 1, "binary"),
    (["calibrate", "--strong-fraction", "0.3", "--prompts", "{latin1_txt}"], 1, "not UTF-8"),
    (["calibrate", "--strong-fraction", "0.3", "--prompts", "{nokey_jsonl}"], 1, "'prompt' field"),
    (["calibrate", "--strong-fraction", "0.3", "--prompts", "{notjson_jsonl}"], 1, "not JSON"),
    (["calibrate", "--strong-fraction", "0.3", "--prompts", "{numprompt_jsonl}"], 1, "non-empty text"),
    (["calibrate", "--strong-fraction", "0.3", "--prompts", "{prompts_txt}", "--router", "nosuch"], 1,
     "unknown router"),
    (["evaluate", "--benchmark", "nosuch"], 1, "unknown benchmark"),
    (["evaluate", "--outcomes", "{nocol_csv}", "--routers", "length"], 1, "missing column"),
    (["evaluate", "--outcomes", "{badvalue_csv}", "--routers", "length"], 1, "'abc'"),
    (["evaluate", "--outcomes", "/nonexistent.csv"], 2, "does not exist"),
    (["evaluate", "--outcomes", "{pair_csv}", "--routers", "length", "nosuch"], 1, "['nosuch']"),
    (["evaluate", "--strong-model", "gpt-4o"], 2, "--outcomes"),
    (["evaluate", "--routers"], 2, "requires an argument"),
    (["train", "nosuch", "--out", "{out}"], 2, "nosuch"),
    (["train", "mf"], 2, "--out"),
    ([*TRAIN, "--epochs", "0"], 1, "--epochs"),
    ([*TRAIN, "--epochs", "-3"], 1, "--epochs"),
    ([*TRAIN, "--epochs", "abc"], 2, "--epochs"),
    ([*TRAIN, "--dim", "0"], 1, "--dim"),
    ([*TRAIN, "--hidden", "-1"], 1, "--hidden"),
    (["train", "mf", "--out", "{afile}"], 2, "is a file"),
    ([*TRAIN, "--sources", "nosuchsource"], 1, "nosuchsource"),
    ([*TRAIN, "--sources", "none"], 1, "nothing to train on"),
    ([*TRAIN, "--battles", "/nonexistent.csv"], 2, "does not exist"),
    ([*TRAIN, "--scores", "/nonexistent.csv"], 2, "does not exist"),
    (["train", "quality", "--out", "{out}", "--sources", "none", "--scores", "{afile}"], 1, "must be a .csv or .jsonl"),
    (["train", "quality", "--out", "{out}", "--sources", "none", "--rank", "0"], 1, "--rank"),
    ([*TRAIN, "--embedder", "nosuchembedder"], 1, "nosuchembedder"),
    ([*TRAIN, "--max-prompts-per-source", "0"], 2, "--max-prompts-per-source"),
    (["train", "mf", "--out", "{out}", "--data-dir", "/nonexistent/data"], 2, "does not exist"),
    (["train", "sw_ranking", "--out", "{out}", "--data-dir", "{datadir}", "--epochs", "3"], 2, "No such option: --epochs"),
    (["train", "sw_ranking", "--out", "{out}", "--data-dir", "{datadir}", "--tiers", "1"], 1, "--tiers"),
    (["train", "sw_ranking", "--out", "{out}", "--data-dir", "{datadir}", "--tiering", "bogus"], 2, "bogus"),
    (["train", "bert", "--out", "{out}", "--data-dir", "{datadir}", "--epochs", "0"], 1, "--epochs"),
    (["adapt", "--out", "{out}"], 1, "give your labels"),
    (["adapt", "--out", "{out}", "--outcomes", "/nonexistent.csv"], 2, "does not exist"),
    (["adapt", "--out", "{out}", "--from-store", "{emptydir}"], 2, "is a directory"),
    (["adapt", "--out", "{out}", "--outcomes", "{pair_csv}", "--folds", "1"], 2, "--folds"),
    (["adapt", "--out", "{out}", "--outcomes", "{pair_csv}", "--confidence", "2"], 2, "not in [0, 1]"),
    ([*LABEL, "--max-usd", "-1"], 1, "--max-usd"),
    ([*LABEL, "--concurrency", "0"], 2, "--concurrency"),
    ([*LABEL, "--provider", "nosuch"], 2, "nosuch"),
    (LABEL, 1, "OPENAI_API_KEY"),
    (["label", "--prompts", "{prompts_txt}", "--strong-model", "a", "--weak-model", "b"], 2, "--store"),
    (["label", *LABEL[1:4], "{emptydir}", *LABEL[5:]], 2, "is a directory"),
    (["rescore", "--log", "/nonexistent.jsonl", "--out", "{dir}/scores.jsonl"], 2, "does not exist"),
    (["rescore", "--log", "{prompts_txt}", "--out", "{dir}/scores.jsonl", "--threshold", "0.3",
      "--strong-fraction", "0.2"], 2, "not both"),
    (["rescore", "--log", "{prompts_txt}", "--out", "{dir}/scores.jsonl", "--batch-size", "0"], 2, "--batch-size"),
    (["rescore", "--log", "{prompts_txt}", "--out", "{dir}/scores.jsonl", "--engine", "spark"], 2, "spark"),
    (["rescore", "--router", "length", "--log", "{log_jsonl}", "--out", "{dir}/scores.jsonl"], 1, "'prompt'"),
    (["serve", "--port", "99999"], 1, "port"),
    (["serve", "--port", "abc"], 2, "--port"),
    (["serve", "--router", "nosuch"], 1, "nosuch"),
    (["serve", "--db", "nosuch://x"], 1, "state"),
    (["serve", "--config", "/nonexistent.yaml"], 2, "does not exist"),
    (["serve", "--threshold", "0.2", "--strong-fraction", "0.3"], 1, "not both"),
    (["serve", "--strong", "gpt-4o"], 1, "provider:model"),
    (["serve", "--log-level", "loud"], 2, "loud"),
]


@pytest.mark.parametrize("args, status, word", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_invocation_names_the_problem(files: dict[str, str], args: list[str], status: int, word: str) -> None:
    result = invoke(*(a.format(**files) for a in args))
    assert result.exit_code == status, (result.exit_code, result.output)
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)
    assert "Traceback" not in result.output
    assert word in result.stderr, result.stderr
    if status == 1:  # found while working: one line, "error: <message>"
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr


def test_the_matrix_is_large() -> None:
    assert len(CASES) >= 45


def run_process(*args: str | bytes, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "routellm_integrations", *args], input=input,
                          capture_output=True, timeout=120)


def test_a_real_process_exits_2_on_usage_and_1_on_errors_without_tracebacks() -> None:
    usage = run_process("route", "--threshold", "2", "hello")
    assert usage.returncode == 2 and b"not in [0, 1]" in usage.stderr and b"Traceback" not in usage.stderr
    error = run_process("route", "--router", "nosuchrouter", "hello")
    assert error.returncode == 1 and b"Traceback" not in error.stderr
    assert error.stderr.decode().startswith("error: unknown router 'nosuchrouter'")
    assert error.stderr.count(b"\n") == 1 and error.stdout == b""


def test_routellm_debug_shows_what_an_error_hides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTELLM_DEBUG", "1")
    result = invoke("route", "--router", "nosuchrouter", "hello")
    assert isinstance(result.exception, UnknownRouterError)


def test_an_unexpected_exception_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(cli.route, "_load", broken)  # where `routellm route` looks it up
    result = invoke("route", "--router", "length", "hello")
    assert isinstance(result.exception, RuntimeError) and result.exit_code == 1


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout == f"routellm-integrations {__version__}\n"
    assert run_process("--version").stdout.decode() == f"routellm-integrations {__version__}\n"


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_has_examples_defaults_and_no_rest(command: str) -> None:
    result = invoke(*command.split(), "--help")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Examples:" in text and "  routellm " in text.split("Examples:")[1]
    for rest in ("``", ":func:", ":class:", ":mod:", ":data:"):
        assert rest not in text
    if command and command != "train":  # `train` lists its commands; each shows its defaults
        assert "[default:" in text


def test_route_reads_stdin_skipping_blank_lines() -> None:
    result = invoke("route", "-", "--router", "length", input=f"Hi!\n\n   \n{LONG}\n")
    assert result.exit_code == 0, result.output
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["route"] for d in decisions] == ["weak", "strong"]
    assert [d["model"] for d in decisions] == [DEFAULT_WEAK_MODEL, DEFAULT_STRONG_MODEL]
    assert invoke("route", "-", "--router", "length", input="\n \n").exit_code == 1


def test_model_free_routers_report_model_names() -> None:
    for router in ("length", "random"):
        result = invoke("route", "--router", router, "--threshold", "0", "Hi!")
        assert json.loads(result.stdout)["model"] == DEFAULT_STRONG_MODEL
    named = invoke("route", "--router", "length", "--strong-model", "big", "--weak-model", "small", "Hi!", LONG)
    assert [json.loads(line)["model"] for line in named.stdout.splitlines()] == ["small", "big"]


class SleepyRouter(BaseRouter):
    """Scoring time grows with the prompt: 1 ms per 10 characters."""

    name = "sleepy"

    def _score(self, prompts: list[str]) -> np.ndarray:
        time.sleep(sum(len(p) for p in prompts) / 10_000)
        return np.full(len(prompts), 0.5)


def test_latency_is_each_prompts_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.route, "_load", lambda *args: SleepyRouter())
    result = invoke("route", "--router", "sleepy", "x" * 20, "y" * 600)
    assert result.exit_code == 0, result.output
    short, long = (json.loads(line)["latency_ms"] for line in result.stdout.splitlines())
    assert 0 < short < long and short + long > long  # two values, neither the total
    assert long > 3 * short  # a batch average would make them equal


def test_a_lone_surrogate_is_routed(tmp_path: Path) -> None:
    argv = run_process("route", "--router", "mf", b"caf\xe9")  # the shell passing $'caf\xe9'
    assert argv.returncode == 0, argv.stderr
    assert json.loads(argv.stdout)["router"] == "mf"
    stdin = run_process("route", "-", "--router", "mf_minilm", input=b"caf\xe9\nna\xefve question\n")
    assert stdin.returncode == 0, stdin.stderr
    assert len(stdin.stdout.splitlines()) == 2
    in_process = invoke("route", "--router", "length", "caf\udce9")
    assert in_process.exit_code == 0 and json.loads(in_process.stdout)["router"] == "length"
    shown = invoke("route", "--router", "caf\udce9", "hello")
    assert shown.exit_code == 1 and "caf\\udce9" in shown.stderr


def test_evaluate_outcomes_header_names_the_models(files: dict[str, str], tmp_path: Path) -> None:
    named = invoke("evaluate", "--routers", "length", "random", "--outcomes", files["pair_csv"],
                   "--strong-model", "gpt-4o", "--weak-model", "gpt-4o-mini", "--output", str(tmp_path))
    assert named.exit_code == 0, named.output
    header = next(line for line in named.stdout.splitlines() if "prompts," in line)
    assert "strong gpt-4o = " in header and "weak gpt-4o-mini = " in header
    assert {line.split()[0] for line in named.stdout.splitlines() if line.strip()} >= {"length", "random"}
    unnamed = invoke("evaluate", "--routers", "length", "--outcomes", files["pair_csv"], "--output", str(tmp_path))
    assert "strong strong" not in unnamed.stdout and "column 'strong'" in unnamed.stdout


def test_calibrate_warns_on_few_prompts_and_shows_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    few, many = tmp_path / "few.txt", tmp_path / "many.txt"
    few.write_text("\n".join("prompt " + "x" * i for i in range(20)))
    many.write_text("\n".join("prompt " + "x" * i for i in range(600)))  # distinct lengths: no ties
    warned = invoke("calibrate", "--router", "length", "--strong-fraction", "0.3", "--prompts", str(few))
    assert warned.exit_code == 0 and "warning:" in warned.stderr and "only 20 prompts" in warned.stderr
    assert json.loads(warned.stdout)["n_prompts"] == 20
    monkeypatch.setattr(cli.calibrate, "_bars", lambda quiet: not quiet)  # as on a terminal
    shown = invoke("calibrate", "--router", "length", "--strong-fraction", "0.3", "--prompts", str(many))
    assert shown.exit_code == 0 and "warning" not in shown.stderr and "scoring" in shown.stderr
    assert json.loads(shown.stdout)["realised_strong_fraction"] == pytest.approx(0.3, abs=0.01)
    quiet = invoke("calibrate", "--router", "length", "--strong-fraction", "0.3", "--prompts", str(many), "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_list_options_take_several_values_after_one_flag() -> None:
    assert cli.common._spread_lists(["--routers", "a", "b", "--benchmark", "x", "--routers=c", "d", "--", "-e"],
                             {"--routers"}) == ["--routers", "a", "--routers", "b", "--benchmark", "x",
                                                "--routers=c", "--routers", "d", "--", "-e"]
