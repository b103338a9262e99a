"""The RouteLLM paper's three benchmarks (MT-Bench, MMLU, GSM8K), and a user's own pairs.

Every benchmark is reduced to the same shape, a :class:`Benchmark`: one routing text per
prompt and what the strong and the weak model would score on it. The metrics then never
need to know where the numbers came from, so a user's recorded outcomes for any model pair
(:func:`load_pair_outcomes`) are evaluated by exactly the same code as the paper's sets.

The contamination filters are those of the reference code (lm-sys/RouteLLM,
``routellm/evals``): rows whose prompt overlaps the paper's training data are dropped,
which is why the counts are MMLU 14,037, GSM8K 1,307 and MT-Bench 72.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import DataError
from ..files import read_jsonl
from ..paths import resolve_data_dir

BENCHMARKS: tuple[str, ...] = ("mt-bench", "mmlu", "gsm8k")

STRONG_MODEL = "gpt-4-1106-preview"
WEAK_MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"

OutcomeKind = Literal["accuracy", "judge score", "score"]

_SUBDIR = {"mt-bench": "mt_bench", "mmlu": "mmlu", "gsm8k": "gsm8k"}
_ALIASES = {"mtbench": "mt-bench", "mt": "mt-bench"}

# MMLU prompts carry multi-line quoted fields, and GSM8K stores whole model answers.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True, eq=False)
class Benchmark:
    """Prompts and both models' outcomes, aligned by position.

    Outcomes are stored in the unit the quality is reported in (accuracy in percent,
    MT-Bench judge score 1-10), so the quality of any routing is just the mean of the
    routed model's outcomes. The arrays are read-only because loaded benchmarks are cached
    and shared between callers.
    """

    name: str
    prompts: tuple[str, ...]
    strong_outcome: np.ndarray
    weak_outcome: np.ndarray
    strong_model: str
    weak_model: str
    outcome_kind: OutcomeKind
    n_dropped_contaminated: int = 0

    def __post_init__(self) -> None:
        n = len(self.prompts)
        for label in ("strong_outcome", "weak_outcome"):
            arr = np.array(getattr(self, label), dtype=float)
            if arr.shape != (n,):
                raise DataError(f"benchmark {self.name!r}: {label} has shape {arr.shape}, "
                                f"expected ({n},) to match the prompts")
            if not np.all(np.isfinite(arr)):
                raise DataError(f"benchmark {self.name!r}: {label} holds non-finite values")
            arr.setflags(write=False)
            object.__setattr__(self, label, arr)

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, idx: Any) -> "Benchmark":
        """The rows at ``idx`` (indices, repeats allowed: bootstrap resamples)."""
        rows = np.asarray(idx, dtype=np.int64)
        return Benchmark(self.name, tuple(self.prompts[i] for i in rows), self.strong_outcome[rows],
                         self.weak_outcome[rows], self.strong_model, self.weak_model, self.outcome_kind)

    @property
    def strong_quality(self) -> float:
        """Quality when every prompt goes to the strong model."""
        return float(self.strong_outcome.mean())

    @property
    def weak_quality(self) -> float:
        """Quality when every prompt goes to the weak model."""
        return float(self.weak_outcome.mean())


def canonical_name(name: str) -> str:
    """Map ``"MT_Bench"``, ``"mt bench"``, ``"mtbench"`` ... to a name in BENCHMARKS."""
    key = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    key = _ALIASES.get(key.replace("-", ""), key)
    if key not in BENCHMARKS:
        raise DataError(f"unknown benchmark {name!r}; valid names: {', '.join(BENCHMARKS)}")
    return key


_cache: dict[tuple[str, str], Benchmark] = {}
_cache_lock = threading.Lock()


def load_benchmark(name: str, data_dir: str | os.PathLike[str] | None = None) -> Benchmark:
    """Load one of :data:`BENCHMARKS`, contamination-filtered, cached per (name, folder)."""
    key_name = canonical_name(name)
    root = resolve_data_dir(data_dir).resolve()
    key = (key_name, str(root))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _LOADERS[key_name](_bench_dir(root, key_name))
        return _cache[key]


def all_benchmark_prompts(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Every prompt text of every benchmark, contaminated rows and both MT-Bench turns
    included, without duplicates: what training data must be decontaminated against."""
    root = resolve_data_dir(data_dir).resolve()
    texts: dict[str, None] = {}
    for row in _mmlu_rows(_bench_dir(root, "mmlu")):
        texts[row["prompt"]] = None
    for row in _read_csv(_bench_dir(root, "gsm8k") / "gsm8k_responses.csv"):
        texts[row["prompt"]] = None
    for q in read_jsonl(_bench_dir(root, "mt-bench") / "question.jsonl"):
        for turn in q["turns"]:
            texts[turn] = None
    return list(texts)


