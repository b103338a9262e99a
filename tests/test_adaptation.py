"""adapt_router / routellm adapt: labels in, a guarded router folder out.

Synthetic workloads make the truth known: in one the strong model wins exactly on code
prompts (an embedding signal that length does not carry), in another the outcomes are
coin flips (nothing to learn: the guard must not serve the head).
"""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pytest

from routellm_integrations import adapt_router, load_router
from routellm_integrations.adaptation import AdaptedRouter
from routellm_integrations.cli import main
from routellm_integrations.errors import CheckpointError, DataError
from routellm_integrations.labels import LabelSet, LabelStore

pytestmark = pytest.mark.slow  # embeds with the bundled MiniLM (offline)

CODE = ["Write a Python function that {} and add unit tests.", "Fix the bug in this JavaScript code that {}.",
        "Implement in Rust a program that {}, with error handling.", "Write a SQL query that {}."]
CHAT = ["Tell me a fun fact about {}.", "What is a good name for a cat who {}?", "Describe {} in one cheerful line.",
        "Give me a compliment about {}."]
TOPICS = ["sorts a list of numbers", "parses dates from log lines", "counts words in a file", "merges two tables",
          "finds duplicate users", "reverses a linked list", "validates email addresses", "computes a moving average",
          "rains every afternoon", "likes jazz music", "paints the garden fence", "bakes bread on sunday",
          "collects old coins", "walks by the river", "plays chess in the park", "sings in the shower"]


