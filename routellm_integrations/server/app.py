"""The OpenAI-compatible routing server: a thin HTTP layer over :class:`AsyncRoutedClient`.

- ``POST /v1/chat/completions``: routed (JSON or SSE); the decision in ``x-routellm-*``
  headers (for a stream: the decision; its last chunk carries the cost) and the call's
  record in the ``routellm`` field;
- ``GET /v1/models``: the advertised ``router-<router>-share<fraction>`` (or
  ``-<threshold>``) names and the routes
  (each route's router and, among N models, its model keys under ``routellm``);
- ``GET /v1/routing/usage``: ledger totals from the state store, each in the one flat
  usage shape (``{"calls", "cost_usd", ..., "by_route": {...}, "by_model": {...}}``, as
  ``store.usage()`` gives it); ``?route=<key>``/``?model=<name>`` narrow it. Tenancy: a
  client key sees only its own usage (``total`` is its own, ``scope: "key"``; ``key``:
  its label and budget); an admin key (``admin: true`` in the config's ``keys``) sees
  every key's (``scope: "all"``), as does anyone on an open server (no keys at all).
  No response names the store's URL or a file path;
- ``GET /health`` (open: the process is alive); ``GET /ready`` (open: the state store
  answers its ``ping()``, run off the event loop; else a 503 ``store_unavailable``);
  ``GET /metrics`` (Prometheus; open, unless ``metrics_key`` is
  set: then it needs that key or an admin key).

Hostile input: a request body larger than ``max_body_bytes`` (default 4 MiB; ``--max-body-bytes``)
is a 413, refused from its ``Content-Length`` before it is read, or as soon as the bytes
streamed pass the cap. The body is checked before any provider is called
(:mod:`.requests`: OpenAI's request shape, field by field, and JSON nested no deeper than
``max_json_depth``, default 64): a bad one is a 400 naming the field in ``param``; no
client input is ever a 5xx. Under a dollar cap (a budget with ``max_usd``) the call's
reservation bounds one choice of text input, so ``n > 1`` and non-text content parts
(``image_url``, ``input_audio``, ``file``), which it cannot bound, are a 400 saying why
(without a dollar cap they pass through). A trailing slash is a 404 (no redirect), and
every error the app answers, 404 and 405 included, is in OpenAI's format.

Headers: ``x-routellm-route`` (the route key: ``strong``/``weak``, or among N models the
chosen model's key), ``-model``, ``-provider``, ``-router``, ``-score`` (N models: the
chosen model's predicted quality), ``-threshold`` (a pair only), ``-strong-fraction`` (the
share the threshold is held at; the default, 0.3, when none is given), ``-scored-pair``
(the two models the router scored, in its names), ``-models`` (N models:
every key, comma-separated), ``-cost-weight`` (N models), ``-escalated-from`` (the key
whose answer failed a check), ``-call-id``, and once settled ``-status``/``-cost-usd``.

A route with ``escalate: true`` reviews each answer (whole, or a stream held back while
a model above could take over) and re-sends one that fails the built-in checks to the
next model up; a held stream's headers are sent with its first chunk, so they name the
model that answered, and a cascade that fails before it is an HTTP error, not an SSE one.
The server speaks OpenAI's chat format only (Anthropic backends are translated to it):
there is no Anthropic-format ``/v1/messages`` endpoint, so no escalation there either.

Errors are OpenAI's (``{"error": {"message", "type", "param", "code"}}``): 401 for a
missing or wrong key, 400 for a bad model name, threshold or request, 413 for a body
over the cap; 429 ``insufficient_quota`` for an exhausted budget (naming the scope; not
retryable: ``x-should-retry: false``), 429 ``budget_busy`` with ``Retry-After`` when only
calls in flight hold the money (it may fit once they settle). A provider's failure is
answered as the provider would: its 429 a 429 ``rate_limit_exceeded`` with its
``Retry-After``; its 400/413/422 (the client's own bad parameter) the same status with
its (redacted) message; a timeout a 504; a 5xx, or anything else, a 502 (with the
provider's status); 503 ``store_unavailable`` with ``Retry-After`` when the state store
cannot be reached (its URL or path is logged, never answered). No provider key ever appears in a body, header, log line or metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..client.backends import ChatBackend, make_backend
from ..client.routed import AsyncRoutedClient
from ..client.secrets import RedactingFilter, redact
from ..client.sse import dumps, loads
from ..routing import CallRecord
from .auth import AuthError, ClientKey, KeyRing
from .config import ConfigError, ServerConfig
from .errors import ApiError, error_body, error_for
from .metrics import Metrics
from .requests import NON_TEXT_PARTS, ChatCompletionRequest, validate_chat_request
from .streaming import SSEResponse

__all__ = ["build_client", "create_app", "create_app_from_env"]

log = logging.getLogger("routellm.server")
_ENDPOINTS = {"/v1/chat/completions", "/v1/models", "/v1/routing/usage", "/health", "/ready", "/metrics"}


def _provider_key(config: ServerConfig, provider: str) -> str | None:
    spec = config.providers.get(provider)  # type: ignore[call-overload]
    if spec is None or spec.api_key_env is None:
        return None  # the backend reads OPENAI_API_KEY / ANTHROPIC_API_KEY
    value = os.environ.get(spec.api_key_env)
    if not value:
        raise ConfigError(f"providers.{provider}.api_key_env: the environment variable {spec.api_key_env} is not set")
    return value


def build_client(config: ServerConfig) -> AsyncRoutedClient:
    """The routed client a configuration describes (backends are built, so a missing key
    fails here, before the server accepts a request)."""
    from ..costs import PriceTable

    def factory(spec: str) -> ChatBackend:
        provider = spec.split(":", 1)[0]
        p = config.providers.get(provider)  # type: ignore[call-overload]
        key = _provider_key(config, provider)
        base = p.base_url if p is not None else None
        return make_backend(spec, openai_api_key=key if provider == "openai" else None,
                            openai_base_url=base if provider == "openai" else None,
                            anthropic_api_key=key if provider == "anthropic" else None,
                            anthropic_base_url=base if provider == "anthropic" else None,
                            timeout=p.timeout_s if p is not None else 600.0,
                            max_retries=p.max_retries if p is not None else 2,
                            anthropic_max_tokens=config.anthropic_max_tokens, transport=config.transport)

    prices = PriceTable.default().with_prices({p: {m: tuple(v) for m, v in models.items()}  # type: ignore[misc]
                                               for p, models in config.prices.items()}) if config.prices else None
    client = AsyncRoutedClient(config.strong, config.weak, prices=prices, store=config.state, routes=config.routes,
                               routers=config.routers, route_on=config.route_on, steps=config.steps,
                               backend_factory=factory)
    for spec in client.specs():
        client.backend(spec)
    for name, route in config.routes.items():
        _check_route(client, config, name, route)
    return client


def _check_route(client: AsyncRoutedClient, config: ServerConfig, name: str, route: Any) -> None:
    """Build a route's policy now: a model the router does not know, a router that cannot
    route these backends or a model the price table cannot price fail at start-up, as
    the typed error any surface raises for it, naming the field of the config."""
    from ..errors import BudgetConfigError, PriceTableError, RouteLLMError, RouterOptionError, UnknownModelError

    try:
        client.routed(name, budget=config.budget)
    except UnknownModelError as exc:
        field = "router_models" if route.router_models else "models"
        raise UnknownModelError(f"routes.{name}.{field}: {exc} (the router {route.router!r} knows models by the "
                                "names of its training data; map a key to one with router_models: {key: name})"
                                ) from None
    except RouterOptionError as exc:
        raise RouterOptionError(f"routes.{name}.router: {exc}") from None
    except (PriceTableError, BudgetConfigError) as exc:
        raise type(exc)(f"routes.{name}.models: {exc} (in the server config: prices: {{provider: {{model: "
                        "[input_usd_per_1M, output_usd_per_1M]}}}})") from None
    except RouteLLMError as exc:
        raise type(exc)(f"routes.{name}: {exc}") from None


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def decision_headers(record: CallRecord) -> dict[str, str]:
    headers = {"x-routellm-route": record.route, "x-routellm-model": record.model,
               "x-routellm-provider": record.provider or "", "x-routellm-router": record.router,
               "x-routellm-score": _fmt(record.score), "x-routellm-call-id": record.call_id}
    if record.threshold is not None:  # a pair; among N models there is none
        headers["x-routellm-threshold"] = _fmt(record.threshold)
    if record.strong_fraction is not None:
        headers["x-routellm-strong-fraction"] = _fmt(record.strong_fraction)
    if record.scored_pair:  # the router's own (ASCII) model names
        headers["x-routellm-scored-pair"] = ",".join(record.scored_pair)
    if record.models:
        headers["x-routellm-models"] = ",".join(record.models)
    if record.cost_weight is not None:
        headers["x-routellm-cost-weight"] = _fmt(record.cost_weight)
    if record.escalated_from is not None:
        headers["x-routellm-escalated-from"] = record.escalated_from
    if record.status != "in_flight":
        headers["x-routellm-status"] = record.status
        headers["x-routellm-cost-usd"] = _fmt(record.cost_usd)
    return headers


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(content), status_code=status, headers=headers, media_type="application/json")


def _error_response(err: ApiError) -> Any:
    if err.status >= 500:
        log.error("%s %s: %s", err.status, err.type, err.message)
    return _json(err.body(), err.status, err.headers)


async def _send_error(send: Any, err: ApiError) -> None:
    body = dumps(err.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than {limit} bytes (the server's max_body_bytes)",
                    code="request_too_large", headers={"connection": "close"})


class _BodyLimit:
    """Pure ASGI middleware: a body over ``limit`` bytes is a 413, from its
    ``Content-Length`` before a byte is read, or (chunked, or a lying length) as soon as
    the bytes received pass it (``receive`` raises the 413 to the endpoint reading it).
    A request the app fails on before answering (an error, or a shutdown cancelling it)
    still gets an answer in OpenAI's format."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _send_error(send, ApiError(400, "the Content-Length header is not a number",
                                                     code="bad_content_length", headers={"connection": "close"}))
                    return
                if length > limit:
                    await _send_error(send, _too_large(limit))
                    return
        seen = [0]
        started = [False]

        async def counted() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise _too_large(limit)
            return message

        async def watched(message: Any) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except asyncio.CancelledError:
            if not started[0]:  # shutting down (the graceful timeout ran out) before an answer
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await _send_error(send, ApiError(503, "the server is shutting down: retry the request",
                                                     "server_error", code="server_shutting_down",
                                                     headers={"retry-after": "1", "connection": "close"}))
            raise
        except Exception as exc:
            if started[0]:
                raise
            err = error_for(exc)  # an ApiError or the store's 503 as they are; anything else a bug: a 500
            if not (isinstance(exc, ApiError) or err.status == 503):
                err = ApiError(500, f"internal error ({type(exc).__name__})", "server_error")
            if err.status >= 500:
                log.error("%s %s: %s", err.status, type(exc).__name__, redact(str(exc)))
            await _send_error(send, err)


