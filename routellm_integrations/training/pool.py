"""The training pool: public sources (+ a user's battle files) -> one decontaminated
battle table with a compact prompt vocabulary, and the facts a model card records
about it.

Also the seeded, order-independent prompt hash that subsampling, validation splits and
folds are drawn from, and the per-battle weights that give each source the same total.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.battles import BattleTable
from ..errors import DataError
from .embedding import cached_embedder

#: Golden-label sources only: AlpacaEval's judge (GPT-4 Turbo judging against GPT-4 Turbo)
#: rewards its own style on open-ended prompts, and its data is non-commercial. Add
#: ``alpaca_eval`` with ``--sources`` to train on it anyway.
DEFAULT_SOURCES = ("routerbench", "zeroeval", "llmrouter")


@dataclass
class Pool:
    table: BattleTable
    decontamination: Any  # DecontaminationReport
    root: Path
    #: graded answers from ``scores_files`` (decontaminated), over ``table.prompts``; None without
    scores: Any = None
    scores_decontamination: Any = None
    #: the everyday prior's examples (``training.everyday``) left after decontamination; None unless asked
    everyday: Any = None
    everyday_dropped: int = 0


def prompt_hash(prompts: Sequence[str], salt: str) -> np.ndarray:
    """A 64-bit hash per prompt text (``salt`` + text): stable under reordering the pool."""
    key = salt.encode()
    return np.array([int.from_bytes(hashlib.blake2b(key + p.encode(), digest_size=8).digest(), "little")
                     for p in prompts], dtype=np.uint64)


def split_hash(prompts: Sequence[str], seed: int) -> np.ndarray:
    """The hash that subsampling and validation folds are drawn from."""
    return prompt_hash(prompts, f"sub{seed}")


def subsample_prompts(table: BattleTable, per_source: int, seed: int) -> BattleTable:
    """Keep at most ``per_source`` prompts of each source (chosen by a seeded hash)."""
    sources = np.array(table.prompt_sources())
    keep = np.zeros(len(table.prompts), dtype=bool)
    order = np.argsort(split_hash(table.prompts, seed))
    for s in np.unique(sources):
        idx = order[sources[order] == s][:per_source]
        keep[idx] = True
    return table.select(keep[table.prompt_idx])


def compact(table: BattleTable, keep: Sequence[str] = ()) -> BattleTable:
    """Drop prompts no battle uses from the vocabulary (indices re-coded), but those in
    ``keep`` (graded prompts with one model's score: they make no battle, yet a pointwise
    trainer learns from them)."""
    wanted = set(keep)
    used = np.unique(np.concatenate([table.prompt_idx, np.array(
        [i for i, p in enumerate(table.prompts) if p in wanted], dtype=np.int64)]))
    remap = np.full(len(table.prompts), -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return BattleTable([table.prompts[i] for i in used], table.models, table.sources, remap[table.prompt_idx],
                       table.model_a, table.model_b, table.winner, table.source_idx)


def balanced_battle_weights(table: BattleTable, *, balance: str = "source", tie_weight: float = 1.0) -> np.ndarray:
    """Per-battle weights, mean 1 (float32): a tie counts ``tie_weight``, a win 1, and with
    ``balance="source"`` (or ``"family"``: the part of the source name before ``/``) each
    group gets the same total weight; ``"none"`` leaves them as they are."""
    w = np.where(table.winner == 2, tie_weight, 1.0).astype(np.float64)
    if balance != "none" and len(table):
        names = table.sources if balance == "source" else [s.split("/", 1)[0] for s in table.sources]
        groups, group_of_source = np.unique(names, return_inverse=True)
        group = group_of_source[table.source_idx]
        per_group = np.bincount(group, weights=w, minlength=len(groups))
        present = per_group > 0
        scale = np.zeros_like(per_group)
        scale[present] = w.sum() / present.sum() / per_group[present]
        w = w * scale[group]
    return (w / w.mean()).astype(np.float32) if len(w) else w.astype(np.float32)


#: the cheap embedder whose cosine picks the pairs the exact one judges
PREFILTER_EMBEDDER = "wordllama"


def prepare_pool(*, data_dir: str | os.PathLike[str] | None = None,
                 sources: Sequence[str] | None = DEFAULT_SOURCES,
                 battles_files: Sequence[str | os.PathLike[str]] = (), max_prompts_per_source: int | None = None,
                 seed: int = 0, reference_embedder: Any = "minilm", progress: bool = True,
                 scores_files: Sequence[str | os.PathLike[str]] = (), prefilter: bool = True,
                 everyday: bool = False) -> Pool:
    """Load, merge, optionally subsample and decontaminate (cosine >= 0.95 under exact
    MiniLM, or an exact match after normalisation) the training battles. Near-duplicates
    are judged in the paper's space whatever embedder the router itself is trained with.
    ``scores_files`` (graded answers, :func:`~routellm_integrations.data.user_files.load_scores_file`)
    add the battles they imply, and their scores as ``pool.scores`` (decontaminated too).
    ``prefilter``: MiniLM judges only the pairs the static WordLlama table puts within
    cosine 0.6 (the same prompts are dropped; see ``data.decontaminate.PREFILTER_THRESHOLD``).
    ``everyday``: also load the everyday prior's hand-written examples, decontaminated the same way."""
    from ..data.decontaminate import decontaminate
    from ..embedders import get_embedder
    from ..data.sources import OutcomeTable, load_battles
    from ..data.user_files import load_battles_file, load_scores_file
    from ..evaluation.benchmarks import all_benchmark_prompts
    from ..paths import resolve_data_dir

    say = print if progress else (lambda *a, **k: None)
    root = resolve_data_dir(data_dir)
    tables = [load_battles(root, sources)] if sources else []
    tables += [load_battles_file(f) for f in battles_files]
    graded = [load_scores_file(f) for f in scores_files]
    tables += [b for b, _ in graded]
    if not tables:
        raise DataError("nothing to train on: give --sources, --battles and/or --scores")
    table = BattleTable.concat(tables)
    say(f"loaded {len(table):,} battles over {len(table.prompts):,} prompts and {len(table.models)} models")
    if max_prompts_per_source:
        table = subsample_prompts(table, max_prompts_per_source, seed)
        say(f"subsampled to {len(table):,} battles ({max_prompts_per_source} prompts per source)")
    ref = cached_embedder(reference_embedder)
    bench = all_benchmark_prompts(root)
    # the static table picks the pairs MiniLM judges: seconds instead of embedding every benchmark prompt
    cheap = get_embedder(PREFILTER_EMBEDDER) if prefilter else None
    clean, decon = decontaminate(table, bench, ref, prefilter=cheap)
    say(decon.summary())
    scores = scores_decon = None
    if graded:
        scores, scores_decon = decontaminate(OutcomeTable.concat([o for _, o in graded]), bench, ref, prefilter=cheap)
        say(f"graded answers: {scores_decon.summary()}")
        if len(scores) == 0:
            raise DataError("no graded answer left after decontamination")
    kept = [scores.prompts[i] for i in np.unique(scores.prompt_idx)] if scores is not None else []
    if len(clean) == 0 and not kept:
        raise DataError("no battles left after decontamination")
    pool = Pool(compact(clean, keep=kept), decon, root, scores, scores_decon)
    if everyday:
        from ..data.decontaminate import contaminated_prompts
        from .everyday import load_everyday_prompts

        examples = load_everyday_prompts()
        drop = contaminated_prompts([e.prompt for e in examples], bench, ref, prefilter=cheap, progress=False)
        pool.everyday = [e for e in examples if e.prompt not in drop]
        pool.everyday_dropped = len(examples) - len(pool.everyday)
        say(f"everyday prior: dropped {pool.everyday_dropped} of {len(examples)} hand-written prompts "
            "(near-duplicates of benchmark prompts)")
    return pool


