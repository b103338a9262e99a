"""What a routed call looks like in a LangSmith trace.

Set LANGSMITH_API_KEY (and, for a self-hosted LangSmith, LANGSMITH_ENDPOINT). Each call
becomes one LLM run that shows:

- the model that really answered (``ls_provider``/``ls_model_name``), so LangSmith prices it;
- the tags ``routellm:strong`` / ``routellm:weak``;
- metadata ``routellm_route``, ``routellm_score``, ``routellm_threshold``, ``routellm_router``;
- in the output message, ``response_metadata["routellm"]`` with ``cost_usd``.

    python examples/langsmith_tracing.py
"""

from __future__ import annotations

import langsmith

from backends import langchain_pair
from langchain_routellm import RoutedChat

QUESTIONS = ["What is the capital of Japan?",
             "Write a Python function that returns the longest palindromic substring of a string in O(n^2) "
             "time, with tests."]


def main(client: langsmith.Client | None = None, project: str = "routellm-examples") -> list[dict]:
    strong, weak = langchain_pair()
    llm = RoutedChat(strong=strong, weak=weak, router="mf", threshold=0.5)
    client = client or langsmith.Client()
    shown = []
    with langsmith.tracing_context(enabled=True, client=client, project_name=project):
        for question in QUESTIONS:
            info = llm.invoke(question).response_metadata["routellm"]
            shown.append(info)
            print(f"traced: route={info['route']} model={info['model']} score={info['score']:.3f} "
                  f"cost_usd={info['cost_usd']}  <- {question}")
    client.flush()
    print(f"open the project {project!r} in LangSmith: each run is tagged routellm:<route> and priced as its model")
    return shown


if __name__ == "__main__":
    main()
