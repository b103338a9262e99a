"""What a ``RoutedLLM`` shows of itself: its settings, never its backends' secrets.

LlamaIndex serialises components for storage and tracing (``to_dict``/``to_json``,
``model_dump``), and ``repr`` lands in logs. A backend's API key, token or any
``SecretStr`` is dropped from all of them; so the backends (and any object-valued
setting, such as a router object or a ``route_on`` function) cannot be rebuilt from a
dict and are passed again to ``from_dict``.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable

from pydantic import SecretStr

from routellm_integrations.errors import RouteLLMError

_SECRET_KEY = re.compile(r"(api_?key|secret|token|password|credential|auth)", re.IGNORECASE)
_NOT_SECRET = frozenset({"max_tokens", "num_output", "max_new_tokens", "context_window", "tokenizer",
                         "max_completion_tokens", "max_output_tokens"})
#: how an object-valued setting is written: its kind only
OBJECT_KEY = "object"


class ObjectsRequired(RouteLLMError, TypeError):
    """``from_dict`` was not given an object the dict cannot hold (a backend without
    its secrets, a router object, a ``route_on`` function)."""


def redacted(value: Any) -> Any:
    """``value`` without the entries that hold secrets: keys named like api_key, token,
    secret, password, credential or auth (at any depth), and any ``SecretStr``."""
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()
                if not (isinstance(k, str) and _SECRET_KEY.search(k) and k not in _NOT_SECRET)
                and not isinstance(v, SecretStr)}
    if isinstance(value, (list, tuple)):
        return [redacted(v) for v in value if not isinstance(v, SecretStr)]
    return value


def backend_settings(backend: Any) -> Dict[str, Any]:
    """A backend as its class and its non-secret settings."""
    return {**redacted(backend.model_dump()), "class_name": backend.class_name(), OBJECT_KEY: True}


def object_or_name(value: Any) -> Any:
    """A setting that is a name stays; an object is written as its kind."""
    return value if value is None or isinstance(value, str) else {
        OBJECT_KEY: True, "type": getattr(value, "__qualname__", type(value).__qualname__)}


def escalation_setting(value: Any) -> Any:
    """``escalate_if`` as written: ``True``/``False``/``None``, check names and verifier
    folders (a list of them too) stay; checks of your own (functions, verifier objects)
    are written as their kind, to be passed again to ``from_dict``."""
    from pathlib import Path

    def plain(v: Any) -> bool:
        return v is None or isinstance(v, (bool, str, Path))

    if plain(value):
        return str(value) if isinstance(value, Path) else value
    if isinstance(value, (list, tuple)) and all(plain(v) for v in value):
        return [str(v) if isinstance(v, Path) else v for v in value]
    return {OBJECT_KEY: True, "type": getattr(value, "__qualname__", type(value).__qualname__)}


def _is_placeholder(value: Any) -> bool:
    """An object written as its kind; or a mapping of them (the backends of ``models=``)."""
    if not isinstance(value, dict) or not value:
        return False
    if value.get(OBJECT_KEY) is True:
        return True
    return all(isinstance(v, dict) and v.get(OBJECT_KEY) is True for v in value.values())


def without_objects(data: Dict[str, Any], given: Dict[str, Any], names: Iterable[str]) -> Dict[str, Any]:
    """``data`` minus the object placeholders of ``names``, each of which must be in
    ``given``: :class:`ObjectsRequired` names the missing ones."""
    placeholders = [n for n in names if _is_placeholder(data.get(n))]
    missing = [n for n in placeholders if given.get(n) is None]
    if missing:
        example = ("models={'gpt-4o': OpenAI(...), 'claude-3-haiku': Anthropic(...)}" if "models" in missing
                   else "strong=OpenAI(...), weak=Anthropic(...)")
        raise ObjectsRequired(
            "RoutedLLM.from_dict needs " + ", ".join(f"{n}=..." for n in missing) + " as objects: to_dict() "
            "never holds the backends' API keys (nor router objects, route_on functions or escalation checks), "
            f"so it cannot rebuild them; e.g. RoutedLLM.from_dict(d, {example})")
    return {k: v for k, v in data.items() if k not in placeholders and k != "class_name"}


def short(backend: Any) -> str:
    return f"{type(backend).__name__}(model={backend.metadata.model_name!r})"
