"""The battle table: every training signal, judge or golden, as pairwise outcomes.

Stored column-wise with integer codes because golden-label sources expand to every
pair of models per prompt (millions of rows); prompts and model names are stored once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Literal, NamedTuple, Sequence

import numpy as np

from ..errors import DataError

Winner = Literal["a", "b", "tie"]
WINNER_CODES: dict[str, int] = {"a": 0, "b": 1, "tie": 2}
WINNER_NAMES: tuple[Winner, ...] = ("a", "b", "tie")


class Battle(NamedTuple):
    prompt: str
    model_a: str
    model_b: str
    winner: Winner
    source: str


@dataclass
class BattleTable:
    """Columns of battles.

    ``prompts[prompt_idx[i]]`` is the prompt of battle ``i``; ``models[model_a[i]]`` and
    ``models[model_b[i]]`` its two models; ``winner[i]`` a code from ``WINNER_CODES``;
    ``sources[source_idx[i]]`` the data source it came from.
    """

    prompts: list[str]
    models: list[str]
    sources: list[str]
    prompt_idx: np.ndarray
    model_a: np.ndarray
    model_b: np.ndarray
    winner: np.ndarray
    source_idx: np.ndarray
    _prompt_source: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.prompt_idx)
        for col in ("model_a", "model_b", "winner", "source_idx"):
            if len(getattr(self, col)) != n:
                raise DataError(f"BattleTable column {col!r} has {len(getattr(self, col))} rows, expected {n}")
        self.prompt_idx = np.asarray(self.prompt_idx, dtype=np.int64)
        self.model_a = np.asarray(self.model_a, dtype=np.int32)
        self.model_b = np.asarray(self.model_b, dtype=np.int32)
        self.winner = np.asarray(self.winner, dtype=np.int8)
        self.source_idx = np.asarray(self.source_idx, dtype=np.int16)
        if n and (self.winner.min() < 0 or self.winner.max() > 2):
            raise DataError("BattleTable.winner holds codes outside {0: a, 1: b, 2: tie}")
        if n and (self.model_a == self.model_b).any():
            raise DataError("BattleTable has a battle of a model against itself")

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_battles(cls, battles: Sequence[Battle]) -> "BattleTable":
        """Build from row objects (convenient for small tables and tests)."""
        prompts: dict[str, int] = {}
        models: dict[str, int] = {}
        sources: dict[str, int] = {}
        cols: dict[str, list[int]] = {k: [] for k in ("p", "a", "b", "w", "s")}
        for b in battles:
            if b.winner not in WINNER_CODES:
                raise DataError(f"winner must be 'a', 'b' or 'tie', got {b.winner!r}")
            cols["p"].append(prompts.setdefault(b.prompt, len(prompts)))
            cols["a"].append(models.setdefault(b.model_a, len(models)))
            cols["b"].append(models.setdefault(b.model_b, len(models)))
            cols["w"].append(WINNER_CODES[b.winner])
            cols["s"].append(sources.setdefault(b.source, len(sources)))
        return cls(list(prompts), list(models), list(sources),
                   np.array(cols["p"]), np.array(cols["a"]), np.array(cols["b"]),
                   np.array(cols["w"]), np.array(cols["s"]))

    @classmethod
    def concat(cls, tables: Sequence["BattleTable"]) -> "BattleTable":
        """Merge tables, re-coding prompts, models and sources into shared vocabularies."""
        prompts, models, sources, maps = merge_vocabularies(tables)
        cols = [(pm[t.prompt_idx], mm[t.model_a], mm[t.model_b], t.winner, sm[t.source_idx])
                for t, (pm, mm, sm) in zip(tables, maps)]
        if not cols:
            return cls(prompts, models, sources, *([np.zeros(0)] * 5))
        return cls(prompts, models, sources, *(np.concatenate(c) for c in zip(*cols)))

    # -- access -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.prompt_idx)

    def __iter__(self) -> Iterator[Battle]:
        for i in range(len(self)):
            yield self.row(i)

    def row(self, i: int) -> Battle:
        return Battle(self.prompts[self.prompt_idx[i]], self.models[self.model_a[i]],
                      self.models[self.model_b[i]], WINNER_NAMES[self.winner[i]],
                      self.sources[self.source_idx[i]])

    def select(self, mask_or_index: np.ndarray) -> "BattleTable":
        """Rows chosen by a boolean mask or index array; vocabularies are kept as they are."""
        m = np.asarray(mask_or_index)
        return BattleTable(self.prompts, self.models, self.sources, self.prompt_idx[m],
                           self.model_a[m], self.model_b[m], self.winner[m], self.source_idx[m])

    def without_prompts(self, prompt_ids: np.ndarray) -> "BattleTable":
        """Drop every battle whose prompt index is in ``prompt_ids``."""
        return self.select(~np.isin(self.prompt_idx, np.asarray(prompt_ids, dtype=np.int64)))

    def counts_by_source(self) -> dict[str, int]:
        counts = np.bincount(self.source_idx, minlength=len(self.sources))
        return {s: int(c) for s, c in zip(self.sources, counts)}

    def prompt_sources(self) -> list[str]:
        """The source of each prompt in ``prompts`` (the first source that used it)."""
        first = np.full(len(self.prompts), -1, dtype=np.int64)
        order = np.arange(len(self))[::-1]
        first[self.prompt_idx[order]] = self.source_idx[order]
        return [self.sources[s] if s >= 0 else "" for s in first]


def merge_vocabularies(tables: Sequence) -> tuple[list[str], list[str], list[str], list[tuple[np.ndarray, ...]]]:
    """Shared prompt/model/source vocabularies for columnar tables, and per table the
    arrays that map its old codes to the shared ones (``(prompt_map, model_map, source_map)``)."""
    prompts: dict[str, int] = {}
    models: dict[str, int] = {}
    sources: dict[str, int] = {}
    maps = []
    for t in tables:
        maps.append((np.array([prompts.setdefault(p, len(prompts)) for p in t.prompts], dtype=np.int64),
                     np.array([models.setdefault(m, len(models)) for m in t.models], dtype=np.int32),
                     np.array([sources.setdefault(s, len(sources)) for s in t.sources], dtype=np.int16)))
    return list(prompts), list(models), list(sources), maps
