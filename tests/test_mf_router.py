"""MF router: training on a synthetic battle table, save/load round trip, bad checkpoints."""

import json

import numpy as np
import pytest
from fakes import HashingEmbedder

from routellm_integrations import CheckpointError, UnknownModelError, load_router
from routellm_integrations.data.battles import Battle, BattleTable
from routellm_integrations.routers.mf import MatrixFactorizationRouter
from routellm_integrations.training.mf import MFTrainingConfig, train_mf

MATH = [f"solve the integral of x^{i} times sin {i}x and prove convergence" for i in range(40)]
CHAT = [f"hello there friend number {i}, how was your day" for i in range(40)]


def synthetic_table() -> BattleTable:
    """gpt-4 beats mixtral on math and ties on chat; llama loses to both everywhere."""
    rows = []
    for p in MATH:
        rows += [Battle(p, "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", "a", "synthetic"),
                 Battle(p, "mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview", "b", "synthetic")]
    for p in CHAT:
        rows += [Battle(p, "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", "tie", "synthetic")]
    for p in MATH + CHAT:
        rows += [Battle(p, "llama-2-7b", "mixtral-8x7b-instruct-v0.1", "b", "other"),
                 Battle(p, "gpt-4-1106-preview", "llama-2-7b", "a", "other")]
    return BattleTable.from_battles(rows)


@pytest.fixture(scope="module")
def trained():
    table = synthetic_table()
    emb = HashingEmbedder(dim=32)
    router, report, _ = train_mf(table, emb.embed(table.prompts), embedder_name=emb.name,
                                 strong_model="gpt-4-1106-preview", weak_model="mixtral-8x7b-instruct-v0.1",
                                 config=MFTrainingConfig(dim=8, epochs=300, batch_size=1024, lr=0.05,
                                                         val_fraction=0.0), progress=False)
    router.embedder = emb
    return router, report


def test_training_learns_where_the_strong_model_helps(trained):
    router, report = trained
    assert report.n_battles == len(synthetic_table())
    scores = router.score(MATH[:10] + CHAT[:10])
    assert scores[:10].min() > scores[10:].max()
    assert scores[:10].mean() > 0.8
    assert abs(scores[10:].mean() - 0.5) < 0.15


def test_other_pairs_at_serving_time(trained):
    router, _ = trained
    vs_llama = router.with_pair("gpt-4-1106-preview", "llama-2-7b").score(CHAT[:5])
    assert vs_llama.mean() > 0.8  # gpt-4 beats llama everywhere
    flipped = router.with_pair("mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview").score(MATH[:5])
    assert np.allclose(flipped, 1 - router.score(MATH[:5]), atol=1e-6)
    ranking = router.model_scores(MATH[:1])
    assert ranking["gpt-4-1106-preview"][0] > ranking["llama-2-7b"][0]


def test_save_and_reload_give_identical_scores(trained, tmp_path):
    router, _ = trained
    router.save_pretrained(tmp_path / "ckpt", model_card="# card\n")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {"model.safetensors", "config.json", "README.md"}
    again = load_router(tmp_path / "ckpt", embedder=HashingEmbedder(dim=32))
    assert isinstance(again, MatrixFactorizationRouter)
    prompts = MATH[:3] + CHAT[:3] + ["something else entirely " * 500]
    assert np.array_equal(again.score(prompts), router.score(prompts))
    assert again.route(MATH[0], 0.5).route == "strong"


def test_unknown_models_and_wrong_embedder(trained, tmp_path):
    router, _ = trained
    router.save_pretrained(tmp_path / "c")
    with pytest.raises(UnknownModelError, match="strong model 'gpt-5'"):
        load_router(tmp_path / "c", strong_model="gpt-5", embedder=HashingEmbedder(dim=32))
    with pytest.raises(UnknownModelError, match="both"):
        load_router(tmp_path / "c", strong_model="llama-2-7b", weak_model="llama-2-7b",
                    embedder=HashingEmbedder(dim=32))
    with pytest.raises(CheckpointError, match="trained on 'test-hashing'"):
        load_router(tmp_path / "c", embedder=HashingEmbedder(dim=32, name="other-space"))


def test_corrupt_and_incomplete_checkpoints(trained, tmp_path):
    router, _ = trained
    folder = router.save_pretrained(tmp_path / "c")
    emb = HashingEmbedder(dim=32)
    (folder / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_router(folder, embedder=emb)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_router(folder, embedder=emb)
    router.save_pretrained(folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["models"] = cfg["models"][:-1]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape"):
        load_router(folder, embedder=emb)
    del cfg["features"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="features"):
        load_router(folder, embedder=emb)


def test_training_reports_validation_and_refuses_bad_input():
    table = synthetic_table()
    emb = HashingEmbedder(dim=32)
    from routellm_integrations import DataError
    _, report, val_mask = train_mf(table, emb.embed(table.prompts), embedder_name=emb.name,
                                   strong_model="gpt-4-1106-preview", weak_model="mixtral-8x7b-instruct-v0.1",
                                   config=MFTrainingConfig(dim=4, epochs=20, batch_size=64, val_fraction=0.3),
                                   progress=False)
    assert 0 < val_mask.sum() < len(table.prompts)
    assert report.n_val_battles > 0 and report.val_pair_accuracy is not None
    with pytest.raises(DataError, match="has no battles"):
        train_mf(table, emb.embed(table.prompts), embedder_name=emb.name, strong_model="gpt-5",
                 weak_model="llama-2-7b", progress=False)
    with pytest.raises(DataError, match="embeddings for"):
        train_mf(table, emb.embed(table.prompts[:3]), embedder_name=emb.name,
                 strong_model="gpt-4-1106-preview", weak_model="llama-2-7b", progress=False)


def test_hidden_layer_variant_round_trips(tmp_path):
    table = synthetic_table()
    emb = HashingEmbedder(dim=32)
    router, _, _ = train_mf(table, emb.embed(table.prompts), embedder_name=emb.name,
                            strong_model="gpt-4-1106-preview", weak_model="mixtral-8x7b-instruct-v0.1",
                            config=MFTrainingConfig(dim=4, hidden=8, epochs=50, batch_size=1024, lr=0.05,
                                                    val_fraction=0.0, share_families=False), progress=False)
    router.embedder = emb
    router.save_pretrained(tmp_path / "h")
    again = load_router(tmp_path / "h", embedder=HashingEmbedder(dim=32))
    assert "hidden_weight" in again.weights.tensors
    assert np.array_equal(again.score(MATH[:4] + CHAT[:4]), router.score(MATH[:4] + CHAT[:4]))
