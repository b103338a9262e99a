"""Names the routed client reads: backends (``provider:model``) and the ``model`` a
caller asks for (RouteLLM's ``router-<router>-<threshold>``, a held strong share
``router-<router>-share<fraction>``, or a configured route name)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import BackendConfigError, InvalidModelError

__all__ = ["MAX_MODEL_NAME_CHARS", "PROVIDERS", "BackendSpec", "ModelRequest", "parse_backend", "parse_model",
           "route_models", "safe_model_name"]

#: the longest model name a provider's answer may put in headers, the ledger and metric labels
MAX_MODEL_NAME_CHARS = 128
#: characters a provider's model name keeps as they are: printable ASCII but for the space,
#: ``,`` (headers join values with it), ``"`` and ``\`` (quoted in labels) and ``%`` (the escape)
_NAME_SAFE = "".join(ch for ch in map(chr, range(0x21, 0x7F)) if ch not in ',"\\%')

#: providers a backend spec may name; ``openai`` covers any OpenAI-compatible server
PROVIDERS = ("openai", "anthropic")
_MODEL_RX = re.compile(r"^router-(?P<router>[A-Za-z0-9_.]+)(?:-(?P<rest>.+))?$")
#: a model key among N: printable ASCII without spaces or commas (it goes into headers, joined by commas)
_KEY_RX = re.compile(r"^[!-+\--~]{1,128}$")


@dataclass(frozen=True)
class BackendSpec:
    """``openai:gpt-4o`` as (provider, model)."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_backend(spec: "str | BackendSpec") -> BackendSpec:
    """``"openai:gpt-4o"`` / ``"anthropic:claude-3-5-sonnet-latest"`` as a :class:`BackendSpec`.
    A model name may itself hold colons (``openai:llama3:8b`` is model ``llama3:8b``)."""
    if isinstance(spec, BackendSpec):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise BackendConfigError(f"a backend is 'provider:model' (e.g. 'openai:gpt-4o', "
                                 f"'anthropic:claude-3-5-sonnet-latest'), got {spec!r}")
    provider, model = spec.split(":", 1)
    provider, model = provider.strip().lower(), model.strip()
    if provider not in PROVIDERS:
        raise BackendConfigError(f"unknown provider {provider!r} in backend {spec!r}: use one of {list(PROVIDERS)} "
                                 "(any OpenAI-compatible server is 'openai:<model>' with OPENAI_BASE_URL)")
    if not model:
        raise BackendConfigError(f"backend {spec!r} names no model: write it as '{provider}:<model>'")
    return BackendSpec(provider, model)


def route_models(models: object, what: str = "models") -> dict[str, str]:
    """The backends of an N-way route by key: ``["openai:gpt-4o", "openai:gpt-4o-mini"]``
    keys each by its model name (``gpt-4o``, ``gpt-4o-mini``); ``{"big": "openai:gpt-4o",
    ...}`` keeps its keys. Values are canonical ``provider:model`` specs. Raises
    :class:`InvalidModelError` (a :class:`ValueError`) naming ``what`` and the entry."""
    if isinstance(models, (str, bytes)) or not isinstance(models, (list, tuple, dict)) and \
            not hasattr(models, "items"):
        raise InvalidModelError(f"{what} must be a list of 'provider:model' backends or a mapping "
                                f"{{key: 'provider:model'}}, got {models!r:.200}")
    pairs: list[tuple[object, object]]
    if hasattr(models, "items"):
        pairs = list(models.items())  # type: ignore[union-attr]
    else:
        pairs = [(None, spec) for spec in models]  # type: ignore[union-attr]
    out: dict[str, str] = {}
    for i, (key, spec) in enumerate(pairs):
        where = f"{what}[{i}]" if key is None else f"{what}.{key}"
        try:
            backend = parse_backend(spec)  # type: ignore[arg-type]
        except BackendConfigError as exc:
            raise InvalidModelError(f"{where}: {exc}") from None
        name = backend.model if key is None else key
        if not isinstance(name, str) or not _KEY_RX.match(name):
            raise InvalidModelError(f"{where}: a model key is 1-128 printable ASCII characters without spaces or "
                                    f"commas, got {name!r}")
        if name in out:
            hint = " (give the models as a mapping {key: 'provider:model'} to key them apart)" if key is None else ""
            raise InvalidModelError(f"{where}: the key {name!r} is given twice{hint}")
        out[name] = str(backend)
    if len(out) < 2:
        raise InvalidModelError(f"{what}: routing among N models needs at least two backends, got {len(out)}")
    return out


