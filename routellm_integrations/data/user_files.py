"""A user's own preference data: the lever that moves routing quality within a task.

Routers trained on public data know which *kind* of prompt needs a strong model; what
they cannot know is how hard *your* prompts are. A file of judged or graded battles on
your own traffic fixes that: ``routellm train mf --battles my_battles.csv``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from .battles import WINNER_CODES, Battle, BattleTable
from .models import canonical_model_name

if TYPE_CHECKING:
    from .sources.base import OutcomeTable

COLUMNS = ("prompt", "model_a", "model_b", "winner")


def load_battles_file(path: str | os.PathLike[str], source: str | None = None) -> BattleTable:
    """Battles from a CSV (header row) or JSONL file with ``prompt, model_a, model_b, winner``.

    ``winner`` is ``a``, ``b`` or ``tie`` (also ``model_a``/``model_b``); model names are
    canonicalised like the public sources so they join the same identities. Every bad row
    raises :class:`DataError` naming the file, the row and the problem: nothing is skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"battles file {str(p)!r} does not exist")
    src = source or f"user/{p.stem}"
    rows = _rows_of(p, COLUMNS, "battles")
    battles = []
    for i, r in rows:
        if not isinstance(r, dict):
            raise DataError(f"{p}:{i}: expected an object with {list(COLUMNS)}")
        for c in COLUMNS:
            if not isinstance(r.get(c), str) or not r[c].strip():
                raise DataError(f"{p}:{i}: column {c!r} is missing or empty")
        winner = r["winner"].strip().lower().removeprefix("model_")
        if winner not in WINNER_CODES:
            raise DataError(f"{p}:{i}: winner must be a, b or tie, got {r['winner']!r}")
        a, b = canonical_model_name(r["model_a"]), canonical_model_name(r["model_b"])
        if a == b:
            raise DataError(f"{p}:{i}: model_a and model_b are the same model {a!r}")
        battles.append(Battle(r["prompt"], a, b, winner, src))  # type: ignore[arg-type]
    if not battles:
        raise DataError(f"{p}: no battles in the file")
    return BattleTable.from_battles(battles)


SCORE_COLUMNS = ("prompt", "model", "score")


def _rows_of(p: Path, columns: tuple[str, ...], what: str) -> list[tuple[int, object]]:
    """``(line, row)`` pairs of a CSV (header row) or JSONL file, or a :class:`DataError`."""
    if p.suffix.lower() == ".jsonl":
        rows = []
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append((i, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{p}:{i}: not valid JSON ({exc.msg})") from exc
        return rows
    if p.suffix.lower() == ".csv":
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{p}: missing column(s) {missing}; expected {list(columns)}")
            return [(i, r) for i, r in enumerate(reader, 2)]
    raise DataError(f"{p}: {what} files must be .csv or .jsonl")


def _score(value: object, where: str) -> float:
    if isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower() if value is not None else ""
    if text in ("true", "false"):
        return float(text == "true")
    try:
        score = float(text)
    except ValueError:
        raise DataError(f"{where}: score must be a number in [0, 1] (or true/false), got {value!r}") from None
    if not 0.0 <= score <= 1.0:  # also refuses NaN
        raise DataError(f"{where}: score must be in [0, 1], got {value!r}")
    return score


def load_scores_file(path: str | os.PathLike[str], source: str | None = None) -> tuple[BattleTable, "OutcomeTable"]:
    """Graded answers of your own traffic: ``prompt, model, score`` rows (CSV or JSONL),
    ``score`` in [0, 1] (1 = right; ``true``/``false`` too), several models per prompt.

    What N-way routing adapts on: ``routellm train quality --scores graded.csv`` fits the
    quality head to which model gets *your* prompts right; every other trainer gets the
    battles they imply (on each prompt, a model with a higher score beats one with a
    lower). Returns ``(battles, outcomes)``. A bad row, or the same (prompt, model) twice,
    raises :class:`DataError` naming the file and the line: nothing is skipped or averaged."""
    import numpy as np

    from .sources.base import from_matrix

    p = Path(path)
    if not p.is_file():
        raise DataError(f"scores file {str(p)!r} does not exist")
    src = source or f"user/{p.stem}"
    seen: dict[tuple[str, str], int] = {}
    cells = []
    for i, r in _rows_of(p, SCORE_COLUMNS, "scores"):
        where = f"{p}:{i}"
        if not isinstance(r, dict):
            raise DataError(f"{where}: expected an object with {list(SCORE_COLUMNS)}")
        for c in ("prompt", "model"):
            if not isinstance(r.get(c), str) or not r[c].strip():
                raise DataError(f"{where}: column {c!r} is missing or empty")
        if r.get("score") is None or (isinstance(r.get("score"), str) and not r["score"].strip()):
            raise DataError(f"{where}: column 'score' is missing or empty")
        model = canonical_model_name(r["model"])
        key = (r["prompt"], model)
        if key in seen:
            raise DataError(f"{where}: prompt and model {model!r} were already scored on line {seen[key]}")
        seen[key] = i
        cells.append((r["prompt"], model, _score(r["score"], where)))
    if not cells:
        raise DataError(f"{p}: no scores in the file")
    prompts = list(dict.fromkeys(c[0] for c in cells))
    models = list(dict.fromkeys(c[1] for c in cells))
    pi, mi = {q: k for k, q in enumerate(prompts)}, {m: k for k, m in enumerate(models)}
    values = np.full((len(prompts), len(models)), np.nan)
    for prompt, model, score in cells:
        values[pi[prompt], mi[model]] = score
    battles, outcomes, _ = from_matrix(prompts, [src] * len(prompts), models, values)
    return battles, outcomes
