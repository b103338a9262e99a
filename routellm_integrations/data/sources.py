"""Loaders for the training pool under ``<data>/train/``: every source becomes battles.

A router learns from pairwise outcomes ("on this prompt model A beat model B"), so each
source is turned into a :class:`~.battles.BattleTable`:

* **alpaca_eval** -- judge preferences. One judge file is used, by default
  ``preferences_weighted_alpaca_eval_gpt4_turbo.csv``: it is AlpacaEval 2.0's default
  annotator, the largest file (57 models, 22,967 judgements), and every battle is against
  ``gpt-4-1106-preview``, the project's default strong model, so each judgement says
  directly whether a model can stand in for it. ``model`` is side ``a``, ``baseline`` side
  ``b``. Preference ``p`` in [1, 2] means P(model wins) = p - 1; a battle is a tie when
  ``|P - 0.5| <= tie_band`` (default 0.1: the judge is less than 60/40 sure). AlpacaEval's
  legacy code 0 also means a draw. Empty preferences are dropped and counted.
* **routerbench**, **zeroeval**, **llmrouter** -- golden labels (per prompt and model:
  was the answer correct). For every pair of models that both have an outcome on a
  prompt the one with the higher score wins, equal scores tie; a model without an outcome
  is left out for that prompt. Pairs are expanded with numpy, per source file, in one go.
  RouterBench prompts are 5-shot; the routing text is the final question block
  (:func:`routerbench_question`). Rows labelled for fewer than two models (RouterBench's
  8 duplicated ARC rows with empty labels) are dropped. LLMRouter ``scores`` (a dict or
  its string form, mostly 0/1) are compared by value.

Source names are fine-grained so validation splits and decontamination reports can be
broken down by task: ``alpaca_eval``, ``routerbench/<task>`` (arc_challenge, mbpp,
winogrande), ``zeroeval/<task>`` (math_l5, crux), ``llmrouter/<task_name>``
(mmlu, gsm8k, ...). :func:`source_family` maps them back to the four names in
:data:`SOURCES`; :func:`load_battles` accepts either.

Every row or cell that is dropped for a documented reason is counted in the
:class:`SourceLoadReport` that :func:`load_report` returns.

Golden sources are also exposed pointwise as an :class:`OutcomeTable` (per-prompt
correctness), for trainers that add a difficulty loss to the pairwise one.
"""

from __future__ import annotations

import ast
import csv
import json
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import DataError
from ..paths import resolve_data_dir
from ..files import read_jsonl
from .battles import BattleTable, merge_vocabularies
from .models import canonical_model_name

SOURCES: tuple[str, ...] = ("alpaca_eval", "routerbench", "zeroeval", "llmrouter")
GOLDEN_SOURCES: tuple[str, ...] = ("routerbench", "zeroeval", "llmrouter")
DEFAULT_ALPACA_JUDGE = "weighted_alpaca_eval_gpt4_turbo"
DEFAULT_TIE_BAND = 0.1

_ROUTERBENCH_FILES = ("arc_challenge_train.csv", "mbpp_train.csv", "winograde_train.csv")
_ZEROEVAL_TASKS = (("math_l5", "math-l5"), ("crux", "crux"))
_LLMROUTER_SCORES = "dcrouter_preprocessed__train.json"
_LLMROUTER_TASKS = "example_data__query_data__default_query_train.jsonl"


def source_family(source: str) -> str:
    """``"routerbench/mbpp"`` -> ``"routerbench"`` (a family name maps to itself)."""
    return source.split("/", 1)[0]


# ---------------------------------------------------------------------------------
# Pointwise outcomes
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


@dataclass
class SourceLoadReport:
    """What one source family contributed, and what was dropped and why."""

    source: str
    files: list[str]
    rows_read: int
    prompts: int
    models: list[str]
    battles: int
    outcomes: int
    battles_by_source: dict[str, int]
    dropped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        drops = ", ".join(f"{k}={v}" for k, v in self.dropped.items() if v) or "none"
        return (f"{self.source}: {self.rows_read} rows read, {self.prompts} prompts, "
                f"{len(self.models)} models, {self.battles} battles, {self.outcomes} outcomes; "
                f"dropped: {drops}")


