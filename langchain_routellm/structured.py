"""Native structured output for ``RoutedChat``: ``method="json_schema"`` / ``"json_mode"``
route between each backend's own ``with_structured_output(schema, method=...)``, so the
provider's native mechanism (OpenAI's ``response_format``, ...) is what answers.

The routed call is one :class:`~routellm_integrations.routing.RoutedCall` like any
other, run by the core cascade engine (:mod:`routellm_integrations.routing.engine`)
through RoutedChat's public hooks for it (``begin_call``, ``call_config``,
``backends``, ``escalation_checks``): the backend's run carries the ``routellm_*``
metadata, the raw message gets ``response_metadata["routellm"]``, and the call settles
on every exit.
"""

from __future__ import annotations

from typing import Any, Protocol

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from routellm_integrations.routing import CallRecord, RoutedCall, engine
from routellm_integrations.routing.engine import Hooks

from .messages import chunk_text

__all__ = ["native_structured_output"]


class RoutesCalls(Protocol):
    """What this module needs of ``RoutedChat`` (its public hooks for runnables that call
    a backend themselves), so it needs no import of it."""

    backends: dict[str, Any]
    escalation_checks: tuple[Any, ...]

    def begin_call(self, input: Any, config: RunnableConfig | None = None) -> tuple[list[BaseMessage], RoutedCall]:
        ...

    async def abegin_call(self, input: Any, config: RunnableConfig | None = None
                          ) -> tuple[list[BaseMessage], RoutedCall]:
        ...

    def call_config(self, call: RoutedCall, config: RunnableConfig | None = None) -> RunnableConfig:
        ...


def _parse_errors() -> tuple[type[BaseException], ...]:
    import json

    from langchain_core.exceptions import OutputParserException
    from pydantic import ValidationError

    return (ValidationError, json.JSONDecodeError, OutputParserException)


_PARSE_ERRORS = _parse_errors()


class _StructuredHooks(Hooks):
    """One structured-output call on the engine: the chosen backend's own structured-output
    runnable answers (``{"raw", "parsed", "parsing_error"}``), with the route in its run."""

    def __init__(self, chat: RoutesCalls, per_route: dict[str, Runnable], messages: list[BaseMessage],
                 config: RunnableConfig, wanted: dict[str, Any] | None, include_raw: bool) -> None:
        self.chat, self.per_route, self.messages, self.config = chat, per_route, messages, config
        self.wanted, self.include_raw = wanted, include_raw
        self.checks = chat.escalation_checks
        self.parse_checked = any(getattr(c, "__name__", "") == "invalid_structured_output" for c in self.checks)

    def send(self, call: RoutedCall) -> Any:
        return self.per_route[call.route].invoke(self.messages, self.chat.call_config(call, self.config))

    async def asend(self, call: RoutedCall) -> Any:
        return await self.per_route[call.route].ainvoke(self.messages, self.chat.call_config(call, self.config))

    def usage_of(self, out: Any) -> Any:
        raw = _raw(out)
        return None if raw is None else getattr(raw, "usage_metadata", None)

    def model_of(self, out: Any) -> str | None:
        raw = _raw(out)
        return None if raw is None else (raw.response_metadata or {}).get("model_name")

    def text_of(self, out: Any) -> str | None:
        raw = _raw(out)
        return None if raw is None else chunk_text(raw)

    def review(self, call: RoutedCall, out: Any, streamed: bool) -> RoutedCall | None:
        """The call one model up when the answer failed a check, else None."""
        from .answers import answer_of

        raw = _raw(out)
        if not self.checks or raw is None:
            return None
        error = out.get("parsing_error")
        checks = self.checks
        if error is not None and self.parse_checked:  # the backend's own parser refused it
            checks = (lambda _a: f"structured output failed to parse: {error}", *checks)
        return call.review(checks, answer_of(raw, response_schema=self.wanted, route=call.route),
                           self.usage_of(out), model=self.model_of(out), text=chunk_text(raw))

    def rescue(self, call: RoutedCall, exc: Exception) -> RoutedCall | None:
        """The backend's SDK raised parsing the answer (OpenAI's ``parse`` does for invalid
        JSON): the provider answered and billed it, so escalate when the checks ask for
        valid structured output (its usage unknown: estimated from the input)."""
        if not isinstance(exc, _PARSE_ERRORS) or not self.parse_checked:
            return None
        return call.escalate(f"structured output failed to parse: {type(exc).__name__}: {str(exc)[:200]}")

    def stamp(self, out: Any, record: CallRecord, escalated: list[CallRecord]) -> Any:
        raw = _raw(out)
        if raw is not None:
            raw.response_metadata = {**(raw.response_metadata or {}), "routellm": record.metadata()}
        if self.include_raw:
            return out
        if isinstance(out, dict) and out.get("parsing_error") is not None:
            raise out["parsing_error"]
        return out["parsed"] if isinstance(out, dict) else out

    def backend_label(self, call: RoutedCall) -> str:
        return type(self.chat.backends[call.route]).__name__


def _raw(out: Any) -> BaseMessage | None:
    raw = out.get("raw") if isinstance(out, dict) else None
    return raw if isinstance(raw, BaseMessage) else None


def native_structured_output(chat: RoutesCalls, schema: Any, *, method: str, include_raw: bool,
                             strict: bool | None) -> Runnable[Any, Any]:
    """A runnable that routes, then runs the chosen backend's own structured output."""
    from .answers import schema_of

    extra = {"strict": strict} if strict is not None else {}
    per_route: dict[str, Runnable] = {}
    for route, backend in chat.backends.items():
        try:
            per_route[route] = backend.with_structured_output(schema, method=method, include_raw=True, **extra)
        except (NotImplementedError, TypeError, ValueError) as exc:
            raise ValueError(f"RoutedChat.with_structured_output(method={method!r}): the {route} backend "
                             f"({type(backend).__name__}) does not support it ({exc}); use "
                             "method='function_calling', which every backend shares") from exc
    wanted = schema_of(schema if method == "json_schema" else None)

    def invoke(input: Any, config: RunnableConfig) -> Any:
        messages, call = chat.begin_call(input, config)
        return engine.run(call, _StructuredHooks(chat, per_route, messages, config, wanted, include_raw))

    async def ainvoke(input: Any, config: RunnableConfig) -> Any:
        messages, call = await chat.abegin_call(input, config)
        return await engine.arun(call, _StructuredHooks(chat, per_route, messages, config, wanted, include_raw))

    return RunnableLambda(invoke, afunc=ainvoke, name="RoutedChatStructuredOutput")
