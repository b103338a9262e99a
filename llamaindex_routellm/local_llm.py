"""``LocalLLM``: the offline local model as a LlamaIndex LLM, reporting usage the way the
OpenAI integration does (``prompt_tokens``/``completion_tokens``), so
``TokenCountingHandler`` and ``RoutedLLM`` count and price it."""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Sequence

from llama_index.core.base.llms.types import (ChatMessage, ChatResponse, ChatResponseAsyncGen, ChatResponseGen,
                                              CompletionResponse, CompletionResponseAsyncGen,
                                              CompletionResponseGen, LLMMetadata, MessageRole)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.llm import LLM
from pydantic import ConfigDict, Field, PrivateAttr

from routellm_integrations.local_engine import (STRONG_BUDGET, STRONG_MODEL, STRONG_SYSTEM, WEAK_MODEL,
                                                WEAK_SYSTEM, LocalChatEngine, shared_engine)


class LocalLLM(LLM):
    """SmolLM2-135M-Instruct on the CPU (streaming yields the whole answer as one chunk)."""

    model: str = WEAK_MODEL
    max_tokens: int = Field(default=64, ge=1)
    local_system_prompt: Optional[str] = WEAK_SYSTEM
    model_config = ConfigDict(extra="forbid")  # a misspelt option must not silently mean its default
    _engine: LocalChatEngine = PrivateAttr(default_factory=shared_engine)

    @classmethod
    def class_name(cls) -> str:
        return "LocalLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=LocalChatEngine.context_window, num_output=self.max_tokens,
                           is_chat_model=True, is_function_calling_model=False, model_name=self.model)

    def _answer(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        chat = [{"role": m.role.value if m.role != MessageRole.TOOL else "user", "content": m.content or ""}
                for m in messages]
        if self.local_system_prompt and (not chat or chat[0]["role"] != "system"):
            chat.insert(0, {"role": "system", "content": self.local_system_prompt})
        out = self._engine.generate(chat, int(kwargs.get("max_tokens", self.max_tokens)), kwargs.get("stop"))
        usage = {"prompt_tokens": out.input_tokens, "completion_tokens": out.output_tokens,
                 "total_tokens": out.input_tokens + out.output_tokens}
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=out.text),
                            raw={"model": self.model, "usage": usage}, additional_kwargs=dict(usage))

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._answer(messages, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await asyncio.to_thread(self._answer, messages, **kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        response = self._answer(messages, **kwargs)
        response.delta = response.message.content
        return (r for r in [response])

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        response = await asyncio.to_thread(self._answer, messages, **kwargs)
        response.delta = response.message.content

        async def gen() -> ChatResponseAsyncGen:
            yield response
        return gen()

    def _complete(self, prompt: str, **kwargs: Any) -> CompletionResponse:
        r = self._answer([ChatMessage(role=MessageRole.USER, content=prompt)], **kwargs)
        return CompletionResponse(text=r.message.content or "", raw=r.raw, additional_kwargs=r.additional_kwargs)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return self._complete(prompt, **kwargs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return await asyncio.to_thread(self._complete, prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        r = self._complete(prompt, **kwargs)
        r.delta = r.text
        return (x for x in [r])

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        r = await asyncio.to_thread(self._complete, prompt, **kwargs)
        r.delta = r.text

        async def gen() -> CompletionResponseAsyncGen:
            yield r
        return gen()


def local_pair(max_tokens: int = 48, strong_max_tokens: int = STRONG_BUDGET) -> tuple[LocalLLM, LocalLLM]:
    """(strong, weak): the same local model, reasoning with a larger budget vs answering briefly."""
    return (LocalLLM(model=STRONG_MODEL, max_tokens=strong_max_tokens, local_system_prompt=STRONG_SYSTEM),
            LocalLLM(model=WEAK_MODEL, max_tokens=max_tokens, local_system_prompt=WEAK_SYSTEM))
