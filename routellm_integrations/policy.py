"""From a router's score to a decision: the one place both framework integrations ask.

A policy owns the threshold (fixed, or derived from a target share of strong calls) and
forced routes; routers stay pure scorers. Both ``RoutedChat`` (LangChain) and
``RoutedLLM`` (LlamaIndex) hold one, so a given prompt routes the same way in both.
"""

from __future__ import annotations

import asyncio
import time
from typing import Sequence

import numpy as np

from .calibration import threshold_for_strong_fraction
from .decision import Route, RoutingDecision
from .errors import InvalidRouteError, InvalidThresholdError
from .routers.base import BaseRouter, validate_threshold
from .routers.registry import load_router


def resolve_router(router: BaseRouter | str) -> BaseRouter:
    """A router object, or a name/folder for :func:`load_router`."""
    return router if isinstance(router, BaseRouter) else load_router(router)


class RoutingPolicy:
    """Route strong when ``score >= threshold``.

    Give ``threshold`` directly, or ``strong_fraction`` (the share of traffic to send
    strong) with ``calibration_prompts`` that look like your traffic; the threshold is
    then the score quantile that sends that share strong.
    """

    def __init__(self, router: BaseRouter | str = "mf", *, threshold: float | None = None,
                 strong_fraction: float | None = None,
                 calibration_prompts: Sequence[str] | None = None) -> None:
        self.router = resolve_router(router)
        if (threshold is None) == (strong_fraction is None):
            raise InvalidThresholdError("give exactly one of threshold= or strong_fraction=")
        if threshold is not None:
            self.threshold = validate_threshold(threshold)
            self.strong_fraction = None
        else:
            frac = validate_threshold(strong_fraction, "strong_fraction")  # type: ignore[arg-type]
            if not calibration_prompts:
                raise InvalidThresholdError("strong_fraction needs calibration_prompts: a sample of your "
                                            "traffic to find the score that sends that share strong")
            self.strong_fraction = frac
            self.threshold = threshold_for_strong_fraction(self.router.score(calibration_prompts), frac)

    @property
    def router_name(self) -> str:
        return self.router.name

    def decide(self, text: str, force: Route | None = None) -> RoutingDecision:
        """Score ``text`` and decide; ``force`` overrides the route (the score is still
        reported, so traces show what the router would have done)."""
        if force not in (None, "strong", "weak"):
            raise InvalidRouteError(f"a forced route must be 'strong' or 'weak', got {force!r}")
        start = time.perf_counter()
        score = float(np.clip(self.router.score([text])[0], 0.0, 1.0))
        route: Route = force or ("strong" if score >= self.threshold else "weak")
        return RoutingDecision(route=route, score=score, threshold=self.threshold, router=self.router.name,
                               latency_ms=(time.perf_counter() - start) * 1000.0, forced=force is not None)

    async def adecide(self, text: str, force: Route | None = None) -> RoutingDecision:
        """:meth:`decide` off the event loop (scoring embeds the prompt: CPU work)."""
        return await asyncio.to_thread(self.decide, text, force)
