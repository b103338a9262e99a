"""RAG that picks the model per query, offline: a LlamaIndex query engine over a small
document set with the bundled MiniLM embeddings, and the same idea as an LCEL chain where
`route_between` sends each question down a strong or a weak RAG chain.

    python examples/rag_per_query.py
"""

from __future__ import annotations

import numpy as np
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler

from backends import langchain_pair, llamaindex_pair
from langchain_routellm import route_between
from llamaindex_routellm import RoutedLLM, RoutingDecisionEvent
from llamaindex_routellm.embeddings import RouteLLMEmbedding
from routellm_integrations.embedders import get_embedder

DOCS = [
    "Orbit is a task tracker. Free plans include 3 projects; the Team plan costs $8 per user per month.",
    "Orbit's API rate limit is 600 requests per minute per token; bursts above it get HTTP 429.",
    "Orbit stores data in the EU (Frankfurt) and encrypts it at rest with AES-256.",
    "To migrate from another tracker, export CSV with columns title, status, assignee, due_date.",
]
QUESTIONS = [
    "How much is the Team plan?",
    "Our sync job sends 45 requests every 4 seconds from 3 tokens; derive whether any token exceeds the rate "
    "limit, and design a backoff strategy with jitter, explaining the maths of the expected retry delay.",
]


class Routes(BaseEventHandler):
    seen: list = []

    @classmethod
    def class_name(cls) -> str:
        return "RoutesSeen"

    def handle(self, event, **kwargs) -> None:
        if isinstance(event, RoutingDecisionEvent):
            self.seen.append(event)


def llamaindex_rag() -> list[tuple[str, str, str]]:
    strong, weak = llamaindex_pair()
    # route on the user's question, not on the retrieved context the prompt also carries
    Settings.llm = RoutedLLM(strong=strong, weak=weak, router="mf", threshold=0.5,
                             route_on=lambda messages: messages[-1].content.rsplit("Query:", 1)[-1]
                             .split("Answer:", 1)[0].strip())
    Settings.embed_model = RouteLLMEmbedding()
    engine = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS]).as_query_engine(similarity_top_k=1)
    routes = Routes(seen=[])
    get_dispatcher().add_event_handler(routes)
    out = []
    try:
        for q in QUESTIONS:
            answer = str(engine.query(q))
            event = routes.seen[-1]
            out.append((q, event.model, answer))
            print(f"[llamaindex] {event.route:6} {event.model:26} {q[:60]}")
    finally:
        get_dispatcher().event_handlers.remove(routes)
    return out


def lcel_rag() -> list[tuple[str, str, str]]:
    strong, weak = langchain_pair()
    embedder = get_embedder("minilm")
    doc_vectors = embedder.embed(DOCS)

    def retrieve(question: str) -> dict:
        best = int(np.argmax(doc_vectors @ embedder.embed([question])[0]))
        return {"context": DOCS[best], "question": question}

    prompt = ChatPromptTemplate.from_messages([("system", "Answer from the context only.\nContext: {context}"),
                                               ("human", "{question}")])
    rag = route_between(RunnableLambda(retrieve) | prompt | strong, RunnableLambda(retrieve) | prompt | weak,
                        router="mf", threshold=0.5)  # routes on the question, before retrieval
    out = []
    for q in QUESTIONS:
        message = rag.invoke(q)
        model = message.response_metadata.get("model_name", "?")
        out.append((q, model, message.content))
        print(f"[langchain]  {rag.decide(q).route:6} {model:26} {q[:60]}")
    return out


def main() -> dict:
    return {"llamaindex": llamaindex_rag(), "langchain": lcel_rag()}


if __name__ == "__main__":
    main()
