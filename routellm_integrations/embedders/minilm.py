"""all-MiniLM-L6-v2 through sentence-transformers/PyTorch: the reference numerics.

Slow on CPU (~30-60 prompts/s on 2 cores) but it defines the embedding space the ONNX
fast path is checked against. torch is imported only when the model is first needed,
so importing the package stays cheap.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import MissingEmbedderExtraError
from ..extras import ensure, require
from ._common import MINILM_DIM, MINILM_MAX_TOKENS, MINILM_NAME, l2_normalize, minilm_model_dir, validate_texts

FEATURE = "the minilm-torch embedder"


class MiniLMEmbedder:
    """Sentence-transformers all-MiniLM-L6-v2 on CPU, mean pooling, unit rows.

    Prompts longer than ``max_seq_length`` tokens are truncated (the model's own limit),
    never rejected: routing a very long prompt must not fail.
    """

    name: str = MINILM_NAME
    dim: int = MINILM_DIM

    def __init__(self, batch_size: int = 32, max_seq_length: int = MINILM_MAX_TOKENS,
                 eager: bool = False) -> None:
        self.batch_size = int(batch_size)
        self.max_seq_length = int(max_seq_length)
        ensure("sentence_transformers", "torch", extra="torch", feature=FEATURE, error=MissingEmbedderExtraError)
        self._model: Any = None
        self._lock = threading.Lock()
        if eager:
            self._load()

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(name={self.name!r}, backend='torch', max_seq_length={self.max_seq_length})"

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                st = require("sentence_transformers", extra="torch", feature=FEATURE,
                             error=MissingEmbedderExtraError)
                model = st.SentenceTransformer(str(minilm_model_dir()), device="cpu")
                model.max_seq_length = self.max_seq_length
                model.eval()
                self._model = model
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = validate_texts(texts)
        model = self._load()
        vecs = model.encode(items, batch_size=self.batch_size, convert_to_numpy=True,
                            normalize_embeddings=True, show_progress_bar=False)
        return l2_normalize(vecs)
