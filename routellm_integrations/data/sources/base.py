"""What every source parser shares: the tables it returns, its load report, and the
file readers that turn a malformed file into a :class:`DataError` naming the file, the
row and the column.

A parser is a function ``parse(root: Path, **options) -> Parsed`` (``root`` is the data
folder, holding ``train/<source>/``); :data:`~routellm_integrations.data.sources.PARSERS`
maps each source name to one. Parsed results are cached, so :func:`freeze` makes them
read-only: arrays are not writeable and vocabularies are tuples.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ...errors import DataError
from ...files import read_jsonl
from ..battles import BattleTable, merge_vocabularies
from ..models import canonical_model_name


# ---------------------------------------------------------------------------------
# Tables and reports
# ---------------------------------------------------------------------------------
@dataclass
class OutcomeTable:
    """Per-(prompt, model) correctness of the golden sources, column-wise.

    ``prompts[prompt_idx[i]]`` was answered by ``models[model_idx[i]]`` with score
    ``correct[i]`` (mostly 0/1; LLMRouter has a few partial scores) in source
    ``sources[source_idx[i]]``. Missing outputs have no row.
    """

    prompts: list[str]
    models: list[str]
    sources: list[str]
    prompt_idx: np.ndarray
    model_idx: np.ndarray
    correct: np.ndarray
    source_idx: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.prompt_idx)
        for col in ("model_idx", "correct", "source_idx"):
            if len(getattr(self, col)) != n:
                raise DataError(f"OutcomeTable column {col!r} has {len(getattr(self, col))} rows, expected {n}")
        self.prompt_idx = np.asarray(self.prompt_idx, dtype=np.int64)
        self.model_idx = np.asarray(self.model_idx, dtype=np.int32)
        self.correct = np.asarray(self.correct, dtype=np.float32)
        self.source_idx = np.asarray(self.source_idx, dtype=np.int16)
        if n and not np.isfinite(self.correct).all():
            raise DataError("OutcomeTable.correct holds NaN or infinite scores (missing outputs must have no row)")

    def __len__(self) -> int:
        return len(self.prompt_idx)

    @classmethod
    def concat(cls, tables: Sequence["OutcomeTable"]) -> "OutcomeTable":
        """Merge tables, re-coding prompts, models and sources into shared vocabularies."""
        prompts, models, sources, maps = merge_vocabularies(tables)
        cols = [(pm[t.prompt_idx], mm[t.model_idx], t.correct, sm[t.source_idx])
                for t, (pm, mm, sm) in zip(tables, maps)]
        if not cols:
            return cls(prompts, models, sources, *([np.zeros(0)] * 4))
        return cls(prompts, models, sources, *(np.concatenate(c) for c in zip(*cols)))

    def select(self, mask_or_index: np.ndarray) -> "OutcomeTable":
        """Rows chosen by a boolean mask or index array; vocabularies are kept as they are."""
        m = np.asarray(mask_or_index)
        return OutcomeTable(self.prompts, self.models, self.sources, self.prompt_idx[m],
                            self.model_idx[m], self.correct[m], self.source_idx[m])

    def without_prompts(self, prompt_ids: np.ndarray) -> "OutcomeTable":
        """Drop every row whose prompt index is in ``prompt_ids``."""
        return self.select(~np.isin(self.prompt_idx, np.asarray(prompt_ids, dtype=np.int64)))

    def counts_by_source(self) -> dict[str, int]:
        counts = np.bincount(self.source_idx, minlength=len(self.sources))
        return {s: int(c) for s, c in zip(self.sources, counts)}

    def accuracy_by_model(self) -> dict[str, float]:
        """Mean score of each model over its rows (a quick sanity view)."""
        n = np.bincount(self.model_idx, minlength=len(self.models))
        s = np.bincount(self.model_idx, weights=self.correct, minlength=len(self.models))
        return {m: float(s[i] / n[i]) for i, m in enumerate(self.models) if n[i]}


@dataclass(frozen=True)
class SourceLoadReport:
    """What one source family contributed, and what was dropped and why (read-only: the
    loaders hand out the cached report itself)."""

    source: str
    files: Sequence[str]
    rows_read: int
    prompts: int
    models: Sequence[str]
    battles: int
    outcomes: int
    battles_by_source: Mapping[str, int]
    dropped: Mapping[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        drops = ", ".join(f"{k}={v}" for k, v in self.dropped.items() if v) or "none"
        return (f"{self.source}: {self.rows_read} rows read, {self.prompts} prompts, "
                f"{len(self.models)} models, {self.battles} battles, {self.outcomes} outcomes; "
                f"dropped: {drops}")


@dataclass(frozen=True)
class Parsed:
    """One source family, as its parser returns it."""

    battles: BattleTable
    outcomes: OutcomeTable | None
    report: SourceLoadReport


#: ``parse(root, **options) -> Parsed``
Parser = Callable[..., Parsed]


def _frozen_columns(table: Any, columns: Iterable[str]) -> None:
    for name in ("prompts", "models", "sources"):
        setattr(table, name, tuple(getattr(table, name)))
    for name in columns:
        getattr(table, name).setflags(write=False)


def freeze(parsed: Parsed) -> Parsed:
    """Make a parsed source read-only in place (it is about to be cached and shared)."""
    _frozen_columns(parsed.battles, ("prompt_idx", "model_a", "model_b", "winner", "source_idx"))
    if parsed.outcomes is not None:
        _frozen_columns(parsed.outcomes, ("prompt_idx", "model_idx", "correct", "source_idx"))
    r = parsed.report
    report = replace(r, files=tuple(r.files), models=tuple(r.models),
                     battles_by_source=MappingProxyType(dict(r.battles_by_source)),
                     dropped=MappingProxyType(dict(r.dropped)))
    return replace(parsed, report=report)


def finish(name: str, files: list[str], rows_read: int, battles: list[BattleTable],
           outcomes: list[OutcomeTable], models: Iterable[str], dropped: dict[str, int]) -> Parsed:
    """A golden source's :class:`Parsed` from its per-file tables."""
    bt = BattleTable.concat(battles)
    ot = OutcomeTable.concat(outcomes)
    report = SourceLoadReport(name, files, rows_read, len(set(bt.prompts) | set(ot.prompts)), sorted(models),
                              len(bt), len(ot), bt.counts_by_source(), dropped)
    return Parsed(bt, ot, report)


