"""AlpacaEval judge preferences (``train/alpaca_eval/``) as battles.

One judge file is used, by default ``preferences_weighted_alpaca_eval_gpt4_turbo.csv``: it
is AlpacaEval 2.0's default annotator, the largest file (57 models, 22,967 judgements),
and every battle is against ``gpt-4-1106-preview``, the project's default strong model, so
each judgement says directly whether a model can stand in for it. ``model`` is side ``a``,
``baseline`` side ``b``. Preference ``p`` in [1, 2] means P(model wins) = p - 1; a battle is
a tie when ``|P - 0.5| <= tie_band`` (default 0.1: the judge is less than 60/40 sure).
AlpacaEval's legacy code 0 also means a draw. Empty preferences are dropped and counted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError
from ..battles import BattleTable
from ..models import canonical_model_name
from .base import Parsed, SourceLoadReport, column, parse_float, read_csv, read_records

NAME = "alpaca_eval"
DEFAULT_ALPACA_JUDGE = "weighted_alpaca_eval_gpt4_turbo"
DEFAULT_TIE_BAND = 0.1


def judges_in(folder: Path) -> list[str]:
    """Judge names with a ``preferences_<judge>.csv`` file in ``folder``."""
    return sorted(p.stem[len("preferences_"):] for p in folder.glob("preferences_*.csv"))


def parse(root: Path, judge: str = DEFAULT_ALPACA_JUDGE, tie_band: float = DEFAULT_TIE_BAND) -> Parsed:
    if not 0.0 <= tie_band < 0.5:
        raise DataError(f"tie_band must lie in [0, 0.5), got {tie_band!r}")
    folder = root / "train" / NAME
    inst_path = folder / "instructions.jsonl"
    pref_path = folder / f"preferences_{judge}.csv"
    if not pref_path.is_file():
        raise DataError(f"AlpacaEval judge file {str(pref_path)!r} is missing (judges here: {judges_in(folder)})")
    instructions = read_records(inst_path, "idx", "instruction")
    header, rows = read_csv(pref_path)
    ci, cb, cm, cp = (column(header, c, pref_path) for c in ("idx", "baseline", "model", "preference"))
    dropped = {"missing_preference": 0, "self_battle": 0, "unknown_instruction": 0}
    prompts: list[str] = []
    a_names: list[str] = []
    b_names: list[str] = []
    prefs: list[float] = []
    for i, row in enumerate(rows):
        if not row[cp].strip():
            dropped["missing_preference"] += 1
            continue
        model, baseline = canonical_model_name(row[cm]), canonical_model_name(row[cb])
        if model == baseline:  # the baseline judged against itself carries no signal
            dropped["self_battle"] += 1
            continue
        if row[ci] not in instructions:
            dropped["unknown_instruction"] += 1
            continue
        p = parse_float(row[cp], f"{str(pref_path)!r} row {i + 2} preference")
        if not (p == 0.0 or 1.0 <= p <= 2.0):
            raise DataError(f"{str(pref_path)!r} row {i + 2}: preference {p} outside [1, 2] (or 0 = draw)")
        prompts.append(instructions[row[ci]])
        a_names.append(model)
        b_names.append(baseline)
        prefs.append(p)
    pref = np.array(prefs, dtype=np.float64)
    p_model = pref - 1.0
    tie = (pref == 0.0) | (np.abs(p_model - 0.5) <= tie_band + 1e-12)
    winner = np.where(tie, 2, np.where(p_model > 0.5, 0, 1)).astype(np.int8)

    pvocab: dict[str, int] = {}
    mvocab: dict[str, int] = {}
    pid = np.array([pvocab.setdefault(p, len(pvocab)) for p in prompts], dtype=np.int64)
    ma = np.array([mvocab.setdefault(m, len(mvocab)) for m in a_names], dtype=np.int32)
    mb = np.array([mvocab.setdefault(m, len(mvocab)) for m in b_names], dtype=np.int32)
    table = BattleTable(list(pvocab), list(mvocab), [NAME], pid, ma, mb, winner, np.zeros(len(pid), dtype=np.int16))
    report = SourceLoadReport(NAME, [str(inst_path), str(pref_path)], len(rows), len(pvocab),
                              sorted(mvocab), len(table), 0, table.counts_by_source(), dropped)
    return Parsed(table, None, report)
