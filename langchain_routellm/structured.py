"""Native structured output for ``RoutedChat``: ``method="json_schema"`` / ``"json_mode"``
route between each backend's own ``with_structured_output(schema, method=...)``, so the
provider's native mechanism (OpenAI's ``response_format``, ...) is what answers.

The routed call is one :class:`~routellm_integrations.routing.RoutedCall` like any
other: the backend's run carries the ``routellm_*`` metadata, the raw message gets
``response_metadata["routellm"]``, and the call settles on every exit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda

from routellm_integrations.routing import RoutedCall

from .messages import chunk_text

if TYPE_CHECKING:
    from .chat_models import RoutedChat

__all__ = ["native_structured_output"]


def _parse_errors() -> tuple[type[BaseException], ...]:
    import json

    from langchain_core.exceptions import OutputParserException
    from pydantic import ValidationError

    return (ValidationError, json.JSONDecodeError, OutputParserException)


_PARSE_ERRORS = _parse_errors()


def native_structured_output(chat: "RoutedChat", schema: Any, *, method: str, include_raw: bool,
                             strict: bool | None) -> Runnable[Any, Any]:
    """A runnable that routes, then runs the chosen backend's own structured output."""
    from .answers import answer_of, schema_of

    extra = {"strict": strict} if strict is not None else {}
    per_route: dict[str, Runnable] = {}
    for route in chat._backends:
        backend = chat._backend(route)
        try:
            per_route[route] = backend.with_structured_output(schema, method=method, include_raw=True, **extra)
        except (NotImplementedError, TypeError, ValueError) as exc:
            raise ValueError(f"RoutedChat.with_structured_output(method={method!r}): the {route} backend "
                             f"({type(backend).__name__}) does not support it ({exc}); use "
                             "method='function_calling', which every backend shares") from exc
    wanted = schema_of(schema if method == "json_schema" else None)
    parse_checked = any(getattr(c, "__name__", "") == "invalid_structured_output" for c in chat._checks)

    def review(call: RoutedCall, out: Any) -> RoutedCall | None:
        """The call one model up when the answer failed a check, else None."""
        raw = out.get("raw") if isinstance(out, dict) else None
        if not chat._checks or not isinstance(raw, BaseMessage):
            return None
        error = out.get("parsing_error") if isinstance(out, dict) else None
        checks = chat._checks
        if error is not None and parse_checked:  # the backend's own parser refused it
            checks = (lambda _a: f"structured output failed to parse: {error}", *checks)
        return call.review(checks, answer_of(raw, response_schema=wanted, route=call.route),
                           getattr(raw, "usage_metadata", None),
                           model=(raw.response_metadata or {}).get("model_name"), text=chunk_text(raw))

    def refused(call: RoutedCall, exc: BaseException) -> RoutedCall | None:
        """The backend's SDK raised parsing the answer (OpenAI's ``parse`` does for invalid
        JSON): the provider answered and billed it, so escalate when the checks ask for
        valid structured output (its usage unknown: estimated from the input)."""
        if not parse_checked:
            return None
        return call.escalate(f"structured output failed to parse: {type(exc).__name__}: {str(exc)[:200]}")

    def finish(call: RoutedCall, out: Any) -> Any:
        raw = out.get("raw") if isinstance(out, dict) else None
        if isinstance(raw, BaseMessage):
            record = call.finish(getattr(raw, "usage_metadata", None),
                                 model=(raw.response_metadata or {}).get("model_name"), text=chunk_text(raw))
            raw.response_metadata = {**(raw.response_metadata or {}), "routellm": record.metadata()}
        else:
            call.finish(None)
        if include_raw:
            return out
        if isinstance(out, dict) and out.get("parsing_error") is not None:
            raise out["parsing_error"]
        return out["parsed"] if isinstance(out, dict) else out

    def invoke(input: Any, config: RunnableConfig) -> Any:
        messages = chat._convert_input(input).to_messages()
        call = chat._begin(messages, {}, config.get("metadata"), config.get("callbacks"))
        try:
            while True:
                try:
                    out = per_route[call.route].invoke(messages, chat._config_for(call, config))
                except _PARSE_ERRORS as exc:  # the SDK's own parser refused the answer it was sent
                    up = refused(call, exc)
                    if up is None:
                        raise
                    call = up
                    continue
                up = review(call, out)
                if up is None:
                    return finish(call, out)
                call = up
        except BaseException as exc:
            call.settle_on_exit(exc)
            raise

    async def ainvoke(input: Any, config: RunnableConfig) -> Any:
        messages = chat._convert_input(input).to_messages()
        call = await chat._abegin(messages, {}, config.get("metadata"), config.get("callbacks"))
        try:
            while True:
                try:
                    out = await per_route[call.route].ainvoke(messages, chat._config_for(call, config))
                except _PARSE_ERRORS as exc:
                    up = refused(call, exc)
                    if up is None:
                        raise
                    call = up
                    continue
                up = review(call, out)
                if up is None:
                    return finish(call, out)
                call = up
        except BaseException as exc:
            call.settle_on_exit(exc)
            raise

    return RunnableLambda(invoke, afunc=ainvoke, name="RoutedChatStructuredOutput")
