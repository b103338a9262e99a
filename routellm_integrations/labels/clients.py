"""The one thing labelling needs from a model: answer a chat, say what it cost in tokens.

Why a protocol of our own rather than a framework's chat model: the core stays free of
LangChain/LlamaIndex, and the labeller, the judge and shadow sampling can all drive any
backend (the official OpenAI/Anthropic SDKs here, a LangChain chat model through
``langchain_routellm.labelling.LangChainChatClient``) the same way.

Secrets: a client keeps its API key in a private attribute that ``repr`` never shows,
and exposes :meth:`redact` so error messages that reach a report can be scrubbed.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..costs import Usage
from ..errors import RouteLLMError
from ..extras import require

__all__ = ["AnthropicChatClient", "ChatClient", "Completion", "MissingCredentialsError", "OpenAIChatClient"]


class MissingCredentialsError(RouteLLMError, ValueError):
    """No API key was given and the environment variable meant to hold it is unset."""


@dataclass(frozen=True)
class Completion:
    """One answer: its text, the usage the provider reported (``None`` if it reported
    none) and the model that answered (the provider's name for it, e.g. a dated snapshot)."""

    text: str
    usage: Usage | None
    model: str


@runtime_checkable
class ChatClient(Protocol):
    """Anything that can answer a list of ``{"role", "content"}`` messages.

    ``model`` names the model for prices, work keys and label records; ``provider`` is
    the price table's provider name (``"openai"``, ``"anthropic"``) or ``None``."""

    model: str
    provider: str | None

    async def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> Completion: ...


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` (an API key) masked, for messages that reach reports or logs."""
    if secret and len(secret) >= 4:
        return text.replace(secret, "***")
    return text


_DEFAULT = object()


class _SDKClient(ABC):
    """Shared plumbing: one SDK client per event loop (an async HTTP pool belongs to the
    loop that opened it, and ``label_prompts`` runs a fresh loop per call)."""

    #: the provider a client names by default (prices are looked up under it)
    default_provider: str

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 provider: str | None | object = _DEFAULT, temperature: float | None = None, max_retries: int = 2,
                 timeout: float = 600.0) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        self.model = model
        # None: price under any provider (an OpenAI-compatible server's own model names)
        self.provider: str | None = self.default_provider if provider is _DEFAULT else provider  # type: ignore[assignment]
        self.base_url = base_url
        self.temperature = temperature
        self.max_retries = int(max_retries)
        self.timeout = float(timeout)
        self._api_key = api_key
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}

    def __repr__(self) -> str:
        where = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"{type(self).__name__}(model={self.model!r}{where})"

    def redact(self, text: str) -> str:
        return redact(text, self._api_key)

    @abstractmethod
    def _make(self) -> Any:
        """This event loop's SDK client."""

    def _sdk(self) -> Any:
        loop = asyncio.get_running_loop()
        for key, (lp, _) in list(self._clients.items()):
            if lp.is_closed():
                del self._clients[key]
        hit = self._clients.get(id(loop))
        if hit is None or hit[0] is not loop:
            hit = self._clients[id(loop)] = (loop, self._make())
        return hit[1]

    async def aclose(self) -> None:
        """Close the SDK client of the running loop (others die with their loops)."""
        hit = self._clients.pop(id(asyncio.get_running_loop()), None)
        if hit is not None:
            await hit[1].close()


class OpenAIChatClient(_SDKClient):
    """Chat completions through the official ``openai.AsyncOpenAI``: OpenAI itself or any
    OpenAI-compatible server (vLLM, Ollama, a gateway) via ``base_url``. ``api_key=None``
    lets the SDK read ``OPENAI_API_KEY``."""

    default_provider = "openai"

    def _make(self) -> Any:
        openai = require("openai", extra="openai", feature="labelling with an OpenAI-compatible judge")

        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self._api_key, max_retries=self.max_retries,
                                  timeout=self.timeout)

    async def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> Completion:
        extra: dict[str, Any] = {} if self.temperature is None else {"temperature": self.temperature}
        resp = await self._sdk().chat.completions.create(model=self.model, messages=messages,  # type: ignore[arg-type]
                                                         max_tokens=max_tokens, **extra)
        text = (resp.choices[0].message.content or "") if resp.choices else ""
        usage = Usage.from_dict(resp.usage.model_dump()) if resp.usage is not None else None
        return Completion(text=text, usage=usage, model=resp.model or self.model)


class AnthropicChatClient(_SDKClient):
    """Messages through the official ``anthropic.AsyncAnthropic``. System messages are sent
    as Anthropic's ``system`` parameter. ``api_key=None`` lets the SDK read
    ``ANTHROPIC_API_KEY``."""

    default_provider = "anthropic"

    def _make(self) -> Any:
        anthropic = require("anthropic", extra="anthropic", feature="labelling with an Anthropic judge")

        return anthropic.AsyncAnthropic(base_url=self.base_url, api_key=self._api_key, max_retries=self.max_retries,
                                        timeout=self.timeout)

    async def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> Completion:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]
        extra: dict[str, Any] = {} if self.temperature is None else {"temperature": self.temperature}
        if system:
            extra["system"] = system
        resp = await self._sdk().messages.create(model=self.model, messages=turns,  # type: ignore[arg-type]
                                                 max_tokens=max_tokens, **extra)
        text = "".join(getattr(b, "text", "") for b in resp.content if getattr(b, "type", None) == "text")
        usage = Usage.from_dict(resp.usage.model_dump()) if resp.usage is not None else None
        return Completion(text=text, usage=usage, model=resp.model or self.model)
