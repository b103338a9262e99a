"""The models a routed call reaches, through the official SDKs.

Both backends speak OpenAI's chat format to the client (dicts: ``chat.completion`` and
``chat.completion.chunk``). The OpenAI backend sends the request as it came (any
OpenAI-compatible server: OpenAI, vLLM, Ollama, a gateway); the Anthropic backend
translates it to the Messages API and the answer back (:mod:`.anthropic_format`).

Requests go through the SDK client's low-level ``post`` (``openai.AsyncOpenAI.post``,
``anthropic.AsyncAnthropic.post``), which keeps the SDK's authentication, retries,
timeouts and typed HTTP errors but neither re-validates the parameters (so new or
server-specific parameters pass through) nor builds response objects we would only
turn back into JSON. Streams are read as server-sent events.

Keys come from the arguments or the SDK's variables (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``). A key is held in a
private attribute, registered for redaction, and never appears in a ``repr``, an error
message or a log line.
"""

from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from .anthropic_format import StreamTranslator, from_message, to_messages_request
from .errors import BackendConfigError, BackendError
from .names import BackendSpec, parse_backend, safe_model_name
from .secrets import redact, register_secret
from .sse import aiter_sse, loads

__all__ = ["AnthropicBackend", "BackendReply", "BackendStream", "ChatBackend", "OpenAIBackend", "make_backend"]


@dataclass
class BackendReply:
    """A whole answer: the OpenAI-format completion, the usage to price (in the provider's
    own format) and the model that answered."""

    completion: dict[str, Any]
    usage: dict[str, Any] | None
    model: str


def _answered_by(answer: dict[str, Any]) -> str | None:
    """The model a provider's completion or chunk names, made safe for headers, the ledger
    and metric labels (:func:`~.names.safe_model_name`), written back into it so that
    what the caller forwards says the same; None when it names none."""
    raw = answer.get("model")
    model = safe_model_name(raw)
    if model != raw and "model" in answer:
        answer["model"] = model if model is not None else raw if isinstance(raw, str) else None
    return model


