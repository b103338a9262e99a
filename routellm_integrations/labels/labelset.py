"""Labelled prompts of one strong/weak pair: what adaptation learns from.

Every kind of label a user can produce reduces to the same shape, one row per prompt
with what the strong and the weak model scored on it, so adaptation and its guard never
need to know where a label came from:

- recorded outcomes (``prompt,strong,weak``: 0/1 correctness, 1-10 judge scores);
- battles between the pair (``winner`` a/b/tie): strong scores 1 for a win, 0.5 for a
  tie, 0 for a loss, and weak the complement;
- feedback on calls that were made (one side observed, see :mod:`.store`).

Several labels of one prompt are averaged, so a prompt judged twice counts once. A label
may also carry the models' *answers* (an outcome file's ``weak_answer`` and
``strong_answer`` columns; judge labelling and shadow sampling record both): the weak
answer is what the answer verifier (:mod:`..verification`) learns to read, so labels
with answers are merged only when prompt and weak answer are the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..evaluation.benchmarks import Benchmark, load_pair_outcomes


@dataclass(frozen=True, eq=False)
class LabelSet:
    """Prompts with both models' outcomes, aligned by position.

    ``prompts[i]`` is None when only the prompt's embedding was recorded (privacy mode);
    then ``embeddings[i]`` and ``features[i]`` hold what was recorded in its place, in
    the space named by ``embedder``.
    """

    prompts: tuple[str | None, ...]
    strong: np.ndarray
    weak: np.ndarray
    strong_model: str = "strong"
    weak_model: str = "weak"
    kind: str = "score"
    embedder: str | None = None
    embeddings: np.ndarray | None = None
    features: np.ndarray | None = None
    sources: tuple[str, ...] = ()
    #: the weak (strong) model's answer per row, None where it was not recorded
    weak_answers: tuple[str | None, ...] | None = None
    strong_answers: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.prompts)
        for name in ("strong", "weak"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n,):
                raise DataError(f"labels: {name} has shape {arr.shape}, expected ({n},)")
            if not np.isfinite(arr).all():
                raise DataError(f"labels: {name} outcomes hold non-finite values")
            object.__setattr__(self, name, arr)
        missing = [i for i, p in enumerate(self.prompts) if p is None]
        if missing and (self.embeddings is None or self.features is None):
            raise DataError(f"labels: {len(missing)} prompt(s) have neither text nor a recorded embedding "
                            f"(first at row {missing[0]})")
        for name in ("weak_answers", "strong_answers"):
            answers = getattr(self, name)
            if answers is not None:
                if len(answers) != n:
                    raise DataError(f"labels: {len(answers)} {name.replace('_', ' ')} for {n} prompts")
                bad = [i for i, a in enumerate(answers) if a is not None and not isinstance(a, str)]
                if bad:
                    raise DataError(f"labels: {name.replace('_', ' ')} at row(s) {bad[:10]} are not text")
                object.__setattr__(self, name, tuple(answers))

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def target(self) -> np.ndarray:
        """How much better the strong model did, on the labels' own scale."""
        return self.strong - self.weak

    @property
    def informative(self) -> int:
        """Prompts on which the two models differ: only these move APGR."""
        return int(np.count_nonzero(self.strong != self.weak))

    @property
    def has_all_text(self) -> bool:
        return all(p is not None for p in self.prompts)

    @property
    def answered(self) -> np.ndarray:
        """Rows with both the prompt's text and the weak model's answer: what a verifier
        can learn from."""
        if self.weak_answers is None:
            return np.zeros(0, dtype=np.int64)
        return np.array([i for i, (p, a) in enumerate(zip(self.prompts, self.weak_answers))
                         if p is not None and a is not None], dtype=np.int64)

    def subset(self, idx: Sequence[int] | np.ndarray) -> "LabelSet":
        idx = np.asarray(idx, dtype=np.int64)
        return LabelSet(
            prompts=tuple(self.prompts[i] for i in idx), strong=self.strong[idx], weak=self.weak[idx],
            strong_model=self.strong_model, weak_model=self.weak_model, kind=self.kind, embedder=self.embedder,
            embeddings=None if self.embeddings is None else self.embeddings[idx],
            features=None if self.features is None else self.features[idx],
            sources=self.sources, weak_answers=_pick(self.weak_answers, idx),
            strong_answers=_pick(self.strong_answers, idx))

    def as_benchmark(self, name: str = "your labels") -> Benchmark:
        """The labels as a benchmark, so APGR is computed by the paper's exact code."""
        texts = tuple(p if p is not None else f"<recorded prompt {i}>" for i, p in enumerate(self.prompts))
        kind = "accuracy" if self.kind == "accuracy" else "score"
        return Benchmark(name, texts, self.strong, self.weak, self.strong_model, self.weak_model,
                         kind)  # type: ignore[arg-type]

    @classmethod
    def from_benchmark(cls, bench: Benchmark) -> "LabelSet":
        return cls(prompts=tuple(bench.prompts), strong=bench.strong_outcome, weak=bench.weak_outcome,
                   strong_model=bench.strong_model, weak_model=bench.weak_model, kind=bench.outcome_kind,
                   sources=(bench.name,))

    @classmethod
    def concat(cls, parts: Sequence["LabelSet"]) -> "LabelSet":
        """Several label sets of one pair as one, a prompt labelled in several averaged."""
        parts = [p for p in parts if len(p)]
        if not parts:
            raise DataError("no labels: give outcomes, battles or a store that holds labels")
        pairs = {(p.strong_model, p.weak_model) for p in parts}
        if len(pairs) > 1:
            raise DataError(f"labels mix model pairs {sorted(pairs)}; adapt one strong/weak pair at a time")
        embedders = {p.embedder for p in parts if p.embeddings is not None}
        if len(embedders) > 1:
            raise DataError(f"recorded embeddings come from different embedders {sorted(map(str, embedders))}")
        if len(parts) == 1:
            return parts[0]
        # outcomes on different scales (0/1 vs 1-10) cannot be averaged meaningfully
        scales = {p.kind for p in parts}
        if len(scales) > 1 and "score" in scales and any(_span(p) > 1.0 for p in parts):
            raise DataError(f"labels on different scales ({sorted(scales)}) cannot be combined; rescale the "
                            "outcomes to [0, 1] first")
        prompts = [q for p in parts for q in p.prompts]
        strong = np.concatenate([p.strong / (100.0 if p.kind == "accuracy" else 1.0) for p in parts])
        weak = np.concatenate([p.weak / (100.0 if p.kind == "accuracy" else 1.0) for p in parts])
        emb = feats = None
        if any(p.embeddings is not None for p in parts):
            if not all(p.embeddings is not None and p.features is not None for p in parts):
                if any(q is None for q in prompts):
                    raise DataError("some labels carry only an embedding and others only text; record both, "
                                    "or adapt them separately")
            else:
                emb = np.concatenate([p.embeddings for p in parts])  # type: ignore[misc]
                feats = np.concatenate([p.features for p in parts])  # type: ignore[misc]
        first = parts[0]
        return aggregate(LabelSet(tuple(prompts), strong, weak, first.strong_model, first.weak_model, "score",
                                  next(iter(embedders), None), emb, feats,
                                  tuple(s for p in parts for s in p.sources),
                                  _joined([p.weak_answers for p in parts], [len(p) for p in parts]),
                                  _joined([p.strong_answers for p in parts], [len(p) for p in parts])))