@dataclass
class _Parsed:
    battles: BattleTable
    outcomes: OutcomeTable | None
    report: SourceLoadReport


# ---------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------
def _require(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"training data file {str(path)!r} is missing")
    return path


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # RouterBench stores whole responses
    with _require(path).open(newline="", encoding="utf-8") as f:
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


def _read_jsonl(path: Path) -> list[dict]:
    return read_jsonl(_require(path))


def _column(header: list[str], name: str, path: Path) -> int:
    try:
        return header.index(name)
    except ValueError:
        raise DataError(f"{str(path)!r} has no {name!r} column (columns: {header[:8]}...)") from None


def _canonical_models(raw: Sequence[str], where: str) -> list[str]:
    names = [canonical_model_name(r) for r in raw]
    seen: dict[str, str] = {}
    for r, n in zip(raw, names):
        if n in seen:
            raise DataError(f"{where}: columns {seen[n]!r} and {r!r} both map to model {n!r}; "
                            "fix MODEL_ALIASES in data/models.py")
        seen[n] = r
    return names


def _from_matrix(prompts: Sequence[str], row_sources: Sequence[str], models: Sequence[str],
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


def _parse_float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{where}: {text!r} is not a number") from None


# ---------------------------------------------------------------------------------
# AlpacaEval (judge preferences)
# ---------------------------------------------------------------------------------
def available_alpaca_judges(data_dir: str | Path | None = None) -> list[str]:
    """Judge names with a ``preferences_<judge>.csv`` file."""
    folder = resolve_data_dir(data_dir) / "train" / "alpaca_eval"
    return sorted(p.stem[len("preferences_"):] for p in folder.glob("preferences_*.csv"))


def _parse_alpaca_eval(root: Path, judge: str, tie_band: float) -> _Parsed:
    if not 0.0 <= tie_band < 0.5:
        raise DataError(f"tie_band must lie in [0, 0.5), got {tie_band!r}")
    folder = root / "train" / "alpaca_eval"
    inst_path = folder / "instructions.jsonl"
    pref_path = folder / f"preferences_{judge}.csv"
    if not pref_path.is_file():
        judges = sorted(p.stem[len("preferences_"):] for p in folder.glob("preferences_*.csv"))
        raise DataError(f"AlpacaEval judge file {str(pref_path)!r} is missing (judges here: {judges})")
    instructions: dict[str, str] = {}
    for rec in _read_jsonl(inst_path):
        try:
            instructions[str(rec["idx"])] = rec["instruction"]
        except KeyError as e:
            raise DataError(f"{str(inst_path)!r}: record without {e.args[0]!r}") from None
    header, rows = _read_csv(pref_path)
    ci, cb, cm, cp = (_column(header, c, pref_path) for c in ("idx", "baseline", "model", "preference"))
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
        p = _parse_float(row[cp], f"{str(pref_path)!r} row {i + 2} preference")
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
    table = BattleTable(list(pvocab), list(mvocab), ["alpaca_eval"], pid, ma, mb, winner,
                        np.zeros(len(pid), dtype=np.int16))
    report = SourceLoadReport("alpaca_eval", [str(inst_path), str(pref_path)], len(rows), len(pvocab),
                              sorted(mvocab), len(table), 0, table.counts_by_source(), dropped)
    return _Parsed(table, None, report)


# ---------------------------------------------------------------------------------
# RouterBench (golden labels, 5-shot prompts)
# ---------------------------------------------------------------------------------
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


def _parse_routerbench(root: Path) -> _Parsed:
    folder = root / "train" / "routerbench"
    battles, outcomes = [], []
    dropped = {"rows_without_labels": 0, "missing_outcomes": 0}
    files, rows_read, models = [], 0, set()
    for fname in _ROUTERBENCH_FILES:
        path = folder / fname
        header, rows = _read_csv(path)
        files.append(str(path))
        rows_read += len(rows)
        cprompt, ctask = _column(header, "prompt", path), _column(header, "eval_name", path)
        raw_models = [c for c in header if f"{c}|model_response" in header]
        if not raw_models:
            raise DataError(f"{str(path)!r} has no '<model>|model_response' columns to find the models by")
        cols = [header.index(c) for c in raw_models]
        names = _canonical_models(raw_models, str(path))
        cells = np.array([[row[c].strip() for c in cols] for row in rows], dtype=object).reshape(len(rows), len(cols))
        empty = cells == ""
        # Rows labelled for at most one model give no battle. In RouterBench these are 8
        # duplicated ARC rows (the question twice in the prompt list, only a
        # gpt-3.5-turbo-1106 label): dropped from outcomes too, and counted.
        keep = (~empty).sum(axis=1) >= 2
        dropped["rows_without_labels"] += int((~keep).sum())
        dropped["missing_outcomes"] += int(empty[keep].sum())
        values = np.full(cells.shape, np.nan)
        for (i, j) in zip(*np.nonzero(~empty)):
            values[i, j] = _parse_float(cells[i, j], f"{str(path)!r} row {i + 2} column {raw_models[j]!r}")
        kept_rows = [row for row, k in zip(rows, keep) if k]
        prompts = []
        for i, row in enumerate(kept_rows):
            q = routerbench_question(row[cprompt])
            if not q:
                raise DataError(f"{str(path)!r}: a prompt has an empty final question block")
            prompts.append(q)
        tasks = ["routerbench/" + row[ctask].strip().lower().replace("-", "_") for row in kept_rows]
        b, o, _ = _from_matrix(prompts, tasks, names, values[keep])
        battles.append(b)
        outcomes.append(o)
        models.update(names)
    return _finish("routerbench", files, rows_read, battles, outcomes, models, dropped)


def _finish(name: str, files: list[str], rows_read: int, battles: list[BattleTable],
            outcomes: list[OutcomeTable], models: Iterable[str], dropped: dict[str, int]) -> _Parsed:
    bt = BattleTable.concat(battles)
    ot = OutcomeTable.concat(outcomes)
    report = SourceLoadReport(name, files, rows_read, len(set(bt.prompts) | set(ot.prompts)), sorted(models),
                              len(bt), len(ot), bt.counts_by_source(), dropped)
    return _Parsed(bt, ot, report)


# ---------------------------------------------------------------------------------
# ZeroEval (golden labels: MATH level 5, CRUXEval-O)
# ---------------------------------------------------------------------------------
def _parse_zeroeval(root: Path) -> _Parsed:
    folder = root / "train" / "zeroeval"
    battles, outcomes, files, models = [], [], [], set()
    dropped = {"missing_outcomes": 0, "rows_without_question": 0, "prompts_with_fewer_than_2_models": 0}
    rows_read = 0
    for task, stem in _ZEROEVAL_TASKS:
        qpath, cpath = folder / f"{stem}_questions.jsonl", folder / f"{stem}_correctness.csv"
        questions: dict[str, str] = {}
        for rec in _read_jsonl(qpath):
            try:
                questions[str(rec["id"])] = rec["question"]
            except KeyError as e:
                raise DataError(f"{str(qpath)!r}: record without {e.args[0]!r}") from None
        header, rows = _read_csv(cpath)
        files += [str(qpath), str(cpath)]
        rows_read += len(rows)
        if not header or header[0] != "id":
            raise DataError(f"{str(cpath)!r}: first column must be 'id', got {header[:1]}")
        names = _canonical_models(header[1:], str(cpath))
        kept = [row for row in rows if row[0] in questions]
        dropped["rows_without_question"] += len(rows) - len(kept)
        cells = np.array([row[1:] for row in kept], dtype=object).reshape(len(kept), len(names))
        empty = np.vectorize(lambda s: not s.strip(), otypes=[bool])(cells) if cells.size else np.zeros(cells.shape, bool)
        dropped["missing_outcomes"] += int(empty.sum())
        values = np.full(cells.shape, np.nan)
        for (i, j) in zip(*np.nonzero(~empty)):
            values[i, j] = _parse_float(cells[i, j], f"{str(cpath)!r} id {kept[i][0]!r} column {header[j + 1]!r}")
        prompts = [questions[row[0]] for row in kept]
        b, o, few = _from_matrix(prompts, [f"zeroeval/{task}"] * len(kept), names, values)
        dropped["prompts_with_fewer_than_2_models"] += few
        battles.append(b)
        outcomes.append(o)
        models.update(names)
    return _finish("zeroeval", files, rows_read, battles, outcomes, models, dropped)


# ---------------------------------------------------------------------------------
# LLMRouter (golden labels, 9 open models)
# ---------------------------------------------------------------------------------
def _parse_llmrouter(root: Path) -> _Parsed:
    folder = root / "train" / "llmrouter"
    spath, tpath = folder / _LLMROUTER_SCORES, folder / _LLMROUTER_TASKS
    try:
        records = json.loads(_require(spath).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{str(spath)!r} is not JSON: {e}") from None
    if not isinstance(records, list):
        raise DataError(f"{str(spath)!r} must hold a JSON list of records")
    task_of: dict[str, str] = {}
    for rec in _read_jsonl(tpath):
        if "query" in rec and "task_name" in rec:
            task_of.setdefault(rec["query"], str(rec["task_name"]))
    dropped = {"missing_outcomes": 0, "queries_without_task": 0, "prompts_with_fewer_than_2_models": 0}
    parsed: list[dict[str, float | None]] = []
    prompts: list[str] = []
    raw_models: list[str] = []
    for i, rec in enumerate(records):
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
        for k in scores:
            if k not in raw_models:
                raw_models.append(k)
        parsed.append(scores)
        prompts.append(rec["question"])
    names = _canonical_models(raw_models, str(spath))
    col = {m: j for j, m in enumerate(raw_models)}
    values = np.full((len(parsed), len(raw_models)), np.nan)
    for i, scores in enumerate(parsed):
        for k, v in scores.items():
            if v is None or (isinstance(v, str) and not v.strip()):
                continue
            values[i, col[k]] = _parse_float(str(v), f"{str(spath)!r} record {i} score of {k!r}")
    dropped["missing_outcomes"] = int(np.isnan(values).sum())
    tasks = []
    for p in prompts:
        t = task_of.get(p)
        if t is None:
            dropped["queries_without_task"] += 1
            t = "unknown"
        tasks.append(f"llmrouter/{t}")
    b, o, few = _from_matrix(prompts, tasks, names, values)
    dropped["prompts_with_fewer_than_2_models"] = few
    return _finish("llmrouter", [str(spath), str(tpath)], len(records), [b], [o], names, dropped)


# ---------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------
def _stamp(folder: Path) -> tuple:
    """Cache key part: file names, sizes and mtimes, so edited data is re-read."""
    if not folder.is_dir():
        raise DataError(f"training source folder {str(folder)!r} is missing")
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))


