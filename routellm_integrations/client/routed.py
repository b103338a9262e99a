"""A framework-free routed client: RouteLLM's ``Controller``, over the one call lifecycle.

    client = RoutedClient(strong="openai:gpt-4o", weak="openai:gpt-4o-mini")
    reply = client.chat.completions.create(model="router-mf-share0.3",
                                           messages=[{"role": "user", "content": "Hi"}])
    reply.model        # the backend model that answered, e.g. "gpt-4o-mini-2024-07-18"
    reply.routellm     # the call's record: route, score, threshold, router, cost_usd, call_id, ...

``model`` is ``router-<router>-<threshold>`` (RouteLLM's format), ``router-<router>-
share<fraction>`` (a strong share held on live traffic) or the name of a configured route.
One :class:`~routellm_integrations.policy.RoutingPolicy` and
:class:`~routellm_integrations.routing.CallLifecycle` serve each distinct model string
(and budget), built on first use; routers are loaded once and shared.

Every call settles through the lifecycle however it ends: an answer, a backend error
(:class:`BackendError`, with the provider's status), cancellation, a stream the consumer
stops reading (abandoned) or one the provider cuts (charged for what it delivered).
Streams pass every chunk through ``RoutedCall.delivered``; usage comes from the last chunk
(requested from OpenAI backends with ``stream_options.include_usage``); the final chunk
carries the record as ``routellm``.

**Among N models**: a route may name N backends instead of a pair,

    RoutedClient(routes={"auto": RouteConfig(
        models=["openai:gpt-4o", "openai:gpt-4o-mini", "anthropic:claude-3-haiku-20240307"],
        cost_weight=300, escalate_if=True)})

Each call goes to the model maximising the router's predicted quality minus
``cost_weight`` x its expected cost (``spend_per_call``: a target spend held online;
``max_cost_per_call``: a cap), scored by a router with ``quality(prompts, models)``
(default ``"quality"``). A model's **key** (the record's ``route``, the ledger's route,
what ``route=`` names) is its model name (``gpt-4o``, ``claude-3-haiku-20240307``), or
the key of a mapping ``models={"big": "openai:gpt-4o", ...}``; the router knows it by
the backend's model name unless ``router_models={key: name}`` says otherwise.

**Escalation** (``escalate_if=True``: the built-in checks; a check ``answer -> reason |
None``; or a list): an answer that fails a check (structured output that does not parse
or validate against ``response_format``, a tool call to a tool not offered or with
invalid arguments, an empty answer or a refusal) is re-sent to the next model up (for a
pair: weak -> strong), each call settled and recorded (``escalated``, then the answer's
status). A stream is held back while a model above could still take over and released
once its answer passed, so no chunk of an escalated answer is ever sent: escalation
happens before the first chunk; the top model streams live. The reply's ``routellm``
is the answering call's record (``escalated_from`` names the key below it), with
``escalations``: the records of the calls escalated from, in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..budgets import Budget
from ..costs import PriceTable
from ..errors import InvalidPromptError, InvalidRouteError, RouteLLMError
from ..policy import RoutingPolicy, StepPolicy
from ..routers.registry import is_model_free
from ..routing import Backend, CallLifecycle, CallRecord, RoutedCall, Turn, turn_of
from ..routing import engine
from ..routing.answer_checks import ahead, blocking
from ..routing.engine import Hooks, Tally
from ..routing.config import RoutingConfig, pair_or_models, renamed
from .answers import check_request_schemas, completion_answer, stream_answer
from .backends import BackendStream, ChatBackend, Transport, make_backend
from .errors import BackendError, InvalidModelError
from .names import BackendSpec, ModelRequest, parse_backend, parse_model, route_models

__all__ = ["AsyncRoutedClient", "RouteConfig", "RoutedAsyncStream", "RoutedClient", "RoutedStream", "Routed"]

_UNSET: Any = object()


class RouteConfig(RoutingConfig):
    """A named route: a pair of backends (the client's when None) with a threshold or a
    held strong share, or N backends (``models``) chosen among by quality against cost.
    The routing options are :class:`~routellm_integrations.routing.config.RoutingConfig`'s
    (the same names and checks as ``RoutedChat``, ``RoutedLLM`` and the server):

    - pair: ``strong``/``weak`` (``provider:model``), ``threshold`` or ``strong_fraction``;
      ``router`` default ``"mf"``.
    - N-way: ``models`` (a list of ``provider:model`` specs, keyed by model name, or a
      mapping ``{key: spec}``), ``cost_weight``, ``spend_per_call``,
      ``max_cost_per_call``, ``router_models`` (``{key: the router's name for it}``,
      default the backend's model name), ``reference_model``,
      ``expected_output_tokens``; ``router`` default ``"quality"``.
    - both: ``escalate_if`` (True: the built-in checks; a check, a check's name such as
      ``"final_answer"``/``"agreement"``, a verifier or its folder, or a list of them:
      :mod:`~routellm_integrations.routing.answer_checks`), ``steps``, ``router_options``.
    """

    strong: str | None = Field(default=None, description="provider:model (default: the client's strong)")
    weak: str | None = Field(default=None, description="provider:model (default: the client's weak)")
    models: list[str] | dict[str, str] | None = Field(default=None, description="N-way: the backends, "
                                                      "provider:model, keyed by model name or by the mapping's keys")

    @field_validator("strong", "weak")
    @classmethod
    def _backend(cls, value: str | None) -> str | None:
        return None if value is None else str(parse_backend(value))

    @field_validator("models")
    @classmethod
    def _models(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            specs = route_models(value)  # names the entry that is wrong
        except InvalidModelError as exc:  # a route's misuse, the same error type on every surface
            raise InvalidRouteError(str(exc)) from None
        return dict(specs) if isinstance(value, Mapping) else list(specs.values())

    @model_validator(mode="after")
    def _against_backends(self) -> "RouteConfig":
        keys, nway = self.route_keys()
        self.check_keys(keys, nway)
        object.__setattr__(self, "router", self.router_or_default(nway))  # a route names its router
        return self

    def model_specs(self) -> dict[str, str]:
        """N-way: each key's ``provider:model`` backend (empty for a pair)."""
        return route_models(self.models) if self.models is not None else {}

    def route_keys(self) -> tuple[list[str], bool]:
        """The route keys and whether they are N models (``strong`` and ``weak`` for a pair;
        both forms at once is an :class:`InvalidRouteError`)."""
        specs, nway = self.backend_specs("?", "?")
        return list(specs), nway

    def backend_specs(self, strong: str, weak: str) -> tuple[dict[str, str], bool]:
        """The route's backends by key, a pair's defaulting to ``strong``/``weak`` (the
        client's), and whether they are N models."""
        models = self.model_specs() or None
        return pair_or_models(self.strong or (strong if models is None else None),
                              self.weak or (weak if models is None else None), models, what="provider:model")


@dataclass
class Routed:
    """What one model string resolved to: its lifecycle, its backends by route key and its
    escalation checks (none: answers are never reviewed)."""

    key: str
    lifecycle: CallLifecycle
    backends: dict[str, ChatBackend]
    request: ModelRequest
    checks: tuple[Any, ...] = ()

    @property
    def policy(self) -> RoutingPolicy:
        return self.lifecycle.policy

    def reviews(self, call: RoutedCall) -> bool:
        """Whether ``call``'s answer is checked: escalation is on and a model above it
        could take over (a stream is held back meanwhile)."""
        return engine.holds(call, self.checks)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content
                        if isinstance(p, dict) and p.get("type") in ("text", "input_text") and
                        isinstance(p.get("text"), str))
    return ""


def request_turn(messages: Any, tools: Any = None, route_on: str = "last_user") -> Turn:
    """The :class:`Turn` of an OpenAI chat request (validating ``messages``)."""
    if not isinstance(messages, list) or not messages:
        raise InvalidPromptError("messages must be a non-empty list of {'role', 'content'} objects")
    pairs = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
            raise InvalidPromptError(f"messages[{i}] must be an object with a 'role', got {m!r:.200}")
        pairs.append((m["role"], _text(m.get("content"))))
    extra = ""
    if tools:
        from .sse import dumps

        extra = dumps(tools).decode()
    return turn_of(pairs, route_on, extra_input=extra)  # type: ignore[arg-type]


def _delta_text(chunk: Mapping[str, Any]) -> str:
    out = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content"):
            out.append(delta["content"])
        for call in delta.get("tool_calls") or ():
            args = (call.get("function") or {}).get("arguments")
            if args:
                out.append(args)
    return "".join(out)


def _answer_text(completion: Mapping[str, Any]) -> str:
    out = []
    for choice in completion.get("choices") or ():
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):
            out.append(message["content"])
        for call in message.get("tool_calls") or ():
            out.append((call.get("function") or {}).get("arguments") or "")
    return "".join(out)


class _Emitter:
    """What a stream sends on of one call's chunks: a finish chunk is held back (the record
    goes on it when no usage chunk was asked for), a usage-only chunk is kept for the end."""

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.held: dict[str, Any] | None = None
        self.usage_chunk: dict[str, Any] | None = None
        self.template: dict[str, Any] | None = None

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        self.template = self.template or chunk
        choices = chunk.get("choices") or ()
        if not choices:
            if chunk.get("usage") is not None:
                self.usage_chunk = chunk
            return []
        out = []
        if any(c.get("finish_reason") for c in choices):
            if self.held is not None:
                out.append(self.held)
            self.held = chunk
            return out
        if self.held is not None:  # content after a finish chunk (several choices): pass the held one on
            out.append(self.held)
            self.held = None
        out.append(chunk)
        return out

    def close(self, record: CallRecord, meta: dict[str, Any]) -> list[dict[str, Any]]:
        if self.include_usage:
            last = self.usage_chunk or _usage_chunk(self.template, record)
            last["routellm"] = meta
            return [self.held, last] if self.held is not None else [last]
        if self.held is not None:
            self.held["routellm"] = meta
            return [self.held]
        last = _usage_chunk(self.template, record)
        last.pop("usage", None)
        last["routellm"] = meta
        return [last]


def _usage_chunk(template: Mapping[str, Any] | None, record: CallRecord) -> dict[str, Any]:
    base = {k: template[k] for k in ("id", "object", "created", "model") if k in template} if template else {}
    usage = None
    if record.input_tokens is not None:
        usage = {"prompt_tokens": record.input_tokens, "completion_tokens": record.output_tokens or 0,
                 "total_tokens": record.input_tokens + (record.output_tokens or 0)}
    return {"object": "chat.completion.chunk", **base, "choices": [], "usage": usage}


def _meta(record: CallRecord, escalated: list[CallRecord]) -> dict[str, Any]:
    """The record as the reply carries it: with the records of the calls escalated from."""
    meta = record.metadata()
    if escalated:
        meta["escalations"] = [r.metadata() for r in escalated]
    return meta


class _Answer:
    """What the engine reviews and settles of a client call: a whole reply (``completion``)
    or a stream's chunks, with the provider's usage and model."""

    __slots__ = ("completion", "chunks", "usage", "model")

    def __init__(self, completion: Any, chunks: list[dict[str, Any]], usage: Any, model: str | None) -> None:
        self.completion, self.chunks, self.usage, self.model = completion, chunks, usage, model


class _Chunks(Tally):
    """A client stream's chunks as sent on (:class:`_Emitter`), kept raw while the answer
    waits for its review; the answer is the chunks with the stream's usage."""

    def __init__(self, call: RoutedCall, held: bool, include_usage: bool) -> None:
        super().__init__(call, held)
        self.out = _Emitter(include_usage)
        self.chunks: list[dict[str, Any]] = []

    def add(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if self.held:
            self.chunks.append(chunk)
        return self.out.feed(chunk)

    def end(self, stream: BackendStream) -> _Answer:
        return _Answer(None, self.chunks, stream.usage, stream.model)

    def tail(self, record: CallRecord, escalated: list[CallRecord]) -> list[dict[str, Any]]:
        return self.out.close(record, _meta(record, escalated))


class _ClientHooks(Hooks):
    """The routed client's hooks into the cascade engine: the route's backend answers an
    OpenAI request (``params``), reviewed by the route's checks."""

    def __init__(self, routed: "Routed | None", params: dict[str, Any], include_usage: bool = False,
                 stream: "RoutedAsyncStream | None" = None, reopen: Callable[[RoutedCall], Any] | None = None) -> None:
        self.routed, self.params, self.include_usage, self.stream = routed, params, include_usage, stream
        self.reopen = reopen  # a stream's own opener for the model up (default: the route's backend)
        self.record: CallRecord | None = None

    def params_for(self, call: RoutedCall) -> dict[str, Any]:
        """The request a call sends: a second sample's (an agreement check) is a whole
        call with the check's parameters (e.g. its temperature), even inside a stream."""
        if call.sample_of is None:
            return self.params
        params = {k: v for k, v in self.params.items() if k not in ("stream_options", "n")}
        return {**params, **call.sample_params}

    async def asend(self, call: RoutedCall) -> _Answer:
        assert self.routed is not None
        reply = await self.routed.backends[call.route].acomplete(self.params_for(call))
        return _Answer(reply.completion, [], reply.usage, reply.model)

    async def aopen(self, call: RoutedCall) -> BackendStream:
        if self.reopen is not None:
            return await self.reopen(call)
        assert self.routed is not None
        return await self.routed.backends[call.route].astream(self.params, include_usage=self.include_usage)

    def usage_of(self, answer: _Answer) -> Any:
        return answer.usage

    def model_of(self, answer: _Answer) -> str | None:
        return answer.model

    def text_of(self, answer: _Answer) -> str:
        return _answer_text(answer.completion)

    def delta_of(self, chunk: Mapping[str, Any]) -> str:
        return _delta_text(chunk)

    def tally(self, call: RoutedCall, held: bool) -> Tally:
        return _Chunks(call, held, self.include_usage)

    def held(self, call: RoutedCall) -> bool:
        return self.routed is not None and self.routed.reviews(call)

    def review_blocks(self, call: RoutedCall) -> bool:
        return self.routed is not None and blocking(self.routed.checks)

    def samples_ahead(self, call: RoutedCall) -> list[Any]:
        return ahead(self.routed.checks) if self.routed is not None and self.routed.reviews(call) else []

    def review(self, call: RoutedCall, answer: _Answer, streamed: bool) -> RoutedCall | None:
        if self.routed is None or not self.routed.reviews(call):
            return None
        if streamed:
            return call.review(self.routed.checks, stream_answer(answer.chunks, self.params, call.route),
                               answer.usage, model=answer.model)
        return call.review(self.routed.checks, completion_answer(answer.completion, self.params, call.route),
                           answer.usage, model=answer.model, text=_answer_text(answer.completion))

    def escalating(self, call: RoutedCall, up: RoutedCall) -> None:
        if self.stream is not None:  # the stream's decision follows the call that answers now
            self.stream.escalated.append(call.record)  # type: ignore[arg-type]
            self.stream.call = up

    def stamp(self, answer: _Answer, record: CallRecord, escalated: list[CallRecord]) -> dict[str, Any]:
        self.record = record
        completion = answer.completion
        completion["model"] = answer.model
        completion["routellm"] = _meta(record, escalated)
        return completion

    def tag(self, exc: BaseException, call: RoutedCall, record: CallRecord) -> None:
        if isinstance(exc, BackendError):
            exc.route = call.route
        super().tag(exc, call, record)


class RoutedAsyncStream:
    """An open routed stream: ``async for chunk in stream`` gives OpenAI chunk dicts (the
    last one carries ``routellm``: the call's record). The decision is known before the
    first chunk (:attr:`decision`); :attr:`record` is set once the call settled. Closing
    it early (``aclose``, leaving an ``async with``/``async for``) settles the call as
    abandoned.

    With escalation (``routed.checks``), a call's chunks are held back while a model
    above could take over (:attr:`holding`): its answer is reviewed once complete, then
    released or re-sent to the next model up (:attr:`call` and :attr:`decision` then
    follow the new call; :attr:`escalated` lists the records of the calls escalated
    from). The decision is final once the first chunk arrived."""

    def __init__(self, call: RoutedCall, source: BackendStream, *, include_usage: bool,
                 wrap: Callable[[dict[str, Any]], Any] | None = None, routed: "Routed | None" = None,
                 request: Mapping[str, Any] | None = None,
                 reopen: Callable[[RoutedCall], Any] | None = None) -> None:
        self.call = call
        self._source = source
        self._wrap = wrap
        self._routed = routed
        self.escalated: list[CallRecord] = []
        hooks = _ClientHooks(routed, dict(request or {}), include_usage, self, reopen)
        self._agen = engine.astream(call, hooks, source)
        self._started = False
        self._closed = False

    @property
    def decision(self) -> CallRecord:
        """The routing decision of the current call as a record (status ``in_flight``)."""
        return self.call.preview_record()

    @property
    def record(self) -> CallRecord | None:
        return self.call.record

    @property
    def holding(self) -> bool:
        """The current call's chunks are held back until its answer passed the checks."""
        return self._reviews(self.call)

    def _reviews(self, call: RoutedCall) -> bool:
        return self._routed is not None and self._routed.reviews(call)

    def __aiter__(self) -> "RoutedAsyncStream":
        return self

    async def __anext__(self) -> Any:
        self._started = True
        chunk = await self._agen.__anext__()
        return self._wrap(chunk) if self._wrap is not None else chunk

    async def aclose(self) -> None:
        """Stop reading: closes the backend's connection and settles the call (abandoned
        when it had not finished)."""
        if self._closed:
            return
        self._closed = True
        if not self._started:  # the generator never ran: its finally would not either
            try:
                await self._source.aclose()
            finally:
                self.call.abandon()
            return
        await self._agen.aclose()

    close = aclose

    async def __aenter__(self) -> "RoutedAsyncStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class AsyncRoutedClient:
    """The routed client, async (the server uses it). ``client.chat.completions.create(...)``
    mirrors ``openai.AsyncOpenAI``; with ``stream=True`` it returns a
    :class:`RoutedAsyncStream` once the backend accepted the request.

    - ``strong``/``weak``: ``provider:model`` specs (``openai:gpt-4o``,
      ``anthropic:claude-3-5-sonnet-latest``), or :class:`ChatBackend` objects.
    - ``routes``: named routes (``{"fast": RouteConfig(router="length", threshold=0.7)}``).
    - ``routers``: the routers a ``router-<name>-...`` model may name (default: any registered).
    - ``budget``: the :class:`Budget` of calls that pass none; ``store``: a state store or
      URL (``memory://`` default, ``sqlite:///path``, ``redis://...``) shared by every policy,
      so a scope's spend is one number across routes.
    - ``prices``: the price table (default :meth:`PriceTable.default`).
    - keys and base URLs: ``openai_api_key``/``openai_base_url``/``anthropic_api_key``/
      ``anthropic_base_url``, else ``OPENAI_API_KEY`` & co.; or ``backend_factory(spec)``
      building each backend.
    - ``transport``: the SDKs' HTTP layer, ``"auto"`` (aiohttp when ``httpx-aiohttp`` is
      installed, else httpx), ``"httpx"`` or ``"aiohttp"`` (see :class:`ChatBackend`).
    """

    def __init__(self, strong: "str | ChatBackend" = "openai:gpt-4o", weak: "str | ChatBackend" = "openai:gpt-4o-mini",
                 *, prices: PriceTable | None = None, budget: Budget | None = None, store: Any = None,
                 routes: Mapping[str, RouteConfig | Mapping[str, Any]] | None = None,
                 routers: list[str] | tuple[str, ...] | None = None, route_on: Literal["last_user", "conversation"] =
                 "last_user", steps: StepPolicy = "per_turn", on_no_text: Literal["strong", "weak", "error"] = "strong",
                 openai_api_key: str | None = None, openai_base_url: str | None = None,
                 anthropic_api_key: str | None = None, anthropic_base_url: str | None = None,
                 timeout: float = 600.0, max_retries: int = 2, anthropic_max_tokens: int = 4096,
                 router_options: Mapping[str, Mapping[str, Any]] | None = None, max_cached: int = 256,
                 backend_factory: Callable[[str], ChatBackend] | None = None,
                 transport: Transport = "auto") -> None:
        from ..state import open_store

        self._backend_options = {"openai_api_key": openai_api_key, "openai_base_url": openai_base_url,
                                 "anthropic_api_key": anthropic_api_key, "anthropic_base_url": anthropic_base_url,
                                 "timeout": timeout, "max_retries": max_retries,
                                 "anthropic_max_tokens": anthropic_max_tokens, "transport": transport}
        self._backends: dict[str, ChatBackend] = {}
        self._backend_factory = backend_factory
        self.strong = self._spec_of(strong)
        self.weak = self._spec_of(weak)
        self.routes: dict[str, RouteConfig] = {}
        for name, cfg in (routes or {}).items():
            try:
                self.routes[name] = cfg if isinstance(cfg, RouteConfig) else RouteConfig(**dict(cfg))
            except RouteLLMError as exc:
                raise type(exc)(f"route {name!r}: {exc}") from None
        self.routers = list(routers) if routers is not None else None
        self.prices = prices if prices is not None else PriceTable.default()
        self.budget = budget
        self.store = open_store(store)
        self.route_on = route_on
        self.steps: StepPolicy = steps
        self.on_no_text = on_no_text
        self.router_options = {k: dict(v) for k, v in (router_options or {}).items()}
        self.max_cached = int(max_cached)
        self._routed: OrderedDict[tuple[Any, ...], Routed] = OrderedDict()
        self._routers: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._router_locks: dict[str, threading.Lock] = {}
        self._listeners: list[Callable[[CallRecord, RoutedCall], Any]] = []
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(strong={self.strong!r}, weak={self.weak!r}, store={self.store.url!r})"

    # -- backends -------------------------------------------------------------------------
    def _spec_of(self, backend: "str | BackendSpec | ChatBackend") -> str:
        if isinstance(backend, ChatBackend):
            self._backends[backend.spec] = backend
            return backend.spec
        return str(parse_backend(backend))

    def backend(self, spec: str) -> ChatBackend:
        """The backend of a ``provider:model`` spec (built once, on first use)."""
        with self._lock:
            b = self._backends.get(spec)
            if b is None:
                b = self._backends[spec] = (self._backend_factory(spec) if self._backend_factory is not None else
                                            make_backend(spec, **self._backend_options))  # type: ignore[arg-type]
            return b

    def specs(self) -> list[str]:
        """Every backend spec the client may call (its pair and its routes')."""
        out = [self.strong, self.weak]
        for cfg in self.routes.values():
            out += [s for s in (cfg.strong, cfg.weak) if s is not None] + list(cfg.model_specs().values())
        return list(dict.fromkeys(str(parse_backend(s)) for s in out))

    # -- routers and lifecycles -------------------------------------------------------------
    def router(self, name: str) -> Any:
        """The router ``name``, loaded once and shared by every policy naming it."""
        with self._lock:
            hit = self._routers.get(name)
            if hit is not None:
                return hit
            lock = self._router_locks.setdefault(name, threading.Lock())
        with lock:
            with self._lock:
                hit = self._routers.get(name)
            if hit is None:
                from ..routers import load_router

                hit = load_router(name, **self.router_options.get(name, {}))
                with self._lock:
                    self._routers[name] = hit
        return hit

    def resolve(self, model: str) -> ModelRequest:
        """Parse ``model`` (raises :class:`InvalidModelError` naming the problem)."""
        return parse_model(model, routes=self.routes, routers=self.routers)

    def _cached(self, request: ModelRequest, budget: Budget | None) -> Routed | None:
        key = (request.key, budget)
        with self._lock:
            hit = self._routed.get(key)
            if hit is not None:
                self._routed.move_to_end(key)
            return hit

    def routed(self, model: str, *, budget: Budget | None = _UNSET) -> Routed:
        """The lifecycle that serves ``model`` under ``budget`` (built on first use; may
        load the router: call it off the event loop, as :meth:`arouted` does)."""
        request = self.resolve(model)
        budget = self.budget if budget is _UNSET else budget
        hit = self._cached(request, budget)
        if hit is not None:
            return hit
        if request.route is not None:
            key, cfg = request.route, self.routes[request.route]
        else:
            fraction, threshold = request.strong_fraction, request.threshold
            key = f"router-{request.router}-share{fraction}" if fraction is not None else \
                f"router-{request.router}-{threshold}"
            cfg = RouteConfig(router=request.router, threshold=threshold, strong_fraction=fraction, steps=self.steps)
        specs, nway = cfg.backend_specs(self.strong, self.weak)
        backends = {k: self.backend(spec) for k, spec in specs.items()}
        router = cfg.router_or_default(nway)
        policy = cfg.make_policy(list(backends), nway, router=None if cfg.router_options else self.router(router),
                                 default_names={k: b.model for k, b in backends.items()}, budget=budget,
                                 store=self.store, online_key=_online_key(key, budget))
        try:
            lifecycle = CallLifecycle(policy, backends={k: Backend(k, b.model, b.provider) for k, b in backends.items()},
                                      prices=self.prices, on_no_text=self.on_no_text, **cfg.lifecycle_options())
        except BaseException:
            policy.close()
            raise
        return self._remember(request, budget, Routed(key, lifecycle, backends, request, cfg.checks))

    def _remember(self, request: ModelRequest, budget: Budget | None, routed: Routed) -> Routed:
        with self._lock:
            existing = self._routed.get((request.key, budget))
            if existing is not None:
                return existing
            self._routed[(request.key, budget)] = routed
            while len(self._routed) > self.max_cached:
                _, old = self._routed.popitem(last=False)
                old.policy.close()
        return routed

    async def arouted(self, model: str, *, budget: Budget | None = _UNSET) -> Routed:
        request = self.resolve(model)
        b = self.budget if budget is _UNSET else budget
        hit = self._cached(request, b)
        if hit is not None:
            return hit
        router = self.routes[request.route].router if request.route is not None else request.router
        with self._lock:
            loaded = router in self._routers
        if loaded or is_model_free(router):
            return self.routed(model, budget=b)
        return await asyncio.to_thread(self.routed, model, budget=b)

    def on_settled(self, listener: Callable[[CallRecord, RoutedCall], Any]) -> None:
        """Call ``listener(record, call)`` whenever a call settles (metrics, logs)."""
        self._listeners.append(listener)

    def _watch(self, call: RoutedCall) -> None:
        for listener in self._listeners:
            call.on_settled(lambda record, _l=listener: _l(record, call))

    # -- calls ------------------------------------------------------------------------------
    async def begin(self, model: str, messages: Any, *, tools: Any = None, max_tokens: Any = None,
                    scope: str | None = None, api_key_id: str | None = None, budget: Budget | None = _UNSET,
                    route: str | None = None, request: Mapping[str, Any] | None = None,
                    **deprecated: Any) -> tuple[Routed, RoutedCall]:
        """Resolve ``model``, decide and reserve: the call in flight (settle it). ``route``
        forces one: ``"strong"``/``"weak"``, or a model key of an N-way route (``force=``,
        its old name, still works with a ``DeprecationWarning``)."""
        route = _route_arg(route, deprecated)
        routed = await self.arouted(model, budget=budget)
        if routed.checks and request is not None:
            check_request_schemas(request)  # a schema no check could validate in bounded time: refused now
        turn = request_turn(messages, tools, self.route_on)
        call = await routed.lifecycle.abegin(turn, force=route, scope=scope,
                                             max_output_tokens=max_tokens if isinstance(max_tokens, int) else None,
                                             api_key=api_key_id)
        self._watch(call)
        return routed, call

    async def complete_raw(self, body: Mapping[str, Any], *, scope: str | None = None, api_key_id: str | None = None,
                           budget: Budget | None = _UNSET, route: str | None = None, **deprecated: Any
                           ) -> tuple[dict[str, Any], CallRecord]:
        """A whole (not streamed) routed call on an OpenAI request body: the OpenAI
        completion dict (``model`` = the model that answered, ``routellm`` = the record)."""
        params = dict(body)
        model = params.pop("model", None)
        params.pop("stream", None)
        routed, call = await self.begin(model, params.get("messages"), tools=params.get("tools"),  # type: ignore[arg-type]
                                        max_tokens=params.get("max_completion_tokens") or params.get("max_tokens"),
                                        scope=scope, api_key_id=api_key_id, budget=budget, route=route, request=params,
                                        **deprecated)
        hooks = _ClientHooks(routed, params)
        completion = await engine.arun(call, hooks)
        record = hooks.record
        return completion, record  # type: ignore[return-value]

    async def stream_raw(self, body: Mapping[str, Any], *, scope: str | None = None, api_key_id: str | None = None,
                         budget: Budget | None = _UNSET, route: str | None = None,
                         wrap: Callable[[dict[str, Any]], Any] | None = None, **deprecated: Any) -> RoutedAsyncStream:
        """Open a routed stream on an OpenAI request body (returns once the backend
        accepted it: a backend that refuses raises :class:`BackendError` here)."""
        params = dict(body)
        model = params.pop("model", None)
        params.pop("stream", None)
        include_usage = bool((params.get("stream_options") or {}).get("include_usage"))
        routed, call = await self.begin(model, params.get("messages"), tools=params.get("tools"),  # type: ignore[arg-type]
                                        max_tokens=params.get("max_completion_tokens") or params.get("max_tokens"),
                                        scope=scope, api_key_id=api_key_id, budget=budget, route=route, request=params,
                                        **deprecated)

        hooks = _ClientHooks(routed, params, include_usage)
        source = await engine.aopen_stream(call, hooks)
        return RoutedAsyncStream(call, source, include_usage=include_usage, wrap=wrap, routed=routed, request=params)

    async def create(self, *, model: str, messages: list[Mapping[str, Any]], stream: bool = False,
                     scope: str | None = None, api_key_id: str | None = None, budget: Budget | None = _UNSET,
                     route: str | None = None, **params: Any) -> Any:
        """``chat.completions.create``: an ``openai.types.chat.ChatCompletion`` (with the
        record as ``.routellm``), or with ``stream=True`` a :class:`RoutedAsyncStream` of
        ``ChatCompletionChunk`` objects. ``scope`` keys the budget (e.g. a user or a
        client key); ``api_key_id`` names the caller's key in the ledger (never the secret);
        ``route`` forces a route (``"strong"``/``"weak"`` or a model key)."""
        deprecated = {"force": params.pop("force")} if "force" in params else {}
        body = {"model": model, "messages": messages, **params}
        if stream:
            from openai.types.chat import ChatCompletionChunk

            return await self.stream_raw(body, scope=scope, api_key_id=api_key_id, budget=budget, route=route,
                                         wrap=lambda d: ChatCompletionChunk.construct(**d), **deprecated)
        from openai.types.chat import ChatCompletion

        completion, _ = await self.complete_raw(body, scope=scope, api_key_id=api_key_id, budget=budget, route=route,
                                                **deprecated)
        return ChatCompletion.construct(**completion)

    acreate = create

    def budget_state(self, scope: str, budget: Budget | None = _UNSET) -> Any:
        """The budget state of ``scope`` in the store (``None`` without a budget)."""
        b = self.budget if budget is _UNSET else budget
        return None if b is None else self.store.budget_state(b, scope)

    async def warm_up(self, routers: "list[str] | None" = None) -> None:
        """Pay the first call's one-off costs now: load each router and score one prompt
        through it (embedders load lazily), import the SDKs and open each backend's client
        (and its TLS context) on this loop. A server calls it before taking traffic, so the
        first requests are not the slowest and no request pays an import."""
        names = list(dict.fromkeys(routers if routers is not None else (self.routers or [])))

        def load(name: str) -> None:
            self.router(name).score(["warm up"])

        await asyncio.gather(*(asyncio.to_thread(load, n) for n in names))
        from openai.types.chat import ChatCompletion, ChatCompletionChunk  # noqa: F401  (the reply types)

        for spec in self.specs():
            self.backend(spec).open()

    async def aclose(self) -> None:
        """Checkpoint the policies and close the SDK clients of this loop."""
        with self._lock:
            routed = list(self._routed.values())
            backends = list(self._backends.values())
        for r in routed:
            r.policy.close()
        for b in backends:
            await b.aclose()

    close = aclose


def _route_arg(route: str | None, deprecated: Mapping[str, Any]) -> str | None:
    """``route``, or ``force`` (its old name) with a ``DeprecationWarning``."""
    unknown = sorted(set(deprecated) - {"force"})
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {unknown}")
    if not deprecated:
        return route
    given = {"force": deprecated["force"], **({"route": route} if route is not None else {})}
    return renamed(given, "RoutedClient", {"force": "route"})["route"]


def _online_key(key: str, budget: Budget | None) -> str:
    return key if budget is None else f"{key}|budget-{_digest(budget)}"


def _digest(budget: Budget) -> str:
    return hashlib.sha1(budget.model_dump_json().encode()).hexdigest()[:10]


# -- the sync client: the async one on a private loop thread -------------------------------

class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="routellm-client", daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # KeyboardInterrupt and the like: the call settles as cancelled
            raise

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()


class RoutedStream:
    """A routed stream for sync code: iterate for ``ChatCompletionChunk`` objects; ``close``
    (or leaving a ``with`` block / breaking a ``for`` loop then dropping it) settles it."""

    def __init__(self, stream: RoutedAsyncStream, loop: _LoopThread) -> None:
        self._stream, self._loop = stream, loop
        self._closed = False

    @property
    def decision(self) -> CallRecord:
        return self._stream.decision

    @property
    def record(self) -> CallRecord | None:
        return self._stream.record

    @property
    def holding(self) -> bool:
        return self._stream.holding

    @property
    def escalated(self) -> list[CallRecord]:
        return self._stream.escalated

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._closed:
            raise StopIteration
        try:
            return self._loop.run(self._stream.__anext__())
        except StopAsyncIteration:
            self._closed = True
            raise StopIteration from None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.run(self._stream.aclose())

    def __enter__(self) -> "RoutedStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed and self._loop.loop.is_running():
                asyncio.run_coroutine_threadsafe(self._stream.aclose(), self._loop.loop)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class RoutedClient:
    """The routed client for sync code: the same arguments as :class:`AsyncRoutedClient`
    (whose calls it runs on a private event loop thread).

        client = RoutedClient(strong="openai:gpt-4o", weak="anthropic:claude-3-5-haiku-latest")
        client.chat.completions.create(model="router-mf-share0.3", messages=[...])
    """

    def __init__(self, strong: "str | ChatBackend" = "openai:gpt-4o", weak: "str | ChatBackend" = "openai:gpt-4o-mini",
                 **kwargs: Any) -> None:
        self.aclient = AsyncRoutedClient(strong, weak, **kwargs)
        self._loop: _LoopThread | None = None
        self._loop_lock = threading.Lock()
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def __repr__(self) -> str:
        return repr(self.aclient).replace("AsyncRoutedClient", "RoutedClient", 1)

    @property
    def store(self) -> Any:
        return self.aclient.store

    def _thread(self) -> _LoopThread:
        with self._loop_lock:
            if self._loop is None:
                self._loop = _LoopThread()
            return self._loop

    def create(self, *, model: str, messages: list[Mapping[str, Any]], stream: bool = False, **params: Any) -> Any:
        """``chat.completions.create``: a ``ChatCompletion`` (record in ``.routellm``) or,
        with ``stream=True``, a :class:`RoutedStream` of ``ChatCompletionChunk`` objects."""
        loop = self._thread()
        result = loop.run(self.aclient.create(model=model, messages=messages, stream=stream, **params))
        return RoutedStream(result, loop) if stream else result

    def on_settled(self, listener: Callable[[CallRecord, RoutedCall], Any]) -> None:
        self.aclient.on_settled(listener)

    def budget_state(self, scope: str, budget: Budget | None = _UNSET) -> Any:
        return self.aclient.budget_state(scope, budget)

    def close(self) -> None:
        with self._loop_lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            try:
                loop.run(self.aclient.aclose())
            finally:
                loop.stop()

    def __enter__(self) -> "RoutedClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