def load_pool_outcomes(pool: Pool, sources: Sequence[str] | None) -> Any:
    """The golden labels of ``sources`` and the pool's graded answers (``--scores``), for
    the prompts that survived decontamination, as an
    :class:`~routellm_integrations.data.sources.OutcomeTable` over ``pool.table.prompts``."""
    from ..data.sources import GOLDEN_SOURCES, OutcomeTable, load_outcomes, source_family

    golden = [s for s in (sources or ()) if source_family(s) in GOLDEN_SOURCES]
    parts = [load_outcomes(pool.root, golden)] if golden else []
    if pool.scores is not None:
        parts.append(pool.scores)
    if not parts:
        raise DataError(f"sources {list(sources or ())} hold no golden labels; use some of {sorted(GOLDEN_SOURCES)} "
                        "or your graded answers (--scores)")
    return outcomes_of(pool.table, OutcomeTable.concat(parts) if len(parts) > 1 else parts[0], whole=True)


def outcomes_of(table: BattleTable, outcomes: Any, *, whole: bool = False) -> Any:
    """The rows of ``outcomes`` whose prompt ``table`` uses, re-indexed to ``table.prompts``
    (``whole``: every prompt of the vocabulary counts as used, so graded prompts with a
    single model's score, which make no battle, are kept)."""
    from ..data.sources import OutcomeTable

    if outcomes is None:
        return None
    index = {p: i for i, p in enumerate(table.prompts)}
    used = np.ones(len(table.prompts), dtype=bool) if whole else np.zeros(len(table.prompts), dtype=bool)
    used[np.unique(table.prompt_idx)] = True
    remap = np.array([index.get(p, -1) for p in outcomes.prompts], dtype=np.int64)
    mapped = remap[outcomes.prompt_idx] if len(outcomes) else np.zeros(0, dtype=np.int64)
    keep = mapped >= 0
    keep[keep] = used[mapped[keep]]
    return OutcomeTable(list(table.prompts), list(outcomes.models), list(outcomes.sources), mapped[keep],
                        outcomes.model_idx[keep], outcomes.correct[keep], outcomes.source_idx[keep])


def pool_card(pool: Pool) -> dict[str, Any]:
    """The model-card facts every trainer records about its training data."""
    card = {"battles_by_source": pool.table.counts_by_source(), "decontamination": pool.decontamination.model_dump(),
            "data_sources": sorted(set(pool.table.sources))}
    if pool.everyday is not None:
        card["everyday_prompts"] = {"kept": len(pool.everyday), "dropped": pool.everyday_dropped}
    if pool.scores is not None:
        card["scores_by_source"] = {k: v for k, v in pool.scores.counts_by_source().items() if v}
        card["scores_decontamination"] = pool.scores_decontamination.model_dump()
    return card
