"""What the LiteLLM plug-in routes between, checked against LiteLLM's ``model_list``.

LiteLLM addresses models by *model group* (``model_name`` in ``model_list``); a router
scores model *names* (``gpt-4o``). :class:`LiteLLMRouting` holds both: the route keys
(``strong``/``weak`` for a pair, or N keys) mapped to model groups, and each group's
underlying model (``litellm_params.model``, ``openai/gpt-4o`` -> ``gpt-4o``, the way the
routed client reads ``provider:model``), so ``mf`` scores the pair the calls go to and
an N-way router its own names of the models. Everything wrong here is a typed error
raised when the plug-in is built, i.e. when the ``Router`` or the proxy starts, never at
the first request: an unknown router (:class:`~routellm_integrations.errors.UnknownRouterError`),
a threshold out of [0, 1] (:class:`~routellm_integrations.errors.InvalidThresholdError`),
or a model group that is not in ``model_list`` (:class:`LiteLLMConfigError`).

The routing options themselves are :class:`~routellm_integrations.routing.config.RoutingConfig`'s
(one name per concept, validated once); budgets, spend and keys stay LiteLLM's in this
mode, so there are no budget options here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidRouteError
from ..routing.config import RoutingConfig, checked

__all__ = [
    "AUTO_ROUTER_MODEL",
    "DEFAULT_MODEL_NAME",
    "Group",
    "LiteLLMConfigError",
    "LiteLLMRouting",
    "model_groups",
    "proxy_deployment",
    "proxy_deployment_yaml",
    "proxy_marker",
    "read_proxy_config",
]

#: the model name users call to be routed (the alias the plug-in's marker deployment takes)
DEFAULT_MODEL_NAME = "routellm-router"
#: LiteLLM's complexity router: the documented pre-routing strategy that takes a custom
#: classifier plug-in and sends each request to the model group of the tier it names
AUTO_ROUTER_MODEL = "auto_router/complexity_router"
#: where a proxy finds the plug-in by default: ``routing = RouteLLMPlugin.from_proxy_config(...)``
#: in ``routellm_plugin.py`` beside ``config.yaml`` (docs/litellm.md)
DEFAULT_CLASSIFIER_PLUGIN = "routellm_plugin.routing"


class LiteLLMConfigError(InvalidRouteError):
    """The plug-in's routes do not fit LiteLLM's configuration: a model group that is not
    in ``model_list``, a proxy ``config.yaml`` without the plug-in's marker deployment,
    or tiers that do not map each route key to a model group."""


@dataclass(frozen=True)
class Group:
    """One model group of ``model_list``: its name and its deployments' provider/model."""

    name: str
    provider: str | None
    model: str


def _split_model(litellm_model: str) -> tuple[str | None, str]:
    """``openai/gpt-4o`` -> ``("openai", "gpt-4o")``; ``gpt-4o`` -> ``(None, "gpt-4o")``;
    a model that itself holds slashes keeps them (``openrouter/meta/llama`` -> ``meta/llama``)."""
    if "/" in litellm_model:
        provider, model = litellm_model.split("/", 1)
        return provider.strip().lower() or None, model.strip()
    return None, litellm_model.strip()


def model_groups(model_list: Sequence[Mapping[str, Any]]) -> dict[str, Group]:
    """Each model group of ``model_list`` with the model its first deployment serves
    (strategy markers, ``auto_router/...``, are not models and are left out)."""
    if not isinstance(model_list, Sequence) or isinstance(model_list, (str, bytes)):
        raise LiteLLMConfigError(f"model_list must be a list of deployments, got {type(model_list).__name__}")
    groups: dict[str, Group] = {}
    for i, entry in enumerate(model_list):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("model_name"), str):
            raise LiteLLMConfigError(f"model_list[{i}] has no model_name")
        params = entry.get("litellm_params")
        model = params.get("model") if isinstance(params, Mapping) else None
        if not isinstance(model, str) or not model.strip():
            raise LiteLLMConfigError(f"model_list[{i}] ({entry['model_name']!r}) has no litellm_params.model")
        if model.startswith("auto_router/"):
            continue
        provider, name = _split_model(model)
        groups.setdefault(entry["model_name"], Group(entry["model_name"], provider, name))
    return groups


