"""sw_ranking: the fast path against a direct refit, save/load, errors, the shipped index."""

import json

import numpy as np
import pytest
from fakes import HashingEmbedder

from routellm_integrations import CheckpointError, InvalidPromptError, UnknownModelError, load_router
from routellm_integrations.data.battles import Battle, BattleTable
from routellm_integrations.routers.sw_ranking import SWRankingRouter, newton_bradley_terry, similarity_weights
from routellm_integrations.training.sw_ranking import (SWRankingConfig, battle_weights, build_sw_ranking,
                                                       direct_refit_scores, train_sw_ranking_command)

STRONG, WEAK = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"
MATH = [f"solve the integral of x^{i} times sin {i}x and prove convergence" for i in range(30)]
CHAT = [f"hello there friend number {i}, how was your day" for i in range(30)]
OTHERS = ["llama-2-7b", "mistral-7b-chat", "claude-2", "qwen2.5-7b-instruct"]

#: fast path vs direct refit: int8 embeddings and float16 tier wins in the index move
#: P(strong wins) by ~1e-5 on the real pool; this bound leaves room for small toy data
TOLERANCE = 2e-3


def synthetic_table() -> BattleTable:
    """gpt-4 beats mixtral on maths and ties on chat; the other models sit between/below."""
    rows = []
    for i, p in enumerate(MATH):
        rows += [Battle(p, STRONG, WEAK, "a", "synthetic/math"), Battle(p, WEAK, STRONG, "b", "synthetic/math")]
        rows += [Battle(p, STRONG, o, "a" if i % 3 else "tie", "synthetic/math") for o in OTHERS]
        rows += [Battle(p, WEAK, OTHERS[i % 4], "b" if i % 2 else "a", "synthetic/math")]
    for i, p in enumerate(CHAT):
        rows += [Battle(p, STRONG, WEAK, "tie", "synthetic/chat")]
        rows += [Battle(p, o, WEAK, "tie" if i % 2 else "b", "synthetic/chat") for o in OTHERS]
        rows += [Battle(p, OTHERS[0], OTHERS[1], "b", "synthetic/chat"), Battle(p, STRONG, OTHERS[2], "a", "synthetic/chat")]
    return BattleTable.from_battles(rows)


@pytest.fixture(scope="module")
def built():
    table = synthetic_table()
    emb = HashingEmbedder(dim=32)
    embeddings = emb.embed(table.prompts)
    router, summary = build_sw_ranking(table, embeddings, embedder_name=emb.name, strong_model=STRONG,
                                       weak_model=WEAK, config=SWRankingConfig(n_tiers=4))
    router.embedder = emb
    return router, summary, table, embeddings


def test_fast_path_matches_a_direct_refit(built):
    router, _, table, embeddings = built
    queries = [MATH[0], CHAT[3], "prove the integral converges", "hi friend", "something unrelated entirely"]
    q = router.embedder.embed(queries)
    fast = router.scores_from_embeddings(queries, q)
    for top_k in (None, 10):
        r = SWRankingRouter(router.index, router.config_data, router.embedder, top_k=top_k)
        slow = direct_refit_scores(table, router.tiers, router.index.n_tiers, battle_weights(table, "source"),
                                   embeddings, q, router.strong_tier, router.weak_tier, top_k=top_k)
        got = r.scores_from_embeddings(queries, q)
        assert np.abs(got - slow).max() < TOLERANCE, (top_k, got, slow)
    assert fast[0] > fast[1]  # maths needs the strong model, chat does not


def test_newton_converges_from_any_start():
    rng = np.random.default_rng(0)
    wins = rng.uniform(0, 5, size=(3, 5, 5)) * (1 - np.eye(5))
    a = newton_bradley_terry(wins, np.zeros(5), steps=50)
    b = newton_bradley_terry(wins, rng.normal(0, 3, size=5), steps=50)
    assert np.allclose(a, b, atol=1e-8)
    w = similarity_weights(np.array([[0.2, 0.5, 1.0]]))
    assert np.allclose(w, 10 * 10 ** (np.array([0.2, 0.5, 1.0])))
    assert (similarity_weights(np.array([[0.2, 0.5, 1.0]]), top_k=2)[0] > 0).tolist() == [False, True, True]


