"""Adapting a router to a user's own traffic from a few hundred labels (``routellm adapt``)."""

from .adapt import Adaptation, AdaptationReport, adapt_router, load_labels
from ..routers.adapted import AdaptedRouter

__all__ = ["Adaptation", "AdaptationReport", "AdaptedRouter", "adapt_router", "load_labels"]
