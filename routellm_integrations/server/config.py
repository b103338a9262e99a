"""The routing server's configuration: flags, a YAML or TOML file, or both (flags win).

    strong: openai:gpt-4o
    weak: anthropic:claude-3-5-haiku-latest
    routers: [mf, length]
    strong_fraction: 0.3            # advertised as router-mf-share0.3 in /v1/models (the default)
    state: sqlite:///routing.sqlite
    routes:
      cheap: {router: length, threshold: 0.8}
      balanced: {router: mf, strong_fraction: 0.3, weak: openai:gpt-4o-mini}
      auto:                         # among N models: quality against expected cost
        models: [openai:gpt-4o, openai:gpt-4o-mini, anthropic:claude-3-haiku-20240307]
        router: quality             # the default for N models
        cost_weight: 300            # or spend_per_call: 0.002, max_cost_per_call: 0.01
        escalate: true              # a failed answer goes to the next model up
    budget: {max_usd: 5.0}          # for keys without a budget of their own
    keys:
      - {label: alice, key_env: ALICE_KEY, budget: {max_usd: 20, on_exhausted: raise}}
      - {label: ci, key: sk-local-ci-key}
      - {label: ops, key_env: OPS_KEY, admin: true}   # sees every key's usage
    max_body_bytes: 4194304         # a larger request body is a 413 (the default: 4 MiB)
    metrics_key: ...                # optional: /metrics then needs it (or an admin key)
    providers:
      openai: {base_url: http://localhost:8000/v1, api_key_env: VLLM_KEY}

Every section is validated (unknown keys are errors, naming the field). Client keys also
come from ``ROUTELLM_SERVER_API_KEYS`` (comma-separated ``secret`` or ``label=secret``);
with none at all the server is open (it says so at startup). Provider keys are never
written here: ``providers.<name>.api_key_env`` names the variable that holds one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from ..budgets import Budget
from ..policy import DEFAULT_STRONG_FRACTION
from ..client.routed import RouteConfig
from ..errors import RouteLLMError

__all__ = ["CONFIG_ENV", "KEYS_ENV", "ClientKeySpec", "ConfigError", "ProviderSpec", "RouteSpec", "ServerConfig",
           "load_config"]

#: the environment variable a worker process reads its configuration from (JSON)
CONFIG_ENV = "ROUTELLM_SERVER_CONFIG"
#: client keys: comma-separated ``secret`` or ``label=secret``
KEYS_ENV = "ROUTELLM_SERVER_API_KEYS"
_LABEL_RX = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


class ConfigError(RouteLLMError, ValueError):
    """A server configuration that cannot be used; the message names the field."""


def _check_backend(v: str | None) -> str | None:
    if v is None:
        return v
    from ..client.names import parse_backend

    try:
        return str(parse_backend(v))
    except ValueError as exc:
        raise ValueError(str(exc)) from None


class RouteSpec(RouteConfig):
    """A named route: ``model="<name>"`` routes with this pair, router and threshold, or
    among N models (``models``) by predicted quality against expected cost. It is the
    routed client's :class:`~routellm_integrations.client.RouteConfig` (so the same names
    and checks as every surface), written in a file:

    - a pair: ``strong``/``weak`` (default the server's), ``threshold`` or
      ``strong_fraction`` (neither: 30% of calls strong, held online); ``router`` default
      ``mf``.
    - N models: ``models`` (``[provider:model, ...]``, each keyed by its model name, or
      ``{key: provider:model}``), optional ``cost_weight`` (quality points one USD is
      worth; default 0: best quality), ``spend_per_call`` (a target held online),
      ``max_cost_per_call``, ``router_models`` (``{key: the router's name}``, default the
      model name), ``reference_model`` (the key savings count against),
      ``expected_output_tokens``; ``router`` default ``quality``.
    - both: ``escalate_if``: ``true`` (the built-in checks: invalid structured output or
      tool calls, an empty answer or a refusal, re-sent to the next model up), a check's
      name or a list of them (``[final_answer, answer_flags, agreement]``), a verifier's
      folder, or ``{check: verifier, path: DIR, share: 0.2}`` /
      ``{check: agreement, temperature: 1.0}`` for options (a file holds no functions);
      ``steps``, ``router_options``. A pair with checks and a held share routes, then
      verifies: the share counts the escalations.
    """

    model_config = ConfigDict(frozen=True)

    escalate_if: bool | str | list[Any] | dict[str, Any] = Field(
        False, description="true (the built-in checks), a check's name, a verifier's folder, {check: name, ...} "
        "or a list of them: re-send an answer that fails to the next model up")

    @field_validator("escalate_if")
    @classmethod
    def _checks_resolve(cls, value: Any) -> Any:
        """An unknown check name or a folder without a verifier fails here, naming the field."""
        from ..routing.answer_checks import escalation_checks

        try:
            escalation_checks(value)
        except RouteLLMError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def nway(self) -> bool:
        return self.route_keys()[1]

    def model_keys(self) -> dict[str, str]:
        """N-way: each model key's ``provider:model`` (empty for a pair)."""
        return self.model_specs()


class ClientKeySpec(BaseModel):
    """A key clients send (``Authorization: Bearer <key>``), its label (the budget scope
    and the ledger's name for it) and its budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    key: SecretStr | None = Field(None, description="the key itself")
    key_env: str | None = Field(None, description="or: the environment variable holding it")
    budget: Budget | None = None
    admin: bool = Field(False, description="an admin key: /v1/routing/usage shows every key's usage (a client key "
                        "sees only its own) and /metrics answers it when metrics_key is set")

    @field_validator("label")
    @classmethod
    def _label(cls, v: str) -> str:
        if not _LABEL_RX.match(v):
            raise ValueError("a label is 1-64 characters of letters, digits and _ . : @ -")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "ClientKeySpec":
        if (self.key is None) == (self.key_env is None):
            raise ValueError(f"key {self.label!r}: give exactly one of key or key_env")
        return self

    def secret(self) -> str:
        """The key (read from ``key_env`` when given that way)."""
        if self.key is not None:
            value = self.key.get_secret_value()
        else:
            value = os.environ.get(self.key_env or "", "")
            if not value:
                raise ConfigError(f"key {self.label!r}: the environment variable {self.key_env} is not set")
        if len(value) < 8:
            raise ConfigError(f"key {self.label!r} is shorter than 8 characters: too easy to guess")
        return value


class ProviderSpec(BaseModel):
    """Where a provider's API is and which variable holds its key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    api_key_env: str | None = Field(None, description="default OPENAI_API_KEY / ANTHROPIC_API_KEY")
    timeout_s: float = Field(600.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)


class ServerConfig(BaseModel):
    """Everything ``routellm serve`` runs on."""

    model_config = ConfigDict(extra="forbid")

    strong: str = "openai:gpt-4o"
    weak: str = "openai:gpt-4o-mini"
    routers: list[str] = Field(default_factory=lambda: ["mf"], min_length=1,
                               description="routers a router-<name>-<threshold> model may name")
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="the threshold /v1/models advertises")
    strong_fraction: float | None = Field(None, ge=0.0, le=1.0, description="or: the share it advertises")
    routes: dict[str, RouteSpec] = Field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = Field(6060, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=256)
    state: str = Field("memory://", description="memory://, sqlite:///path or redis://host:port/db")
    budget: Budget | None = Field(None, description="budget of keys that have none (and of an open server)")
    keys: list[ClientKeySpec] = Field(default_factory=list)
    providers: dict[Literal["openai", "anthropic"], ProviderSpec] = Field(default_factory=dict)
    prices: dict[str, dict[str, tuple[float, float]]] | None = Field(
        None, description="price overrides: {provider: {model: [input, output] USD per 1M tokens}}")
    route_on: Literal["last_user", "conversation"] = "last_user"
    steps: Literal["per_turn", "every_step", "sticky"] = "per_turn"
    anthropic_max_tokens: int = Field(4096, ge=1)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    access_log: bool = True
    transport: Literal["auto", "httpx", "aiohttp"] = Field(
        "auto", description="HTTP layer of the provider SDKs: aiohttp when httpx-aiohttp is installed (auto), or httpx")
    graceful_timeout_s: float = Field(30.0, gt=0, description="how long shutdown waits for requests in flight")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=1024 ** 3,
                                description="the largest request body accepted (bytes); a larger one is a 413")
    max_json_depth: int = Field(64, ge=8, le=512, description="the deepest nesting of a request body's JSON")
    metrics_key: SecretStr | None = Field(None, description="when set, GET /metrics needs this key (or an admin "
                                          "key) as 'Authorization: Bearer <key>'")

    @field_validator("strong", "weak")
    @classmethod
    def _backend(cls, v: str | None) -> str | None:
        return _check_backend(v)

    @field_validator("routers")
    @classmethod
    def _routers(cls, v: list[str]) -> list[str]:
        from ..routers import available_routers

        known = available_routers()
        unknown = [r for r in v if r not in known]
        if unknown:
            raise ValueError(f"unknown routers {unknown}; available: {known}")
        return list(dict.fromkeys(v))

    @field_validator("routes")
    @classmethod
    def _route_names(cls, v: dict[str, RouteSpec]) -> dict[str, RouteSpec]:
        from ..routers import available_routers

        known = available_routers()
        for name, route in v.items():
            if not name or name.startswith("router-") or not _LABEL_RX.match(name):
                raise ValueError(f"route name {name!r}: 1-64 letters, digits, _ . : @ -, not starting with 'router-'")
            if route.router not in known:
                raise ValueError(f"route {name!r}: unknown router {route.router!r}; available: {known}")
        return v

    @field_validator("state")
    @classmethod
    def _state(cls, v: str) -> str:
        if not re.match(r"^(memory|sqlite|redis|rediss|unix)://", v):
            raise ValueError("state is memory://, sqlite:///path/to/file.db or redis://host:port/db")
        return v

    @model_validator(mode="after")
    def _labels(self) -> "ServerConfig":
        if self.threshold is not None and self.strong_fraction is not None:
            raise ValueError("give threshold or strong_fraction, not both")
        labels = [k.label for k in self.keys]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"key labels must be unique, repeated: {dupes}")
        return self

    # -- to and from the environment of worker processes ------------------------------------
    def to_env_json(self) -> str:
        """This configuration as JSON, secrets included (for worker processes' environment)."""
        data = self.model_dump(mode="json")
        data["keys"] = [{**k.model_dump(mode="json", exclude_none=True),
                         **({"key": k.key.get_secret_value()} if k.key is not None else {})} for k in self.keys]
        if self.metrics_key is not None:
            data["metrics_key"] = self.metrics_key.get_secret_value()
        return json.dumps(data)

    @classmethod
    def from_env(cls, env: str = CONFIG_ENV) -> "ServerConfig":
        raw = os.environ.get(env)
        if not raw:
            raise ConfigError(f"{env} is not set: start workers with `routellm serve --workers N`")
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise _config_error(env, exc) from None

    def advertised_models(self) -> list[str]:
        """What ``/v1/models`` lists: a model per router, then the route names."""
        out = []
        for r in self.routers:
            if self.threshold is not None:
                out.append(f"router-{r}-{self.threshold}")
            else:
                share = self.strong_fraction if self.strong_fraction is not None else DEFAULT_STRONG_FRACTION
                out.append(f"router-{r}-share{share}")
        return out + list(self.routes)