def workload(n: int, seed: int = 0, signal: bool = True) -> list[tuple[str, float, float]]:
    """(prompt, strong, weak): with ``signal`` the strong model wins on code prompts (80%)
    and ties elsewhere; prompt lengths overlap so length alone cannot tell them apart."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        code = i % 2 == 0
        text = rng.choice(CODE if code else CHAT).format(rng.choice(TOPICS)) + f" (case {i})"
        if signal:
            strong, weak = (1.0, 0.0) if code and rng.random() < 0.8 else (1.0, 1.0) if rng.random() < 0.5 else (0.0, 0.0)
        else:
            strong, weak = float(rng.random() < 0.7), float(rng.random() < 0.5)
        rows.append((text, strong, weak))
    return rows


def write_outcomes(path, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "strong", "weak"])
        w.writerows(rows)


def test_adapts_to_an_embedding_signal_and_the_folder_serves_it(tmp_path):
    rows = workload(240)
    write_outcomes(tmp_path / "o.csv", rows)
    result = adapt_router("length", outcomes=tmp_path / "o.csv", progress=False)
    report = result.report
    assert report.n_labels == 240 and report.serves == "adapted", report.summary()
    by_name = {c.name: c for c in report.candidates}
    assert by_name["adapted"].apgr > by_name["length"].apgr + 0.1
    out = result.save(tmp_path / "router", command="routellm adapt --outcomes o.csv")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "head.safetensors"]
    loaded = load_router(out)
    assert isinstance(loaded, AdaptedRouter) and loaded.serves == "adapted"
    fresh = [r[0] for r in workload(40, seed=7)]
    np.testing.assert_allclose(loaded.score(fresh), result.router.score(fresh), rtol=1e-6)
    code = loaded.score([p for p in fresh if any(p.startswith(c.split("{")[0]) for c in CODE)])
    chat = loaded.score([p for p in fresh if any(p.startswith(c.split("{")[0]) for c in CHAT)])
    assert code.min() > chat.max()  # every new code prompt ranks above every chat prompt
    card = (out / "README.md").read_text()
    assert "240 prompts" in card and "Serves: `adapted`" in card and "Reproduce" in card
    config = json.loads((out / "config.json").read_text())
    assert config["card"]["n_labels"] == 240 and config["base"] is None  # length needs no model
    assert config["card"]["base"] == "length"


def test_a_head_that_cannot_beat_length_is_not_served(tmp_path):
    """Outcomes that depend on length alone (plus noise): the head can only match length,
    so the guard keeps length and says why."""
    rng = random.Random(3)
    rows = []
    for i in range(160):
        text = " ".join(rng.choice(TOPICS) for _ in range(rng.randint(1, 12))) + f" (case {i})"
        long = len(text) > 120
        strong = float(rng.random() < (0.9 if long else 0.4))
        rows.append((text, strong, float(rng.random() < 0.4)))
    labels = LabelSet(tuple(r[0] for r in rows), np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
    result = adapt_router("length", labels=labels, progress=False)
    assert result.report.serves == "length", result.report.summary()
    assert "needs 75%" in result.report.reason and "serving length" in result.report.reason
    prompts = [r[0] for r in rows[:10]]
    expected = load_router("length", midpoint=result.router.length.midpoint).score(prompts)
    np.testing.assert_allclose(result.router.score(prompts), expected)


def test_mf_base_folder_is_self_contained_and_keeps_its_pair(tmp_path):
    rows = workload(160)
    labels = LabelSet(tuple(r[0] for r in rows), np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
    base = load_router("mf", strong_model="gpt-4o-2024-05-13", weak_model="llama-3.1-8b-instruct")
    result = adapt_router(base, labels=labels, progress=False)
    out = result.save(tmp_path / "a")
    config = json.loads((out / "config.json").read_text())
    assert config["base"] == {"router": "mf", "options": {"strong_model": "gpt-4o-2024-05-13",
                                                          "weak_model": "llama-3.1-8b-instruct"}}
    assert config["uses_base_score"] is True
    again = load_router(out)
    assert again.base.strong_model == "gpt-4o-2024-05-13"
    # an adapted router adapts again: its folder is copied in as the base
    second = adapt_router(again, labels=labels, progress=False).save(tmp_path / "b")
    assert (second / "base" / "config.json").is_file()
    np.testing.assert_allclose(load_router(second).base.score(["hello"]), again.score(["hello"]), rtol=1e-6)


def test_battles_and_store_labels(tmp_path):
    rows = workload(200)
    with open(tmp_path / "b.jsonl", "w") as fh:
        for text, s, w in rows:
            winner = "a" if s > w else "b" if w > s else "tie"
            fh.write(json.dumps({"prompt": text, "model_a": "gpt-4o", "model_b": "gpt-4o-mini", "winner": winner}) + "\n")
    result = adapt_router("length", battles=tmp_path / "b.jsonl", strong_model="gpt-4o", weak_model="gpt-4o-mini",
                          progress=False)
    assert result.report.serves == "adapted" and result.report.n_labels == 200
    with pytest.raises(DataError, match="not the pair being adapted"):
        adapt_router("length", battles=tmp_path / "b.jsonl", strong_model="gpt-4o", weak_model="claude-3-haiku",
                     progress=False)
    with LabelStore(tmp_path / "labels.sqlite") as store:
        for i, (text, s, w) in enumerate(rows):
            if i % 4 == 0:  # feedback on a recorded call: one side observed
                store.record_call(f"c{i}", text, route="weak", model="gpt-4o-mini", strong_model="gpt-4o",
                                  weak_model="gpt-4o-mini")
                store.add_feedback(f"c{i}", w)
            else:
                verdict = "strong" if s > w else "weak" if w > s else "tie"
                store.add_verdict(text, verdict, strong_model="gpt-4o", weak_model="gpt-4o-mini", source="judge:x")
    from_store = adapt_router("length", store=tmp_path / "labels.sqlite", progress=False)
    assert from_store.report.n_labels == 200 and from_store.report.strong_model == "gpt-4o"
    assert set(from_store.report.sources) == {"feedback", "judge:x"}


def test_privacy_mode_labels_adapt_from_recorded_embeddings(tmp_path):
    from routellm_integrations.embedders import get_embedder

    emb = get_embedder("minilm-onnx-int8")
    rows = workload(200)
    vectors = emb.embed([r[0] for r in rows])
    with LabelStore(tmp_path / "p.sqlite") as store:
        for (text, s, w), v in zip(rows, vectors):
            store.add_outcome(text, s, w, strong_model="s", weak_model="w", source="shadow:j", record="embedding",
                              embedding=v, embedder=emb.name)
        assert store._db.execute("SELECT COUNT(*) FROM prompts WHERE text IS NOT NULL").fetchone()[0] == 0
    result = adapt_router("length", store=tmp_path / "p.sqlite", embedder=emb, progress=False)
    assert result.report.serves == "adapted" and result.router.head.w_prior is None


def test_cli_adapt_end_to_end_and_bad_input(tmp_path, capsys):
    write_outcomes(tmp_path / "o.csv", workload(200))
    assert main(["adapt", "--router", "length", "--outcomes", str(tmp_path / "o.csv"), "--out", str(tmp_path / "r"),
                 "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["serves"] == "adapted" and out["n_labels"] == 200
    assert load_router(tmp_path / "r").serves == "adapted"
    assert main(["adapt", "--router", "length", "--out", str(tmp_path / "x")]) == 1
    assert "give your labels" in capsys.readouterr().err
    write_outcomes(tmp_path / "same.csv", [(f"prompt {i}", 1, 1) for i in range(30)])
    assert main(["adapt", "--router", "length", "--outcomes", str(tmp_path / "same.csv"), "--out",
                 str(tmp_path / "y")]) == 1
    assert "have different outcomes" in capsys.readouterr().err


def test_corrupt_adapted_folder_is_a_checkpoint_error(tmp_path):
    rows = workload(160)
    write_outcomes(tmp_path / "o.csv", rows)
    out = adapt_router("length", outcomes=tmp_path / "o.csv", progress=False).save(tmp_path / "r")
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "serves": "oracle"}))
    with pytest.raises(CheckpointError, match="'serves'"):
        load_router(out)
    (out / "config.json").write_text(json.dumps(config))
    (out / "head.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_router(out)