class LiteLLMRouting(RoutingConfig):
    """The plug-in's options: :class:`RoutingConfig`'s, plus the model groups routed
    between and where the online controller keeps its state.

    A pair: ``strong="gpt-4o-group", weak="mini-group"`` (with ``threshold`` or
    ``strong_fraction``, default a held 30%). N models: ``models={"big": "group-a",
    "small": "group-b", ...}`` (with ``cost_weight``, ``spend_per_call`` or
    ``max_cost_per_call``). ``route_on``: which text of the request is scored
    (``"last_user"``, the default, or ``"conversation"``). ``store`` (a URL, e.g.
    ``sqlite:///routing.db`` or ``redis://...``) keeps the held share's controller there,
    under ``online_key``, across restarts and processes.
    """

    strong: str | None = None
    weak: str | None = None
    models: dict[str, str] | None = None
    model_name: str = DEFAULT_MODEL_NAME
    route_on: str = "last_user"
    store: Any = None
    online_key: str | None = None
    checkpoint_every: int = 20

    def __init__(self, **data: Any) -> None:
        checked(super().__init__, **data)

    def routes(self) -> tuple[dict[str, str], bool]:
        """The model group of each route key, and whether they are N models."""
        if self.models is not None:
            if self.strong is not None or self.weak is not None:
                raise LiteLLMConfigError("give strong= and weak= (a pair) or models= (N models), not both")
            if len(self.models) < 2:
                raise LiteLLMConfigError(f"models= needs at least two model groups, got {list(self.models)}")
            return dict(self.models), True
        if self.strong is None or self.weak is None:
            raise LiteLLMConfigError("name the model groups to route between: strong= and weak= (a pair), "
                                     "or models={key: model_group, ...} (N models)")
        return {"strong": self.strong, "weak": self.weak}, False

    def resolve(self, model_list: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Group], bool]:
        """Each route key's :class:`Group`, checked against ``model_list``; the choice
        options checked against the keys (a pair's threshold, N models' cost knob)."""
        routes, nway = self.routes()
        groups = model_groups(model_list)
        missing = {key: group for key, group in routes.items() if group not in groups}
        if missing:
            raise LiteLLMConfigError(f"model group(s) {sorted(set(missing.values()))} (route(s) {sorted(missing)}) "
                                     f"are not in model_list, which has {sorted(groups)}")
        if self.model_name in groups:
            raise LiteLLMConfigError(f"model_name {self.model_name!r} is already a model group of model_list: "
                                     "the plug-in's alias must be a name of its own")
        if self.route_on not in ("last_user", "conversation"):
            raise LiteLLMConfigError(f"route_on must be 'last_user' or 'conversation', got {self.route_on!r}")
        self.check_keys(list(routes), nway)
        return {key: groups[group] for key, group in routes.items()}, nway


