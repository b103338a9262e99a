"""``RoutingConfig``: every routing option, under one name per concept, validated once.

Every surface takes or extends it: ``RoutedChat`` and ``RoutedLLM`` extend
:class:`RoutedModelConfig` (their fields *are* these), the routed client's
:class:`~routellm_integrations.client.RouteConfig` and the server's route spec extend
:class:`RoutingConfig`. So an option is declared, validated and turned into a
:class:`~routellm_integrations.policy.RoutingPolicy` and
:class:`~routellm_integrations.routing.CallLifecycle` here only, and a misuse raises the
same :class:`~routellm_integrations.errors.RouteLLMError` subclass on every surface:

- a threshold problem (both ``threshold`` and ``strong_fraction``, one out of [0, 1], a
  pair option among N models or an N-way option for a pair, a negative cost):
  :class:`~routellm_integrations.errors.InvalidThresholdError`;
- a route problem (``strong``/``weak`` and ``models`` both, fewer than two models, a key
  that names no backend, a forced ``route`` that is not one):
  :class:`~routellm_integrations.errors.InvalidRouteError`;
- an unknown router name: :class:`~routellm_integrations.errors.UnknownRouterError`;
- a bad escalation check: :class:`~routellm_integrations.routing.EscalationCheckError`.

The names, one per concept: ``escalate_if`` (not ``escalate``), ``route`` for a forced
route (not ``model``, which LangChain users read as a model id, nor ``force``),
``route_on="last_user"`` (not ``last_human``), ``ledger`` (not ``cost_ledger``),
``prices`` (not ``price_table``). The old names still work for now, with a
``DeprecationWarning`` naming the new one (:func:`renamed`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from ..budgets import Budget
from ..choosers import check_choice_options
from ..errors import InvalidRouteError, InvalidThresholdError, RouteLLMError
from ..policy import RoutingPolicy, StepPolicy
from ..routers.base import validate_threshold
from ..routers.registry import check_router_name
from .answer_checks import escalation_checks

__all__ = ["RENAMED", "RoutedModelConfig", "RoutingConfig", "pair_or_models", "renamed", "typed_error"]

B = TypeVar("B")

#: options whose names changed, old -> new (each still accepted, with a DeprecationWarning)
RENAMED = {"escalate": "escalate_if", "cost_ledger": "ledger", "price_table": "prices", "force": "route"}


def renamed(options: dict[str, Any], where: str, names: Mapping[str, str] = RENAMED) -> dict[str, Any]:
    """``options`` with each old name moved to its new one, warning once per call site
    that it was used; both names at once is an :class:`InvalidRouteError`."""
    for old, new in names.items():
        if old not in options:
            continue
        if new in options:
            raise InvalidRouteError(f"{where}: give {new}= (the new name of {old}=), not both")
        warnings.warn(f"{where}: {old}= is now called {new}=", DeprecationWarning, stacklevel=4)
        options = {**{k: v for k, v in options.items() if k != old}, new: options[old]}
    return options


def typed_error(exc: ValidationError) -> Exception:
    """The :class:`RouteLLMError` a validator raised, when it is the one problem pydantic
    reports (pydantic wraps a ``ValueError`` raised in a validator); else ``exc``. So
    ``RoutedChat(threshold=2)`` raises ``InvalidThresholdError`` itself, as the client
    and the server do."""
    errors = exc.errors()
    cause = errors[0].get("ctx", {}).get("error") if len(errors) == 1 else None
    return cause if isinstance(cause, RouteLLMError) else exc


def pair_or_models(strong: B | None, weak: B | None, models: Mapping[str, B] | None,
                   *, what: str = "backend") -> tuple[dict[str, B], bool]:
    """The backends by route key, and whether they are N models: ``{"strong", "weak"}``
    for a pair (pair routing is the two-model case), else ``models``' keys. One check for
    every surface: both forms, or neither, is an :class:`InvalidRouteError`."""
    if models is not None:
        if strong is not None or weak is not None:
            raise InvalidRouteError(f"give strong= and weak=, or models={{key: {what}, ...}}, not both")
        if not isinstance(models, Mapping) or len(models) < 2:
            raise InvalidRouteError(f"models must map at least two keys to a {what} each, got {models!r}")
        for key in models:
            if not isinstance(key, str) or not key.strip():
                raise InvalidRouteError(f"a model key must be a non-empty string, got {key!r}")
        return dict(models), True
    if strong is None or weak is None:
        raise InvalidRouteError(f"routing needs strong= and weak= (a {what} each), or models={{key: {what}, ...}}")
    return {"strong": strong, "weak": weak}, False


class RoutingConfig(BaseModel):
    """How calls are routed, whatever the surface: the router, the pair's threshold or
    held share, the N-way cost knob, step routing and escalation.

    Given neither ``threshold`` nor ``strong_fraction``, a pair holds 30% of calls strong
    (:data:`~routellm_integrations.policy.DEFAULT_STRONG_FRACTION`). Among N models the
    call goes to the model maximising predicted quality minus ``cost_weight`` x its
    expected cost (``spend_per_call``: a target held online; ``max_cost_per_call``: a
    cap). ``escalate_if``: ``True`` (the built-in checks), a check ``answer -> reason |
    None``, a check's name (``"final_answer"``, ``"answer_flags"``, ``"agreement"``...),
    a verifier or its folder, or a list of them; an answer that fails goes to the next
    model up (:mod:`~routellm_integrations.routing.answer_checks`).

    **Route, then verify**: a pair with escalation checks and a held share
    (``strong_fraction``, or the default) holds the share of *all* strong calls, the
    escalations included: the prompts the router is most sure of go straight to the
    strong model (no cheap call wasted on them) and the rest go to the cheap one, whose
    failed answers fill the share (:class:`~routellm_integrations.choosers.CascadeShareController`).
    ``threshold=1.0`` sends every call to the cheap model first (a plain cascade).
    """

    # extra="forbid": a misspelt option (``thresold=0.3``) is an error, not a silent default
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=(),
                              populate_by_name=True)

    router: Any = Field(default=None, description="a router name, a checkpoint folder or a router object "
                        "(default 'mf' for a pair, 'quality' among N models)")
    router_options: dict[str, Any] = Field(default_factory=dict, description="options for load_router")
    threshold: float | None = Field(default=None, description="a pair: route strong when score >= threshold")
    strong_fraction: float | None = Field(
        default=None, description="a pair, instead of threshold: the share of calls to send strong, held on live "
        "traffic (warm-started from calibration_prompts when given); with neither, 0.3")
    calibration_prompts: list[str] | None = Field(default=None, repr=False,
                                                  description="a sample of your traffic for strong_fraction")
    router_models: dict[str, str] = Field(default_factory=dict, description="N-way: the router's name for a "
                                          "key's model, when it is not the default")
    cost_weight: float | None = Field(default=None, description="N-way: quality points one USD is worth "
                                      "(0: best quality; default 0, or the warm start of spend_per_call)")
    spend_per_call: float | None = Field(default=None, description="N-way: a target spend per call (USD), "
                                         "held online")
    max_cost_per_call: float | None = Field(default=None, description="N-way: never choose a model whose "
                                            "expected cost for the call is above this (USD)")
    reference_model: str | None = Field(default=None, description="N-way: the key savings are counted against "
                                        "(default: the dearest model)")
    expected_output_tokens: int | dict[str, int] | None = Field(
        default=None, description="N-way: the output length a model is expected to write, per key or for all, "
        "until its calls teach a running mean (default 400)")
    steps: StepPolicy = Field(default="per_turn", description="per_turn: one route per user turn, kept for its "
                              "tool-calling steps; every_step; sticky: once strong in a scope, stay strong")
    escalate_if: Any = Field(default=None, description="True (the built-in checks), a check answer -> reason "
                             "or None, a check's name ('final_answer', 'answer_flags', 'agreement', 'zero_label', "
                             "...), a verifier or its folder, or a list: a failed answer goes to the next model up")
    #: the checks ``escalate_if`` resolved to (a verifier folder is loaded once, here)
    _checks: tuple[Any, ...] = PrivateAttr(default=())

    def __init__(self, **data: Any) -> None:
        """Built, or the typed error of the one problem (not pydantic's wrapper)."""
        checked(super().__init__, **data)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed(data, cls.__name__) if isinstance(data, dict) else data

    @field_validator("threshold", "strong_fraction")
    @classmethod
    def _unit(cls, value: float | None, info: Any) -> float | None:
        return None if value is None else validate_threshold(value, info.field_name)

    @field_validator("expected_output_tokens")
    @classmethod
    def _tokens(cls, value: int | dict[str, int] | None) -> int | dict[str, int] | None:
        for n in ([] if value is None else value.values() if isinstance(value, dict) else [value]):
            if isinstance(n, bool) or n < 1:
                raise InvalidRouteError(f"expected_output_tokens must be positive, got {n!r}")
        return value

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, value: Any) -> Any:
        if value not in ("per_turn", "every_step", "sticky"):
            raise InvalidRouteError(f"steps must be 'per_turn', 'every_step' or 'sticky', got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_knob(self) -> "RoutingConfig":
        if self.threshold is not None and self.strong_fraction is not None:
            raise InvalidThresholdError("give threshold or strong_fraction, not both")
        if isinstance(self.router, str):
            check_router_name(self.router)  # a misspelt router fails here, not at the first call
        elif self.router is not None and not hasattr(self.router, "score"):
            raise InvalidRouteError(f"router must be a router name, a folder or an object with score(), "
                                    f"got {type(self.router).__name__}")
        # a bad check fails here (EscalationCheckError; a folder without a verifier: its own typed error)
        self._checks = escalation_checks(self.escalate_if)
        return self

    # -- against the backends ----------------------------------------------------------
    @property
    def checks(self) -> tuple[Any, ...]:
        """The escalation checks ``escalate_if`` asks for (none: answers are not reviewed)."""
        return self._checks

    def check_keys(self, keys: list[str], nway: bool) -> None:
        """The options against the backends' route keys: the choice options by the
        choosers' one check (:func:`~routellm_integrations.choosers.check_choice_options`:
        a pair's knob is a threshold or a share, N models' a cost weight, a spend target or
        a cap), and every key an option names is a backend."""
        check_choice_options({k: k for k in keys} if nway else None, self.threshold, self.strong_fraction,
                             self.cost_weight, self.spend_per_call, self.max_cost_per_call)
        named = {"router_models": sorted(set(self.router_models) - set(keys if nway else ())),
                 "reference_model": [self.reference_model] if self.reference_model not in
                 (None, *(keys if nway else ())) else [],
                 "expected_output_tokens": sorted(set(self.expected_output_tokens) - set(keys if nway else ()))
                 if isinstance(self.expected_output_tokens, dict) else []}
        if not nway and isinstance(self.expected_output_tokens, int):
            named["expected_output_tokens"] = [str(self.expected_output_tokens)]
        seconds = {getattr(c, "sample_route", None) for c in self._checks} - {None}
        if seconds - set(keys):
            raise InvalidRouteError(f"escalate_if: an agreement check's route {sorted(seconds - set(keys))} is not a "
                                    f"route key {keys}")
        for option, unknown in named.items():
            if unknown:
                raise InvalidRouteError(f"{option} names {unknown}, which are not model keys {keys if nway else []}"
                                        + ("" if nway else " (it chooses among N models: give models= too)"))

    def router_or_default(self, nway: bool) -> Any:
        """The router: the one given, else ``"quality"`` among N models, ``"mf"`` for a pair."""
        return self.router if self.router is not None else ("quality" if nway else "mf")

    def make_policy(self, keys: list[str], nway: bool, *, router: Any = None,
               default_names: Mapping[str, str] | None = None, **state: Any) -> RoutingPolicy:
        """The :class:`RoutingPolicy` these options describe over backends ``keys``.
        ``router``: an already loaded router to use instead of loading ``self.router``;
        ``default_names``: the router's name for each key's model where
        ``router_models`` says nothing (default: the key); ``state``: where its state
        lives (``budget``, ``store``, ``online_key``, ``max_scopes``, ``scope_ttl_s``)."""
        self.check_keys(keys, nway)
        names = None
        if nway:
            names = {k: self.router_models.get(k, (default_names or {}).get(k, k)) for k in keys}
        return RoutingPolicy(router if router is not None else self.router_or_default(nway),
                             threshold=self.threshold, strong_fraction=self.strong_fraction,
                             calibration_prompts=self.calibration_prompts, steps=self.steps,
                             router_options=None if router is not None else self.router_options, models=names,
                             cost_weight=self.cost_weight, spend_per_call=self.spend_per_call,
                             max_cost_per_call=self.max_cost_per_call, **state)

    def lifecycle_options(self) -> dict[str, Any]:
        """What the call lifecycle takes from these options (beyond the policy)."""
        options: dict[str, Any] = {"reference": self.reference_model}
        if self.expected_output_tokens is not None:
            options["expected_output_tokens"] = self.expected_output_tokens
        return options


class RoutedModelConfig(RoutingConfig):
    """The options of a routed *model object* (``RoutedChat``, ``RoutedLLM``): the routing
    options, plus what the object routes on, a route forced on every call, and where its
    budgets and state live. Both classes extend this, so each option has one name and
    one check."""

    route: str | None = Field(default=None, description="force every call: 'strong', 'weak', a model key or a "
                              "backend's model name")
    route_on: Any = Field(default="last_user", description="what is scored: 'last_user' (the last user message), "
                          "'conversation', or your function of the messages")
    on_no_text: Literal["strong", "weak", "error"] = Field(
        default="strong", description="where a call goes whose routing text is empty (e.g. only images)")
    budget: Budget | None = Field(default=None, description="a spend/strong-call cap per scope (a LangGraph thread, "
                                  "a routing_scope(...) block, or `scope`)")
    scope: str | None = Field(default=None, description="budget/sticky scope of calls that name none")
    max_scopes: int = Field(default=100_000, description="budget/sticky scopes kept (least recently used go first)")
    scope_ttl_s: float | None = Field(default=None, description="forget a scope idle this long (seconds)")
    store: Any = Field(default=None, exclude=True, repr=False,
                       description="where budgets, the call ledger and the online share live: a StateStore or a "
                       "URL (sqlite:///routing.db, redis://host:6379/0); default: this process's memory")

    @field_validator("route_on", mode="before")
    @classmethod
    def _route_on(cls, value: Any) -> Any:
        if value == "last_human":
            warnings.warn("route_on='last_human' is now called route_on='last_user'", DeprecationWarning,
                          stacklevel=2)
            return "last_user"
        if value in ("last_user", "conversation") or callable(value):
            return value
        raise InvalidRouteError(f"route_on must be 'last_user', 'conversation' or a function of the messages, "
                                f"got {value!r}")

    @field_validator("budget", mode="before")
    @classmethod
    def _budget(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, (Budget, dict)):
            raise InvalidRouteError(f"budget must be a Budget(...), got {type(value).__name__}")
        return value

    def make_model_policy(self, keys: list[str], nway: bool, **extra: Any) -> RoutingPolicy:
        """:meth:`make_policy` with this object's budget and state options."""
        return self.make_policy(keys, nway, budget=self.budget, store=self.store, max_scopes=self.max_scopes,
                           scope_ttl_s=self.scope_ttl_s, **extra)


def forced_route(route: str, keys: Mapping[str, str], *, strict: bool = True) -> str | None:
    """The route key ``route`` forces: a key itself, or the key of the backend whose model
    name it is (``keys``: key -> model name). Not one of them: an
    :class:`InvalidRouteError` naming both (``strict=False``: None)."""
    if route in keys:
        return route
    for key, model in keys.items():
        if route == model:
            return key
    if strict:
        raise InvalidRouteError(f"route={route!r} names no backend: give one of the keys {list(keys)} or a "
                                f"backend's model name ({', '.join(map(repr, keys.values()))})")
    return None


def checked(build: Callable[..., B], *args: Any, **kwargs: Any) -> B:
    """``build(...)`` with pydantic's ``ValidationError`` unwrapped to the typed error a
    validator raised (see :func:`typed_error`)."""
    try:
        return build(*args, **kwargs)
    except ValidationError as exc:
        raise typed_error(exc) from None
