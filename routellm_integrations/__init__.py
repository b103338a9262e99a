"""routellm-integrations: route each prompt to a strong or a weak LLM (RouteLLM, Ong et al. 2024).

The core is framework-free and imports no torch at import time::

    from routellm_integrations import load_router
    router = load_router("mf")
    router.route("Prove that sqrt(2) is irrational.", threshold=0.5)
"""

from .calibration import calibrate_threshold, threshold_for_strong_fraction
from .decision import RoutingDecision
from .errors import (BudgetConfigError, BudgetExceeded, CheckpointError, DataError, EmbedderError,
                     InvalidEmbedderError, InvalidPromptError, InvalidRouteError, InvalidScoreError, InvalidStateError,
                     InvalidStoreURL, InvalidThresholdError, InvalidUsageError, JudgeVerdictError, LedgerError,
                     MissingEmbedderExtraError, MissingExtraError, PriceTableError, RouteLLMError, RouterOptionError,
                     StoreResetError, StoreUnavailableError, TrainingOptionError, UnknownEmbedderError,
                     UnknownModelError, UnknownRouterError, UnknownSourceError, UnpricedModelWarning,
                     UnsafeSchemaError)
from .budgets import Budget
from .policy import RoutingPolicy, routing_scope
from .routers import BaseRouter, Router, RouterSpec, available_routers, load_router, register_router

__version__ = "0.1.0"

_LAZY = {"adapt_router": ".adaptation", "AdaptedRouter": ".adaptation", "LabelStore": ".labels",
         "RoutingConfig": ".routing.config",
         # errors of the parts that load on first use: importable from here, imported when asked for
         "BackendConfigError": ".client.errors", "BackendError": ".client.errors",
         "InvalidModelError": ".client.errors", "UnsupportedParameterError": ".client.errors",
         "EscalationCheckError": ".routing.escalation", "UnknownCallError": ".labels.store",
         "MissingCredentialsError": ".labels.clients", "ConfigError": ".server.config",
         "AuthError": ".server.auth", "UnscoredPairWarning": ".routers.pair",
         "LiteLLMConfigError": ".litellm.config",
         # the answer verifier (numpy + safetensors; its embedder loads when it first scores)
         "load_verifier": ".verification.verifier", "fit_verifier": ".verification.verifier",
         "Verifier": ".verification.verifier", "NoVerifierError": ".verification.verifier",
         "UnservedVerifierError": ".verification.verifier"}


def __getattr__(name: str):  # adaptation, the label store and their errors load on first use
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_ERRORS = ["AuthError", "BackendConfigError", "BackendError", "BudgetConfigError", "BudgetExceeded", "CheckpointError",
           "ConfigError", "DataError", "EmbedderError", "EscalationCheckError", "InvalidEmbedderError",
           "InvalidModelError", "InvalidPromptError", "InvalidRouteError", "InvalidScoreError", "InvalidStateError",
           "InvalidStoreURL", "InvalidThresholdError", "InvalidUsageError", "JudgeVerdictError", "LedgerError",
           "LiteLLMConfigError",
           "MissingCredentialsError", "MissingEmbedderExtraError", "MissingExtraError", "NoVerifierError",
           "PriceTableError",
           "RouteLLMError", "RouterOptionError", "StoreResetError", "StoreUnavailableError",
           "TrainingOptionError", "UnknownCallError", "UnknownEmbedderError",
           "UnknownModelError", "UnknownRouterError", "UnknownSourceError", "UnpricedModelWarning",
           "UnsafeSchemaError", "UnscoredPairWarning", "UnservedVerifierError", "UnsupportedParameterError"]

__all__ = _ERRORS + [
    "AdaptedRouter", "BaseRouter", "Budget", "LabelStore", "Router", "RouterSpec", "RoutingConfig", "RoutingDecision",
    "RoutingPolicy", "Verifier",
    "adapt_router", "available_routers", "calibrate_threshold", "fit_verifier", "load_router", "load_verifier",
    "register_router", "routing_scope",
    "threshold_for_strong_fraction", "__version__",
]
