"""Which two models a pair router scores: the ones it routes between.

A router such as ``mf`` predicts ``P(strong beats weak)`` for a *pair* of the models its
checkpoint knows; which pair changes the score (GPT-4o vs GPT-4o-mini is not GPT-4 Turbo
vs Mixtral). An integration knows the backends' model names (LangChain ``model_name``,
LlamaIndex ``metadata.model_name``, the server's ``provider:model``), so the policy
scores that pair: each name is resolved like a checkpoint resolves it (canonical names,
an undated name for its latest snapshot, a dated one for the nearest snapshot the
checkpoint knows). A backend the router does not know falls back to the router's default
pair, with one warning per pair, and the decision's ``scored_pair_source`` says so.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any

from ..errors import UnknownModelError

_WARNED: set[tuple[str, str, str]] = set()
_WARNED_LOCK = threading.Lock()


class UnscoredPairWarning(UserWarning):
    """The router does not know a backend's model, so it scores its default pair instead
    (warned once per router and pair)."""


@dataclass(frozen=True)
class ScoredPair:
    """The router serving a pair, the pair it scores and where that pair came from."""

    router: Any
    pair: list[str] | None
    source: str | None


def pair_aware(router: Any) -> bool:
    """Whether the router's score depends on which two models it compares (``mf``,
    ``quality``): it resolves model names and re-pairs without reloading."""
    return callable(getattr(router, "resolve_model", None)) and callable(getattr(router, "with_pair", None))


def _current(router: Any) -> list[str] | None:
    strong, weak = getattr(router, "strong_model", None), getattr(router, "weak_model", None)
    return [strong, weak] if isinstance(strong, str) and isinstance(weak, str) else None


def _defaults(router: Any) -> tuple[str | None, str | None]:
    config = getattr(router, "config_data", None) or {}
    return config.get("default_strong_model"), config.get("default_weak_model")


def score_pair(router: Any, strong: str | None, weak: str | None, *, explicit: bool = False) -> ScoredPair:
    """``router`` re-paired to score ``strong`` vs ``weak`` (the backends' model names).

    ``explicit``: the caller chose the router's pair (``router_options``), which wins.
    A router object already paired away from its checkpoint's default keeps its pair
    (source ``"router"``). Routers whose score reads no model names are returned as
    they are, with the pair they were trained for (if they name one)."""
    current = _current(router)
    if not pair_aware(router):
        return ScoredPair(router, current, "router" if current else None)
    if explicit:
        return ScoredPair(router, current, "router_options")
    if current is not None and tuple(current) != _defaults(router):
        return ScoredPair(router, current, "router")
    if not strong or not weak:
        return ScoredPair(router, current, "default")
    try:
        s, w = router.resolve_model(strong, "strong model"), router.resolve_model(weak, "weak model")
    except UnknownModelError as exc:
        _warn_once(router, strong, weak, f"{exc}")
        return ScoredPair(router, current, "default")
    if s == w:
        _warn_once(router, strong, weak, f"both backends resolve to {s!r}")
        return ScoredPair(router, current, "default")
    if [s, w] == current:
        return ScoredPair(router, current, "backends")
    return ScoredPair(router.with_pair(s, w), [s, w], "backends")


def _warn_once(router: Any, strong: str, weak: str, why: str) -> None:
    name = str(getattr(router, "name", type(router).__name__))
    key = (name, strong, weak)
    with _WARNED_LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    default = _current(router)
    why = why.rstrip(". ") + "."
    warnings.warn(f"router {name!r} cannot score the pair ({strong!r}, {weak!r}): {why} It scores its default "
                  f"pair {default} instead (scored_pair_source='default' in each decision). Name the router's "
                  "models with router_options={'strong_model': ..., 'weak_model': ...} to choose the pair.",
                  UnscoredPairWarning, stacklevel=4)
