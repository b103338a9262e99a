"""Loaders for the training pool under ``<data>/train/``: every source becomes battles.

A router learns from pairwise outcomes ("on this prompt model A beat model B"), so each
source is turned into a :class:`~routellm_integrations.data.battles.BattleTable`, by the
parser :data:`PARSERS` names for it (one module per source in this package):

* **alpaca_eval** (:mod:`.alpaca_eval`) -- judge preferences, one judge file, ties
  within a band around 50/50.
* **routerbench**, **zeroeval**, **llmrouter** (:mod:`.routerbench`, :mod:`.zeroeval`,
  :mod:`.llmrouter`) -- golden labels (per prompt and model: was the answer correct). For
  every pair of models that both have an outcome on a prompt the one with the higher
  score wins, equal scores tie; a model without an outcome is left out for that prompt.
  Pairs are expanded with numpy, per source file, in one go.

Source names are fine-grained so validation splits and decontamination reports can be
broken down by task: ``alpaca_eval``, ``routerbench/<task>`` (arc_challenge, mbpp,
winogrande), ``zeroeval/<task>`` (math_l5, crux), ``llmrouter/<task_name>``
(mmlu, gsm8k, ...). :func:`source_family` maps them back to the names in
:data:`SOURCES`; :func:`load_battles` accepts either. A name no parser handles is an
:class:`~routellm_integrations.errors.UnknownSourceError` listing the known ones.

Every row or cell that is dropped for a documented reason is counted in the
:class:`SourceLoadReport` that :func:`load_report` returns.

Golden sources are also exposed pointwise as an :class:`OutcomeTable` (per-prompt
correctness), for trainers that add a difficulty loss to the pairwise one.

Parsed sources are cached per data folder (keyed by file names, sizes and mtimes, so
edited data is re-read) and the cached tables are read-only; the loaders hand out fresh
copies the caller may change.

**Adding a source:** write ``<name>.py`` here with ``parse(root: Path, **options) ->
Parsed`` (see :mod:`.base` for the readers and :func:`~.base.from_matrix` for golden
labels), and add it to :data:`PARSERS` (and to :data:`GOLDEN_SOURCES` if it yields
per-prompt correctness).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import DataError, UnknownSourceError
from ...paths import resolve_data_dir
from ..battles import BattleTable
from . import alpaca_eval, llmrouter, routerbench, zeroeval
from .alpaca_eval import DEFAULT_ALPACA_JUDGE, DEFAULT_TIE_BAND, judges_in
from .base import OutcomeTable, Parsed, Parser, SourceLoadReport, freeze
from .routerbench import routerbench_question

#: source family name -> its parser, ``parse(root, **options) -> Parsed``
PARSERS: dict[str, Parser] = {
    alpaca_eval.NAME: alpaca_eval.parse,
    routerbench.NAME: routerbench.parse,
    zeroeval.NAME: zeroeval.parse,
    llmrouter.NAME: llmrouter.parse,
}
SOURCES: tuple[str, ...] = tuple(PARSERS)
#: the sources with per-prompt correctness (an :class:`OutcomeTable` besides the battles)
GOLDEN_SOURCES: tuple[str, ...] = (routerbench.NAME, zeroeval.NAME, llmrouter.NAME)

__all__ = ["PARSERS", "SOURCES", "GOLDEN_SOURCES", "DEFAULT_ALPACA_JUDGE", "DEFAULT_TIE_BAND", "OutcomeTable",
           "Parsed", "SourceLoadReport", "available_alpaca_judges", "check_sources", "load_alpaca_eval",
           "load_battles", "load_outcomes", "load_report", "load_source", "routerbench_question", "source_family"]


def source_family(source: str) -> str:
    """``"routerbench/mbpp"`` -> ``"routerbench"`` (a family name maps to itself)."""
    return source.split("/", 1)[0]


def check_sources(sources: Sequence[str] | str | None, allowed: Sequence[str] = SOURCES) -> dict[str, set[str] | None]:
    """Check source names without reading any data: ``{family: None (all of it) or the
    set of fine source names asked for}`` (``None``: every source in ``allowed``).

    A family no parser handles is an :class:`UnknownSourceError` listing the known ones; a
    known family outside ``allowed`` (e.g. ``alpaca_eval`` for outcomes) a
    :class:`DataError`. Whether a task (``"routerbench/nosuch"``) exists is only known
    once the source is read.
    """
    if sources is None:
        return {f: None for f in allowed}
    if isinstance(sources, str):
        sources = [sources]
    want: dict[str, set[str] | None] = {}
    for s in sources:
        if not isinstance(s, str):
            raise UnknownSourceError(f"training source names are strings, got {type(s).__name__} {s!r}")
        fam = source_family(s)
        if fam not in PARSERS:
            raise UnknownSourceError(f"unknown training source {s!r}; known: {', '.join(SOURCES)} "
                                     "(or a task inside one, e.g. 'routerbench/mbpp')")
        if fam not in allowed:
            raise DataError(f"source {s!r} has no per-prompt correctness; golden sources: {', '.join(allowed)}")
        if s == fam:
            want[fam] = None
        elif want.get(fam, set()) is not None:
            want.setdefault(fam, set()).add(s)  # type: ignore[union-attr]
    return want


def _stamp(folder: Path) -> tuple:
    """Cache key part: file names, sizes and mtimes, so edited data is re-read."""
    if not folder.is_dir():
        raise DataError(f"training source folder {str(folder)!r} is missing")
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))


@lru_cache(maxsize=16)
def _parse_cached(family: str, root: str, stamp: tuple, options: tuple) -> Parsed:
    return freeze(PARSERS[family](Path(root), **dict(options)))


def _parse(family: str, data_dir: str | Path | None, **options: object) -> Parsed:
    check_sources([family])
    root = resolve_data_dir(data_dir)
    return _parse_cached(family, str(root), _stamp(root / "train" / family), tuple(sorted(options.items())))


def _copy_battles(t: BattleTable) -> BattleTable:
    return BattleTable(list(t.prompts), list(t.models), list(t.sources), t.prompt_idx.copy(), t.model_a.copy(),
                       t.model_b.copy(), t.winner.copy(), t.source_idx.copy())


def _copy_outcomes(t: OutcomeTable) -> OutcomeTable:
    return OutcomeTable(list(t.prompts), list(t.models), list(t.sources), t.prompt_idx.copy(),
                        t.model_idx.copy(), t.correct.copy(), t.source_idx.copy())


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
    across sources. The table is the caller's own (a copy of the cached, read-only one).
    """
    tables = [_filter_sources(_parse(fam, data_dir).battles, fine, fam)
              for fam, fine in check_sources(sources).items()]
    return _copy_battles(tables[0]) if len(tables) == 1 else BattleTable.concat(tables)


