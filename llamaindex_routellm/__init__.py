"""LlamaIndex integration: ``RoutedLLM`` routes each call to a strong or a weak LLM, or among N."""

from .events import RoutingDecisionEvent
from .llms import RoutedLLM
from .serialise import ObjectsRequired

__all__ = ["ObjectsRequired", "RoutedLLM", "RoutingDecisionEvent"]
