"""The mf router's everyday prior (``training.everyday``): P(task) from the embedding, which
sends greetings, small talk, one-line facts and translations towards the weak model while
task prompts keep their MF score."""

from __future__ import annotations

import numpy as np
import pytest

from routellm_integrations import load_router
from routellm_integrations.errors import CheckpointError, DataError
from routellm_integrations.routers.mf import MatrixFactorizationRouter, MFWeights
from routellm_integrations.training.everyday import (EVERYDAY_PROMPTS, fit_everyday_prior, fit_logistic,
                                                      load_everyday_prompts)

EVERYDAY = ["Hi! How are you today?", "Thanks, that was lovely.", "Translate 'good evening' into German.",
            "Good morning! The weather is lovely today, isn't it?"]
TASKS = ["Prove that the sum of two odd numbers is even, for all integers.",
         "Implement a thread-safe bounded queue in Java with blocking put and take.",
         "Design a URL-based cache invalidation scheme for a CDN serving 10 million users."]


@pytest.fixture(scope="module")
def mf():
    return load_router("mf")


def _without_prior(router: MatrixFactorizationRouter) -> MatrixFactorizationRouter:
    tensors = {k: v for k, v in router.weights.tensors.items() if not k.startswith("everyday_")}
    config = {k: v for k, v in router.config_data.items() if k != "everyday_beta"}
    weights = MFWeights(tensors, len(router.models), int(config["embedding_dim"]), len(router.feature_names))
    return MatrixFactorizationRouter(weights, config, router.embedder)


def test_the_shipped_mf_has_the_prior_and_it_moves_everyday_prompts_only(mf):
    assert mf.weights.has_everyday_prior and mf.everyday_beta == 0.5
    plain = _without_prior(mf)
    with_prior, without = mf.score(EVERYDAY + TASKS), plain.score(EVERYDAY + TASKS)
    factor = with_prior / without
    assert (factor[: len(EVERYDAY)] < 0.75).all(), factor  # discounted
    assert (factor[len(EVERYDAY):] > 0.8).all(), factor  # kept nearly as they were
    assert with_prior[: len(EVERYDAY)].max() < with_prior[len(EVERYDAY):].min()
    # the pair can change; the prior stays
    other = mf.with_pair("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18")
    assert other.everyday_beta == 0.5 and other.score(["Hello!"])[0] < _without_prior(other).score(["Hello!"])[0]


def test_scores_from_cached_embeddings_equal_the_served_ones(mf):
    prompts = EVERYDAY + TASKS
    np.testing.assert_allclose(mf.scores_from_embeddings(prompts, mf.embedder.embed(prompts)), mf.score(prompts),
                               rtol=1e-6)


def test_logistic_regression_is_scikit_learns():
    from sklearn.linear_model import LogisticRegression  # a dev dependency; the library fits with numpy

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 12))
    y = (x[:, 0] - x[:, 3] + rng.normal(size=400) > 0).astype(float)
    s = rng.uniform(0.2, 3.0, size=400)
    w, b = fit_logistic(x, y, s, 0.3)
    ref = LogisticRegression(C=0.3, tol=1e-10, max_iter=10_000).fit(x, y, sample_weight=s)
    np.testing.assert_allclose(w, ref.coef_[0], atol=1e-5)
    assert b == pytest.approx(ref.intercept_[0], abs=1e-5)


def test_the_packaged_prompts_and_the_fit(mf):
    examples = load_everyday_prompts()
    assert {e.kind for e in examples} == {"everyday", "hard", "open_ended"}
    assert all(e.everyday == (e.kind == "everyday") for e in examples)
    assert len({e.prompt for e in examples}) == len(examples)
    pool = TASKS * 4
    weight, bias, report = fit_everyday_prior(pool, mf.embedder.embed(pool), mf.embedder, examples, pool_prompts=5)
    assert weight.shape == (mf.embedder.dim,) and np.isfinite(weight).all() and np.isfinite(bias)
    assert report == {"everyday_examples": sum(e.everyday for e in examples),
                      "task_examples": sum(not e.everyday for e in examples), "pool_prompts": 5, "c": 0.3}
    p = 1 / (1 + np.exp(-(mf.embedder.embed(EVERYDAY + TASKS) @ weight + bias)))
    assert p[: len(EVERYDAY)].max() < p[len(EVERYDAY):].min()


def test_bad_everyday_files_are_data_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "hi", "everyday": true, "kind": "everyday"}\n{"prompt": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2"):
        load_everyday_prompts(bad)
    one_sided = tmp_path / "one.jsonl"
    one_sided.write_text('{"prompt": "hi", "everyday": true, "kind": "everyday"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="both"):
        load_everyday_prompts(one_sided)
    assert EVERYDAY_PROMPTS.is_file()


def test_a_broken_prior_in_a_checkpoint_is_a_checkpoint_error(mf):
    t, n, d, f = mf.weights.tensors, len(mf.models), mf.embedder.dim, len(mf.feature_names)
    lone = {k: v for k, v in t.items() if k != "everyday_bias"}
    with pytest.raises(CheckpointError, match="come together"):
        MFWeights(lone, n, d, f)
    with pytest.raises(CheckpointError, match="everyday_weight"):
        MFWeights({**t, "everyday_weight": np.zeros(d + 1, dtype=np.float32)}, n, d, f)
    with pytest.raises(CheckpointError, match="NaN"):
        MFWeights({**t, "everyday_bias": np.array([np.nan], dtype=np.float32)}, n, d, f)
    for beta in (None, 0, -1, 5, True, "0.5"):
        config = {**mf.config_data, "everyday_beta": beta}
        with pytest.raises(CheckpointError, match="everyday_beta"):
            MatrixFactorizationRouter(mf.weights, config, mf.embedder)


def test_the_card_says_what_the_prior_was_fitted_on(mf):
    card = mf.config_data["card"]
    assert card["everyday_prompts"] == {"kept": len(load_everyday_prompts()), "dropped": 0}
    assert card["training_report"]["everyday_prior"]["beta"] == 0.5
