"""The whole loop a user runs, over real HTTP against the local OpenAI-format server:
judge-label a few dozen of their prompts, adapt a router on the labels, hot-swap it into a
running RoutedChat, and see its decisions change (and the strong share kept).

The scripted judge prefers the strong model's answer on coding questions and calls the
rest a tie; the chit-chat prompts are the *longer* ones, so the length router the
app starts with sends exactly the wrong ones strong."""

from __future__ import annotations

import json
import random

import pytest
from langchain_openai import ChatOpenAI

from langchain_routellm import RoutedChat
from routellm_integrations import Budget, adapt_router, load_router
from routellm_integrations.cli import main
from routellm_integrations.labels.clients import OpenAIChatClient
from routellm_integrations.labels.labelling import label_prompts
from routellm_integrations.labels import LabelStore
from routellm_integrations.testing.openai_compat import Reply

pytestmark = pytest.mark.slow  # embeds with the bundled MiniLM (offline)

CODE = ["Write a Python function to {}.", "Fix this Rust code so it can {}.", "Write a SQL query to {}."]
CHAT = ["I was chatting with my neighbour over the garden fence this morning and wondered, in a friendly way, how "
        "you would {}?", "My grandmother always told long stories on Sunday afternoons; tell me, in your own warm "
        "words, how you would {}?"]
TASKS = ["sort a list of invoices", "count the words in a diary", "merge two guest lists", "find duplicate names",
         "parse dates in old letters", "average the weekly rainfall", "group photos by year", "rank the best cakes"]


def prompts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(CODE if i % 2 == 0 else CHAT).format(rng.choice(TASKS)) + f" (#{seed}-{i})" for i in range(n)]


def is_code(text: str) -> bool:
    return any(word in text for word in ("Python", "Rust", "SQL"))


def judge(turn):
    """Strong wins on code questions, a tie on chit-chat (read from the judge prompt)."""
    if not any("impartial judge" in t for t in turn.texts):
        return None
    user = turn.last_user_text
    question = user.split("[User Question]")[1].split("[The Start")[0]
    a_is_strong = "gpt-4o." in user.split("[The Start of Assistant A's Answer]")[1].split("[The End")[0]
    if not is_code(question):
        return Reply(text="Both answers serve the user equally well. [[C]]")
    return Reply(text="[[A]]" if a_is_strong else "[[B]]")


def test_label_adapt_hot_swap_changes_the_decisions(openai_server, tmp_path, capsys):
    openai_server.chat.responder = judge
    store_path = tmp_path / "labels.sqlite"
    client = dict(base_url=openai_server.base_url, api_key="sk-test", max_retries=0)
    with LabelStore(store_path) as store:
        report = label_prompts(prompts(48, seed=1), strong=OpenAIChatClient("gpt-4o", **client),
                               weak=OpenAIChatClient("gpt-4o-mini", **client), store=store,
                               budget=Budget(max_usd=1.0), progress=False)
    assert report.n_labelled == 48 and report.verdicts == {"strong": 24, "weak": 0, "tie": 24}
    assert 0 < report.cost_usd < 1.0

    # the command a user runs on the store: a router folder that load_router serves
    assert main(["adapt", "--router", "length", "--from-store", str(store_path), "--out", str(tmp_path / "mine"),
                 "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["serves"] == "adapted" and out["n_labels"] == 48
    adapted = load_router(tmp_path / "mine")
    assert adapted.strong_model == "gpt-4o" and adapted.weak_model == "gpt-4o-mini"

    strong = ChatOpenAI(model="gpt-4o", **client)
    weak = ChatOpenAI(model="gpt-4o-mini", **client)
    app = RoutedChat(strong=strong, weak=weak, router="length", router_options={"midpoint": 80},
                     strong_fraction=0.5)
    traffic = prompts(40, seed=2)
    before = [app.invoke(p).response_metadata["routellm"] for p in traffic]
    wrong_before = sum((m["route"] == "strong") != is_code(p) for p, m in zip(traffic, before))
    assert wrong_before >= 30  # length sends the long chit-chat strong

    report = app.swap_router(tmp_path / "mine")  # no restart: the same object keeps serving
    assert report.share_kept and report.new_router == "adapted"
    fresh = prompts(40, seed=3)
    after = [app.invoke(p).response_metadata["routellm"] for p in fresh]
    assert {m["router"] for m in after} == {"adapted"}
    wrong_after = sum((m["route"] == "strong") != is_code(p) for p, m in zip(fresh, after))
    assert wrong_after <= 4, [(p[:30], m["route"], round(m["score"], 3)) for p, m in zip(fresh, after)]
    share = sum(m["route"] == "strong" for m in after) / len(after)
    assert abs(share - 0.5) <= 0.15  # the target share held across the swap

    # the Python twin gives the same folder contents' verdict
    again = adapt_router("length", store=store_path, progress=False)
    assert again.report.serves == "adapted"
