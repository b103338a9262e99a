"""routellm-integrations: route each prompt to a strong or a weak LLM (RouteLLM, Ong et al. 2024).

The core is framework-free and imports no torch at import time::

    from routellm_integrations import load_router
    router = load_router("mf")
    router.route("Prove that sqrt(2) is irrational.", threshold=0.5)
"""

from .calibration import calibrate_threshold, threshold_for_strong_fraction
from .decision import RoutingDecision
from .errors import (CheckpointError, DataError, EmbedderError, InvalidPromptError, InvalidRouteError,
                     InvalidThresholdError, RouteLLMError, UnknownModelError, UnknownRouterError)
from .budgets import Budget
from .policy import RoutingPolicy, routing_scope
from .routers import BaseRouter, Router, RouterSpec, available_routers, load_router, register_router

__version__ = "0.1.0"

_LAZY = {"adapt_router": ".adaptation", "AdaptedRouter": ".adaptation", "LabelStore": ".labels"}


def __getattr__(name: str):  # adaptation and the label store load on first use
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "AdaptedRouter", "BaseRouter", "CheckpointError", "LabelStore", "adapt_router", "DataError", "EmbedderError", "InvalidPromptError", "InvalidRouteError",
    "Budget", "RoutingPolicy", "routing_scope",
    "InvalidThresholdError", "RouteLLMError", "Router", "RouterSpec", "RoutingDecision", "UnknownModelError",
    "UnknownRouterError", "available_routers", "calibrate_threshold", "load_router",
    "register_router", "threshold_for_strong_fraction", "__version__",
]
