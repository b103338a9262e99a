"""bert: 3-class head training on a toy table and a slice of the pool, save/load, errors, shipped head."""

import json

import numpy as np
import pytest
from fakes import HashingEmbedder
from test_sw_ranking import CHAT, MATH, STRONG, WEAK, synthetic_table

from routellm_integrations import CheckpointError, InvalidPromptError, UnknownModelError, load_router
from routellm_integrations.errors import DataError
from routellm_integrations.routers.bert import BertRouter
from routellm_integrations.training.bert import BertTrainingConfig, build_bert, tier_soft_labels, train_bert_command


@pytest.fixture(scope="module")
def trained():
    table = synthetic_table()
    emb = HashingEmbedder(dim=32)
    router, report = build_bert(table, emb.embed(table.prompts), embedder_name=emb.name, strong_model=STRONG,
                                weak_model=WEAK, config=BertTrainingConfig(n_tiers=4, hidden=16, epochs=150,
                                                                            batch_size=32, lr=1e-2, dropout=0.0))
    router.embedder = emb
    return router, report


def test_learns_where_the_strong_tier_wins(trained):
    router, report = trained
    assert report["n_prompts"] == 60
    s = router.score(MATH[:10] + CHAT[:10])
    assert s[:10].mean() > 0.8 and s[10:].mean() < 0.3
    p = router.class_probabilities(MATH[:2], router.embedder.embed(MATH[:2]))
    assert np.allclose(p.sum(1), 1) and np.allclose(s[:2], 1 - p[:, 1] - p[:, 2])


def test_soft_labels_are_oriented_to_the_pair():
    table = synthetic_table()
    tiers = {m: i for i, m in enumerate([STRONG, "claude-2", WEAK])}
    labels, w = tier_soft_labels(table, tiers, balance="none", pair_tiers=(0, 2))
    i = table.prompts.index(MATH[0])
    assert np.allclose(labels[i], [1, 0, 0]) and w[i] == 2  # gpt-4 beat mixtral twice
    j = table.prompts.index(CHAT[0])
    assert np.allclose(labels[j], [0, 1, 0])
    with pytest.raises(DataError):
        tier_soft_labels(table, {STRONG: 0, WEAK: 1}, pair_tiers=(0, 5))


def test_save_reload_identical_and_route(trained, tmp_path):
    router, _ = trained
    folder = router.save_pretrained(tmp_path / "b", model_card="# card\n")
    assert {p.name for p in folder.iterdir()} == {"head.safetensors", "config.json", "README.md"}
    again = load_router(folder, embedder=HashingEmbedder(dim=32))
    assert isinstance(again, BertRouter)
    prompts = MATH[:3] + CHAT[:3] + ["x " * 5000]
    assert np.array_equal(again.score(prompts), router.score(prompts))
    assert again.route(MATH[0], 0.5).route == "strong" and again.route(CHAT[0], 0.5).route == "weak"
    other = again.with_pair("gpt-4o", "llama-3.1-8b-instruct")  # pair-independent score
    assert np.array_equal(other.score(prompts), again.score(prompts)) and other.strong_model == "gpt-4o"


def test_bad_inputs(trained, tmp_path):
    router, _ = trained
    with pytest.raises(InvalidPromptError):
        router.score([])
    with pytest.raises(InvalidPromptError):
        router.score([3])
    with pytest.raises(UnknownModelError):
        router.with_pair(STRONG, STRONG)
    folder = router.save_pretrained(tmp_path / "bad")
    with pytest.raises(CheckpointError, match="dim"):
        load_router(folder, embedder=HashingEmbedder(dim=16))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["features"] = cfg["features"][:2]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape"):
        load_router(folder, embedder=HashingEmbedder(dim=32))
    (folder / "head.safetensors").unlink()
    with pytest.raises(CheckpointError, match="head.safetensors"):
        load_router(folder, embedder=HashingEmbedder(dim=32))


def test_train_command_on_a_slice(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path / "cache"))
    emb = HashingEmbedder(dim=32)
    out = train_bert_command(out=tmp_path / "bert", embedder=emb, reference_embedder=emb, max_prompts_per_source=10,
                             config=BertTrainingConfig(epochs=2, hidden=8), evaluate=False, validate=False,
                             progress=False)
    assert "routerbench" in (out / "README.md").read_text()
    router = load_router(out, embedder=HashingEmbedder(dim=32))
    s = router.score(["What is 2 + 2?", "Prove that sqrt(2) is irrational."])
    assert s.shape == (2,) and ((s > 0) & (s < 1)).all()


def test_shipped_checkpoint():
    from routellm_integrations.routers.registry import CHECKPOINTS

    folder = CHECKPOINTS / "bert"
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1_000_000
    assert "Reproduce: `routellm train bert" in (folder / "README.md").read_text()
    router = load_router("bert")
    s = router.score(["Hi!", "Write a Python function that merges two sorted lists."])
    assert s.shape == (2,) and ((s > 0) & (s < 1)).all()
