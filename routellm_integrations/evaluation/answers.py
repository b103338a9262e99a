"""Recorded answers beside recorded outcomes: what a cascade is evaluated on.

A router reads the prompt; a cascade also reads the cheap model's *answer* before it
decides to escalate. Evaluating one offline therefore needs, per prompt, both models'
outcomes (as for a router: a :class:`~.benchmarks.Benchmark`) and the weak model's
answer text, optionally a second cheap model's answer (the agreement check costs one
more cheap call) and the strong model's answer. :class:`AnswerSet` holds them aligned by
position; the loaders below read them from the data folder's recorded answers:

* ``gsm8k``: the paper's GSM8K responses file (Mixtral's and GPT-4's full answers),
  contamination-filtered exactly as :func:`~.benchmarks.load_benchmark` filters it.
* ``mt-bench``: the first-turn answers, cut out of the judge prompts of the turn-1
  judgements (``user_prompt``); the outcome stays the paper's mean of both turn scores.
* ``routerbench/arc_challenge``, ``routerbench/mbpp``, ``routerbench/winogrande``: the
  training pool's RouterBench tasks (11 models' answers), GPT-4-1106 as strong, Mixtral
  8x7B chat as weak and, for agreement, a second cheap model (GPT-3.5-turbo-1106 unless
  told otherwise). Routing text is the final question block, as in training.
* a user's outcomes file (:func:`load_answer_outcomes`): ``prompt,strong,weak`` plus a
  ``weak_answer`` column (optional ``second_answer`` and ``strong_answer``).
"""

from __future__ import annotations

import ast
import csv
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..files import read_jsonl
from ..paths import resolve_data_dir
from .benchmarks import (
    STRONG_MODEL,
    WEAK_MODEL,
    Benchmark,
    canonical_name,
    load_benchmark,
    load_pair_outcomes,
)

#: the RouterBench tasks of the training pool: file name -> the task's name here
ROUTERBENCH_TASKS: dict[str, str] = {"arc_challenge": "arc_challenge_train.csv", "mbpp": "mbpp_train.csv",
                                     "winogrande": "winograde_train.csv"}
ROUTERBENCH_STRONG = "gpt-4-1106-preview"
ROUTERBENCH_WEAK = "mistralai/mixtral-8x7b-chat"
ROUTERBENCH_SECOND = "gpt-3.5-turbo-1106"

ANSWER_SETS: tuple[str, ...] = ("gsm8k", "mt-bench", *(f"routerbench/{t}" for t in ROUTERBENCH_TASKS))

_ANSWER_START = "[The Start of Assistant's Answer]"
_ANSWER_END = "[The End of Assistant's Answer]"