class BackendStream:
    """An open stream: iterate for OpenAI-format chunk dicts; ``usage`` and ``model`` are
    what the provider reported so far. Always :meth:`aclose` it (closes the connection)."""

    usage: dict[str, Any] | None = None
    model: str | None = None

    #: what a stream that stops short lacks, for the ``stream_cut`` error
    _end_marker = "the end of the answer"

    def __init__(self, backend: "ChatBackend", response: Any, provider: str) -> None:
        self._backend, self._response, self._provider = backend, response, provider
        self._events = aiter_sse(response.aiter_lines())
        self._done = False

    def __aiter__(self) -> "BackendStream":
        return self

    async def __anext__(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise StopAsyncIteration

    def _ended(self) -> bool:  # pragma: no cover - overridden
        """The provider's end-of-answer marker arrived."""
        return False

    async def _next_event(self) -> tuple[str | None, str]:
        """The next SSE event. A stream that closes before :meth:`_ended` is a
        ``stream_cut`` :class:`BackendError`; a transport error is the backend's error."""
        try:
            return await self._events.__anext__()
        except StopAsyncIteration:
            self._done = True
            if not self._ended():
                raise BackendError(f"backend {self._backend.spec} ended the stream before {self._end_marker}",
                                   provider=self._provider, model=self._backend.model, kind="stream_cut") from None
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._done = True
            raise self._backend.error(exc) from None

    async def aclose(self) -> None:
        self._done = True
        await self._response.aclose()


Transport = Literal["auto", "httpx", "aiohttp"]
TRANSPORTS: tuple[str, ...] = ("auto", "httpx", "aiohttp")


class ChatBackend(ABC):
    """One ``provider:model``; one SDK client per event loop (an async HTTP pool belongs to
    the loop that opened it).

    ``transport``: the SDK's HTTP layer. ``"aiohttp"`` is the SDKs' own
    ``DefaultAioHttpClient`` (the ``httpx-aiohttp`` package, in the ``server`` extra): with
    hundreds of connections open, httpx's pool spends milliseconds of CPU per request
    looking through them, aiohttp's does not. ``"auto"`` takes aiohttp when it is installed.
    """

    provider: str = ""
    env_key: str = ""
    env_base_url: str = ""

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 600.0, max_retries: int = 2, transport: Transport = "auto") -> None:
        if not isinstance(model, str) or not model.strip():
            raise BackendConfigError(f"a backend needs a model name, got {model!r}")
        if transport not in TRANSPORTS:
            raise BackendConfigError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
        self.transport = _resolve_transport(transport)
        self.model = model
        self.base_url = base_url or os.environ.get(self.env_base_url) or None
        key = api_key if api_key is not None else os.environ.get(self.env_key)
        if not key:
            key = self._missing_key()
        register_secret(key)
        self._api_key = key
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}

    def _missing_key(self) -> str:
        raise BackendConfigError(f"no API key for {self.spec}: set {self.env_key} or pass the key explicitly")

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.model}"

    def __repr__(self) -> str:
        where = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"{type(self).__name__}({self.spec!r}{where})"

    # -- the SDK client of this loop ----------------------------------------------------
    @abstractmethod
    def _make(self) -> Any:
        """This event loop's SDK client."""

    def _http_client(self, sdk: Any) -> Any:
        """The ``http_client`` to give the SDK client (None: the SDK's httpx default). Over
        aiohttp, a transport that hands over what arrived before a cut stream
        (:mod:`.aiohttp_transport`)."""
        if self.transport != "aiohttp":
            return None
        from .aiohttp_transport import aiohttp_client

        return aiohttp_client(sdk)

    def _sdk(self) -> Any:
        loop = asyncio.get_running_loop()
        hit = self._clients.get(id(loop))
        if hit is None or hit[0] is not loop:
            for key, (lp, _) in list(self._clients.items()):
                if lp.is_closed():
                    del self._clients[key]
            hit = self._clients[id(loop)] = (loop, self._make())
        return hit[1]

    def open(self) -> None:
        """Build the running loop's SDK client now rather than on the first call."""
        self._sdk()

    async def aclose(self) -> None:
        """Close the SDK client of the running loop (others die with their loops)."""
        hit = self._clients.pop(id(asyncio.get_running_loop()), None)
        if hit is not None:
            await hit[1].close()

    # -- errors ---------------------------------------------------------------------------
    def error(self, exc: BaseException) -> BackendError:
        """An SDK or transport exception as a redacted :class:`BackendError`."""
        if isinstance(exc, BackendError):
            if exc.provider is None:
                exc.provider, exc.model = self.provider, self.model
            return exc
        import httpx

        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and getattr(exc, "response", None) is not None:
            return BackendError(f"backend {self.spec} answered HTTP {status}: {redact(_provider_message(exc))}",
                                status_code=status, provider=self.provider, model=self.model, kind="api_error")
        name = type(exc).__name__
        if _refused(exc):
            return BackendError(f"backend {self.spec} could not be reached ({name}: {redact(exc)})",
                                provider=self.provider, model=self.model, kind="connection_error")
        if "Timeout" in name or isinstance(exc, httpx.TimeoutException):
            return BackendError(f"backend {self.spec} timed out ({name})", provider=self.provider, model=self.model,
                                kind="timeout")
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
            return BackendError(f"backend {self.spec} cut the stream ({name}: {redact(exc)})",
                                provider=self.provider, model=self.model, kind="stream_cut")
        if "Connection" in name or isinstance(exc, httpx.TransportError):
            return BackendError(f"backend {self.spec} could not be reached ({name}: {redact(exc)})",
                                provider=self.provider, model=self.model, kind="connection_error")
        return BackendError(f"backend {self.spec} failed ({name}: {redact(exc)})", provider=self.provider,
                            model=self.model, kind="api_error")

    # -- calls ----------------------------------------------------------------------------
    @abstractmethod
    async def acomplete(self, body: dict[str, Any]) -> BackendReply:
        """One chat completion (the OpenAI wire format in and out)."""

    @abstractmethod
    async def astream(self, body: dict[str, Any], *, include_usage: bool) -> BackendStream:
        """A streamed chat completion, as OpenAI-format chunks."""


