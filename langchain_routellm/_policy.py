"""The small routing policy the branch helper and the middleware share (a threshold, or a
target strong share calibrated on sample prompts, over a lazily loaded router)."""

from __future__ import annotations

import threading
import warnings
from typing import Any

from routellm_integrations.decision import RoutingDecision


class Policy:
    def __init__(self, router: Any = "mf", *, threshold: float | None = None, strong_fraction: float | None = None,
                 calibration_prompts: list[str] | None = None, router_options: dict[str, Any] | None = None) -> None:
        from routellm_integrations.errors import InvalidThresholdError
        from routellm_integrations.routers.base import validate_threshold

        if threshold is not None and strong_fraction is not None:
            raise InvalidThresholdError("give threshold or strong_fraction, not both")
        self._threshold = validate_threshold(threshold) if threshold is not None else (
            None if strong_fraction is not None else 0.5)
        self.strong_fraction = (validate_threshold(strong_fraction, "strong_fraction")
                                if strong_fraction is not None else None)
        self.calibration_prompts = calibration_prompts
        self.router_options = dict(router_options or {})
        if not isinstance(router, str) and not (hasattr(router, "route") and hasattr(router, "score")):
            raise TypeError(f"router must be a router name or an object with score()/route(), got {type(router).__name__}")
        self.router_spec = router
        self._router = None if isinstance(router, str) else router
        self._lock = threading.Lock()

    @property
    def router_name(self) -> str:
        r = self.router_spec
        return r if isinstance(r, str) else str(getattr(r, "name", type(r).__name__))

    def router(self) -> Any:
        if self._router is None:
            with self._lock:
                if self._router is None:
                    from routellm_integrations import load_router
                    self._router = load_router(self.router_spec, **self.router_options)
        return self._router

    def threshold(self) -> float:
        if self._threshold is None:
            router = self.router()
            with self._lock:
                if self._threshold is None:
                    from routellm_integrations import calibrate_threshold
                    prompts = self.calibration_prompts
                    if not prompts:
                        from routellm_integrations.cli import DEMO_PROMPTS
                        warnings.warn("strong_fraction without calibration_prompts: calibrated on 12 built-in "
                                      "sample prompts; pass a sample of your traffic", UserWarning, stacklevel=3)
                        prompts = DEMO_PROMPTS
                    self._threshold = calibrate_threshold(router, prompts, float(self.strong_fraction or 0.0))
        return self._threshold

    def decide(self, text: str) -> RoutingDecision:
        return self.router().route(text, self.threshold())