@lru_cache(maxsize=16)
def _parse_cached(family: str, root: str, stamp: tuple, judge: str, tie_band: float) -> _Parsed:
    r = Path(root)
    if family == "alpaca_eval":
        return _parse_alpaca_eval(r, judge, tie_band)
    if family == "routerbench":
        return _parse_routerbench(r)
    if family == "zeroeval":
        return _parse_zeroeval(r)
    return _parse_llmrouter(r)


def _parse(family: str, data_dir: str | Path | None, judge: str = DEFAULT_ALPACA_JUDGE,
           tie_band: float = DEFAULT_TIE_BAND) -> _Parsed:
    if family not in SOURCES:
        raise DataError(f"unknown training source {family!r}; known: {', '.join(SOURCES)}")
    root = resolve_data_dir(data_dir).resolve()
    return _parse_cached(family, str(root), _stamp(root / "train" / family), judge, float(tie_band))


def _copy_battles(t: BattleTable) -> BattleTable:
    return BattleTable(list(t.prompts), list(t.models), list(t.sources), t.prompt_idx.copy(), t.model_a.copy(),
                       t.model_b.copy(), t.winner.copy(), t.source_idx.copy())


def _copy_outcomes(t: OutcomeTable) -> OutcomeTable:
    return OutcomeTable(list(t.prompts), list(t.models), list(t.sources), t.prompt_idx.copy(),
                        t.model_idx.copy(), t.correct.copy(), t.source_idx.copy())


