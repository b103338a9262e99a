"""ZeroEval golden labels (``train/zeroeval/``): MATH level 5 and CRUXEval-O, per question
and model, was the answer correct."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError
from .base import Parsed, canonical_models, finish, from_matrix, read_csv, read_records, score_matrix

NAME = "zeroeval"
#: (task name in the source names, file stem)
TASKS = (("math_l5", "math-l5"), ("crux", "crux"))


def parse(root: Path) -> Parsed:
    folder = root / "train" / NAME
    battles, outcomes, files, models = [], [], [], set()
    dropped = {"missing_outcomes": 0, "rows_without_question": 0, "prompts_with_fewer_than_2_models": 0}
    rows_read = 0
    for task, stem in TASKS:
        qpath, cpath = folder / f"{stem}_questions.jsonl", folder / f"{stem}_correctness.csv"
        questions = read_records(qpath, "id", "question")
        header, rows = read_csv(cpath)
        files += [str(qpath), str(cpath)]
        rows_read += len(rows)
        if not header or header[0] != "id":
            raise DataError(f"{str(cpath)!r}: first column must be 'id', got {header[:1]}")
        names = canonical_models(header[1:], str(cpath))
        kept = [row for row in rows if row[0] in questions]
        dropped["rows_without_question"] += len(rows) - len(kept)
        cells = np.array([row[1:] for row in kept], dtype=object).reshape(len(kept), len(names))
        empty = np.vectorize(lambda s: not s.strip(), otypes=[bool])(cells) if cells.size else np.zeros(cells.shape, bool)
        dropped["missing_outcomes"] += int(empty.sum())
        values = score_matrix(cells, empty, lambda i, j: f"{str(cpath)!r} id {kept[i][0]!r} column {header[j + 1]!r}")
        prompts = [questions[row[0]] for row in kept]
        b, o, few = from_matrix(prompts, [f"{NAME}/{task}"] * len(kept), names, values)
        dropped["prompts_with_fewer_than_2_models"] += few
        battles.append(b)
        outcomes.append(o)
        models.update(names)
    return finish(NAME, files, rows_read, battles, outcomes, models, dropped)
