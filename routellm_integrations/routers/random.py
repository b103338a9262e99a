"""The control every learned router must beat: a coin with a seed."""

from __future__ import annotations

import threading

import numpy as np

from .base import BaseRouter


class RandomRouter(BaseRouter):
    """Uniform scores; APGR about 0.50 on any benchmark. Seeded for reproducible evaluations."""

    name = "random"
    inline_scoring = True  # type: ignore[assignment]  # arithmetic, no model

    def __init__(self, seed: int | None = 0) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()  # Generator is not thread-safe

    def _score(self, prompts: list[str]) -> np.ndarray:
        with self._lock:
            return self._rng.random(len(prompts))

    def config(self) -> dict[str, object]:
        return {"seed": self.seed}
