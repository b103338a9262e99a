"""A VectorStoreIndex query engine over real documents and the bundled MiniLM, answering
through RoutedLLM: each query picks its own model."""

from __future__ import annotations

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from scripted_llm import ScriptedLLM

from llamaindex_routellm import RoutedLLM, RoutingDecisionEvent
from llamaindex_routellm.embeddings import RouteLLMEmbedding
from routellm_integrations.routers.length import LengthRouter

DOCS = [
    "The Eiffel Tower is 330 metres tall and stands in Paris. It was completed in 1889.",
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen in chloroplasts.",
    "A binary heap supports insert and extract-min in O(log n) time; building one takes O(n).",
]


class Collect(BaseEventHandler):
    events: list = []

    @classmethod
    def class_name(cls) -> str:
        return "CollectRouting"

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, RoutingDecisionEvent):
            self.events.append(event)


@pytest.fixture(scope="module")
def embed_model():
    return RouteLLMEmbedding()


def test_embedding_adapter_is_minilm(embed_model):
    a = embed_model.get_text_embedding("How tall is the Eiffel Tower?")
    b = embed_model.get_query_embedding("height of the Eiffel Tower")
    c = embed_model.get_query_embedding("binary heap complexity")
    assert len(a) == 384
    dot = lambda x, y: sum(p * q for p, q in zip(x, y))  # noqa: E731
    assert dot(a, b) > dot(a, c)


def test_query_engine_routes_each_query(embed_model):
    handler = Collect(events=[])
    get_dispatcher().add_event_handler(handler)
    try:
        # the engine's prompt holds the retrieved context; RoutedLLM routes on the question
        llm = RoutedLLM(strong=ScriptedLLM(name="big-model"), weak=ScriptedLLM(name="small-model"),
                        router=LengthRouter(), threshold=0.5)
        index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS], embed_model=embed_model)
        engine = index.as_query_engine(llm=llm, similarity_top_k=1)
        short = engine.query("How tall is the Eiffel Tower?")
        long_q = "Explain in depth, with proofs and worked examples, " * 25 + "why building a binary heap is O(n)."
        long = engine.query(long_q)
    finally:
        get_dispatcher().event_handlers.remove(handler)
    assert str(short).startswith("[small-model]") and str(long).startswith("[big-model]")
    assert "Eiffel" in short.source_nodes[0].node.get_content()
    assert "heap" in long.source_nodes[0].node.get_content()
    assert [e.route for e in handler.events] == ["weak", "strong"]


def test_settings_llm_shares_its_callback_manager_with_the_backends(embed_model):
    """``Settings.llm = RoutedLLM(...)``: LlamaIndex gives the callback manager to the
    wrapper only; the backends' one LLM event per query must still reach its handlers."""
    from llama_index.core import Settings
    from llama_index.core.callbacks import CallbackManager, TokenCountingHandler

    counter = TokenCountingHandler()
    old_llm, old_cb, old_embed = Settings._llm, Settings._callback_manager, Settings._embed_model
    try:
        Settings.callback_manager = CallbackManager([counter])
        Settings.embed_model = embed_model
        Settings.llm = RoutedLLM(strong=ScriptedLLM(name="big-model", usage=(300, 50)),
                                 weak=ScriptedLLM(name="small-model", usage=(120, 20)),
                                 router=LengthRouter(), threshold=0.5)
        engine = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS]).as_query_engine(similarity_top_k=1)
        engine.query("What does photosynthesis produce?")
        engine.query("Explain in depth, with proofs and worked examples, " * 25 + "heap construction.")
    finally:
        Settings._llm, Settings._callback_manager, Settings._embed_model = old_llm, old_cb, old_embed
    assert len(counter.llm_token_counts) == 2
    assert counter.prompt_llm_token_count == 120 + 300
    assert counter.completion_llm_token_count == 20 + 50


def test_a_query_engine_routes_the_question_not_the_retrieved_context(embed_model):
    """The README's RAG snippet: a short question stays weak even though the prompt the
    engine sends holds a long retrieved context."""
    handler = Collect(events=[])
    get_dispatcher().add_event_handler(handler)
    try:
        llm = RoutedLLM(strong=ScriptedLLM(name="big-model"), weak=ScriptedLLM(name="small-model"),
                        router=LengthRouter(), threshold=0.5)  # default midpoint: the template alone is "long"
        docs = [Document(text=t * 8) for t in DOCS]
        engine = VectorStoreIndex.from_documents(docs, embed_model=embed_model).as_query_engine(llm=llm)
        short = engine.query("What is the capital of France?")
        long = engine.query("Explain in depth, with proofs and worked examples, " * 10 + "why heaps build in O(n).")
    finally:
        get_dispatcher().event_handlers.remove(handler)
    assert str(short).startswith("[small-model]") and str(long).startswith("[big-model]")
    assert [e.route for e in handler.events] == ["weak", "strong"]
