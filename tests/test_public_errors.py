"""Every error a user can meet is a RouteLLMError (or our warning) importable from the top
level, so ``from routellm_integrations import BudgetExceeded`` works whatever surface
raised it (RoutedChat, RoutedLLM, the client, the server)."""

from __future__ import annotations

import importlib
import pkgutil

import routellm_integrations

# modules whose import needs an optional extra, or that exist to support tests
_SKIP = ("routellm_integrations.testing", "routellm_integrations.embedders.minilm")
# the server's HTTP answer (status + OpenAI error body): a client sees the HTTP error, never this
_INTERNAL = {"ApiError"}


def _our_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(routellm_integrations.__path__, "routellm_integrations."):
        if not info.name.startswith(_SKIP) and not info.name.endswith("__main__"):
            names.append(info.name)
    return names


def _defined_errors() -> dict[str, type]:
    found: dict[str, type] = {}
    for name in _our_modules():
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional extra that is not installed: nothing of it is user-facing here
            continue
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == name and value.__name__ not in _INTERNAL and (
                    issubclass(value, routellm_integrations.RouteLLMError) or issubclass(value, Warning)
                    or value.__name__.endswith("Error")):
                found[value.__name__] = value
    return found


def test_every_error_is_a_routellm_error_importable_from_the_top_level() -> None:
    errors = _defined_errors()
    assert {"BudgetExceeded", "BudgetConfigError", "MissingExtraError", "BackendError", "AuthError",
            "ConfigError"} <= set(errors)
    for name, cls in errors.items():
        assert getattr(routellm_integrations, name) is cls, f"{name} is not importable from routellm_integrations"
        assert name in routellm_integrations.__all__, name
        assert issubclass(cls, (routellm_integrations.RouteLLMError, Warning)), f"{name} is not a RouteLLMError"


def test_the_top_level_names_only_what_exists() -> None:
    for name in routellm_integrations.__all__:
        assert getattr(routellm_integrations, name) is not None