def load_outcomes(data_dir: str | Path | None = None, sources: Sequence[str] | str | None = None) -> OutcomeTable:
    """Per-(prompt, model) correctness of the golden sources (default: all of
    :data:`GOLDEN_SOURCES`). ``alpaca_eval`` has no correctness and raises DataError."""
    tables = []
    for fam, fine in check_sources(sources, GOLDEN_SOURCES).items():
        parsed = _parse(fam, data_dir).outcomes
        assert parsed is not None
        tables.append(_filter_sources(parsed, fine, fam))
    return _copy_outcomes(tables[0]) if len(tables) == 1 else OutcomeTable.concat(tables)


def load_alpaca_eval(data_dir: str | Path | None = None, judge: str = DEFAULT_ALPACA_JUDGE,
                     tie_band: float = DEFAULT_TIE_BAND) -> BattleTable:
    """AlpacaEval battles from one judge's preference file (see :mod:`.alpaca_eval`)."""
    return _copy_battles(_parse(alpaca_eval.NAME, data_dir, judge=judge, tie_band=float(tie_band)).battles)


def available_alpaca_judges(data_dir: str | Path | None = None) -> list[str]:
    """Judge names with a ``preferences_<judge>.csv`` file."""
    return judges_in(resolve_data_dir(data_dir) / "train" / alpaca_eval.NAME)


def load_report(data_dir: str | Path | None = None,
                sources: Sequence[str] | None = None) -> dict[str, SourceLoadReport]:
    """Per source family: files, counts, models, and the rows dropped with reasons (each
    report is read-only)."""
    fams = SOURCES if sources is None else list(dict.fromkeys(source_family(s) for s in sources))
    return {f: _parse(f, data_dir).report for f in fams}
