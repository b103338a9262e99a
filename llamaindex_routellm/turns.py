"""What a LlamaIndex call routes on.

Chat messages go through the core :func:`~routellm_integrations.routing.turn_of` (the
same extraction as LangChain's ``RoutedChat``, so a conversation routes alike in both).
A templated call (``llm.predict(template, context_str=..., query_str=...)``, as query
engines and response synthesizers make) routes on its ``query_str``: the question, not
the retrieved context the prompt was filled with. The question travels to the chat or
completion call LlamaIndex makes inside ``predict`` in a context variable, set only
while that method runs (the call begins, and routes, before it returns).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from contextvars import ContextVar
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.prompts import BasePromptTemplate

from routellm_integrations.errors import InvalidPromptError
from routellm_integrations.routing import Turn, turn_of, turn_of_prompt
from routellm_integrations.routing.turn import RouteOn, clean_text

RouteOnFn = Callable[[Sequence[ChatMessage]], str]
#: the LLM methods a query engine calls with a template and its ``query_str``
TEMPLATED_METHODS = ("predict", "apredict", "stream", "astream", "structured_predict", "astructured_predict")

_QUESTION: ContextVar[Optional[str]] = ContextVar("routellm_question", default=None)


def pairs_of(messages: Sequence[ChatMessage]) -> List[Tuple[str, str]]:
    """``(role, text)`` per message: the role's value (``user``, ``assistant``, ``tool``,
    ``chatbot``...; the core normalises them) and the text of its text blocks."""
    return [(m.role.value, m.content or "") for m in messages]


def chat_turn(messages: Sequence[ChatMessage], route_on: Union[RouteOn, RouteOnFn], *, forced: bool,
              extra_input: str = "") -> Turn:
    """The turn of a chat call. A forced call needs no user message (nothing is scored)."""
    if not messages:
        raise InvalidPromptError("no messages to route: give at least one message")
    text, mode = _QUESTION.get(), route_on
    if callable(route_on):
        text, mode = route_on(messages), "last_user"
        if not isinstance(text, str):
            raise InvalidPromptError(f"route_on returned {type(text).__name__}, not the text to route on")
    pairs = pairs_of(messages)
    try:
        return turn_of(pairs, mode, text=text, extra_input=extra_input)  # type: ignore[arg-type]
    except InvalidPromptError:
        if not forced:
            raise
        return turn_of(pairs, text="", extra_input=extra_input)


def prompt_turn(prompt: str) -> Turn:
    """The turn of a completion call: the prompt, or the question it was templated from."""
    turn = turn_of_prompt(prompt)
    question = _QUESTION.get()
    return dataclasses.replace(turn, text=clean_text(question)) if question else turn


def tools_input(tools: Sequence[Any]) -> str:
    """The tool schemas as the provider receives them: billed input, sized for the
    budget's bound (never scored)."""
    schemas = []
    for tool in tools:
        metadata = getattr(tool, "metadata", None)
        try:
            schemas.append(metadata.to_openai_tool(skip_length_check=True) if metadata is not None else str(tool))
        except Exception:  # noqa: BLE001 - a schema that cannot be built still has a name
            schemas.append(str(getattr(metadata, "name", tool)))
    return json.dumps(schemas, default=str)


def tool_messages(user_msg: Optional[Union[str, ChatMessage]],
                  chat_history: Optional[List[ChatMessage]]) -> List[ChatMessage]:
    """The messages of a tool-calling call, as the backend will assemble them."""
    messages = list(chat_history or [])
    if user_msg is not None:
        messages.append(ChatMessage(role=MessageRole.USER, content=user_msg) if isinstance(user_msg, str)
                        else user_msg)
    return messages


def question_of(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Optional[str]:
    """A templated call's ``query_str``: an argument, or bound earlier with
    ``partial_format`` (as response synthesizers do)."""
    question = kwargs.get("query_str")
    if question is None:
        prompt = kwargs.get("prompt", next((a for a in args if isinstance(a, BasePromptTemplate)), None))
        question = (getattr(prompt, "kwargs", None) or {}).get("query_str")
    return question if isinstance(question, str) and question.strip() else None


def _on_question(name: str) -> Callable[..., Any]:
    base = getattr(FunctionCallingLLM, name)

    def question(self: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Optional[str]:
        return None if callable(self.route_on) else question_of(args, kwargs)

    if asyncio.iscoroutinefunction(base):
        async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            token = _QUESTION.set(question(self, args, kwargs))
            try:
                return await base(self, *args, **kwargs)
            finally:
                _QUESTION.reset(token)
    else:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            token = _QUESTION.set(question(self, args, kwargs))
            try:
                return base(self, *args, **kwargs)
            finally:
                _QUESTION.reset(token)
    method.__name__, method.__qualname__, method.__doc__ = name, name, base.__doc__
    return method


def route_templated_calls_on_the_question(cls: type) -> type:
    """Class decorator: ``cls``'s templated methods route on the template's question."""
    for name in TEMPLATED_METHODS:
        setattr(cls, name, _on_question(name))
    return cls
