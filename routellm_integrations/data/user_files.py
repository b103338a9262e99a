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

from ..errors import DataError
from .battles import WINNER_CODES, Battle, BattleTable
from .models import canonical_model_name

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
    if p.suffix.lower() == ".jsonl":
        rows = []
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append((i, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{p}:{i}: not valid JSON ({exc.msg})") from exc
    elif p.suffix.lower() == ".csv":
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{p}: missing column(s) {missing}; expected {list(COLUMNS)}")
            rows = [(i, r) for i, r in enumerate(reader, 2)]
    else:
        raise DataError(f"{p}: battles files must be .csv or .jsonl")
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