def _refused(exc: BaseException) -> bool:
    """A connection that could not be opened, wherever in the cause chain it shows. (The
    aiohttp transport reports a refused connection as ``httpx.ConnectTimeout``, which the
    SDKs turn into a timeout error; the aiohttp error under it says what happened.)"""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or type(seen).__name__ == "ClientConnectorError":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _resolve_transport(transport: str) -> str:
    import importlib.util

    have_aiohttp = importlib.util.find_spec("httpx_aiohttp") is not None
    if transport == "aiohttp" and not have_aiohttp:
        raise BackendConfigError("transport='aiohttp' needs the httpx-aiohttp package "
                                 "(pip install 'routellm-integrations[server]')")
    if transport == "auto":
        return "aiohttp" if have_aiohttp else "httpx"
    return transport


def _provider_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        message = inner.get("message")
        if isinstance(message, str) and message:
            return message[:2000]
    return str(getattr(exc, "message", None) or exc)[:2000]


class OpenAIBackend(ChatBackend):
    """OpenAI's chat completions, or any OpenAI-compatible server (``base_url`` /
    ``OPENAI_BASE_URL``; such servers often need no key: a placeholder is sent then)."""

    provider = "openai"
    env_key = "OPENAI_API_KEY"
    env_base_url = "OPENAI_BASE_URL"

    def _missing_key(self) -> str:
        if self.base_url:  # a local OpenAI-compatible server (vLLM, Ollama) usually takes any key
            return "not-needed"
        return super()._missing_key()

    def _make(self) -> Any:
        import openai

        return openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout,
                                  max_retries=self.max_retries, http_client=self._http_client(openai))

    async def acomplete(self, body: dict[str, Any]) -> BackendReply:
        import httpx

        request = {**body, "model": self.model}
        request.pop("stream", None)
        request.pop("stream_options", None)
        try:
            resp = await self._sdk().post("/chat/completions", cast_to=httpx.Response, body=request)
            data = loads(resp.content)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self.error(exc) from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise BackendError(f"backend {self.spec} answered something that is not a chat completion",
                               status_code=resp.status_code, provider=self.provider, model=self.model)
        return BackendReply(data, data.get("usage"), _answered_by(data) or self.model)

    async def astream(self, body: dict[str, Any], *, include_usage: bool) -> BackendStream:
        import httpx
        import openai

        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True  # the usage the call is priced on comes in the last chunk
        request = {**body, "model": self.model, "stream": True, "stream_options": options}
        try:
            resp = await self._sdk().post("/chat/completions", cast_to=httpx.Response, body=request, stream=True,
                                          stream_cls=openai.AsyncStream[httpx.Response])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self.error(exc) from None
        return _OpenAIStream(self, resp)


class _OpenAIStream(BackendStream):
    _end_marker = "the answer finished"

    def __init__(self, backend: OpenAIBackend, response: Any) -> None:
        super().__init__(backend, response, "openai")
        self._finished = False  # a finish_reason arrived
        self.usage = None
        self.model = None

    def _ended(self) -> bool:
        return self._finished

    async def __anext__(self) -> dict[str, Any]:
        if self._done:
            raise StopAsyncIteration
        while True:
            event, data = await self._next_event()
            if data == "[DONE]":
                self._done = True
                raise StopAsyncIteration
            try:
                chunk = loads(data)
            except ValueError:
                continue
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk and "choices" not in chunk:
                err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
                self._done = True
                raise BackendError(f"backend {self._backend.spec} reported an error mid-stream: "
                                   f"{redact(err.get('message', ''))}", provider="openai", model=self._backend.model,
                                   kind="api_error")
            model = _answered_by(chunk)
            if self.model is None and model:
                self.model = model
            if chunk.get("usage"):
                self.usage = chunk["usage"]
            for choice in chunk.get("choices") or ():
                if choice.get("finish_reason"):
                    self._finished = True
            return chunk


