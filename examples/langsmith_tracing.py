"""What a routed call looks like in a LangSmith trace.

Set LANGSMITH_API_KEY (and, for a self-hosted LangSmith, LANGSMITH_ENDPOINT) to send the
traces to LangSmith. Without a key the traces go to a local recording server (the one the
tests use, from ``routellm_integrations.testing``) and the example prints what it recorded,
instead of retrying api.smith.langchain.com. Each call becomes one LLM run that shows:

- the model that really answered (``ls_provider``/``ls_model_name``), so LangSmith prices it;
- the tags ``routellm:strong`` / ``routellm:weak``;
- metadata ``routellm_route``, ``routellm_score``, ``routellm_threshold``, ``routellm_router``;
- in the output message, ``response_metadata["routellm"]`` with ``cost_usd``.

    python examples/langsmith_tracing.py
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import langsmith

from backends import langchain_pair
from langchain_routellm import RoutedChat

QUESTIONS = ["What is the capital of Japan?",
             "Write a Python function that returns the longest palindromic substring of a string in O(n^2) "
             "time, with tests."]


@contextlib.contextmanager
def langsmith_client() -> Iterator[tuple[langsmith.Client, object | None]]:
    """(client, recorder): LangSmith itself when a key is set, else a local recording server."""
    if os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY"):
        yield langsmith.Client(), None
        return
    from routellm_integrations.testing.langsmith_recorder import LangSmithRecorder

    print("(no LANGSMITH_API_KEY: traces go to a local recording server, not to LangSmith)")
    with LangSmithRecorder() as recorder:
        yield langsmith.Client(api_url=recorder.url, api_key="local"), recorder


def main(client: langsmith.Client | None = None, project: str = "routellm-examples") -> list[dict]:
    strong, weak = langchain_pair()
    llm = RoutedChat(strong=strong, weak=weak, router="mf")  # 30% of calls strong, held online
    with contextlib.ExitStack() as stack:
        recorder = None
        if client is None:
            client, recorder = stack.enter_context(langsmith_client())
        shown = []
        with langsmith.tracing_context(enabled=True, client=client, project_name=project):
            for question in QUESTIONS:
                info = llm.invoke(question).response_metadata["routellm"]
                shown.append(info)
                print(f"traced: route={info['route']} model={info['model']} score={info['score']:.3f} "
                      f"cost_usd={info['cost_usd']}  <- {question}")
        client.flush()
        if recorder is not None:
            for run in {r["id"]: r for r in recorder.llm_runs()}.values():  # a create and its update: one run
                meta = run["extra"]["metadata"]
                print(f"recorded LLM run: tags={run.get('tags')} routellm_route={meta['routellm_route']} "
                      f"ls_model_name={meta['ls_model_name']}")
            print("set LANGSMITH_API_KEY to see these runs in LangSmith")
        else:
            print(f"open the project {project!r} in LangSmith: each run is tagged routellm:<route> and priced "
                  "as its model")
    return shown


if __name__ == "__main__":
    main()