def read_proxy_config(path: str | Path) -> dict[str, Any]:
    """A LiteLLM proxy ``config.yaml`` as a dict (a missing or unreadable file, or one
    that is not a mapping, is a :class:`LiteLLMConfigError`)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LiteLLMConfigError(f"cannot read the LiteLLM proxy config {str(path)!r}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_list"), list):
        raise LiteLLMConfigError(f"the LiteLLM proxy config {str(path)!r} has no model_list")
    return data


def proxy_marker(config: Mapping[str, Any], model_name: str | None) -> tuple[str, dict[str, str]]:
    """The plug-in's marker deployment in a proxy config (``model_name``, or the one
    complexity router with ``classifier_type: custom``) and its tiers: route key -> model
    group, the routes the plug-in serves."""
    found = []
    for entry in config["model_list"]:
        params = entry.get("litellm_params") if isinstance(entry, Mapping) else None
        if not isinstance(params, Mapping) or params.get("model") != AUTO_ROUTER_MODEL:
            continue
        options = params.get("complexity_router_config")
        if isinstance(options, Mapping) and options.get("classifier_type") == "custom" and (
                model_name is None or entry.get("model_name") == model_name):
            found.append((str(entry.get("model_name")), options))
    if len(found) != 1:
        which = f"named {model_name!r}" if model_name else "with classifier_type: custom"
        raise LiteLLMConfigError(
            f"the proxy config needs exactly one {AUTO_ROUTER_MODEL} deployment {which} (found {len(found)}): "
            "its complexity_router_config sets classifier_type: custom, classifier_plugin: <module>.<instance> "
            "and tiers: {route key: model group}")
    name, options = found[0]
    tiers = options.get("tiers")
    if not isinstance(tiers, Mapping) or not tiers or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tiers.items()):
        raise LiteLLMConfigError(f"deployment {name!r}: complexity_router_config.tiers must map each route key "
                                 "(strong/weak, or N model keys) to a model group")
    return name, dict(tiers)


def proxy_deployment(*, strong: str | None = None, weak: str | None = None, models: Mapping[str, str] | None = None,
                     model_name: str = DEFAULT_MODEL_NAME, classifier_plugin: Any = DEFAULT_CLASSIFIER_PLUGIN,
                     fallback: str | None = None) -> dict[str, Any]:
    """The ``model_list`` entry that makes ``model_name`` routed by the plug-in: an
    ``auto_router/complexity_router`` marker with ``classifier_type: custom``, one tier per
    route key (``strong``/``weak`` for a pair, the keys of ``models`` for N), each tier's
    model group, and ``max_tokens_from_tier_model: false`` (LiteLLM's default would replace
    each request's ``max_tokens`` with the routed model's output ceiling).

    The proxy's ``config.yaml`` entry (``classifier_plugin`` is then the ``module.instance``
    the proxy imports; :func:`proxy_deployment_yaml` writes it as YAML, and
    ``python -m routellm_integrations.litellm config --strong smart --weak fast`` prints
    it) and, with the plug-in itself as ``classifier_plugin``, the SDK's
    (:meth:`RouteLLMPlugin.deployment <.plugin.RouteLLMPlugin.deployment>`): one shape
    for both, so they cannot drift. ``fallback``: the tier LiteLLM sends a request to when
    the classifier fails or times out (a pair: ``weak``; N models: name one, the plug-in
    picks the cheapest by its price table)."""
    routes, nway = LiteLLMRouting(strong=strong, weak=weak, models=dict(models) if models is not None else None,
                                  model_name=model_name).routes()
    if fallback is None:
        if nway:
            raise LiteLLMConfigError(f"name the fallback tier among N models (one of {sorted(routes)}): the "
                                     "route a request takes when the classifier fails or times out")
        fallback = "weak"
    if fallback not in routes:
        raise LiteLLMConfigError(f"fallback tier {fallback!r} is not a route key: {sorted(routes)}")
    if not isinstance(model_name, str) or not model_name.strip():
        raise LiteLLMConfigError("model_name must name the alias users call")
    config = {"classifier_type": "custom", "classifier_plugin": classifier_plugin, "max_tokens_from_tier_model": False,
              "tier_definitions": [{"name": key, "description": f"routellm: the {key} model group"} for key in routes],
              "fallback_tier": fallback, "tiers": dict(routes)}
    return {"model_name": model_name,
            "litellm_params": {"model": AUTO_ROUTER_MODEL, "complexity_router_default_model": routes[fallback],
                               "complexity_router_config": config}}


def proxy_deployment_yaml(**options: Any) -> str:
    """:func:`proxy_deployment` as a ``config.yaml`` list item, indented to paste under
    ``model_list:`` (``classifier_plugin`` must then be a ``module.instance`` string)."""
    import yaml

    entry = proxy_deployment(**options)
    if not isinstance(entry["litellm_params"]["complexity_router_config"]["classifier_plugin"], str):
        raise LiteLLMConfigError("in config.yaml, classifier_plugin is the module.instance the proxy imports "
                                 "(e.g. routellm_plugin.routing), not an object")
    text = yaml.safe_dump([entry], sort_keys=False, default_flow_style=False, width=120)
    return "".join(f"  {line}" for line in text.splitlines(keepends=True))