# --- the paper's benchmarks -------------------------------------------------------------

def _bench_dir(root: Path, name: str) -> Path:
    path = root / "benchmarks" / "routellm" / _SUBDIR[name]
    if not path.is_dir():
        raise DataError(f"benchmark folder {str(path)!r} not found under data dir {str(root)!r}")
    return path


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"file {str(path)!r} not found")
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _contaminated(bench_dir: Path) -> set[str]:
    return {r["eval_prompt"] for r in read_jsonl(bench_dir / "contaminated_prompts.jsonl")}


def _bool_cell(value: str, path: Path, row: int, column: str) -> float:
    v = value.strip().lower()
    if v in ("true", "1", "1.0"):
        return 100.0
    if v in ("false", "0", "0.0"):
        return 0.0
    raise DataError(f"{path}: row {row}, column {column!r}: expected True/False, got {value!r}")


def _mmlu_rows(bench_dir: Path) -> list[dict[str, str]]:
    files = sorted((bench_dir / "responses").glob("mmlu_*.csv"))
    if not files:
        raise DataError(f"no mmlu_*.csv files in {str(bench_dir / 'responses')!r}")
    rows: list[dict[str, str]] = []
    for f in files:
        for r in _read_csv(f):
            r["__file__"] = str(f)
            rows.append(r)
    return rows


def _accuracy_benchmark(name: str, rows: list[dict[str, str]], contaminated: set[str],
                        default_path: Path) -> Benchmark:
    prompts: list[str] = []
    strong: list[float] = []
    weak: list[float] = []
    dropped = 0
    for i, r in enumerate(rows, start=1):
        path = Path(r.get("__file__", default_path))
        for col in ("prompt", STRONG_MODEL, WEAK_MODEL):
            if col not in r or r[col] is None:
                raise DataError(f"{path}: row {i} has no column {col!r}")
        if r["prompt"] in contaminated:
            dropped += 1
            continue
        prompts.append(r["prompt"])
        strong.append(_bool_cell(r[STRONG_MODEL], path, i, STRONG_MODEL))
        weak.append(_bool_cell(r[WEAK_MODEL], path, i, WEAK_MODEL))
    return Benchmark(name, tuple(prompts), np.array(strong), np.array(weak), STRONG_MODEL,
                     WEAK_MODEL, "accuracy", dropped)


def _load_mmlu(bench_dir: Path) -> Benchmark:
    return _accuracy_benchmark("mmlu", _mmlu_rows(bench_dir), _contaminated(bench_dir),
                               bench_dir / "responses")


def _load_gsm8k(bench_dir: Path) -> Benchmark:
    path = bench_dir / "gsm8k_responses.csv"
    return _accuracy_benchmark("gsm8k", _read_csv(path), _contaminated(bench_dir), path)


