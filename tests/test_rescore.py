"""Re-scoring a traffic log: local and Ray engines agree row for row, errors name the row.

Ray is in the dev extra, so the Ray tests run (and fail without it); they share one
local two-CPU cluster for the module.
"""

from __future__ import annotations

import csv
import json
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from routellm_integrations.cli import main
from routellm_integrations.errors import (DataError, InvalidThresholdError, MissingExtraError, RouteLLMError,
                                          UnknownRouterError)
from routellm_integrations.routers import load_router
from routellm_integrations.scale import RescoreSummary, map_log, rescore_log

N = 300
WORDS = "the quick brown fox jumps over a lazy dog while seven wizards quietly box jolly ghosts".split()


def _prompts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.choice([1, 3, 8, 20, 60, 150, 400])))
            + f" #{i}" for i in range(n)]


def _rows(n: int = N) -> list[dict]:
    # every 7th row has no id, so "copied when present" is checked both ways
    return [{"prompt": p} if i % 7 == 3 else {"id": f"req-{i:05d}", "prompt": p, "user": i % 5}
            for i, p in enumerate(_prompts(n))]


def _write_jsonl(path: Path, rows: list[dict], *, blank_every: int = 0) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i, r in enumerate(rows):
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
            if blank_every and i % blank_every == 0:
                fh.write("\n")
    return path


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, ["id", "prompt"])
        w.writeheader()
        for r in rows:
            w.writerow({"id": r.get("id", ""), "prompt": r["prompt"]})
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    import ray  # in the dev extra: a missing ray fails these tests, it does not skip them

    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return _write_jsonl(tmp_path / "traffic.jsonl", _rows(), blank_every=40)


# --- local engine --------------------------------------------------------------------------

def test_local_scores_order_ids_and_share(log: Path, tmp_path: Path) -> None:
    rows = _rows()
    out = tmp_path / "scores.jsonl"
    summary = rescore_log("length", log, out, strong_fraction=0.3, batch_size=64, progress=False)
    got = _read(out)
    expected = load_router("length").score([r["prompt"] for r in rows])
    assert [g["row"] for g in got] == list(range(N))
    assert np.array_equal(np.array([g["score"] for g in got]), expected)
    for g, r in zip(got, rows):
        assert ("id" in g) == ("id" in r) and g.get("id") == r.get("id")
        assert set(g) <= {"row", "id", "score", "route"}
        assert g["route"] == ("strong" if g["score"] >= summary.threshold else "weak")
    share = sum(g["route"] == "strong" for g in got) / N
    assert isinstance(summary, RescoreSummary)
    assert summary.n_prompts == N and summary.router == "length" and summary.engine == "local"
    assert summary.strong_fraction == 0.3 and summary.strong_share == pytest.approx(share)
    assert abs(share - 0.3) <= 1 / N
    assert not list(tmp_path.glob("*.part"))


