"""Remove training prompts that are benchmark prompts or near-duplicates of one.

The project's rule (data README, as in the RouteLLM paper): no training example may have
cosine similarity >= 0.95 with a benchmark prompt under the default embedder. Exact
matches after whitespace/case normalisation are removed as well, even without an
embedder, because an embedder truncates long texts and could miss an identical long
prompt. Everything dropped is counted per source in a :class:`DecontaminationReport`.

Typical use::

    flagged = contaminated_prompts(table.prompts, benchmark_prompts, embedder)
    battles, report = decontaminate(table, benchmark_prompts, embedder)  # or ...
    outcomes = drop_prompts(outcomes, flagged)                           # reuse the set

Embedding the ~16k benchmark prompts is most of the cost (minutes on two cores). Both
sides are embedded in chunks of :data:`EMBED_CHUNK` texts, one ``embed`` call each: behind
a :class:`~routellm_integrations.embedders.CachedEmbedder` (``routellm train`` uses one,
stored under ``$ROUTELLM_CACHE_DIR``) every finished chunk is on disk at once, so a rerun
or an interrupted run embeds only what is missing. The rule and the embedder are the
same with or without the cache; a cached vector is the float32 vector the embedder gave.
With progress on (``progress=True``, or inside :func:`decontamination_progress`) each stage
prints one line on stderr (how many prompts it embeds and how many were cached) and a
progress bar when stderr is a terminal.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar, Union

import numpy as np
from pydantic import BaseModel

from ..embedders.base import Embedder
from ..errors import DataError
from .battles import BattleTable
from .sources import OutcomeTable

Table = TypeVar("Table", BattleTable, OutcomeTable)
DEFAULT_THRESHOLD = 0.95
#: a cheap embedder's cosine below which a pair is not checked with the exact one. On the
#: full default pool every pair exact MiniLM flags (108) has WordLlama cosine >= 0.84, so
#: 0.6 leaves a wide margin while the exact embedder sees ~10% of the benchmark prompts
PREFILTER_THRESHOLD = 0.6
#: texts per embed call: the unit an interrupted run keeps (a cached embedder writes each)
EMBED_CHUNK = 512
_WS = re.compile(r"\s+")
_PROGRESS: ContextVar[bool] = ContextVar("routellm_decontamination_progress", default=False)


@contextmanager
def decontamination_progress(enabled: bool = True) -> Iterator[None]:
    """Within this block, decontamination called without ``progress=`` reports progress
    (stage lines and bars on stderr) when ``enabled``, e.g. from a pipeline that does not
    pass the flag down."""
    token = _PROGRESS.set(bool(enabled))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def _say(message: str) -> None:
    sys.stdout.flush()  # keep the order of stdout lines before it
    print(message, file=sys.stderr, flush=True)


def _n_cached(embedder: Any, texts: Sequence[str]) -> int | None:
    count = getattr(embedder, "count_cached", None)
    return count(texts) if callable(count) else None


def embed_in_chunks(embedder: Embedder, texts: Sequence[str], *, chunk_size: int | None = None,
                    progress: bool | None = None, what: str = "prompts") -> np.ndarray:
    """``embedder.embed`` over ``texts``, ``chunk_size`` (``None``: :data:`EMBED_CHUNK`)
    texts per call, as one array. With
    ``progress`` (``None``: :func:`decontamination_progress`'s setting) one line on stderr
    says how many of ``what`` are embedded and, for a cached embedder, how many were
    already cached; a bar follows on a terminal."""
    from tqdm.auto import tqdm

    chunk_size = EMBED_CHUNK if chunk_size is None else chunk_size
    if chunk_size < 1:
        raise DataError(f"chunk_size must be >= 1, got {chunk_size}")
    show = _PROGRESS.get() if progress is None else bool(progress)
    texts = list(texts)
    if show:
        cached = _n_cached(embedder, texts)
        known = "" if cached is None else f" ({cached:,} cached)"
        _say(f"decontaminating: embedding {len(texts):,} {what}{known} with {getattr(embedder, 'name', embedder)}")
    parts = []
    with tqdm(total=len(texts), desc="decontaminating", unit="prompt", leave=False,
              disable=None if show else True) as bar:  # None: a bar only on a terminal
        for start in range(0, len(texts), chunk_size):
            chunk = texts[start:start + chunk_size]
            parts.append(np.asarray(embedder.embed(chunk), dtype=np.float32))
            bar.update(len(chunk))
    if not parts:
        return np.zeros((0, int(getattr(embedder, "dim", 0))), dtype=np.float32)
    return np.concatenate(parts, axis=0)


def normalise_prompt(text: str) -> str:
    """Case- and whitespace-insensitive form used for exact matching."""
    return _WS.sub(" ", text).strip().lower()


@dataclass
class ContaminationScan:
    """Per training prompt: flagged?, best cosine to any reference, and which one."""

    flagged: np.ndarray  # bool
    exact: np.ndarray  # bool: equal to a reference after normalisation
    max_similarity: np.ndarray  # float32; NaN when no embedder was used
    nearest_reference: np.ndarray  # int64 index into the references; -1 when unknown


def _unit_rows(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"{what} embeddings must be 2-D, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1)
    if len(norms) and (np.abs(norms - 1.0) > 1e-3).any():
        raise DataError(f"{what} embeddings are not unit vectors (norms {norms.min():.3f}..{norms.max():.3f}); "
                        "the Embedder protocol requires L2-normalised rows")
    return x


def scan_prompts(prompts: Sequence[str], reference_prompts: Sequence[str], embedder: Embedder | None,
                 threshold: float = DEFAULT_THRESHOLD, batch_size: int = 1024,
                 reference_embeddings: np.ndarray | None = None, progress: bool | None = None,
                 prefilter: Embedder | None = None,
                 prefilter_threshold: float = PREFILTER_THRESHOLD) -> ContaminationScan:
    """Compare every prompt with every reference; see :class:`ContaminationScan`.

    Similarities are computed in blocks of ``batch_size`` training prompts, so memory is
    ``batch_size x len(references)`` float32 values (1024 x 16k = 64 MB). References are
    embedded :data:`EMBED_CHUNK` at a time (see the module docstring).
    ``reference_embeddings`` skips re-embedding the references when the caller already
    has them (from the same embedder). ``progress``: see :func:`embed_in_chunks`.

    ``prefilter`` (a cheap embedder, e.g. the static WordLlama table): only pairs whose
    cheap cosine is at least ``prefilter_threshold`` are judged by ``embedder``, so the
    exact embedder embeds only the prompts and references of such pairs instead of all of
    them (minutes of MiniLM become seconds). The rule is unchanged (``embedder``'s cosine
    decides); a prompt with no candidate pair keeps ``max_similarity`` NaN.
    """
    if not 0.0 < threshold <= 1.0:
        raise DataError(f"threshold must lie in (0, 1], got {threshold!r}")
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    n = len(prompts)
    refs = {normalise_prompt(r) for r in reference_prompts}
    exact = np.fromiter((normalise_prompt(p) in refs for p in prompts), dtype=bool, count=n)
    max_sim = np.full(n, np.nan, dtype=np.float32)
    nearest = np.full(n, -1, dtype=np.int64)
    if embedder is not None and n and len(reference_prompts) and prefilter is not None:
        _scan_prefiltered(prompts, reference_prompts, embedder, prefilter, prefilter_threshold, batch_size,
                          progress, max_sim, nearest)
    elif embedder is not None and n and len(reference_prompts):
        if reference_embeddings is None:
            reference_embeddings = embed_in_chunks(embedder, reference_prompts, progress=progress,
                                                   what="benchmark prompts")
        ref = _unit_rows(reference_embeddings, "reference")
        if len(ref) != len(reference_prompts):
            raise DataError(f"{len(ref)} reference embeddings for {len(reference_prompts)} reference prompts")
        step = min(batch_size, EMBED_CHUNK)  # read at call time (tests shrink it)
        train = embed_in_chunks(embedder, prompts, chunk_size=step, progress=progress, what="training prompts")
        for start in range(0, n, batch_size):
            block = _unit_rows(train[start:start + batch_size], "training")
            if block.shape[1] != ref.shape[1]:
                raise DataError(f"embedding sizes differ: training {block.shape[1]}, reference {ref.shape[1]}")
            sims = block @ ref.T
            j = sims.argmax(axis=1)
            nearest[start:start + len(block)] = j
            max_sim[start:start + len(block)] = sims[np.arange(len(block)), j]
    # small tolerance: float32 dot products of identical unit vectors land at 0.99999
    flagged = exact | (np.nan_to_num(max_sim, nan=-1.0) >= threshold - 1e-6)
    return ContaminationScan(flagged, exact, max_sim, nearest)


def _scan_prefiltered(prompts: Sequence[str], references: Sequence[str], embedder: Embedder, prefilter: Embedder,
                      cut: float, batch_size: int, progress: bool | None, max_sim: np.ndarray,
                      nearest: np.ndarray) -> None:
    """:func:`scan_prompts` over the pairs ``prefilter`` puts within ``cut``: fills
    ``max_sim``/``nearest`` (the exact embedder's best candidate) in place."""
    if not 0.0 < cut <= 1.0:
        raise DataError(f"prefilter_threshold must lie in (0, 1], got {cut!r}")
    ref = _unit_rows(embed_in_chunks(prefilter, references, progress=progress, what="benchmark prompts"), "reference")
    train = _unit_rows(embed_in_chunks(prefilter, prompts, progress=progress, what="training prompts"), "training")
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    for start in range(0, len(prompts), batch_size):
        rows, cols = np.nonzero(train[start:start + batch_size] @ ref.T >= cut - 1e-6)
        pairs.append((rows + start, cols))
    rows = np.concatenate([r for r, _ in pairs]) if pairs else np.zeros(0, np.int64)
    cols = np.concatenate([c for _, c in pairs]) if pairs else np.zeros(0, np.int64)
    if not len(rows):
        return
    train_ids, ref_ids = np.unique(rows), np.unique(cols)
    exact_train = _unit_rows(embed_in_chunks(embedder, [prompts[i] for i in train_ids], progress=progress,
                                             what="candidate training prompts"), "training")
    exact_ref = _unit_rows(embed_in_chunks(embedder, [references[j] for j in ref_ids], progress=progress,
                                           what="candidate benchmark prompts"), "reference")
    t_pos, r_pos = np.searchsorted(train_ids, rows), np.searchsorted(ref_ids, cols)
    sims = np.einsum("ij,ij->i", exact_train[t_pos], exact_ref[r_pos])
    order = np.lexsort((-sims, rows))  # per training prompt, its best candidate first
    first = np.unique(rows[order], return_index=True)[1]
    best = order[first]
    max_sim[rows[best]] = sims[best]
    nearest[rows[best]] = cols[best]


def contaminated_prompts(prompts: Sequence[str], reference_prompts: Sequence[str], embedder: Embedder | None,
                         threshold: float = DEFAULT_THRESHOLD, batch_size: int = 1024,
                         reference_embeddings: np.ndarray | None = None, progress: bool | None = None,
                         prefilter: Embedder | None = None) -> set[str]:
    """The subset of ``prompts`` to drop, for reuse on other tables (battles, outcomes)."""
    unique = list(dict.fromkeys(prompts))
    scan = scan_prompts(unique, reference_prompts, embedder, threshold, batch_size, reference_embeddings, progress,
                        prefilter=prefilter)
    return {p for p, f in zip(unique, scan.flagged) if f}


class SourceDecontamination(BaseModel):
    prompts_seen: int
    prompts_dropped: int
    rows_seen: int
    rows_dropped: int


class DecontaminationReport(BaseModel):
    """What decontamination removed. ``row_kind`` says what a row is: ``"battles"`` for a
    BattleTable, ``"outcomes"`` for an OutcomeTable."""

    threshold: float
    embedder: str | None
    n_reference_prompts: int
    row_kind: str
    exact_matches: int
    by_source: dict[str, SourceDecontamination]
    prompts_seen: int
    prompts_dropped: int
    rows_seen: int
    rows_dropped: int

    def summary(self) -> str:
        rule = (f"cosine >= {self.threshold} under {self.embedder}, or an exact match" if self.embedder
                else "exact matches only, no embedder")
        lines = [f"decontamination against {self.n_reference_prompts} reference prompts ({rule}): dropped "
                 f"{self.prompts_dropped} of {self.prompts_seen} prompts ({self.exact_matches} exact), "
                 f"{self.rows_dropped} of {self.rows_seen} {self.row_kind}"]
        for s, r in self.by_source.items():
            if r.prompts_dropped:
                lines.append(f"  {s}: {r.prompts_dropped}/{r.prompts_seen} prompts, "
                             f"{r.rows_dropped}/{r.rows_seen} {self.row_kind}")
        return "\n".join(lines)


def _report(table: Union[BattleTable, OutcomeTable], dropped_ids: np.ndarray, threshold: float,
            embedder_name: str | None, n_refs: int, exact: int) -> DecontaminationReport:
    row_drop = np.isin(table.prompt_idx, dropped_ids)
    by_source: dict[str, SourceDecontamination] = {}
    for code, name in enumerate(table.sources):
        rows = table.source_idx == code
        if not rows.any():
            continue
        seen = np.unique(table.prompt_idx[rows])
        by_source[name] = SourceDecontamination(
            prompts_seen=len(seen), prompts_dropped=int(np.isin(seen, dropped_ids).sum()),
            rows_seen=int(rows.sum()), rows_dropped=int((rows & row_drop).sum()))
    used = np.unique(table.prompt_idx)
    return DecontaminationReport(
        threshold=threshold, embedder=embedder_name, n_reference_prompts=n_refs,
        row_kind="battles" if isinstance(table, BattleTable) else "outcomes", exact_matches=exact,
        by_source=by_source, prompts_seen=len(used), prompts_dropped=int(np.isin(used, dropped_ids).sum()),
        rows_seen=len(table), rows_dropped=int(row_drop.sum()))


def drop_prompts(table: Table, prompts: set[str] | Sequence[str]) -> Table:
    """``table`` without the rows whose prompt text is in ``prompts`` (exact text)."""
    drop = set(prompts)
    ids = np.array([i for i, p in enumerate(table.prompts) if p in drop], dtype=np.int64)
    return table.without_prompts(ids)


def decontaminate(table: Table, reference_prompts: Sequence[str], embedder: Embedder | None,
                  threshold: float = DEFAULT_THRESHOLD, batch_size: int = 1024,
                  reference_embeddings: np.ndarray | None = None, progress: bool | None = None,
                  prefilter: Embedder | None = None) -> tuple[Table, DecontaminationReport]:
    """Drop every row (battle or outcome) whose prompt is a reference prompt or has cosine
    >= ``threshold`` with one. Only prompts that some row uses are embedded, each once.
    With ``embedder=None`` only exact (normalised) matches are removed. ``progress``: see
    :func:`embed_in_chunks`; ``prefilter``: see :func:`scan_prompts`."""
    used = np.unique(table.prompt_idx)
    texts = [table.prompts[i] for i in used]
    scan = scan_prompts(texts, reference_prompts, embedder, threshold, batch_size, reference_embeddings, progress,
                        prefilter=prefilter)
    dropped_ids = used[scan.flagged]
    name = getattr(embedder, "name", None) if embedder else None
    if name and prefilter is not None:
        name += f" (on pairs with {getattr(prefilter, 'name', 'prefilter')} cosine >= {PREFILTER_THRESHOLD})"
    report = _report(table, dropped_ids, threshold, name, len(reference_prompts), int(scan.exact.sum()))
    return table.without_prompts(dropped_ids), report
