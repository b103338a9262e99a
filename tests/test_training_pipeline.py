"""`routellm train mf` end to end on a slice of the real training pool.

A hashing embedder stands in for MiniLM (the real embedders have their own tests), so
this checks the data flow: loading, decontamination, training, validation, the model
card and the checkpoint a user then loads with ``load_router(folder)``.
"""

import json

import numpy as np
import pytest
from fakes import HashingEmbedder

from routellm_integrations import DataError, load_router
from routellm_integrations.data.user_files import load_battles_file
from routellm_integrations.training.pipeline import train_mf_command


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path / "cache"))


def test_train_small_slice_save_reload_route(tmp_path, isolated_cache):
    emb = HashingEmbedder(dim=64)
    out = train_mf_command(out=tmp_path / "mf", embedder=emb, reference_embedder=emb, max_prompts_per_source=8,
                           epochs=1, evaluate=False, progress=False)
    files = {p.name for p in out.iterdir()}
    assert files == {"model.safetensors", "config.json", "README.md"}
    config = json.loads((out / "config.json").read_text())
    assert config["embedder"] == "test-hashing"
    assert config["default_strong_model"] == "gpt-4-1106-preview"
    card = (out / "README.md").read_text()
    assert "Decontamination" in card and "routerbench/arc_challenge" in card and "MIT" in card
    assert "CC BY-NC" not in card  # AlpacaEval is not a default source
    decon = config["card"]["decontamination"]
    assert decon["prompts_seen"] > 0 and decon["threshold"] == 0.95

    router = load_router(out, embedder=HashingEmbedder(dim=64))
    prompts = ["What is 2 + 2?", "Write a proof that the square root of 2 is irrational."]
    scores = router.score(prompts)
    assert scores.shape == (2,) and ((scores > 0) & (scores < 1)).all()
    # reproducible: the same seed gives the same weights
    out2 = train_mf_command(out=tmp_path / "mf2", embedder=emb, reference_embedder=emb, max_prompts_per_source=8,
                            epochs=1, evaluate=False, progress=False)
    again = load_router(out2, embedder=HashingEmbedder(dim=64))
    assert np.allclose(again.score(prompts), scores, atol=1e-6)


def test_user_battles_file_trains_and_bad_rows_are_named(tmp_path, isolated_cache):
    good = tmp_path / "mine.csv"
    rows = ["prompt,model_a,model_b,winner"]
    for i in range(30):
        rows.append(f"\"prove lemma {i} about primes\",gpt-4-1106-preview,mistralai/Mixtral-8x7B-Instruct-v0.1,a")
        rows.append(f"\"say hi to friend {i}\",gpt-4-1106-preview,mistralai/Mixtral-8x7B-Instruct-v0.1,tie")
    good.write_text("\n".join(rows) + "\n")
    table = load_battles_file(good)
    assert len(table) == 60 and "mixtral-8x7b-instruct-v0.1" in table.models
    emb = HashingEmbedder(dim=32)
    out = train_mf_command(out=tmp_path / "own", sources=(), battles_files=[good], embedder=emb,
                           reference_embedder=emb, epochs=200, evaluate=False, progress=False)
    router = load_router(out, embedder=HashingEmbedder(dim=32))
    s = router.score(["prove lemma 99 about primes", "say hi to friend 99"])
    assert s[0] > s[1]

    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,model_a,model_b,winner\nhello,gpt-4,mixtral,maybe\n")
    with pytest.raises(DataError, match=r"bad.csv:2: winner must be a, b or tie"):
        load_battles_file(bad)
    bad.write_text("prompt,model_a,winner\nhello,gpt-4,a\n")
    with pytest.raises(DataError, match="missing column"):
        load_battles_file(bad)
    jl = tmp_path / "b.jsonl"
    jl.write_text('{"prompt": "x", "model_a": "m1", "model_b": "m1", "winner": "a"}\n')
    with pytest.raises(DataError, match="same model"):
        load_battles_file(jl)
    with pytest.raises(DataError, match="nothing to train on"):
        train_mf_command(out=tmp_path / "none", sources=(), embedder=emb, reference_embedder=emb, progress=False)
