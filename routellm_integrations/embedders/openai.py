"""OpenAI (or any OpenAI-compatible server's) embeddings as an :class:`Embedder`.

Why a wrapper: routers need unit float32 rows and typed errors; the SDK gives retries,
backoff and ``Retry-After`` handling, which we keep. The API key is held only inside the
SDK client and a private redacting holder: it never appears in ``repr``/``str``, and is
scrubbed from every error message we raise (servers sometimes echo part of it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import EmbedderError, MissingEmbedderExtraError
from ..extras import require
from ._common import l2_normalize, validate_texts

#: Native output sizes, so ``dim`` is known without a request.
KNOWN_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072,
              "text-embedding-ada-002": 1536}
#: API limits: 2048 inputs and 300k tokens per request. Chars are a cheap, conservative
#: stand-in for tokens (~4 chars/token in English; we budget ~2.5 to stay under).
MAX_INPUTS_PER_REQUEST = 2048
MAX_CHARS_PER_REQUEST = 750_000


class _Secret:
    """Holds a credential; prints as ``'***'`` so it cannot leak through repr/logging."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    def get(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "'***'" if self._value else "None"

    __str__ = __repr__


class OpenAIEmbedder:
    """Embeddings from ``POST {base_url}/embeddings``.

    ``api_key``/``base_url``/``organization`` default to ``OPENAI_API_KEY``,
    ``OPENAI_BASE_URL`` and ``OPENAI_ORG_ID``. ``dimensions`` asks text-embedding-3
    models for shortened vectors, which is a different space, so it is part of ``name``.
    """

    def __init__(self, model: str = "text-embedding-3-small", *, dimensions: int | None = None,
                 api_key: str | None = None, base_url: str | None = None,
                 organization: str | None = None, timeout: float = 60.0, max_retries: int = 2,
                 batch_size: int = MAX_INPUTS_PER_REQUEST) -> None:
        if dimensions is not None and int(dimensions) <= 0:
            raise EmbedderError(f"dimensions must be a positive integer, got {dimensions!r}")
        self.model = model
        self.dimensions = int(dimensions) if dimensions is not None else None
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.organization = organization or os.environ.get("OPENAI_ORG_ID") or None
        self._api_key = _Secret(api_key or os.environ.get("OPENAI_API_KEY") or None)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.batch_size = max(1, min(int(batch_size), MAX_INPUTS_PER_REQUEST))
        self.name = f"openai:{model}" + (f"@{self.dimensions}" if self.dimensions else "")
        self._dim: int | None = self.dimensions or KNOWN_DIMS.get(model)
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"OpenAIEmbedder(model={self.model!r}, dimensions={self.dimensions!r}, "
                f"base_url={self.base_url!r}, api_key={self._api_key!r})")

    __str__ = __repr__

    def __getstate__(self) -> dict[str, Any]:
        # Pickling (e.g. multiprocessing) must not carry the key or a live client.
        state = dict(self.__dict__)
        state["_api_key"] = _Secret(None)
        state["_client"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        if self._api_key.get() is None:
            self._api_key = _Secret(os.environ.get("OPENAI_API_KEY") or None)

    @property
    def dim(self) -> int:
        """Known for OpenAI's models; for others it is learnt from one short request."""
        if self._dim is None:
            self._dim = int(self._request([" "]).shape[1])
        return self._dim

    def _scrub(self, text: str) -> str:
        key = self._api_key.get()
        if key:
            text = text.replace(key, "***")
            if len(key) > 12:  # servers echo masked prefixes/suffixes ("sk-abc...wxyz")
                text = text.replace(key[:8], "***").replace(key[-4:], "***")
        return text

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                openai = require("openai", extra="openai", feature="OpenAIEmbedder", error=MissingEmbedderExtraError)
                if self._api_key.get() is None:
                    raise EmbedderError(f"no API key for embedding model {self.model!r}: pass "
                                        "api_key= or set OPENAI_API_KEY")
                self._client = openai.OpenAI(api_key=self._api_key.get(), base_url=self.base_url,
                                             organization=self.organization, timeout=self.timeout,
                                             max_retries=self.max_retries)
        return self._client

    def _batches(self, items: list[str]) -> list[list[str]]:
        out: list[list[str]] = []
        cur: list[str] = []
        chars = 0
        for t in items:
            if cur and (len(cur) >= self.batch_size or chars + len(t) > MAX_CHARS_PER_REQUEST):
                out.append(cur)
                cur, chars = [], 0
            cur.append(t)
            chars += len(t)
        if cur:
            out.append(cur)
        return out

    def _request(self, batch: list[str]) -> np.ndarray:
        client = self._get_client()  # first: without the openai package, it names the extra
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "input": batch}
        if self.dimensions is not None:
            kwargs["dimensions"] = self.dimensions
        try:
            resp = client.embeddings.create(**kwargs)
        except openai.APIStatusError as exc:
            msg = self._scrub(_error_message(exc))
            err = EmbedderError(f"embedding model {self.model!r} failed: HTTP {exc.status_code}: {msg}")
            err.status_code = exc.status_code  # type: ignore[attr-defined]
            raise err from None  # the cause carries the request (and its headers)
        except openai.APITimeoutError:
            raise EmbedderError(f"embedding model {self.model!r}: request timed out after "
                                f"{self.timeout:g} s (and retries)") from None
        except openai.APIConnectionError as exc:
            raise EmbedderError(f"embedding model {self.model!r}: cannot connect to "
                                f"{self.base_url or 'api.openai.com'}: {self._scrub(str(exc))}") from None
        except openai.OpenAIError as exc:
            raise EmbedderError(f"embedding model {self.model!r}: {self._scrub(str(exc))}") from None
        data = sorted(resp.data, key=lambda d: d.index)
        if len(data) != len(batch):
            raise EmbedderError(f"embedding model {self.model!r} returned {len(data)} vectors "
                                f"for {len(batch)} inputs")
        return np.asarray([d.embedding for d in data], dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        # The API rejects "" as input; a single space embeds to a neutral vector instead.
        items = [t if t else " " for t in validate_texts(texts)]
        parts = [self._request(b) for b in self._batches(items)]
        vecs = np.concatenate(parts, axis=0)
        if self._dim is None:
            self._dim = int(vecs.shape[1])
        elif vecs.shape[1] != self._dim:
            raise EmbedderError(f"embedding model {self.model!r} returned {vecs.shape[1]}-d "
                                f"vectors, expected {self._dim}")
        return l2_normalize(vecs)


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", "") or exc.__class__.__name__)
