"""A scripted chat model with bind_tools, streaming and usage, for fast unit tests
(LangChain's GenericFakeChatModel has no bind_tools and drops usage when streaming)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from routellm_integrations.testing.openai_compat import args_for_schema, count_tokens


def _text(m: BaseMessage) -> str:
    return m.content if isinstance(m.content, str) else " ".join(
        b.get("text", "") for b in m.content if isinstance(b, dict) and b.get("type") == "text")


class ScriptedChatModel(BaseChatModel):
    """Answers ``"<model>: <last human text>"``, or calls a tool when tools are bound and
    ``tool_choice`` forces one (or the text names one). Usage = the servers' token count.
    ``replies`` (AIMessage or str) are answered first; ``fail`` raises on every call."""

    model_name: str = Field(default="fake-model", alias="model")
    provider: str = "fake"
    replies: list[Any] = Field(default_factory=list)
    fail: Any = None
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, protected_namespaces=())
    _calls: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def calls(self) -> list[dict[str, Any]]:
        return self._calls

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(ls_provider=self.provider, ls_model_name=kwargs.get("model", self.model_name),
                               ls_model_type="chat")

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def _answer(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> AIMessage:
        with self._lock:
            self._calls.append({"messages": messages, "stop": stop, "kwargs": dict(kwargs)})
            reply = self.replies.pop(0) if self.replies else None
        if self.fail is not None:
            raise self.fail
        n_in = sum(count_tokens(_text(m)) for m in messages) + 3 * len(messages)
        if isinstance(reply, AIMessage):
            msg = reply.model_copy()
        else:
            last = next((_text(m) for m in reversed(messages) if m.type == "human"), "")
            tools = kwargs.get("tools") or []
            choice = kwargs.get("tool_choice")
            names = [t["function"]["name"] for t in tools]
            chosen = None
            if tools and choice in ("any", "required"):
                chosen = next((n for n in names if n in last), names[0])
            elif isinstance(choice, str) and choice in names:
                chosen = choice
            elif tools and messages[-1].type != "tool":
                chosen = next((n for n in names if n in last), None)
            if reply is None and chosen is not None:
                tool = next(t for t in tools if t["function"]["name"] == chosen)
                nums = [int(x) for x in __import__("re").findall(r"-?\d+", last)]
                args = args_for_schema(tool["function"].get("parameters"), nums)
                msg = AIMessage(content="", tool_calls=[{"name": chosen, "args": args,
                                                         "id": f"call_{len(self._calls)}", "type": "tool_call"}])
            else:
                text = reply if isinstance(reply, str) else f"{self.model_name}: {last}"
                for s in stop or []:
                    if s and s in text:
                        text = text[: text.index(s)]
                msg = AIMessage(content=text)
        n_out = max(1, count_tokens(_text(msg)) + sum(count_tokens(tc["name"] + json.dumps(tc["args"]))
                                                      for tc in msg.tool_calls))
        msg.usage_metadata = {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
        msg.response_metadata = {**msg.response_metadata, "model_name": self.model_name}
        return msg

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._answer(messages, stop, kwargs))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        msg = self._answer(messages, stop, kwargs)
        words = msg.content.split(" ") if isinstance(msg.content, str) and msg.content else []
        for i, w in enumerate(words):
            yield ChatGenerationChunk(message=AIMessageChunk(content=w if i == 0 else " " + w))
        for i, tc in enumerate(msg.tool_calls):
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[
                {"name": tc["name"], "args": json.dumps(tc["args"]), "id": tc["id"], "index": i}]))
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=msg.usage_metadata,
                                                         response_metadata={"model_name": self.model_name},
                                                         chunk_position="last"))
