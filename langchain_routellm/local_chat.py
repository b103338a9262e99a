"""``ChatLocalModel``: the offline local model as a LangChain chat model, with usage.

LangChain's Hugging Face wrappers run such a model but report no token usage; this one
reports ``usage_metadata`` counted with the model's tokenizer, so usage handlers, the
cost tracker and ``RoutedChat`` treat it like any provider.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import LangSmithParams
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from routellm_integrations.errors import InvalidPromptError
from routellm_integrations.local_engine import (LOCAL_PROVIDER, STRONG_BUDGET, STRONG_MODEL, STRONG_SYSTEM,
                                                WEAK_MODEL, WEAK_SYSTEM, LocalChatEngine, shared_engine)

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def _text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return "\n".join(b if isinstance(b, str) else b.get("text", "") for b in message.content
                     if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text"))


class ChatLocalModel(BaseChatModel):
    """SmolLM2-135M-Instruct on the CPU. ``system_prompt`` is prepended when the
    conversation has none; ``max_tokens`` caps each answer."""

    model_name: str = Field(default=WEAK_MODEL, alias="model")
    max_tokens: int = Field(default=64, ge=1)
    system_prompt: str | None = WEAK_SYSTEM
    stop: list[str] | None = Field(default=None, alias="stop_sequences")

    model_config = ConfigDict(populate_by_name=True, protected_namespaces=(), extra="forbid")
    _engine: LocalChatEngine = PrivateAttr(default_factory=shared_engine)

    @property
    def _llm_type(self) -> str:
        return "routellm-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "max_tokens": self.max_tokens}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return LangSmithParams(ls_provider=LOCAL_PROVIDER, ls_model_name=self.model_name, ls_model_type="chat",
                               ls_max_tokens=kwargs.get("max_tokens", self.max_tokens))

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the local model (SmolLM2-135M) cannot call tools; use a provider model "
                                  "for tool-calling agents")

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        if not messages:
            raise InvalidPromptError("ChatLocalModel got no messages")
        chat = [{"role": _ROLES.get(m.type, "user"), "content": _text(m)} for m in messages]
        if self.system_prompt and chat[0]["role"] != "system":
            chat.insert(0, {"role": "system", "content": self.system_prompt})
        out = self._engine.generate(chat, int(kwargs.get("max_tokens", self.max_tokens)), stop or self.stop)
        usage = {"input_tokens": out.input_tokens, "output_tokens": out.output_tokens,
                 "total_tokens": out.input_tokens + out.output_tokens}
        message = AIMessage(content=out.text, usage_metadata=usage,  # type: ignore[arg-type]
                            response_metadata={"model_name": self.model_name, "model_provider": LOCAL_PROVIDER})
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)


def local_pair(max_tokens: int = 48, strong_max_tokens: int = STRONG_BUDGET) -> tuple[ChatLocalModel, ChatLocalModel]:
    """(strong, weak): the same local model, reasoning with a larger budget vs answering briefly."""
    return (ChatLocalModel(model=STRONG_MODEL, max_tokens=strong_max_tokens, system_prompt=STRONG_SYSTEM),
            ChatLocalModel(model=WEAK_MODEL, max_tokens=max_tokens, system_prompt=WEAK_SYSTEM))
