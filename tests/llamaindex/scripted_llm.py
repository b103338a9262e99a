"""A scripted LlamaIndex function-calling LLM: fast, deterministic, with usage and tool
calls, emitting LLM events like a real provider integration does."""

from __future__ import annotations

import asyncio
import json
from typing import Any, List, Optional, Sequence

from llama_index.core.base.llms.types import (ChatMessage, ChatResponse, CompletionResponse, LLMMetadata,
                                              MessageRole)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from pydantic import Field


class Boom(RuntimeError):
    pass


class ScriptedLLM(FunctionCallingLLM):
    """Answers from ``script`` in order (a string, or ``{"tool": name, "args": {...}}``), then
    repeats ``default``. Reports ``usage`` = (prompt, completion) tokens on every call."""

    name: str = "scripted"
    script: List[Any] = Field(default_factory=list)
    default: str = "done"
    usage: tuple = (11, 7)
    fail: bool = False
    calls: int = 0
    delay: float = 0.0

    @classmethod
    def class_name(cls) -> str:
        return "ScriptedLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=4096 if "small" in self.name else 128000, num_output=512,
                           is_chat_model=True, is_function_calling_model=True, model_name=self.name)

    def _next(self) -> Any:
        if self.fail:
            raise Boom(f"{self.name} is down")
        self.calls += 1
        return self.script.pop(0) if self.script else self.default

    def _raw(self) -> dict:
        return {"usage": {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1],
                          "total_tokens": sum(self.usage)}}

    def _message(self, item: Any) -> ChatMessage:
        if isinstance(item, dict):
            call = {"id": f"call_{self.calls}", "name": item["tool"], "arguments": json.dumps(item["args"])}
            return ChatMessage(role=MessageRole.ASSISTANT, content="", additional_kwargs={"tool_calls": [call]})
        return ChatMessage(role=MessageRole.ASSISTANT, content=f"[{self.name}] {item}")

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=self._message(self._next()), raw=self._raw())

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        return ChatResponse(message=self._message(self._next()), raw=self._raw())

    def _chunks(self, message: ChatMessage) -> list:
        out, text = [], ""
        words = (message.content or "").split(" ")
        for i, w in enumerate(words):
            delta = w if i == 0 else " " + w
            text += delta
            last = i == len(words) - 1
            out.append(ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text,
                                                        additional_kwargs=message.additional_kwargs if last else {}),
                                    delta=delta, raw=self._raw() if last else None))
        return out

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any):
        chunks = self._chunks(self._message(self._next()))
        return (c for c in chunks)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any):
        chunks = self._chunks(self._message(self._next()))

        async def gen():
            for chunk in chunks:
                yield chunk
        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=f"[{self.name}] {self._next()}", raw=self._raw())

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=f"[{self.name}] {self._next()}", raw=self._raw())

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        text = f"[{self.name}] {self._next()}"

        def gen():
            yield CompletionResponse(text=text, delta=text, raw=self._raw())
        return gen()

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        text = f"[{self.name}] {self._next()}"

        async def gen():
            yield CompletionResponse(text=text, delta=text, raw=self._raw())
        return gen()

    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: Optional[Any] = None,
                                 chat_history: Optional[List[ChatMessage]] = None, verbose: bool = False,
                                 allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                 **kwargs: Any) -> dict:
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg) if isinstance(user_msg, str)
                            else user_msg)
        return {"messages": messages, "tools": [t.metadata.name for t in tools], **kwargs}

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> List[ToolSelection]:
        calls = response.message.additional_kwargs.get("tool_calls", [])
        if not calls and error_on_no_tool_call:
            raise ValueError("no tool call")
        return [ToolSelection(tool_id=c["id"], tool_name=c["name"], tool_kwargs=json.loads(c["arguments"]))
                for c in calls]