@dataclass(frozen=True, eq=False)
class AnswerSet:
    """A benchmark and the answers behind its outcomes, aligned by position.

    ``second_answers`` (with ``second_model`` and its ``second_outcome``) is another
    cheap model's answer to the same prompt: what the agreement check compares with.
    """

    bench: Benchmark
    weak_answers: tuple[str, ...]
    strong_answers: tuple[str, ...] | None = None
    second_answers: tuple[str, ...] | None = None
    second_model: str | None = None

    def __post_init__(self) -> None:
        n = len(self.bench)
        for label in ("weak_answers", "strong_answers", "second_answers"):
            value = getattr(self, label)
            if value is not None and len(value) != n:
                raise DataError(f"answer set {self.name!r}: {len(value)} {label} for {n} prompts")
        if (self.second_answers is None) != (self.second_model is None):
            raise DataError(f"answer set {self.name!r}: second_answers and second_model go together")

    @property
    def name(self) -> str:
        return self.bench.name

    @property
    def prompts(self) -> tuple[str, ...]:
        return self.bench.prompts

    def __len__(self) -> int:
        return len(self.bench)

    def subset(self, idx: Any) -> AnswerSet:
        """The rows at ``idx`` (indices, repeats allowed)."""
        rows = [int(i) for i in np.asarray(idx, dtype=np.int64)]

        def pick(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
            return None if values is None else tuple(values[i] for i in rows)

        return AnswerSet(self.bench.subset(rows), tuple(self.weak_answers[i] for i in rows),
                         pick(self.strong_answers), pick(self.second_answers), self.second_model)


_cache: dict[tuple[str, str, str], AnswerSet] = {}
_cache_lock = threading.Lock()


def load_answer_set(name: str, data_dir: str | os.PathLike[str] | None = None, *,
                    second_model: str = ROUTERBENCH_SECOND) -> AnswerSet:
    """One of :data:`ANSWER_SETS` (cached per name, folder and second model)."""
    key_name = _answer_set_name(name)
    root = resolve_data_dir(data_dir).resolve()
    key = (key_name, str(root), second_model)
    with _cache_lock:
        if key not in _cache:
            if key_name == "gsm8k":
                _cache[key] = _gsm8k(root)
            elif key_name == "mt-bench":
                _cache[key] = _mt_bench(root)
            else:
                _cache[key] = _routerbench(root, key_name.split("/", 1)[1], second_model)
        return _cache[key]


def _answer_set_name(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    if key.startswith("routerbench/"):
        task = key.split("/", 1)[1].replace("-", "_").replace("winograde", "winogrande")
        if task in ROUTERBENCH_TASKS:
            return f"routerbench/{task}"
    else:
        try:
            canonical = canonical_name(key)
        except DataError:
            canonical = key
        if canonical in ANSWER_SETS:  # gsm8k, mt-bench (MMLU's files record no answers)
            return canonical
    raise DataError(f"no recorded answers for {name!r}; sets with answers: {', '.join(ANSWER_SETS)}")


def _gsm8k(root: Path) -> AnswerSet:
    bench = load_benchmark("gsm8k", root)
    path = root / "benchmarks" / "routellm" / "gsm8k" / "gsm8k_responses.csv"
    by_prompt: dict[str, dict[str, str]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            by_prompt.setdefault(row["prompt"], row)
    weak, strong = [], []
    for p in bench.prompts:
        row = by_prompt.get(p)
        if row is None:
            raise DataError(f"{path}: no row for a GSM8K prompt the benchmark loaded ({p[:60]!r})")
        for model, out in ((WEAK_MODEL, weak), (STRONG_MODEL, strong)):
            col = f"{model}_response"
            if col not in row:
                raise DataError(f"{path}: no column {col!r}")
            out.append(row[col])
    return AnswerSet(bench, tuple(weak), tuple(strong))


def first_turn_answer(judge_prompt: str) -> str:
    """The assistant's answer in a turn-1 MT-Bench judge prompt (between the judge
    template's start and end markers)."""
    start = judge_prompt.find(_ANSWER_START)
    end = judge_prompt.rfind(_ANSWER_END)
    if start < 0 or end < start:
        raise DataError("an MT-Bench turn-1 judgement holds no \"[The Start of Assistant's Answer]\" block")
    return judge_prompt[start + len(_ANSWER_START):end].strip()


def _mt_bench(root: Path) -> AnswerSet:
    bench = load_benchmark("mt-bench", root)
    folder = root / "benchmarks" / "routellm" / "mt_bench"
    qid_of = {q["turns"][0]: int(q["question_id"]) for q in read_jsonl(folder / "question.jsonl")}
    answers: dict[tuple[int, str], str] = {}
    for j in read_jsonl(folder / "judgements.jsonl"):
        if int(j.get("turn", 0)) == 1 and j.get("model") in (STRONG_MODEL, WEAK_MODEL):
            answers[(int(j["question_id"]), j["model"])] = first_turn_answer(str(j["user_prompt"]))
    weak, strong = [], []
    for p in bench.prompts:
        qid = qid_of[p]
        for model, out in ((WEAK_MODEL, weak), (STRONG_MODEL, strong)):
            if (qid, model) not in answers:
                raise DataError(f"MT-Bench question {qid} has no turn-1 judgement of {model!r}")
            out.append(answers[(qid, model)])
    return AnswerSet(bench, tuple(weak), tuple(strong))


def _response(cell: str, path: Path, row: int, column: str) -> str:
    """RouterBench stores an answer as a stringified list of strings (one per turn)."""
    try:
        parts = ast.literal_eval(cell)
    except (ValueError, SyntaxError):
        raise DataError(f"{path}: row {row}, column {column!r}: not a Python list literal") from None
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, (list, tuple)) or not all(isinstance(p, str) for p in parts):
        raise DataError(f"{path}: row {row}, column {column!r}: not a list of strings")
    return "\n".join(parts)


def _routerbench(root: Path, task: str, second_model: str) -> AnswerSet:
    from ..data.sources.routerbench import routerbench_question

    path = root / "train" / "routerbench" / ROUTERBENCH_TASKS[task]
    if not path.is_file():
        raise DataError(f"file {str(path)!r} not found")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        models = (ROUTERBENCH_STRONG, ROUTERBENCH_WEAK, second_model)
        for m in models:
            for col in (m, f"{m}|model_response"):
                if col not in header:
                    raise DataError(f"{path}: no column {col!r} (models with answers: "
                                    f"{sorted(c.split('|')[0] for c in header if c.endswith('|model_response'))})")
        rows = list(reader)
    prompts, strong, weak, a_strong, a_weak, a_second = [], [], [], [], [], []
    for i, r in enumerate(rows, start=2):
        if any(r[m].strip() == "" for m in models):
            continue  # RouterBench's duplicated ARC rows carry no labels for these models
        prompts.append(routerbench_question(r["prompt"]))
        strong.append(float(r[ROUTERBENCH_STRONG]) * 100.0)
        weak.append(float(r[ROUTERBENCH_WEAK]) * 100.0)
        a_strong.append(_response(r[f"{ROUTERBENCH_STRONG}|model_response"], path, i, ROUTERBENCH_STRONG))
        a_weak.append(_response(r[f"{ROUTERBENCH_WEAK}|model_response"], path, i, ROUTERBENCH_WEAK))
        a_second.append(_response(r[f"{second_model}|model_response"], path, i, second_model))
    bench = Benchmark(f"routerbench/{task}", tuple(prompts), np.array(strong), np.array(weak), ROUTERBENCH_STRONG,
                      ROUTERBENCH_WEAK, "accuracy", 0)
    return AnswerSet(bench, tuple(a_weak), tuple(a_strong), tuple(a_second), second_model)


def load_answer_outcomes(path: str | os.PathLike[str], *, strong_model: str = "strong",
                         weak_model: str = "weak", name: str | None = None) -> AnswerSet:
    """A user's outcomes file with answers: the columns of
    :func:`~.benchmarks.load_pair_outcomes` (``prompt,strong,weak``) plus ``weak_answer``
    (the cheap model's answer; required) and optionally ``second_answer`` (another cheap
    answer, for agreement) and ``strong_answer``. Every row needs a ``weak_answer``."""
    bench = load_pair_outcomes(path, strong_model=strong_model, weak_model=weak_model, name=name)
    p = Path(path).expanduser()
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        records = read_jsonl(p)
        columns = set().union(*(r.keys() for r in records)) if records else set()
    else:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = set(reader.fieldnames or [])
            records = list(reader)
    if "weak_answer" not in columns:
        raise DataError(f"{p}: no 'weak_answer' column: a cascade is judged on the cheap model's answers "
                        "(add the weak model's answer text to each row)")

    def column(col: str) -> tuple[str, ...] | None:
        """An empty answer is kept (a model can answer nothing: that is a signal); a
        missing one is the file's error."""
        if col not in columns:
            return None
        out = []
        for i, rec in enumerate(records, start=1):
            value = rec.get(col)
            if value is None:
                raise DataError(f"{p}: row {i}, column {col!r}: missing value")
            if not isinstance(value, str):
                raise DataError(f"{p}: row {i}, column {col!r}: expected text, got {type(value).__name__}")
            out.append(value)
        return tuple(out)

    weak = column("weak_answer")
    assert weak is not None
    second = column("second_answer")
    return AnswerSet(bench, weak, column("strong_answer"), second,
                     None if second is None else "second cheap answer")
