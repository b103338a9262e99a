"""Embedders by name, so configs, CLIs and checkpoints can say which one they need.

Why lazy factories: building an embedder must not import torch, onnxruntime or openai
until that embedder is actually asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import EmbedderError, InvalidEmbedderError, UnknownEmbedderError
from .base import Embedder

__all__ = ["InvalidEmbedderError", "UnknownEmbedderError", "available_embedders", "get_embedder"]


def _minilm_onnx(**options: Any) -> Embedder:
    from .onnx_minilm import OnnxMiniLMEmbedder
    return OnnxMiniLMEmbedder(quantize=False, **options)


def _minilm_onnx_int8(**options: Any) -> Embedder:
    from .onnx_minilm import OnnxMiniLMEmbedder
    return OnnxMiniLMEmbedder(quantize=True, **options)


def _minilm_torch(**options: Any) -> Embedder:
    from .minilm import MiniLMEmbedder
    return MiniLMEmbedder(**options)


def _openai(**options: Any) -> Embedder:
    from .openai import OpenAIEmbedder
    return OpenAIEmbedder(**options)


def _wordllama(**options: Any) -> Embedder:
    from .static import WordLlamaEmbedder
    return WordLlamaEmbedder(**options)


_FACTORIES: dict[str, Callable[..., Embedder]] = {
    # fp32 ONNX: same vectors as torch (cosine > 0.99999), ~5x faster -> the default.
    "minilm": _minilm_onnx,
    "minilm-onnx": _minilm_onnx,
    "minilm-onnx-int8": _minilm_onnx_int8,
    "minilm-torch": _minilm_torch,
    "openai": _openai,
    "wordllama": _wordllama,
}
_ALIASES = {
    "default": "minilm",
    # embedding-space names (what checkpoints record) -> the fastest embedder of that space
    "all-MiniLM-L6-v2": "minilm",
    "all-MiniLM-L6-v2@onnx-int8": "minilm-onnx-int8",
    "wordllama-l2_supercat-256": "wordllama",
}


def available_embedders() -> list[str]:
    """Every name :func:`get_embedder` accepts (``openai:<model>`` also works)."""
    return sorted({*_FACTORIES, *_ALIASES})


def _valid_names() -> str:
    return f"valid names: {', '.join(available_embedders())}, openai:<model>"


def get_embedder(name: str = "default", **options: Any) -> Embedder:
    """Build an embedder by short name or by embedding-space name.

    ``options`` go to the embedder's constructor (e.g. ``get_embedder("openai",
    model="text-embedding-3-large", dimensions=256)``). ``"openai:<model>"`` and
    ``"openai:<model>@<dims>"`` (OpenAIEmbedder's own ``name``) are accepted too, so a
    checkpoint's recorded space name rebuilds its embedder.
    """
    if not isinstance(name, str):
        raise InvalidEmbedderError(f"get_embedder takes an embedder name, got {type(name).__name__} {name!r:.80}; "
                                   f"{_valid_names()} (to use an embedder object, pass it where one is "
                                   "accepted, e.g. load_router(..., embedder=obj))")
    key = _ALIASES.get(name, name)
    if key.startswith("openai:"):
        model, _, dims = key[len("openai:"):].partition("@")
        if not model or (dims and not dims.isdigit()):
            raise UnknownEmbedderError(f"unknown embedder {name!r}: write openai:<model> or openai:<model>@<dims>")
        if dims:
            options.setdefault("dimensions", int(dims))
        options.setdefault("model", model)
        key = "openai"
    factory = _FACTORIES.get(key)
    if factory is None:
        raise UnknownEmbedderError(f"unknown embedder {name!r}; {_valid_names()}")
    try:
        return factory(**options)
    except TypeError as exc:  # a misspelt option: say which embedder rejected it
        raise EmbedderError(f"embedder {name!r} does not accept these options: {exc}") from exc