def _pick(answers: tuple[str | None, ...] | None, idx: np.ndarray) -> tuple[str | None, ...] | None:
    return None if answers is None else tuple(answers[i] for i in idx)


def _joined(columns: Sequence[tuple[str | None, ...] | None], sizes: Sequence[int]) -> tuple[str | None, ...] | None:
    """Answer columns of several label sets, None-padded where a part recorded none."""
    if all(c is None for c in columns):
        return None
    return tuple(a for c, n in zip(columns, sizes) for a in (c if c is not None else (None,) * n))


def _span(labels: LabelSet) -> float:
    both = np.concatenate([labels.strong, labels.weak])
    return float(both.max() - both.min()) if both.size else 0.0


def aggregate(labels: LabelSet) -> LabelSet:
    """One row per distinct prompt text (per prompt and weak answer, when answers were
    recorded), outcomes averaged (text-less rows kept as they are)."""
    first: dict[object, int] = {}
    groups: list[list[int]] = []
    answers = labels.weak_answers
    for i, p in enumerate(labels.prompts):
        key = p if answers is None else (p, answers[i])
        if p is None:
            groups.append([i])
        elif key in first:
            groups[first[key]].append(i)
        else:
            first[key] = len(groups)
            groups.append([i])
    if len(groups) == len(labels):
        return labels
    keep = np.array([g[0] for g in groups])
    strong = np.array([labels.strong[g].mean() for g in groups])
    weak = np.array([labels.weak[g].mean() for g in groups])
    out = labels.subset(keep)
    return LabelSet(out.prompts, strong, weak, out.strong_model, out.weak_model, labels.kind, out.embedder,
                    out.embeddings, out.features, labels.sources, out.weak_answers, out.strong_answers)


#: optional answer columns of an outcome file
ANSWER_COLUMNS: tuple[str, ...] = ("weak_answer", "strong_answer")


