"""Embedding the training prompts: the on-disk cache every trainer goes through, batched
embedding with a progress bar, and the placeholder a freshly fitted router carries until
the pipeline attaches the real embedder."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def cached_embedder(embedder: Any) -> Any:
    """An embedder (by name or object) behind the on-disk cache (``$ROUTELLM_CACHE_DIR``)."""
    from ..embedders import CachedEmbedder, get_embedder
    from ..paths import embedding_cache_path

    if isinstance(embedder, CachedEmbedder):
        return embedder
    return CachedEmbedder(get_embedder(embedder) if isinstance(embedder, str) else embedder,
                          path=embedding_cache_path())


def embed_with_progress(embedder: Any, texts: Sequence[str], progress: bool, batch_size: int = 256) -> np.ndarray:
    """``embedder.embed`` over ``texts`` in batches, one ``(len(texts), dim)`` array."""
    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=len(texts), desc="embedding", unit="prompt", disable=not progress, leave=False) as bar:
        for s in range(0, len(texts), batch_size):
            chunk = list(texts[s:s + batch_size])
            parts.append(embedder.embed(chunk))
            bar.update(len(chunk))
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, embedder.dim), dtype=np.float32)


class PlaceholderEmbedder:
    """Stands in for the embedder of a router fitted on precomputed embeddings, until the
    caller attaches the real one; refuses to embed."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, int(dim)

    def embed(self, texts: Any) -> np.ndarray:
        raise RuntimeError("this router was just trained from precomputed embeddings; attach an "
                           "embedder (router.embedder = get_embedder(...)) or reload it from disk")


def unwrap(embedder: Any) -> Any:
    """The embedder inside a :class:`~routellm_integrations.embedders.CachedEmbedder` (or
    ``embedder`` itself): what a checkpoint records and serves with."""
    return getattr(embedder, "inner", embedder)