def _split_request(sources: Sequence[str] | str | None, allowed: Sequence[str]) -> dict[str, set[str] | None]:
    """{family: None (all of it) or the set of fine source names asked for}."""
    if sources is None:
        return {f: None for f in allowed}
    if isinstance(sources, str):
        sources = [sources]
    want: dict[str, set[str] | None] = {}
    for s in sources:
        fam = source_family(s)
        if fam not in SOURCES:
            raise DataError(f"unknown training source {s!r}; known: {', '.join(SOURCES)} "
                            "(or a task inside one, e.g. 'routerbench/mbpp')")
        if fam not in allowed:
            raise DataError(f"source {s!r} has no per-prompt correctness; golden sources: {', '.join(allowed)}")
        if s == fam:
            want[fam] = None
        elif want.get(fam, set()) is not None:
            want.setdefault(fam, set()).add(s)  # type: ignore[union-attr]
    return want


def _filter_sources(table, fine: set[str] | None, family: str):
    if fine is None:
        return table
    unknown = fine - set(table.sources)
    if unknown:
        raise DataError(f"no source {sorted(unknown)} in {family!r}; it has: {sorted(table.sources)}")
    codes = [i for i, s in enumerate(table.sources) if s in fine]
    return table.select(np.isin(table.source_idx, codes))