def test_fixed_threshold_is_one_pass_and_exact(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    summary = rescore_log("length", log, out, threshold=0.6, progress=False)
    scores = np.array([g["score"] for g in _read(out)])
    assert summary.threshold == 0.6 and summary.strong_fraction is None
    assert summary.strong_share == pytest.approx(float(np.mean(scores >= 0.6)))
    assert 0.0 < summary.strong_share < 1.0  # the log must straddle the threshold for this to mean anything
    default = rescore_log("length", log, tmp_path / "d.jsonl", progress=False)
    assert default.threshold == 0.5
    with pytest.raises(InvalidThresholdError):
        rescore_log("length", log, tmp_path / "x.jsonl", threshold=0.5, strong_fraction=0.3, progress=False)
    with pytest.raises(InvalidThresholdError):
        rescore_log("length", log, tmp_path / "x.jsonl", strong_fraction=1.5, progress=False)
    assert not (tmp_path / "x.jsonl").exists()


def test_csv_log_keeps_fields_as_strings(tmp_path: Path) -> None:
    rows = [{"id": "007", "prompt": 'a "quoted", comma, and\na newline'}] + _rows(40)
    path = _write_csv(tmp_path / "traffic.csv", rows)
    out = tmp_path / "scores.jsonl"
    summary = rescore_log("length", path, out, threshold=0.5, batch_size=16, progress=False)
    got = _read(out)
    assert summary.n_prompts == len(rows) == len(got)
    assert np.array_equal([g["score"] for g in got], load_router("length").score([r["prompt"] for r in rows]))
    assert got[0]["id"] == "007"  # not retyped to 7
    assert [g["id"] for g in got] == [r.get("id", "") for r in rows]


def test_map_log_yields_in_order_with_one_fn_per_worker(log: Path) -> None:
    built = []

    def make_fn():
        built.append(1)
        return lambda rows: [{"n": len(r["prompt"])} for r in rows]

    out = list(map_log(log, make_fn, batch_size=7))
    assert [o["n"] for o in out] == [len(r["prompt"]) for r in _rows()]
    assert built == [1]


def test_shipped_mf_router_on_the_local_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    prompts = _prompts(40, seed=3)
    path = _write_jsonl(tmp_path / "t.jsonl", [{"id": i, "prompt": p} for i, p in enumerate(prompts)])
    out = tmp_path / "mf.jsonl"
    summary = rescore_log("mf", path, out, strong_fraction=0.5, progress=False)
    got = _read(out)
    # one batch on both sides: an embedding router's float32 scores shift ~1e-7 with batch padding
    expected = load_router("mf").score(prompts)
    assert np.array_equal([g["score"] for g in got], expected)
    assert [g["id"] for g in got] == list(range(40))
    assert summary.n_prompts == 40 and summary.strong_share == pytest.approx(0.5)
    assert np.ptp(expected) > 0.01  # real scores, not a constant


# --- bad input -----------------------------------------------------------------------------

def test_row_without_prompt_names_file_line_and_row(tmp_path: Path) -> None:
    rows = _rows(10)
    rows[6] = {"id": "x", "text": "no prompt here"}
    path = _write_jsonl(tmp_path / "bad.jsonl", rows, blank_every=4)  # blanks after rows 0 and 4
    out = tmp_path / "o.jsonl"
    with pytest.raises(DataError, match=r"bad\.jsonl: line 9 \(row 6\): has no 'prompt' field"):
        rescore_log("length", path, out, progress=False)
    assert not out.exists() and not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("line, problem", [
    ('{"prompt": "   "}', "'prompt' is empty"),
    ('{"prompt": 42}', "'prompt' is a int, not a string"),
    ('{"prompt": "unterminated', "is not valid JSON"),
    ('["prompt"]', "is a JSON list, not an object"),
])
def test_bad_jsonl_rows(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        list(map_log(path, lambda: lambda rows: [{} for _ in rows]))
    assert "bad.jsonl: line 2 (row 1): " + problem in str(err.value)


def test_bad_csv_logs(tmp_path: Path) -> None:
    no_column = tmp_path / "a.csv"
    no_column.write_text("id,text\n1,hello\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"a\.csv: the CSV header has no 'prompt' column"):
        map_log(no_column, lambda: lambda rows: rows)
    ragged = tmp_path / "b.csv"
    ragged.write_text("id,prompt\n1,hello\n2,hi,extra\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"b\.csv: row 1: has 3 fields, the header has 2"):
        list(map_log(ragged, lambda: lambda rows: rows))
    empty_prompt = tmp_path / "c.csv"
    empty_prompt.write_text("id,prompt\n1,hello\n2,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.csv: row 1: 'prompt' is empty"):
        list(map_log(empty_prompt, lambda: lambda rows: rows))


def test_missing_file_unknown_engine_format_and_router(log: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.jsonl.*not found"):
        rescore_log("length", tmp_path / "nope.jsonl", tmp_path / "o.jsonl", progress=False)
    with pytest.raises(DataError, match="unknown engine 'spark'"):
        rescore_log("length", log, tmp_path / "o.jsonl", engine="spark", progress=False)  # type: ignore[arg-type]
    txt = tmp_path / "log.txt"
    txt.write_text("hello\n")
    with pytest.raises(DataError, match="unknown log format '.txt'"):
        map_log(txt, lambda: lambda rows: rows)
    with pytest.raises(DataError, match="batch_size"):
        map_log(log, lambda: lambda rows: rows, batch_size=0)
    with pytest.raises(UnknownRouterError, match="no-such-router"):
        rescore_log("no-such-router", log, tmp_path / "o.jsonl", progress=False)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no rows"):
        rescore_log("length", empty, tmp_path / "o.jsonl", progress=False)
    assert not (tmp_path / "o.jsonl").exists()


def test_ray_engine_without_ray_is_a_typed_error(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is not installed
    with pytest.raises(MissingExtraError, match=r'pip install "routellm-integrations\[ray\]"') as err:
        map_log(log, lambda: lambda rows: rows, engine="ray")
    assert isinstance(err.value, RouteLLMError) and isinstance(err.value, ImportError)


# --- CLI -----------------------------------------------------------------------------------

def test_cli_rescore(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.jsonl"
    rc = main(["rescore", "--router", "length", "--log", str(log), "--out", str(out), "--strong-fraction", "0.3",
               "--batch-size", "50", "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    summary = json.loads(printed[0])
    assert summary["n_prompts"] == N and summary["engine"] == "local" and summary["router"] == "length"
    assert abs(summary["strong_share"] - 0.3) <= 1 / N
    assert len(_read(out)) == N
    rc = main(["rescore", "--router", "length", "--log", str(tmp_path / "missing.jsonl"), "--out", str(out)])
    assert rc == 2  # a missing input file is a usage error
    assert "does not exist" in capsys.readouterr().err


# --- Ray engine (one local cluster for the module; keep these last) ------------------------

def test_ray_matches_local_exactly(ray_cluster: None, log: Path, tmp_path: Path) -> None:
    local = rescore_log("length", log, tmp_path / "local.jsonl", strong_fraction=0.3, progress=False)
    remote = rescore_log("length", log, tmp_path / "ray.jsonl", engine="ray", strong_fraction=0.3,
                         num_workers=2, batch_size=16, progress=False)
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert remote.engine == "ray"
    from ray.data import DataContext

    assert DataContext.get_current().execution_options.preserve_order is False  # the caller's context untouched
    keep = {"n_prompts", "strong_share", "threshold", "strong_fraction", "router"}
    assert remote.model_dump(include=keep) == local.model_dump(include=keep)


def test_ray_csv_matches_local_exactly(ray_cluster: None, tmp_path: Path) -> None:
    rows = [{"id": "007", "prompt": 'a "quoted", comma, and\na newline'}] + _rows(120)
    path = _write_csv(tmp_path / "traffic.csv", rows)
    rescore_log("length", path, tmp_path / "local.jsonl", threshold=0.55, progress=False)
    rescore_log("length", path, tmp_path / "ray.jsonl", engine="ray", threshold=0.55, num_workers=2,
                batch_size=8, progress=False)
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert _read(tmp_path / "ray.jsonl")[0]["id"] == "007"


def test_ray_builds_fn_per_actor_and_keeps_order_across_actors(ray_cluster: None, tmp_path: Path) -> None:
    rows = [dict(r, i=i) for i, r in enumerate(_rows(200))]
    path = _write_jsonl(tmp_path / "t.jsonl", rows)

    def make_fn():
        import os as _os
        import time as _time

        def fn(batch):
            # the first rows finish last, and every batch takes long enough that both actors get ranges:
            # without order preservation the output would come back shuffled
            _time.sleep(1.0 if batch[0]["i"] < 10 else 0.05)
            return [{"n": len(r["prompt"]), "pid": _os.getpid()} for r in batch]
        return fn

    out = list(map_log(path, make_fn, engine="ray", num_workers=2, batch_size=10))
    assert [o["n"] for o in out] == [len(r["prompt"]) for r in rows]
    assert len({o["pid"] for o in out}) == 2 and os.getpid() not in {o["pid"] for o in out}


def test_ray_bad_row_names_line_and_row(ray_cluster: None, tmp_path: Path) -> None:
    rows = _rows(50)
    rows[33] = {"id": "x", "prompt": ""}
    path = _write_jsonl(tmp_path / "bad.jsonl", rows, blank_every=10)  # blanks after rows 0, 10, 20, 30
    with pytest.raises(DataError, match=r"bad\.jsonl: line 38 \(row 33\): 'prompt' is empty"):
        rescore_log("length", path, tmp_path / "o.jsonl", engine="ray", num_workers=2, progress=False)
    assert not (tmp_path / "o.jsonl").exists()
    ragged = tmp_path / "bad.csv"
    ragged.write_text("id,prompt\n1,hello\n2,hi,extra\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.csv: not a well-formed CSV log"):
        list(map_log(ragged, lambda: lambda rows: [{} for _ in rows], engine="ray", num_workers=2))
