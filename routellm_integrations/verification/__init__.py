"""Checking the cheap model's answer: zero-label signals (:mod:`.signals`) and a verifier
learned from your labels (:mod:`.verifier`). The verifier's parts load on first use."""

from __future__ import annotations

_LAZY = {"Verifier": ".verifier", "VerifierFit": ".verifier", "VerifierReport": ".verifier",
         "fit_verifier": ".verifier", "load_verifier": ".verifier", "NoVerifierError": ".verifier",
         "UnservedVerifierError": ".verifier"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