def _load_mt_bench(bench_dir: Path) -> Benchmark:
    """Route on turn 1; a question scores the mean of the routed model's turn scores."""
    contaminated = _contaminated(bench_dir)
    questions = read_jsonl(bench_dir / "question.jsonl")
    turn_scores: dict[tuple[int, str], list[float]] = {}
    for j in read_jsonl(bench_dir / "judgements.jsonl"):
        if j.get("model") in (STRONG_MODEL, WEAK_MODEL):
            turn_scores.setdefault((int(j["question_id"]), j["model"]), []).append(
                float(j["score"]))
    prompts: list[str] = []
    strong: list[float] = []
    weak: list[float] = []
    dropped = 0
    for q in questions:
        turns = q["turns"]
        if any(t in contaminated for t in turns[:2]):
            dropped += 1
            continue
        qid = int(q["question_id"])
        means = []
        for model in (STRONG_MODEL, WEAK_MODEL):
            scores = turn_scores.get((qid, model))
            if not scores:
                raise DataError(f"MT-Bench question {qid} has no judgement for {model!r}")
            means.append(sum(scores) / len(scores))
        prompts.append(turns[0])
        strong.append(means[0])
        weak.append(means[1])
    return Benchmark("mt-bench", tuple(prompts), np.array(strong), np.array(weak),
                     STRONG_MODEL, WEAK_MODEL, "judge score", dropped)


_LOADERS = {"mt-bench": _load_mt_bench, "mmlu": _load_mmlu, "gsm8k": _load_gsm8k}


# --- a user's own outcomes --------------------------------------------------------------

_PAIR_COLUMNS = ("prompt", "strong", "weak")


def _outcome_value(value: Any, path: Path, row: int, column: str) -> float:
    """A bool, a number, or their text form; anything else is the user's error to fix."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        text = value.strip()
        low = text.lower()
        if low in ("true", "false"):
            return float(low == "true")
        try:
            out = float(text)
        except ValueError:
            raise DataError(f"{path}: row {row}, column {column!r}: expected a number or a "
                            f"boolean, got {value!r}") from None
    else:
        raise DataError(f"{path}: row {row}, column {column!r}: expected a number or a "
                        f"boolean, got {value!r}")
    if not math.isfinite(out):
        raise DataError(f"{path}: row {row}, column {column!r}: value {value!r} is not finite")
    return out


def load_pair_outcomes(path: str | os.PathLike[str], *, strong_model: str = "strong",
                       weak_model: str = "weak", name: str | None = None) -> Benchmark:
    """A user's recorded outcomes for their own model pair, as a :class:`Benchmark`.

    The file is CSV (header row) or JSONL (``.jsonl``/``.ndjson``) with columns ``prompt``,
    ``strong`` and ``weak``; outcomes are numbers or booleans. When every outcome is 0/1
    (correct or not) the outcome kind is ``"accuracy"`` and values are reported in percent,
    as for MMLU; otherwise they are kept as given (``"score"``, e.g. a judge's 1-10).
    Rows are numbered from 1, counting data rows only (not the CSV header).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"outcome file {str(p)!r} not found")
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        records = read_jsonl(p)
        for i, rec in enumerate(records, start=1):
            if not isinstance(rec, dict):
                raise DataError(f"{p}: row {i} is not a JSON object")
    else:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in _PAIR_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{p}: missing column(s) {', '.join(map(repr, missing))}; "
                                f"expected {', '.join(_PAIR_COLUMNS)}")
            records = list(reader)
    if not records:
        raise DataError(f"{p}: no rows")
    prompts: list[str] = []
    values: dict[str, list[float]] = {"strong": [], "weak": []}
    for i, rec in enumerate(records, start=1):
        for col in _PAIR_COLUMNS:
            if rec.get(col) is None or rec.get(col) == "":
                raise DataError(f"{p}: row {i}, column {col!r}: missing value")
        prompt = rec["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"{p}: row {i}, column 'prompt': expected non-empty text, "
                            f"got {prompt!r}")
        prompts.append(prompt)
        for col in ("strong", "weak"):
            values[col].append(_outcome_value(rec[col], p, i, col))
    strong = np.array(values["strong"])
    weak = np.array(values["weak"])
    binary = bool(np.all(np.isin(strong, (0.0, 1.0))) and np.all(np.isin(weak, (0.0, 1.0))))
    kind: OutcomeKind = "accuracy" if binary else "score"
    scale = 100.0 if binary else 1.0
    return Benchmark(name or p.stem, tuple(prompts), strong * scale, weak * scale,
                     strong_model, weak_model, kind, 0)
