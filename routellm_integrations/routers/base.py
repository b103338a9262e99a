"""The router protocol and the shared validation every router goes through.

A router is a pure scorer: prompts in, P(strong model wins) out, batched. Turning a
score into a route is one comparison (``score >= threshold``), done here once so every
router behaves the same; thresholds held online, budgets and calibration live above
the routers, not in them.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

from ..decision import RoutingDecision
from ..errors import InvalidScoreError, InvalidThresholdError
from ..validation import scrub_surrogates, text_list


@runtime_checkable
class Router(Protocol):
    """What every router offers. Implement :class:`BaseRouter` to get ``route`` for free."""

    name: str

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """P(strong model wins) for each prompt, shape ``(len(prompts),)``, in [0, 1]."""
        ...

    def route(self, prompt: str, threshold: float) -> RoutingDecision:
        """Score one prompt and pick ``"strong"`` when ``score >= threshold``."""
        ...


def validate_prompts(prompts: Sequence[str]) -> list[str]:
    """A non-empty sequence of non-blank strings, or a typed error naming the bad item."""
    return text_list(prompts, allow_empty=False)


#: how far outside [0, 1] a score may stray by float rounding (e.g. ``1 - p4 - p5``) and be clipped
SCORE_TOLERANCE = 1e-6


def check_scores(raw: Any, n: int, router: str) -> np.ndarray:
    """``raw`` as ``n`` float64 scores in [0, 1], or :class:`InvalidScoreError` naming
    ``router`` and what is wrong (see :meth:`BaseRouter.score`)."""
    where = f"router {router!r} returned"
    try:
        arr = np.asarray(raw)
        if arr.dtype.kind not in "biufO":
            raise TypeError(arr.dtype)
        arr = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise InvalidScoreError(f"{where} {type(raw).__name__} {raw!r:.80}, not an array of numbers") from None
    if arr.size != n or sum(d != 1 for d in arr.shape) > 1:
        raise InvalidScoreError(f"{where} an array of shape {arr.shape} for {n} prompt(s): "
                                f"expected one score per prompt, shape ({n},)")
    scores = arr.reshape(n)
    bad = ~np.isfinite(scores) | (scores < -SCORE_TOLERANCE) | (scores > 1.0 + SCORE_TOLERANCE)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidScoreError(f"{where} {float(scores[i])} for prompt {i} ({int(bad.sum())} of {n} bad): "
                                "a score must be a finite probability in [0, 1]")
    return np.clip(scores, 0.0, 1.0)


def validate_threshold(threshold: float, what: str = "threshold") -> float:
    """A float in [0, 1]; bools and NaN are refused rather than coerced."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)):
        raise InvalidThresholdError(f"{what} must be a number in [0, 1], got {type(threshold).__name__}")
    value = float(threshold)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise InvalidThresholdError(f"{what} must be in [0, 1], got {value}")
    return value


class BaseRouter(ABC):
    """Validation, batching and decisions around one abstract method, :meth:`_score`."""

    #: registry name, e.g. ``"mf"``; instances may override with a more specific one
    name: ClassVar[str] = "router"

    @property
    def inline_scoring(self) -> bool:
        """Whether one prompt scores in well under a millisecond, so async callers score it
        on the event loop: a hop to a worker thread costs more than such a score, and under
        load the threads' contention for the GIL shows in the tail. Neural routers say no."""
        return False

    def score(self, prompts: Sequence[str]) -> np.ndarray:
        """P(strong model wins) per prompt, float64, shape ``(len(prompts),)``, in [0, 1].

        Prompts are validated (:func:`validate_prompts`) and lone surrogates replaced
        (:func:`~routellm_integrations.validation.scrub_surrogates`), so ``_score``
        only sees text a tokenizer can encode. What ``_score`` returns is checked too, and
        :class:`InvalidScoreError` (naming the router) is raised unless it is one finite
        number per prompt in [0, 1]: NaN, inf, a non-numeric array or the wrong count.
        A score outside [0, 1] is an error, not clipped: it means a broken router
        (logits instead of probabilities, a wrong head), and clipping would turn it
        silently into "always strong" or "always weak". Only float rounding (within
        ``SCORE_TOLERANCE``) is clipped."""
        items = [scrub_surrogates(p) for p in validate_prompts(prompts)]
        return check_scores(self._score(items), len(items), self.name)

    def route(self, prompt: str, threshold: float) -> RoutingDecision:
        threshold = validate_threshold(threshold)
        start = time.perf_counter()
        score = float(self.score([prompt])[0])
        latency_ms = (time.perf_counter() - start) * 1000.0
        return RoutingDecision(route="strong" if score >= threshold else "weak", score=score,
                               threshold=threshold, router=self.name, latency_ms=latency_ms)

    def route_batch(self, prompts: Sequence[str], threshold: float) -> list[RoutingDecision]:
        """Decisions for many prompts from one batched scoring call."""
        threshold = validate_threshold(threshold)
        start = time.perf_counter()
        scores = self.score(prompts)
        per_prompt_ms = (time.perf_counter() - start) * 1000.0 / len(scores)
        return [RoutingDecision(route="strong" if s >= threshold else "weak", score=float(s),
                                threshold=threshold, router=self.name, latency_ms=per_prompt_ms)
                for s in scores]

    @abstractmethod
    def _score(self, prompts: list[str]) -> np.ndarray:
        """Scores for already-validated prompts."""

    def config(self) -> dict[str, Any]:
        """Options that recreate this router with ``load_router(name, **config)``."""
        return {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({opts})"
