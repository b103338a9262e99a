"""Old home of the pieces shared by the trainers, kept so existing imports keep working.

New code imports from where they live: :mod:`.pool` (the training pool),
:mod:`.validation` (held-out validation sets, folds, benchmarks), :mod:`.embedding`
(cached, batched embedding).
"""

from __future__ import annotations

from .embedding import cached_embedder
from .pool import DEFAULT_SOURCES, Pool, compact, pool_card, prepare_pool
from .validation import cross_validate, prompt_folds, validation_sets

__all__ = ["DEFAULT_SOURCES", "Pool", "cached_embedder", "compact", "cross_validate", "pool_card", "prepare_pool",
           "prompt_folds", "validation_sets"]
