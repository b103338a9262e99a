"""WordLlama static embeddings: a token-embedding average, no transformer at all.

Why: the default ``mf`` router embeds with it. A prompt costs ~0.25 ms (p50,
``benchmarks/embedder_speed.py``; the int8 MiniLM: ~2.4 ms of CPU, 5 ms after an idle
wait), and on the training pool's validation split the
router trained on it routes as well as the MiniLM one (APGR 0.589 against 0.534;
MT-Bench 0.745 against 0.756). MiniLM's space stays better as the base of adaptation to
one's own labels, where the within-task signal matters.

The table and tokenizer are WordLlama's own files, shipped in this package
(``embedders/weights``, byte for byte those of ``wordllama`` 0.4.0.post1; see the model card
there): installing ``wordllama`` itself would add its Cython extensions and, through
``tokenizers``, the Hugging Face client stack to every install. ``embedders.bpe`` tokenizes
in pure Python with the same ids. The vectors are the package's own (``WordLlama.embed``,
mean of the token rows, no special tokens); a test holds the two equal.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import EmbedderError
from ._common import l2_normalize, validate_texts
from .wordllama_files import TOKENIZER, WEIGHTS

#: Matryoshka dimensions the l2_supercat weights are trained for
DIMS = (64, 128, 256)
TENSOR = "embedding.weight"
#: up to this many tokens a prompt's rows are gathered and summed; past it, counted (the
#: gather would copy tokens x dim floats: 128 MB for a 32,000-character emoji string)
_GATHER_TOKENS = 2048


class WordLlamaEmbedder:
    """``wordllama`` l2_supercat at 256 dimensions (or a Matryoshka truncation of it)."""

    def __init__(self, config: str = "l2_supercat", dim: int = 256, batch_size: int = 256) -> None:
        if config != "l2_supercat":
            raise EmbedderError(f"only the l2_supercat WordLlama table ships in this package, got {config!r}")
        if isinstance(dim, bool) or dim not in DIMS:
            raise EmbedderError(f"dim must be one of {DIMS}, got {dim!r}")
        self.config = config
        self.dim = int(dim)
        self.batch_size = int(batch_size)  # accepted for compatibility; embedding is per prompt
        self.name = f"wordllama-{config}-{self.dim}"
        self._table: np.ndarray | None = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WordLlamaEmbedder(name={self.name!r})"

    @property
    def inline_scoring(self) -> bool:
        """Loaded, a prompt embeds in ~0.25 ms (a tokenizer call and a table lookup): cheap
        enough for an event loop. Not before: loading reads the table from disk."""
        return self._table is not None

    def _load(self) -> tuple[Any, np.ndarray]:
        with self._lock:
            if self._table is None:
                from safetensors.numpy import load_file

                from .bpe import BPETokenizer

                try:
                    table = load_file(str(WEIGHTS))[TENSOR]
                    tok = BPETokenizer.from_file(TOKENIZER)
                except Exception as exc:  # a missing or corrupt file surfaces as several types
                    raise EmbedderError(f"could not load the WordLlama files shipped in {WEIGHTS.parent}: "
                                        f"{exc}") from None
                if table.ndim != 2 or table.shape[1] < self.dim:
                    raise EmbedderError(f"{WEIGHTS}: {TENSOR} has shape {table.shape}, expected (vocabulary, 256)")
                # fp16 rows, sliced to the Matryoshka prefix; upcast per prompt (16 MB resident, not 32)
                self._table = np.ascontiguousarray(table[:, : self.dim])
                self._tokenizer = tok
        assert self._table is not None
        return self._tokenizer, self._table

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = validate_texts(texts)
        tok, table = self._load()
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        last = table.shape[0] - 1
        for row, text in enumerate(items):
            token_ids = tok.encode(text)
            if not token_ids:
                continue
            ids = np.clip(np.asarray(token_ids, dtype=np.int64), 0, last)
            if len(ids) <= _GATHER_TOKENS:
                out[row] = table[ids].astype(np.float32).sum(axis=0, dtype=np.float32) / np.float32(len(ids))
            else:  # a long text: weight each distinct row by its count, never a (tokens x dim) copy
                counts = np.bincount(ids, minlength=table.shape[0])
                seen = np.flatnonzero(counts)
                out[row] = counts[seen].astype(np.float64) @ table[seen].astype(np.float64) / len(ids)
        # Texts with no token (e.g. only whitespace) pool to zero; give them one fixed unit
        # vector so every row is unit-norm as the Embedder contract promises.
        empty = ~np.any(out, axis=1)
        if empty.any():
            out[empty] = 1.0
        return l2_normalize(out)
