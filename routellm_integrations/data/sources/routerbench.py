"""RouterBench golden labels (``train/routerbench/``): per prompt and model, was the
answer correct.

Prompts are 5-shot; the routing text is the final question block
(:func:`routerbench_question`). Rows labelled for fewer than two models (RouterBench's 8
duplicated ARC rows with empty labels) are dropped and counted.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np

from ...errors import DataError
from .base import Parsed, canonical_models, column, finish, from_matrix, read_csv, score_matrix

NAME = "routerbench"
FILES = ("arc_challenge_train.csv", "mbpp_train.csv", "winograde_train.csv")

# A solved few-shot example ends with "Answer:" then its letter, then a blank line.
_SHOT_END = re.compile(r"Answer:[ \t]*\n[ \t]*[A-Z][ \t]*\n\s*\n")


def routerbench_question(prompt_field: str) -> str:
    """The text to route on from a RouterBench ``prompt`` cell.

    The cell is a stringified Python list; its last string holds five solved examples
    followed by the question. The examples are shared by every row of a task, so they
    would make all prompts of a task look alike; only the final question block is kept.
    """
    try:
        parts = ast.literal_eval(prompt_field)
    except (ValueError, SyntaxError) as e:
        raise DataError(f"RouterBench prompt is not a Python list literal: {e}") from None
    if isinstance(parts, str):
        parts = [parts]
    if not isinstance(parts, (list, tuple)) or not parts or not all(isinstance(p, str) for p in parts):
        raise DataError(f"RouterBench prompt is not a non-empty list of strings: {prompt_field[:80]!r}")
    return _SHOT_END.split(parts[-1])[-1].strip()


def parse(root: Path) -> Parsed:
    folder = root / "train" / NAME
    battles, outcomes = [], []
    dropped = {"rows_without_labels": 0, "missing_outcomes": 0}
    files, rows_read, models = [], 0, set()
    for fname in FILES:
        path = folder / fname
        header, rows = read_csv(path)
        files.append(str(path))
        rows_read += len(rows)
        cprompt, ctask = column(header, "prompt", path), column(header, "eval_name", path)
        raw_models = [c for c in header if f"{c}|model_response" in header]
        if not raw_models:
            raise DataError(f"{str(path)!r} has no '<model>|model_response' columns to find the models by")
        cols = [header.index(c) for c in raw_models]
        names = canonical_models(raw_models, str(path))
        cells = np.array([[row[c].strip() for c in cols] for row in rows], dtype=object).reshape(len(rows), len(cols))
        empty = cells == ""
        # Rows labelled for at most one model give no battle. In RouterBench these are 8
        # duplicated ARC rows (the question twice in the prompt list, only a
        # gpt-3.5-turbo-1106 label): dropped from outcomes too, and counted.
        keep = (~empty).sum(axis=1) >= 2
        dropped["rows_without_labels"] += int((~keep).sum())
        dropped["missing_outcomes"] += int(empty[keep].sum())
        values = score_matrix(cells, empty, lambda i, j: f"{str(path)!r} row {i + 2} column {raw_models[j]!r}")
        kept_rows = [row for row, k in zip(rows, keep) if k]
        prompts = []
        for row in kept_rows:
            q = routerbench_question(row[cprompt])
            if not q:
                raise DataError(f"{str(path)!r}: a prompt has an empty final question block")
            prompts.append(q)
        tasks = [f"{NAME}/" + row[ctask].strip().lower().replace("-", "_") for row in kept_rows]
        b, o, _ = from_matrix(prompts, tasks, names, values[keep])
        battles.append(b)
        outcomes.append(o)
        models.update(names)
    return finish(NAME, files, rows_read, battles, outcomes, models, dropped)
