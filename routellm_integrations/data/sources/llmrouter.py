"""LLMRouter golden labels (``train/llmrouter/``, 9 open models): ``scores`` per query (a
dict or its string form, mostly 0/1) are compared by value; the task name comes from the
query file (``llmrouter/unknown`` when a query has none)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np

from ...errors import DataError
from .base import Parsed, canonical_models, finish, from_matrix, parse_float, read_jsonl_file, require_file

NAME = "llmrouter"
SCORES_FILE = "dcrouter_preprocessed__train.json"
TASKS_FILE = "example_data__query_data__default_query_train.jsonl"


def _scores(rec: object, i: int, spath: Path) -> dict:
    if not isinstance(rec, dict) or "question" not in rec or "scores" not in rec:
        raise DataError(f"{str(spath)!r} record {i} lacks 'question' or 'scores'")
    scores = rec["scores"]
    if isinstance(scores, str):
        try:
            scores = ast.literal_eval(scores)
        except (ValueError, SyntaxError):
            raise DataError(f"{str(spath)!r} record {i}: 'scores' is not a dict literal") from None
    if not isinstance(scores, dict):
        raise DataError(f"{str(spath)!r} record {i}: 'scores' is not a dict")
    return scores


def parse(root: Path) -> Parsed:
    folder = root / "train" / NAME
    spath, tpath = folder / SCORES_FILE, folder / TASKS_FILE
    try:
        records = json.loads(require_file(spath).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{str(spath)!r} is not JSON: {e}") from None
    if not isinstance(records, list):
        raise DataError(f"{str(spath)!r} must hold a JSON list of records")
    task_of: dict[str, str] = {}
    for rec in read_jsonl_file(tpath):
        if "query" in rec and "task_name" in rec:
            task_of.setdefault(rec["query"], str(rec["task_name"]))
    dropped = {"missing_outcomes": 0, "queries_without_task": 0, "prompts_with_fewer_than_2_models": 0}
    parsed = [_scores(rec, i, spath) for i, rec in enumerate(records)]
    prompts = [rec["question"] for rec in records]
    raw_models = list(dict.fromkeys(k for scores in parsed for k in scores))
    names = canonical_models(raw_models, str(spath))
    col = {m: j for j, m in enumerate(raw_models)}
    values = np.full((len(parsed), len(raw_models)), np.nan)
    for i, scores in enumerate(parsed):
        for k, v in scores.items():
            if v is None or (isinstance(v, str) and not v.strip()):
                continue
            values[i, col[k]] = parse_float(str(v), f"{str(spath)!r} record {i} score of {k!r}")
    dropped["missing_outcomes"] = int(np.isnan(values).sum())
    dropped["queries_without_task"] = sum(p not in task_of for p in prompts)
    tasks = [f"{NAME}/{task_of.get(p, 'unknown')}" for p in prompts]
    b, o, few = from_matrix(prompts, tasks, names, values)
    dropped["prompts_with_fewer_than_2_models"] = few
    return finish(NAME, [str(spath), str(tpath)], len(records), [b], [o], names, dropped)
