"""WordLlama static embeddings: a token-embedding average, no transformer at all.

Why: ~10-100x faster than MiniLM and a different (weaker) space; useful where routing
must cost well under a millisecond and category-level signal is enough. The weights ship
inside the ``wordllama`` wheel, so nothing is downloaded.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EmbedderError
from ._common import l2_normalize, validate_texts


class WordLlamaEmbedder:
    """``wordllama`` l2_supercat at 256 dimensions (or a Matryoshka truncation of it)."""

    def __init__(self, config: str = "l2_supercat", dim: int = 256, batch_size: int = 256) -> None:
        self.config = config
        self.dim = int(dim)
        self.batch_size = int(batch_size)
        self.name = f"wordllama-{config}-{self.dim}"
        self._model: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WordLlamaEmbedder(name={self.name!r})"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    import wordllama
                    from wordllama import WordLlama
                except ImportError as exc:
                    raise EmbedderError("WordLlamaEmbedder needs the 'wordllama' package") from exc
                try:
                    self._model = WordLlama.load(
                        config=self.config, cache_dir=Path(wordllama.__file__).parent,
                        disable_download=True, dim=256,
                        trunc_dim=None if self.dim == 256 else self.dim)
                except Exception as exc:  # missing weights surface as various errors
                    raise EmbedderError(f"could not load wordllama {self.config!r} without "
                                        f"downloading: {exc}") from exc
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = validate_texts(texts)
        vecs = np.asarray(self._load().embed(items, norm=False, batch_size=self.batch_size),
                          dtype=np.float32).reshape(len(items), self.dim)
        # Texts with no known token (e.g. "") pool to zero; give them one fixed unit
        # vector so every row is unit-norm as the Embedder contract promises.
        empty = ~np.any(vecs, axis=1)
        if empty.any():
            vecs[empty] = 1.0
        return l2_normalize(vecs)
