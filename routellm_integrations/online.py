"""A target share of strong calls, held on live traffic.

A threshold calibrated offline on one prompt mix sends a different share strong on
another (RouteLLM calibrates on Chatbot Arena prompts; your traffic is not that). The
controller keeps the recent scores and sets the threshold at the quantile that sends the
target share strong, corrected by how far the share realised so far has drifted, so the
running share converges to the target instead of merely tracking it.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import InvalidStateError
from .routers.base import validate_threshold


class OnlineShareController:
    """Thread-safe; ``threshold()`` before each decision, ``observe()`` after it.

    ``warm_threshold`` (e.g. from offline calibration) is used until ``min_samples``
    scores have been seen; ``window`` bounds the memory of past scores so the threshold
    follows drifting traffic. On top of the quantile, an integral term (``gain`` per
    decision) raises the threshold after each strong call and lowers it after each weak
    one, so the share converges to the target even when the scores drift steadily (where
    a quantile of past scores always lags).
    """

    def __init__(self, target: float, *, warm_threshold: float | None = None, window: int = 1000,
                 min_samples: int = 10, gain: float = 0.01) -> None:
        self.target = validate_threshold(target, "strong_fraction")
        self.warm_threshold = validate_threshold(warm_threshold, "warm_threshold") if warm_threshold is not None else None
        if window < 1 or min_samples < 1:
            raise ValueError("window and min_samples must be positive")
        self.window, self.min_samples, self.gain = int(window), int(min_samples), float(gain)
        self._offset = 0.0
        self._scores: deque[float] = deque(maxlen=self.window)
        self._seen = 0
        self._strong = 0
        self._lock = threading.Lock()

    @property
    def realised_share(self) -> float | None:
        with self._lock:
            return self._strong / self._seen if self._seen else None

    def threshold(self) -> float:
        with self._lock:
            if len(self._scores) < self.min_samples:
                if self.warm_threshold is not None:
                    return self.warm_threshold
                if not self._scores:
                    return 1.0 - self.target  # right for a uniform score, and only until data arrives
            base = float(np.quantile(np.fromiter(self._scores, dtype=np.float64), 1.0 - self.target))
            return float(np.clip(base + self._offset, 0.0, 1.0))

    def observe(self, score: float, strong: bool) -> None:
        with self._lock:
            self._scores.append(float(score))
            self._seen += 1
            self._strong += bool(strong)
            if len(self._scores) >= self.min_samples:
                self._offset += self.gain * (float(bool(strong)) - self.target)

    def seed(self, scores: Any) -> None:
        """Start the window from known scores (e.g. a new router's scores of recent
        prompts after a hot swap), so the threshold is right from the first call."""
        with self._lock:
            self._scores.extend(float(s) for s in list(scores)[-self.window:])

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (for restarts); :meth:`load_state_dict` restores it."""
        with self._lock:
            return {"target": self.target, "warm_threshold": self.warm_threshold, "window": self.window,
                    "min_samples": self.min_samples, "gain": self.gain, "offset": self._offset,
                    "scores": list(self._scores), "seen": self._seen, "strong": self._strong}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "OnlineShareController":
        """Restore :meth:`state_dict`'s output. A checkpoint is validated first (a store may
        hold one written by another version, or edited by hand): NaN or out-of-range
        scores, a negative gain or more strong calls than calls raise
        :class:`~routellm_integrations.errors.InvalidStateError` naming the field."""
        try:
            s = OnlineState.model_validate(state)
        except ValidationError as exc:
            raise InvalidStateError(f"invalid online share state: {exc}") from None
        c = cls(s.target, warm_threshold=s.warm_threshold, window=s.window, min_samples=s.min_samples, gain=s.gain)
        c._scores.extend(s.scores[-c.window:])
        c._seen, c._strong, c._offset = s.seen, s.strong, s.offset
        return c


class OnlineState(BaseModel):
    """The checkpoint of an :class:`OnlineShareController`, as stores keep it."""

    model_config = ConfigDict(extra="forbid")

    target: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    warm_threshold: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False)
    window: int = Field(ge=1)
    min_samples: int = Field(ge=1)
    gain: float = Field(ge=0.0, allow_inf_nan=False)
    offset: float = Field(allow_inf_nan=False)
    scores: list[Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]]
    seen: int = Field(ge=0)
    strong: int = Field(ge=0)

    @model_validator(mode="after")
    def _counts(self) -> "OnlineState":
        if self.strong > self.seen:
            raise ValueError(f"strong ({self.strong}) cannot exceed seen ({self.seen})")
        return self
