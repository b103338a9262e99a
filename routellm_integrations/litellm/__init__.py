"""Our routers as a LiteLLM ``Router`` / Proxy routing plug-in (``pip install "routellm-integrations[litellm]"``).

    from routellm_integrations.litellm import RouteLLMPlugin
    plugin = RouteLLMPlugin(model_list=model_list, strong="big", weak="small", strong_fraction=0.3)
    router = litellm.Router(model_list=[*model_list, plugin.deployment()])
    await router.acompletion(model="routellm-router", messages=[...])

The proxy's ``config.yaml`` takes the same marker entry, :func:`proxy_deployment`
(``python -m routellm_integrations.litellm config --strong big --weak small`` prints it as
YAML). See :mod:`.plugin` for the hook it uses and docs/litellm.md for the proxy.
LiteLLM is imported when the plug-in is first used, not with this package.
"""

from __future__ import annotations

from typing import Any

from .config import (
    DEFAULT_MODEL_NAME,
    LiteLLMConfigError,
    LiteLLMRouting,
    proxy_deployment,
    proxy_deployment_yaml,
)

__all__ = ["DEFAULT_MODEL_NAME", "METADATA_KEY", "LiteLLMConfigError", "LiteLLMRouting", "RouteLLMPlugin",
           "proxy_deployment", "proxy_deployment_yaml"]


def __getattr__(name: str) -> Any:
    if name in ("RouteLLMPlugin", "METADATA_KEY"):
        from . import plugin

        return getattr(plugin, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
