"""The checks of text that routers, embedders and stores share, so all fail (or clean)
the same way: "a batch of texts" and the one replacement of lone surrogates."""

from __future__ import annotations

import re
from typing import Any

from .errors import InvalidPromptError


def text_list(texts: Any, *, allow_empty: bool) -> list[str]:
    """``texts`` as a list of strings, or :class:`InvalidPromptError` naming the bad item.

    A bare string is refused on purpose (iterating it would treat each character as a
    prompt). ``allow_empty`` lets embedders take ``""`` (it embeds fine) while routers
    refuse a blank prompt, which is always a caller's mistake.
    """
    if isinstance(texts, (str, bytes)):
        raise InvalidPromptError("expected a sequence of strings, not a single string; wrap it in a list: [text]")
    try:
        items = list(texts)
    except TypeError:
        raise InvalidPromptError(f"expected a sequence of strings, got {type(texts).__name__}") from None
    if not items:
        raise InvalidPromptError("the batch is empty: give at least one prompt")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InvalidPromptError(f"prompt {i} is a {type(t).__name__}, not a string")
        if not allow_empty and not t.strip():
            raise InvalidPromptError(f"prompt {i} is empty")
    return items


_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (and a surrogate *pair*
    joined into the character it encodes); text without surrogates is returned as is.

    Why: Python turns undecodable bytes (in ``sys.argv``, in files read with
    ``errors="surrogateescape"``, in scraped text) into lone surrogates such as
    ``'caf\\udce9'``, which no UTF-8 encoder accepts, so every tokenizer (``tokenizers``,
    onnx, WordLlama) and hash of such a prompt would raise. U+FFFD is what a tolerant UTF-8
    decoder (``errors="replace"``) puts where each such byte was, one character for one,
    so the prompt keeps its length and embeds deterministically, as that decoder's text
    would.
    """
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