def _config_error(where: str, exc: ValidationError) -> RouteLLMError:
    """What is wrong, naming the field: the typed error a route's misuse raises on every
    surface (an ``InvalidThresholdError``, an ``InvalidRouteError``, ...) when that is
    the one problem, else a :class:`ConfigError` listing them."""
    errors = exc.errors()
    cause = errors[0].get("ctx", {}).get("error") if len(errors) == 1 else None
    if isinstance(cause, RouteLLMError):
        field = ".".join(str(x) for x in errors[0].get("loc", ()))
        return type(cause)(f"{where}: {field}: {cause}")
    return ConfigError(f"{where}: {_explain(exc)}")


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ())) or "(top level)"
        message = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file {str(path)!r}: use .yaml, .yml, .toml or .json")
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser's error, reported with the file's name
        raise ConfigError(f"config file {str(path)!r} is not valid {suffix[1:].upper()}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping at the top, got {type(data).__name__}")
    return data


def load_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> ServerConfig:
    """The configuration from ``path`` (YAML, TOML or JSON) with ``overrides`` (flags;
    ``None`` values are ignored) on top. Raises :class:`ConfigError` naming the field."""
    data: dict[str, Any] = _read(Path(path)) if path is not None else {}
    # a flag's threshold replaces the file's strong share, and the other way round
    if overrides.get("threshold") is not None and overrides.get("strong_fraction") is None:
        data.pop("strong_fraction", None)
    if overrides.get("strong_fraction") is not None and overrides.get("threshold") is None:
        data.pop("threshold", None)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServerConfig.model_validate(data)
    except ValidationError as exc:
        where = f"config file {str(path)!r}" if path is not None else "server configuration"
        raise _config_error(where, exc) from None