def load_outcome_labels(path: str | os.PathLike[str], *, strong_model: str = "strong",
                        weak_model: str = "weak") -> LabelSet:
    """``prompt,strong,weak`` rows (CSV or JSONL), the format ``routellm evaluate --outcomes`` reads.

    Optional ``weak_answer`` (and ``strong_answer``) columns hold the models' answers;
    with ``weak_answer`` present ``routellm adapt`` also fits an answer verifier. A column
    that is present must be filled in every row: a row without its answer is refused,
    naming the rows, rather than silently left out of the verifier's labels."""
    bench = load_pair_outcomes(path, strong_model=strong_model, weak_model=weak_model)
    columns = _answer_columns(Path(path).expanduser(), len(bench))
    labels = LabelSet.from_benchmark(bench)
    if columns:
        labels = LabelSet(labels.prompts, labels.strong, labels.weak, labels.strong_model, labels.weak_model,
                          labels.kind, sources=labels.sources, weak_answers=columns.get("weak_answer"),
                          strong_answers=columns.get("strong_answer"))
    return aggregate(labels)


def _answer_columns(path: Path, n: int) -> dict[str, tuple[str | None, ...]]:
    """The answer columns present in the file (rows numbered from 1, data rows only, as
    :func:`load_pair_outcomes` numbers them)."""
    import csv

    from ..files import read_jsonl

    if path.suffix.lower() in (".jsonl", ".ndjson"):
        records = read_jsonl(path)
        present = [c for c in ANSWER_COLUMNS if any(isinstance(r, dict) and c in r for r in records)]
    else:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            present = [c for c in ANSWER_COLUMNS if c in (reader.fieldnames or [])]
            records = list(reader) if present else []
    out: dict[str, tuple[str | None, ...]] = {}
    for column in present:
        if len(records) != n:
            raise DataError(f"{path}: read {len(records)} rows for the {column!r} column but {n} outcome rows")
        values = [r.get(column) for r in records]
        wrong = [i for i, v in enumerate(values, start=1) if v is not None and not isinstance(v, str)]
        if wrong:
            raise DataError(f"{path}: column {column!r} must hold text; row(s) {_rows(wrong)} hold "
                            f"{type(values[wrong[0] - 1]).__name__}")
        empty = [i for i, v in enumerate(values, start=1) if v is None or not v.strip()]
        if empty:
            what = "every row" if len(empty) == n else f"row(s) {_rows(empty)} of {n}"
            raise DataError(f"{path}: column {column!r} is empty in {what}; give every row the {column.split('_')[0]} "
                            f"model's answer, or drop the column (the verifier learns only from rows with answers)")
        out[column] = tuple(values)  # type: ignore[arg-type]
    return out


def _rows(rows: Sequence[int]) -> str:
    shown = ", ".join(map(str, rows[:10]))
    return shown + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def battles_to_labels(rows: Sequence[tuple[str, str, str, str]], *, strong_model: str, weak_model: str,
                      origin: str) -> LabelSet:
    """Battles ``(prompt, model_a, model_b, winner)`` between the pair as labels.

    A battle between other models says nothing about this pair: it is refused with the
    models it names, never silently dropped."""
    from ..data.models import canonical_model_name

    s_name, w_name = canonical_model_name(strong_model), canonical_model_name(weak_model)
    prompts: list[str] = []
    strong: list[float] = []
    for i, (prompt, a, b, winner) in enumerate(rows, 1):
        a_c, b_c = canonical_model_name(a), canonical_model_name(b)
        if {a_c, b_c} != {s_name, w_name}:
            raise DataError(f"{origin}: battle {i} is between {a!r} and {b!r}, not the pair being adapted "
                            f"(strong {strong_model!r}, weak {weak_model!r}); pass --strong-model/--weak-model "
                            "or remove the other pairs' battles")
        won = {"a": a_c, "b": b_c}.get(winner)
        strong.append(0.5 if winner == "tie" else float(won == s_name))
        prompts.append(prompt)
    if not prompts:
        raise DataError(f"{origin}: no battles")
    s = np.array(strong)
    return aggregate(LabelSet(tuple(prompts), s, 1.0 - s, strong_model, weak_model, "preference",
                              sources=(origin,)))


def load_battle_labels(path: str | os.PathLike[str], *, strong_model: str, weak_model: str) -> LabelSet:
    """A battles file (``prompt,model_a,model_b,winner``) between the pair, as labels."""
    from ..data.battles import WINNER_NAMES
    from ..data.user_files import load_battles_file

    table = load_battles_file(path)
    rows = [(table.prompts[int(p)], table.models[int(a)], table.models[int(b)], WINNER_NAMES[int(w)])
            for p, a, b, w in zip(table.prompt_idx, table.model_a, table.model_b, table.winner)]
    return battles_to_labels(rows, strong_model=strong_model, weak_model=weak_model, origin=str(Path(path)))
