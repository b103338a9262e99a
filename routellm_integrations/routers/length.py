"""Prompt length as a router: the cheapest signal, and the bar a learned router must clear.

On the paper's benchmarks it reaches APGR of about 0.58 (MMLU), 0.60 (GSM8K) and 0.56
(MT-Bench): longer prompts tend to be the harder ones.
"""

from __future__ import annotations

import numpy as np

from .base import BaseRouter


class LengthRouter(BaseRouter):
    """Score = a squashed character count: monotone in length, so only the order matters.

    ``midpoint`` is the length that scores 0.5 (the default is about the median prompt in
    the benchmarks), so thresholds stay readable.
    """

    name = "length"
    inline_scoring = True  # type: ignore[assignment]  # arithmetic, no model

    def __init__(self, midpoint: int = 400) -> None:
        if midpoint <= 0:
            raise ValueError(f"midpoint must be a positive number of characters, got {midpoint}")
        self.midpoint = int(midpoint)

    def _score(self, prompts: list[str]) -> np.ndarray:
        lengths = np.array([len(p) for p in prompts], dtype=np.float64)
        return lengths / (lengths + self.midpoint)

    def config(self) -> dict[str, object]:
        return {"midpoint": self.midpoint}
