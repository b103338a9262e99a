"""LangChain integration of routellm-integrations: route each call to a strong or a weak model.

    from langchain_routellm import RoutedChat, routellm_cost_tracker

    llm = RoutedChat(strong=ChatOpenAI(model="gpt-4o"),
                     weak=ChatAnthropic(model="claude-3-5-haiku-latest"),
                     router="mf", threshold=0.3)
    with routellm_cost_tracker() as tracker:
        llm.invoke("What is 2 + 2?")
    print(tracker)

Importing this package loads no torch/transformers: the ``mf`` router loads its embedder
on the first routed call.
"""

from typing import TYPE_CHECKING, Any

from .callbacks import RoutingCostCallbackHandler, routellm_cost_tracker
from .chat_models import RoutedChat
from .runnables import RoutedRunnable, route_between

if TYPE_CHECKING:
    from .middleware import RoutingMiddleware


def __getattr__(name: str) -> Any:
    if name == "RoutingMiddleware":  # imports langchain.agents (and langgraph): only when asked for
        from .middleware import RoutingMiddleware
        return RoutingMiddleware
    raise AttributeError(f"module 'langchain_routellm' has no attribute {name!r}")

__all__ = ["RoutedChat", "RoutedRunnable", "RoutingCostCallbackHandler", "RoutingMiddleware",
           "route_between", "routellm_cost_tracker"]
