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

from .choice import weight_for_spend
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
    #: a cascade's moving counts of weak calls and of those escalated (route, then verify)
    weak_n: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    escalated_n: float = Field(0.0, ge=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _counts(self) -> "OnlineState":
        if self.strong > self.seen:
            raise ValueError(f"strong ({self.strong}) cannot exceed seen ({self.seen})")
        return self


class OnlineSpendController:
    """A target *spend per call* (USD), held on live traffic by the cost weight.

    The N-way twin of :class:`OnlineShareController`: it keeps the recent calls' predicted
    qualities and expected costs, and sets the cost weight at which choosing on those
    calls would have spent ``target_usd`` per call on average
    (:func:`~routellm_integrations.choice.weight_for_spend`). On top, an
    integral term on the *realised* spend (what calls cost once settled, ``spent()``)
    scales the weight up while calls cost more than the target and down while less, so
    a bias in the expected costs (output lengths are estimates) is corrected too.
    Thread-safe; ``cost_weight()`` before each decision, ``observe()`` after it. Until
    ``min_samples`` calls were seen the weight is ``warm_cost_weight`` when given, else
    solved on the few calls seen (from the first: the first call is chosen to fit the
    target on its own).
    """

    def __init__(self, target_usd: float, *, warm_cost_weight: float | None = None, window: int = 500,
                 min_samples: int = 10, gain: float = 0.01) -> None:
        import math

        if isinstance(target_usd, bool) or not isinstance(target_usd, (int, float)) or not math.isfinite(target_usd) \
                or target_usd <= 0:
            raise InvalidStateError(f"spend_per_call must be a positive number of USD, got {target_usd!r}")
        if window < 1 or min_samples < 1:
            raise ValueError("window and min_samples must be positive")
        self.target = float(target_usd)
        self.warm_cost_weight = warm_cost_weight
        self.window, self.min_samples, self.gain = int(window), int(min_samples), float(gain)
        self._rows: deque[tuple[list[float], list[float]]] = deque(maxlen=self.window)
        self._log_scale = 0.0
        self._seen = 0
        self._spent = 0.0
        self._settled = 0
        self._cached: tuple[int, float] | None = None
        self._lock = threading.Lock()

    @property
    def realised_spend(self) -> float | None:
        """Mean settled cost per call so far (None before the first settles)."""
        with self._lock:
            return self._spent / self._settled if self._settled else None

    def cost_weight(self) -> float:
        with self._lock:
            if not self._rows or (self.warm_cost_weight is not None and len(self._rows) < self.min_samples):
                return float(self.warm_cost_weight or 0.0) * float(np.exp(self._log_scale))
            if self._cached is None or self._cached[0] != self._seen:
                q = np.array([r[0] for r in self._rows])
                c = np.array([r[1] for r in self._rows])
                self._cached = (self._seen, weight_for_spend(q, c, self.target))
            base = self._cached[1]
            if base == 0.0 and self._log_scale > 0:
                # the window fits the target at weight 0, yet calls cost more: lean on cost
                positive = [v for r in self._rows for v in r[1] if v > 0]
                base = 1e-3 / max(min(positive), 1e-12) if positive else 0.0
            return float(base * np.exp(self._log_scale))

    def observe(self, qualities: Any, costs: Any) -> None:
        """A decision's predicted qualities and expected costs (one value per model)."""
        row = ([float(v) for v in qualities], [float(v) for v in costs])
        with self._lock:
            if self._rows and len(self._rows[0][0]) != len(row[0]):
                self._rows.clear()  # the candidate set changed: old rows describe other models
            self._rows.append(row)
            self._seen += 1

    def spent(self, cost_usd: float | None) -> None:
        """A settled call's real cost: moves the integral term (a call that billed nothing,
        failed or was cached, passes None and moves nothing)."""
        if cost_usd is None or not np.isfinite(cost_usd):
            return
        with self._lock:
            self._spent += float(cost_usd)
            self._settled += 1
            if self._settled >= self.min_samples:
                # unclipped below 20x: a clipped error would be biased (cheap calls at -1, dear ones cut)
                error = min(float(cost_usd) / self.target - 1.0, 20.0)
                self._log_scale = float(np.clip(self._log_scale + self.gain * error, -12.0, 12.0))

    def forget_window(self) -> None:
        """Drop the recent rows (a new router predicts differently); the realised spend and
        its correction are kept."""
        with self._lock:
            self._rows.clear()
            self._cached = None

    def seed(self, qualities: Any, costs: Any) -> None:
        """Start the window from known rows (a sample of your traffic)."""
        for q, c in zip(np.atleast_2d(qualities), np.atleast_2d(costs)):
            self.observe(q, c)

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"target": self.target, "warm_cost_weight": self.warm_cost_weight, "window": self.window,
                    "min_samples": self.min_samples, "gain": self.gain, "log_scale": self._log_scale,
                    "rows": [list(map(list, r)) for r in self._rows], "seen": self._seen, "spent": self._spent,
                    "settled": self._settled}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "OnlineSpendController":
        """Restore :meth:`state_dict`'s output, validated (:class:`InvalidStateError` names the field)."""
        try:
            s = SpendState.model_validate(state)
        except ValidationError as exc:
            raise InvalidStateError(f"invalid online spend state: {exc}") from None
        c = cls(s.target, warm_cost_weight=s.warm_cost_weight, window=s.window, min_samples=s.min_samples,
                gain=s.gain)
        for q, cost in s.rows[-c.window:]:
            c._rows.append((list(q), list(cost)))
        c._log_scale, c._seen, c._spent, c._settled = s.log_scale, s.seen, s.spent, s.settled
        return c


_Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
_Usd = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class SpendState(BaseModel):
    """The checkpoint of an :class:`OnlineSpendController`, as stores keep it."""

    model_config = ConfigDict(extra="forbid")

    target: float = Field(gt=0.0, allow_inf_nan=False)
    warm_cost_weight: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    window: int = Field(ge=1)
    min_samples: int = Field(ge=1)
    gain: float = Field(ge=0.0, allow_inf_nan=False)
    log_scale: float = Field(ge=-12.0, le=12.0, allow_inf_nan=False)
    rows: list[tuple[list[_Unit], list[_Usd]]]
    seen: int = Field(ge=0)
    spent: float = Field(ge=0.0, allow_inf_nan=False)
    settled: int = Field(ge=0)