def test_save_reload_identical_scores_and_route(built, tmp_path):
    router, summary, _, _ = built
    assert summary["n_index_prompts"] == 60
    folder = router.save_pretrained(tmp_path / "sw", model_card="# card\n")
    assert {p.name for p in folder.iterdir()} == {"index.safetensors", "config.json", "README.md"}
    again = load_router(folder, embedder=HashingEmbedder(dim=32))
    assert isinstance(again, SWRankingRouter)
    prompts = MATH[:3] + CHAT[:3] + ["word " * 3000]
    assert np.array_equal(again.score(prompts), router.score(prompts))
    assert again.route(MATH[0], 0.0).route == "strong"
    assert again.route(MATH[0], 1.0).route == "weak"
    flipped = again.with_pair(WEAK, STRONG).score(MATH[:3])
    assert np.allclose(flipped, 1 - again.score(MATH[:3]), atol=1e-9)


def test_bad_inputs_raise_typed_errors(built, tmp_path):
    router, _, _, _ = built
    with pytest.raises(InvalidPromptError):
        router.score([])
    with pytest.raises(InvalidPromptError):
        router.score(["ok", "  "])
    with pytest.raises(UnknownModelError, match="gpt-9"):
        router.with_pair("gpt-9", WEAK)
    same = [m for m, t in router.tiers.items() if t == router.tiers[WEAK] and m != WEAK]
    if same:
        with pytest.raises(UnknownModelError, match="tier"):
            router.with_pair(same[0], WEAK)
    folder = router.save_pretrained(tmp_path / "bad")
    with pytest.raises(CheckpointError, match="top_k"):
        load_router(folder, embedder=HashingEmbedder(dim=32), top_k=0)
    with pytest.raises(CheckpointError, match="embed"):
        load_router(folder, embedder=HashingEmbedder(dim=16))
    cfg = json.loads((folder / "config.json").read_text())
    cfg["n_tiers"] = 7
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape"):
        load_router(folder, embedder=HashingEmbedder(dim=32))
    (folder / "index.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_router(folder, embedder=HashingEmbedder(dim=32))


def test_train_command_on_a_slice_of_the_pool(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path / "cache"))
    emb = HashingEmbedder(dim=32)
    out = train_sw_ranking_command(out=tmp_path / "sw", embedder=emb, reference_embedder=emb,
                                   max_prompts_per_source=8, evaluate=False, validate=False, progress=False)
    card = (out / "README.md").read_text()
    assert "Tiers" in card and "routerbench" in card and "Decontamination" in card
    router = load_router(out, embedder=HashingEmbedder(dim=32))
    s = router.score(["What is 2 + 2?", "Prove that sqrt(2) is irrational."])
    assert s.shape == (2,) and ((s > 0) & (s < 1)).all()


def test_shipped_checkpoint():
    from routellm_integrations.routers.registry import CHECKPOINTS

    folder = CHECKPOINTS / "sw_ranking"
    assert sum(p.stat().st_size for p in folder.iterdir()) < 7_000_000
    card = (folder / "README.md").read_text()
    assert "Reproduce: `routellm train sw_ranking" in card and "Validation" in card
    router = load_router("sw_ranking")
    s = router.score(["Hi!", "Write a Python function that merges two sorted lists."])
    assert s.shape == (2,) and ((s > 0) & (s < 1)).all()
    assert router.config()["strong_model"] == STRONG


def test_cli_train_dispatch_and_bad_options(monkeypatch, tmp_path, capsys):
    import routellm_integrations.training.pipeline as pipeline
    from routellm_integrations.cli import main

    seen = {}
    monkeypatch.setattr(pipeline, "train", lambda spec, **kw: seen.setdefault(spec.name, kw))
    assert main(["train", "sw_ranking", "--out", str(tmp_path / "s"), "--top-k", "50", "--no-validate",
                 "--quiet"]) == 0
    assert seen["sw_ranking"]["config"].top_k == 50 and seen["sw_ranking"]["validate"] is False
    assert main(["train", "bert", "--out", str(tmp_path / "b"), "--epochs", "3", "--sources", "routerbench"]) == 0
    assert seen["bert"]["config"].epochs == 3 and list(seen["bert"]["sources"]) == ["routerbench"]
    assert main(["train", "sw_ranking", "--out", str(tmp_path / "s"), "--tiers", "1"]) == 1
    assert "--tiers" in capsys.readouterr().err