class _RequestMetrics:
    """Pure ASGI middleware: counts and times requests (cheaper than BaseHTTPMiddleware)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in _ENDPOINTS else "other"
        start = time.perf_counter()
        status = [500]

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.request(endpoint, status[0], time.perf_counter() - start)


def _install_log_redaction() -> None:
    flt = RedactingFilter()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error"),
               logging.getLogger("uvicorn.access"), logging.getLogger("routellm"), log]
    for logger in loggers:
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(flt)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(flt)
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        handler.addFilter(flt)
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def create_app(config: ServerConfig | None = None, *, client: AsyncRoutedClient | None = None,
               keyring: KeyRing | None = None) -> Any:
    """The FastAPI app serving ``config`` (a :class:`ServerConfig`; default: defaults)."""
    config = config if config is not None else ServerConfig()
    client = client if client is not None else build_client(config)
    keys = keyring if keyring is not None else KeyRing.from_config(config)
    metrics = Metrics()
    client.on_settled(lambda record, call: metrics.settled(record))
    client.on_settled(lambda record, call: metrics.decided(record.router, record.latency_ms))
    advertised = config.advertised_models()
    model_list = []
    for m in advertised:
        entry: dict[str, Any] = {"id": m, "object": "model", "created": 0, "owned_by": "routellm"}
        route = config.routes.get(m)
        if route is not None:
            entry["routellm"] = {"router": route.router, "models": list(route.model_keys()) or None,
                                 "escalate_if": route.escalate_if}
        model_list.append(entry)

    @asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        _install_log_redaction()
        if keys.open:
            log.warning("routellm server is OPEN: no client API keys are configured (set ROUTELLM_SERVER_API_KEYS or "
                        "keys: in the config file); anyone who can reach it spends on your provider keys")
        else:
            log.info("routellm server: %d client keys (%s)", len(keys), ", ".join(keys.labels()))
        log.info("routellm server: strong %s, weak %s, routers %s, routes %s, state %s", client.strong, client.weak,
                 config.routers, sorted(config.routes) or "none", redact(client.store.url))
        if config.workers > 1 and client.store.url.startswith("memory://"):
            log.warning("routellm server: %d workers over memory:// state: budgets and usage are per worker; "
                        "use --db sqlite:///routing.sqlite or --state redis://... to share them", config.workers)
        names = list(dict.fromkeys([*config.routers, *(r.router for r in config.routes.values())]))
        await client.warm_up(names)  # the first requests pay no import, no load
        # What is alive now (modules, the app, routers) lives as long as the process: moved
        # out of the collector's view, a full collection under load no longer walks it.
        # Measured: p99 added latency at 300 requests/s fell from +143 ms to +14 ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await client.aclose()
            client.store.close()
            log.info("routellm server: stopped; every call in flight settled")

    app = FastAPI(title="routellm", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  redirect_slashes=False)  # no 307 to a URL built from the Host header
    app.state.client, app.state.keys, app.state.metrics, app.state.config = client, keys, metrics, config
    app.add_middleware(_BodyLimit, limit=config.max_body_bytes)
    app.add_middleware(_RequestMetrics, metrics=metrics)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path[:200]
        if exc.status_code == 404:
            message, code = f"Invalid URL ({request.method} {path})", "not_found"
        elif exc.status_code == 405:
            message, code = f"Method {request.method} is not allowed on {path}", "method_not_allowed"
        else:
            message, code = str(exc.detail), None
        headers = dict(exc.headers or {}) if exc.status_code == 405 else None
        return _json(error_body(message, "invalid_request_error", None, code), exc.status_code, headers)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> Response:
        return _error_response(error_for(exc) if isinstance(exc, ApiError) else ApiError(
            500, f"internal error ({type(exc).__name__})", "server_error"))

    def authenticate(request: Request) -> ClientKey | None:
        try:
            return keys.authenticate(request.headers)
        except AuthError as exc:
            raise error_for(exc) from None

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            key = authenticate(request)
            raw = await request.body()  # the 413 past max_body_bytes is raised while reading
            try:
                body = loads(raw) if raw else None
            except (ValueError, RecursionError):
                raise ApiError(400, "the request body is not valid JSON (or is nested too deeply)") from None
            checked = validate_chat_request(body, config.max_json_depth)
            stream = bool(checked.stream)
            scope = key.label if key is not None else None
            budget = key.budget if key is not None else config.budget
            if budget is not None and budget.max_usd is not None:
                _check_bounded(checked)
            if stream:
                routed = await client.stream_raw(body, scope=scope, api_key_id=scope, budget=budget)
                return SSEResponse(routed, decision_headers(routed.decision),
                                   headers_of=lambda: decision_headers(routed.decision))
            completion, record = await client.complete_raw(body, scope=scope, api_key_id=scope, budget=budget)
            return _json(completion, 200, decision_headers(record))
        except Exception as exc:  # noqa: BLE001 - every error answered in OpenAI's format
            return _error_response(error_for(exc))

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        try:
            authenticate(request)
        except ApiError as exc:
            return _error_response(exc)
        return _json({"object": "list", "data": model_list})

    @app.get("/v1/routing/usage")
    async def usage(request: Request) -> Response:
        from ..state import UsageQuery

        try:
            key = authenticate(request)
            since, until = _time_param(request, "since"), _time_param(request, "until")
            route = request.query_params.get("route") or None
            model = request.query_params.get("model") or None
            store = client.store
            every = key is None or key.admin  # an open server has one tenant; an admin sees them all
            out: dict[str, Any] = {"object": "routing.usage", "scope": "all" if every else "key", "since": since,
                                   "until": until, "route": route, "model": model, "total": None, "key": None}
            if key is not None:
                mine = await asyncio.to_thread(store.usage, UsageQuery(api_key=key.label, since=since, until=until,
                                                                       route=route, model=model))
                out["key"] = {"label": key.label, **mine.as_dict(), "budget": None}
                if key.budget is not None:
                    state = await asyncio.to_thread(store.budget_state, key.budget, key.label)
                    out["key"]["budget"] = state.model_dump(mode="json")
            if every:
                total = await asyncio.to_thread(store.usage, UsageQuery(since=since, until=until, route=route,
                                                                        model=model))
                out["total"] = total.as_dict()
            else:  # a client key's total is its own: no other tenant's numbers
                out["total"] = {k: v for k, v in out["key"].items() if k not in ("label", "budget")}
            return _json(out)
        except Exception as exc:  # noqa: BLE001 - every error answered in OpenAI's format
            return _error_response(error_for(exc))

    @app.get("/ready")
    async def ready() -> Response:
        ping = getattr(client.store, "ping", None)
        if ping is not None:
            try:
                await asyncio.to_thread(ping)  # a store that hangs holds a thread, never the event loop
            except Exception as exc:  # noqa: BLE001 - whatever the store raises, it is not ready
                err = error_for(exc)
                if err.status != 503:
                    log.error("state store ping failed: %s: %s", type(exc).__name__, redact(str(exc)))
                    err = ApiError(503, "the routing state store is unavailable: retry shortly", "server_error",
                                   code="store_unavailable", headers={"retry-after": "2"})
                return _error_response(err)
        return _json({"status": "ready"})

    @app.get("/health")
    async def health() -> Response:
        return _json({"status": "ok", "routers": config.routers, "routes": sorted(config.routes),
                      "strong": client.strong, "weak": client.weak})

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        try:
            keys.authenticate_metrics(request.headers)
        except AuthError as exc:
            return _error_response(error_for(exc))
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return app


def _check_bounded(request: ChatCompletionRequest) -> None:
    """Under a dollar cap a call reserves the bound of one choice of text input: refuse
    what that bound cannot cover (``n > 1``; image, audio or file parts), before any
    provider is called."""
    if request.n is not None and request.n > 1:
        raise ApiError(400, f"n={request.n}: under a dollar budget a call reserves the cost of one choice, so "
                       "n > 1 is refused (send n separate requests)", param="n", code="unsupported_under_budget")
    for i, message in enumerate(request.messages):
        if isinstance(message.content, list):
            for j, part in enumerate(message.content):
                kind = getattr(part, "type", None)
                if kind in NON_TEXT_PARTS:
                    raise ApiError(400, f"a {kind} part: under a dollar budget a call's cost bound counts text "
                                   "only, so image, audio and file parts are refused",
                                   param=f"messages[{i}].content[{j}]", code="unsupported_under_budget")


def _time_param(request: Any, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a unix time in seconds, got {raw!r}", param=name) from None


def create_app_from_env() -> Any:
    """The app factory uvicorn workers call (``--workers N``): the configuration comes from
    ``ROUTELLM_SERVER_CONFIG`` (JSON), which ``routellm serve`` sets."""
    return create_app(ServerConfig.from_env())

