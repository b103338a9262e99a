"""The bundled MiniLM (or any routellm embedder) as a LlamaIndex embedding model, so a
RAG pipeline runs offline with the same model the router embeds prompts with."""

from __future__ import annotations

from typing import Any, List

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import ConfigDict, PrivateAttr

from routellm_integrations.embedders import get_embedder
from routellm_integrations.embedders.base import Embedder


class RouteLLMEmbedding(BaseEmbedding):
    """``RouteLLMEmbedding()`` is all-MiniLM-L6-v2 (exact fp32 ONNX), offline."""

    embedder_name: str = "minilm"
    model_config = ConfigDict(extra="forbid")  # a misspelt option must not silently mean its default
    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder | str = "minilm", **kwargs: Any) -> None:
        name = embedder if isinstance(embedder, str) else embedder.name
        super().__init__(embedder_name=name, model_name=name, **kwargs)
        self._embedder = get_embedder(embedder) if isinstance(embedder, str) else embedder

    @classmethod
    def class_name(cls) -> str:
        return "RouteLLMEmbedding"

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._embedder.embed([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._embedder.embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: List[str]) -> List[Embedding]:
        return self._embedder.embed(texts).tolist()
