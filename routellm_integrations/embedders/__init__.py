"""Prompt embedders: the part of routing that costs time.

``get_embedder()`` returns the default: all-MiniLM-L6-v2 on onnxruntime (fp32), the
same vectors as the PyTorch model at a fraction of the latency. Heavy dependencies
(torch, onnxruntime, openai, wordllama) load only when an embedder first needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Embedder
from .cache import CachedEmbedder
from .registry import InvalidEmbedderError, UnknownEmbedderError, available_embedders, get_embedder

if TYPE_CHECKING:
    from .minilm import MiniLMEmbedder
    from .onnx_minilm import OnnxMiniLMEmbedder
    from .openai import OpenAIEmbedder
    from .static import WordLlamaEmbedder

_LAZY = {"MiniLMEmbedder": ".minilm", "OnnxMiniLMEmbedder": ".onnx_minilm",
         "OpenAIEmbedder": ".openai", "WordLlamaEmbedder": ".static"}


def __getattr__(name: str) -> Any:
    # Classes are importable from here without importing their modules eagerly.
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Embedder", "CachedEmbedder", "get_embedder", "available_embedders",
           "InvalidEmbedderError", "UnknownEmbedderError", "MiniLMEmbedder", "OnnxMiniLMEmbedder", "OpenAIEmbedder",
           "WordLlamaEmbedder"]