# ---------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------
def require_file(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"training data file {str(path)!r} is missing")
    return path


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows; a row with the wrong number of fields is an error naming it."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # RouterBench stores whole responses
    with require_file(path).open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{str(path)!r} is empty (no header row)") from None
        rows = list(reader)
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise DataError(f"{str(path)!r} row {i + 2} has {len(row)} fields, the header has {len(header)}")
    return header, rows


def read_records(path: Path, key: str, value: str) -> dict[str, str]:
    """``{str(record[key]): record[value]}`` over a JSONL file (a record without either is an error)."""
    out: dict[str, str] = {}
    for rec in read_jsonl(require_file(path)):
        try:
            out[str(rec[key])] = rec[value]
        except KeyError as e:
            raise DataError(f"{str(path)!r}: record without {e.args[0]!r}") from None
    return out


def read_jsonl_file(path: Path) -> list[dict]:
    return read_jsonl(require_file(path))


def column(header: list[str], name: str, path: Path) -> int:
    try:
        return header.index(name)
    except ValueError:
        raise DataError(f"{str(path)!r} has no {name!r} column (columns: {header[:8]}...)") from None


def canonical_models(raw: Sequence[str], where: str) -> list[str]:
    """Canonical names of a file's model columns; two columns naming one model is an error."""
    names = [canonical_model_name(r) for r in raw]
    seen: dict[str, str] = {}
    for r, n in zip(raw, names):
        if n in seen:
            raise DataError(f"{where}: columns {seen[n]!r} and {r!r} both map to model {n!r}; "
                            "fix MODEL_ALIASES in data/models.py")
        seen[n] = r
    return names


def parse_float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{where}: {text!r} is not a number") from None


def score_matrix(cells: np.ndarray, empty: np.ndarray, where: Callable[[int, int], str]) -> np.ndarray:
    """Float scores of the non-empty ``cells`` (NaN where ``empty``); ``where(i, j)`` names a
    cell that is not a number."""
    values = np.full(cells.shape, np.nan)
    for (i, j) in zip(*np.nonzero(~empty)):
        values[i, j] = parse_float(cells[i, j], where(i, j))
    return values


def from_matrix(prompts: Sequence[str], row_sources: Sequence[str], models: Sequence[str],
                values: np.ndarray) -> tuple[BattleTable, OutcomeTable, int]:
    """Battles and outcomes from a (prompt x model) score matrix, NaN = no output.

    Every unordered pair of models with outcomes on a row becomes one battle (``a`` is the
    model earlier in ``models``). Returns also the number of rows with fewer than two
    outcomes, which yield no battle.
    """
    n, m = values.shape
    pvocab: dict[str, int] = {}
    pid = np.array([pvocab.setdefault(p, len(pvocab)) for p in prompts], dtype=np.int64)
    svocab: dict[str, int] = {}
    sid = np.array([svocab.setdefault(s, len(svocab)) for s in row_sources], dtype=np.int16)
    present = ~np.isnan(values)

    r, c = np.nonzero(present)
    outcomes = OutcomeTable(list(pvocab), list(models), list(svocab), pid[r], c, values[r, c], sid[r])

    ia, ib = np.triu_indices(m, 1)
    va, vb = values[:, ia], values[:, ib]
    ok = present[:, ia] & present[:, ib]
    rr, kk = np.nonzero(ok)
    a_val, b_val = va[rr, kk], vb[rr, kk]
    winner = np.where(a_val > b_val, 0, np.where(a_val < b_val, 1, 2)).astype(np.int8)
    battles = BattleTable(list(pvocab), list(models), list(svocab), pid[rr], ia[kk], ib[kk], winner, sid[rr])
    return battles, outcomes, int((present.sum(axis=1) < 2).sum())
