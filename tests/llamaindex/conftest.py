"""Fixtures the LlamaIndex tests share."""

from __future__ import annotations

import pytest
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler

from llamaindex_routellm import RoutingDecisionEvent


class _DecisionCollector(BaseEventHandler):
    events: list = []

    @classmethod
    def class_name(cls) -> str:
        return "RoutingDecisionCollector"

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, RoutingDecisionEvent):
            self.events.append(event)


@pytest.fixture
def events():
    """The RoutingDecisionEvents sent on the root dispatcher during the test (a module may
    override it to collect every event)."""
    handler = _DecisionCollector(events=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    yield handler.events
    root.event_handlers.remove(handler)
