"""Token usage as LlamaIndex's provider integrations report it, read back from a response.

OpenAI responses carry ``prompt_tokens``/``completion_tokens`` in ``additional_kwargs``
(and ``raw.usage``); Anthropic's carry ``raw.usage`` (``input_tokens``, cache fields), or
``additional_kwargs["usage"]`` when streamed. The core :class:`Usage` reads all of them.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from routellm_integrations.costs import Usage
from routellm_integrations.errors import InvalidUsageError


def _as_mapping(obj: Any) -> Optional[Mapping[str, Any]]:
    if obj is None or isinstance(obj, Mapping):
        return obj
    if hasattr(obj, "model_dump"):  # the openai / anthropic SDKs' pydantic usage objects
        return obj.model_dump()
    return None


def _candidates(response: Any) -> list:
    extra = getattr(response, "additional_kwargs", None) or {}
    raw = getattr(response, "raw", None)
    raw_usage = raw.get("usage") if isinstance(raw, Mapping) else getattr(raw, "usage", None)
    return [c for c in (_as_mapping(raw_usage), extra, _as_mapping(extra.get("usage"))) if c]


def response_usage(response: Any) -> Optional[Usage]:
    """The usage of a ChatResponse/CompletionResponse, or ``None`` when the backend reported
    none. Raises :class:`InvalidUsageError` for a corrupt report."""
    for candidate in _candidates(response):
        usage = Usage.from_dict(candidate)
        if usage is not None:
            return usage
    return None


def usage_report(response: Any) -> Any:
    """What the backend reported as usage, for the call lifecycle to price: a
    :class:`Usage`, the corrupt report itself (the lifecycle then estimates and says
    why), or ``None``."""
    for candidate in _candidates(response):
        try:
            usage = Usage.from_dict(candidate)
        except InvalidUsageError:
            return candidate
        if usage is not None:
            return usage
    return None


def provider_of(llm: Any) -> str:
    """The provider key the price table uses, from the LlamaIndex class name."""
    name = (llm.class_name() if hasattr(llm, "class_name") else type(llm).__name__).lower()
    if name == "localllm":
        return "local"
    for provider in ("azure_openai", "openai", "anthropic", "bedrock", "vertex", "gemini", "mistral", "ollama"):
        if provider.replace("_", "") in name.replace("_", ""):
            return "azure" if provider == "azure_openai" else provider
    return name
