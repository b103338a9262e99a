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


def native_structured_output(chat: "RoutedChat", schema: Any, *, method: str, include_raw: bool,
                             strict: bool | None) -> Runnable[Any, Any]:
    """A runnable that routes, then runs the chosen backend's own structured output."""
    extra = {"strict": strict} if strict is not None else {}
    per_route: dict[str, Runnable] = {}
    for route in ("strong", "weak"):
        backend = chat._backend(route)
        try:
            per_route[route] = backend.with_structured_output(schema, method=method, include_raw=True, **extra)
        except (NotImplementedError, TypeError, ValueError) as exc:
            raise ValueError(f"RoutedChat.with_structured_output(method={method!r}): the {route} backend "
                             f"({type(backend).__name__}) does not support it ({exc}); use "
                             "method='function_calling', which both backends share") from exc

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
        with call:
            return finish(call, per_route[call.route].invoke(messages, chat._config_for(call, config)))

    async def ainvoke(input: Any, config: RunnableConfig) -> Any:
        messages = chat._convert_input(input).to_messages()
        call = await chat._abegin(messages, {}, config.get("metadata"), config.get("callbacks"))
        async with call:
            return finish(call, await per_route[call.route].ainvoke(messages, chat._config_for(call, config)))

    return RunnableLambda(invoke, afunc=ainvoke, name="RoutedChatStructuredOutput")
