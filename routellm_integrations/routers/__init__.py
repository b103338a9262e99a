"""Routers: pure scorers of P(strong model wins). See :mod:`.base` for the protocol."""

from .base import BaseRouter, Router, validate_prompts, validate_threshold
from .registry import RouterSpec, available_routers, load_router, register_router

__all__ = ["BaseRouter", "Router", "RouterSpec", "available_routers", "load_router", "register_router",
           "validate_prompts", "validate_threshold"]