class AnthropicBackend(ChatBackend):
    """Anthropic's Messages API, spoken to as OpenAI chat (see :mod:`.anthropic_format`).
    ``max_tokens`` is required by Anthropic: ``default_max_tokens`` when the call sets none."""

    provider = "anthropic"
    env_key = "ANTHROPIC_API_KEY"
    env_base_url = "ANTHROPIC_BASE_URL"

    def __init__(self, model: str, *, default_max_tokens: int = 4096, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.default_max_tokens = int(default_max_tokens)

    def _make(self) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout,
                                        max_retries=self.max_retries, http_client=self._http_client(anthropic))

    async def acomplete(self, body: dict[str, Any]) -> BackendReply:
        import httpx

        request, meta = to_messages_request(body, self.model, default_max_tokens=self.default_max_tokens)
        try:
            resp = await self._sdk().post("/v1/messages", cast_to=httpx.Response, body=request)
            data = loads(resp.content)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self.error(exc) from None
        if not isinstance(data, dict) or data.get("type") != "message":
            raise BackendError(f"backend {self.spec} answered something that is not a message",
                               status_code=resp.status_code, provider=self.provider, model=self.model)
        completion = from_message(data, meta)
        return BackendReply(completion, data.get("usage"), _answered_by(completion) or self.model)

    async def astream(self, body: dict[str, Any], *, include_usage: bool) -> BackendStream:
        import anthropic
        import httpx

        request, meta = to_messages_request(body, self.model, default_max_tokens=self.default_max_tokens)
        request["stream"] = True
        try:
            resp = await self._sdk().post("/v1/messages", cast_to=httpx.Response, body=request, stream=True,
                                          stream_cls=anthropic.AsyncStream[httpx.Response])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self.error(exc) from None
        return _AnthropicStream(self, resp, StreamTranslator(meta, include_usage=include_usage))


class _AnthropicStream(BackendStream):
    _end_marker = "message_stop"

    def __init__(self, backend: AnthropicBackend, response: Any, translator: StreamTranslator) -> None:
        super().__init__(backend, response, "anthropic")
        self._tr = translator
        self._pending: list[dict[str, Any]] = []

    def _ended(self) -> bool:
        return self._tr.done

    @property  # type: ignore[override]
    def usage(self) -> dict[str, Any] | None:
        return dict(self._tr.usage) if self._tr.usage else None

    @property  # type: ignore[override]
    def model(self) -> str | None:
        return safe_model_name(self._tr.model)

    async def __anext__(self) -> dict[str, Any]:
        while not self._pending:
            if self._done:
                raise StopAsyncIteration
            event, data = await self._next_event()
            try:
                parsed = loads(data)
            except ValueError:
                continue
            if not isinstance(parsed, dict):
                continue
            try:
                self._pending.extend(self._tr.feed(event, parsed))
            except BackendError as exc:
                self._done = True
                raise self._backend.error(exc) from None
            if self._tr.done:
                self._done = True
        chunk = self._pending.pop(0)
        if isinstance(chunk, dict):
            _answered_by(chunk)
        return chunk


def make_backend(spec: "str | BackendSpec", *, openai_api_key: str | None = None,
                 openai_base_url: str | None = None, anthropic_api_key: str | None = None,
                 anthropic_base_url: str | None = None, timeout: float = 600.0, max_retries: int = 2,
                 anthropic_max_tokens: int = 4096, transport: Transport = "auto") -> ChatBackend:
    """The backend a ``provider:model`` spec names, with keys and base URLs from the
    arguments or the environment."""
    s = parse_backend(spec)
    if s.provider == "openai":
        return OpenAIBackend(s.model, api_key=openai_api_key, base_url=openai_base_url, timeout=timeout,
                             max_retries=max_retries, transport=transport)
    return AnthropicBackend(s.model, api_key=anthropic_api_key, base_url=anthropic_base_url, timeout=timeout,
                            max_retries=max_retries, default_max_tokens=anthropic_max_tokens, transport=transport)