def load_source(name: str, data_dir: str | Path | None = None) -> BattleTable:
    """Battles of one source family (or one task, e.g. ``"routerbench/mbpp"``)."""
    return load_battles(data_dir, [name])


def load_battles(data_dir: str | Path | None = None, sources: Sequence[str] | str | None = None) -> BattleTable:
    """Battles of the chosen sources (default: all of :data:`SOURCES`), concatenated.

    Canonical model names throughout; identical prompt texts share one prompt index
    across sources. Parsed sources are cached per data folder (keyed by file mtimes).
    """
    tables = []
    for fam, fine in _split_request(sources, SOURCES).items():
        tables.append(_filter_sources(_parse(fam, data_dir).battles, fine, fam))
    return _copy_battles(tables[0]) if len(tables) == 1 else BattleTable.concat(tables)


def load_outcomes(data_dir: str | Path | None = None, sources: Sequence[str] | str | None = None) -> OutcomeTable:
    """Per-(prompt, model) correctness of the golden sources (default: all of
    :data:`GOLDEN_SOURCES`). ``alpaca_eval`` has no correctness and raises DataError."""
    tables = []
    for fam, fine in _split_request(sources, GOLDEN_SOURCES).items():
        parsed = _parse(fam, data_dir).outcomes
        assert parsed is not None
        tables.append(_filter_sources(parsed, fine, fam))
    return _copy_outcomes(tables[0]) if len(tables) == 1 else OutcomeTable.concat(tables)


def load_alpaca_eval(data_dir: str | Path | None = None, judge: str = DEFAULT_ALPACA_JUDGE,
                     tie_band: float = DEFAULT_TIE_BAND) -> BattleTable:
    """AlpacaEval battles from one judge's preference file (see the module docstring)."""
    return _copy_battles(_parse("alpaca_eval", data_dir, judge, tie_band).battles)


def load_report(data_dir: str | Path | None = None,
                sources: Sequence[str] | None = None) -> dict[str, SourceLoadReport]:
    """Per source family: files, counts, models, and the rows dropped with reasons."""
    fams = SOURCES if sources is None else list(dict.fromkeys(source_family(s) for s in sources))
    return {f: _parse(f, data_dir).report for f in fams}
