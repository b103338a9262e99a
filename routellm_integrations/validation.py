"""The one check of "a batch of texts" that routers and embedders share, so both fail
the same way and name the same item."""

from __future__ import annotations

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
