"""The framework-free routed client (RouteLLM's ``Controller``) over the call lifecycle.

    from routellm_integrations.client import RoutedClient

    client = RoutedClient(strong="openai:gpt-4o", weak="anthropic:claude-3-5-haiku-latest")
    reply = client.chat.completions.create(model="router-mf-share0.3",
                                           messages=[{"role": "user", "content": "Hi"}])
    reply.routellm["route"], reply.model

The SDKs (``openai``, ``anthropic``; the ``server`` extra) are imported on first call.
"""

from .backends import AnthropicBackend, BackendReply, BackendStream, ChatBackend, OpenAIBackend, make_backend
from .errors import BackendConfigError, BackendError, InvalidModelError, UnsupportedParameterError
from .names import BackendSpec, ModelRequest, parse_backend, parse_model
from .routed import AsyncRoutedClient, RouteConfig, Routed, RoutedAsyncStream, RoutedClient, RoutedStream
from .secrets import redact, register_secret

__all__ = ["AnthropicBackend", "AsyncRoutedClient", "BackendConfigError", "BackendError", "BackendReply",
           "BackendSpec", "BackendStream", "ChatBackend", "InvalidModelError", "ModelRequest", "OpenAIBackend",
           "RouteConfig", "Routed", "RoutedAsyncStream", "RoutedClient", "RoutedStream", "UnsupportedParameterError",
           "make_backend", "parse_backend", "parse_model", "redact", "register_secret"]
