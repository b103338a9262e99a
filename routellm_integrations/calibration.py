"""Thresholds from a target share of strong calls.

A threshold means little on its own (it depends on the router and on the traffic);
what a user wants is "send about 30% of my prompts to the strong model". Given scores
of representative prompts, the threshold is the score quantile that achieves it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InvalidPromptError
from .routers.base import BaseRouter, validate_threshold


def threshold_for_strong_fraction(scores: Sequence[float] | np.ndarray, strong_fraction: float) -> float:
    """The threshold that routes ``strong_fraction`` of these scores strong (score >= t).

    With ties the realised share can only be approximated; the result is the smallest
    threshold whose share does not exceed the target, so the budget is not overshot.
    """
    frac = validate_threshold(strong_fraction, "strong_fraction")
    s = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1))
    if s.size == 0:
        raise InvalidPromptError("cannot calibrate on zero scores: give at least one prompt")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    n_strong = int(np.floor(frac * s.size + 1e-9))
    if n_strong <= 0:
        return float(min(1.0, np.nextafter(s[-1], np.inf)))
    candidate = s[s.size - n_strong]
    # ties at the candidate would push the share above target: step up to the next value
    if np.count_nonzero(s >= candidate) > n_strong:
        above = s[s > candidate]
        candidate = above[0] if above.size else np.nextafter(candidate, np.inf)
    return float(min(1.0, max(0.0, candidate)))


def calibrate_threshold(router: BaseRouter, prompts: Sequence[str], strong_fraction: float) -> float:
    """Score ``prompts`` with ``router`` and return the threshold for ``strong_fraction``."""
    return threshold_for_strong_fraction(router.score(prompts), strong_fraction)


def strong_share(scores: Sequence[float] | np.ndarray, threshold: float) -> float:
    """The share of these scores a threshold sends to the strong model."""
    s = np.asarray(scores, dtype=np.float64)
    return float(np.mean(s >= validate_threshold(threshold)))


#: the reference mix a threshold is read against before live traffic arrives: 240 prompts
#: written for this project in the proportions of ordinary assistant traffic (chat,
#: writing, facts, translation, code, maths, reasoning, analysis; see its README)
REFERENCE_MIX = Path(__file__).parent / "reference" / "reference_mix.jsonl"


@lru_cache(maxsize=1)
def reference_prompts() -> tuple[str, ...]:
    """The prompts of :data:`REFERENCE_MIX`."""
    with REFERENCE_MIX.open(encoding="utf-8") as f:
        return tuple(json.loads(line)["prompt"] for line in f if line.strip())


def reference_threshold(router: BaseRouter, strong_fraction: float) -> float:
    """The threshold that sends ``strong_fraction`` of the reference mix strong with
    ``router``: what a share means before your own traffic has been seen. The online
    controller starts from it and then holds the share on your traffic."""
    return calibrate_threshold(router, list(reference_prompts()), strong_fraction)