@dataclass(frozen=True)
class ModelRequest:
    """What a ``model`` string asks for: a named route, or a router with a threshold or a
    held strong share."""

    model: str
    route: str | None = None
    router: str | None = None
    threshold: float | None = None
    strong_fraction: float | None = None

    @property
    def key(self) -> tuple[object, ...]:
        return (self.route, self.router, self.threshold, self.strong_fraction)


def _unit(text: str, what: str, model: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidModelError(f"model {model!r}: the {what} {text!r} is not a number; write e.g. "
                                "'router-mf-share0.3' or 'router-mf-0.5'") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidModelError(f"model {model!r}: the {what} {text!r} must be a number in [0, 1]")
    return value


def parse_model(model: object, *, routes: "dict[str, object] | None" = None,
                routers: "list[str] | tuple[str, ...] | None" = None) -> ModelRequest:
    """Read ``model``: a name in ``routes`` first, then ``router-<router>-share<fraction>``
    (that share of calls strong, held online), ``router-<router>-<threshold>`` or
    ``router-<router>`` (the default share, 30%), with ``<router>`` one of ``routers``
    (``None``: any registered router). Raises :class:`InvalidModelError` naming what is wrong."""
    if not isinstance(model, str) or not model.strip():
        raise InvalidModelError(f"model must be a non-empty string such as 'router-mf-share0.3', got {model!r}")
    if routes and model in routes:
        return ModelRequest(model, route=model)
    m = _MODEL_RX.match(model)
    if m is None:
        named = f"; configured routes: {sorted(routes)}" if routes else ""
        raise InvalidModelError(f"unknown model {model!r}: use 'router-<router>-share<fraction>' (e.g. "
                                f"'router-mf-share0.3': 30% of calls strong), 'router-<router>-<threshold>' or "
                                f"'router-<router>' (the default share){named}")
    router, rest = m.group("router"), m.group("rest")
    if routers is None:
        from ..routers import available_routers

        allowed = available_routers()
    else:
        allowed = list(routers)
    if router not in allowed:
        raise InvalidModelError(f"model {model!r}: unknown router {router!r}; available routers: {sorted(allowed)}")
    if rest is None:  # the default: a held share of strong calls
        from ..policy import DEFAULT_STRONG_FRACTION

        return ModelRequest(model, router=router, strong_fraction=DEFAULT_STRONG_FRACTION)
    if rest.startswith("share"):
        return ModelRequest(model, router=router, strong_fraction=_unit(rest[len("share"):], "strong share", model))
    return ModelRequest(model, router=router, threshold=_unit(rest, "threshold", model))


def safe_model_name(name: object) -> str | None:
    """A model name read from a provider's answer, safe to put in a response header, the
    ledger and a metric label: every character but printable ASCII (no space, comma,
    quote, backslash; so no CR/LF or other control character, nothing a header's latin-1
    cannot encode) is percent-escaped as its UTF-8 bytes (``modèle`` -> ``mod%C3%A8le``,
    ``a\r\nb`` -> ``a%0D%0Ab``), and the result is cut to :data:`MAX_MODEL_NAME_CHARS`
    (never inside an escape). None for no name (not a string, or empty): the caller falls
    back to the model it asked for."""
    if not isinstance(name, str) or not name.strip():
        return None
    if len(name) <= MAX_MODEL_NAME_CHARS and all(ch in _NAME_SAFE for ch in name):
        return name
    from urllib.parse import quote

    head = name[: MAX_MODEL_NAME_CHARS]  # at most that many characters can survive the escape
    out = quote(head.encode("utf-8", "surrogatepass"), safe=_NAME_SAFE)
    if len(out) > MAX_MODEL_NAME_CHARS:
        out = out[:MAX_MODEL_NAME_CHARS]
        cut = out.rfind("%", MAX_MODEL_NAME_CHARS - 2)
        if cut != -1:  # a cut escape (%C or %) would not decode
            out = out[:cut]
    return out
