"""The everyday-prompt prior of the ``mf`` router: is this prompt small talk, or a task?

Why: the training pool is benchmark-style tasks (maths, code, multiple choice, trivia)
with golden labels. Greetings, chit-chat, one-line facts, translations and simple rewrites
are not in it, and there the MF's score is an extrapolation: "Hi! How are you today?" got
the highest score of the demo. Adding such prompts to the MF's battles moved every
serious-sounding prompt along with them, and MT-Bench fell (0.64-0.68).

So the prior is a separate, small model with one job: ``P(task)``, a logistic regression on
the prompt's embedding, trained on the hand-written prompts in ``data/everyday_prompts.jsonl``
(everyday ones against hard and open-ended tasks, written for this and checked against the
benchmarks at training time) and on a sample of the pool's own training prompts (all
tasks). The router serves ``P(strong beats weak) * P(task) ** beta``. On task prompts
``P(task)`` is close to 1, so their order, and what the benchmarks measure, barely moves; an
everyday prompt is pushed towards the weak model whatever its length or wording.

The settings (``C`` 0.3, ``beta`` 0.5, 2,000 pool prompts) were chosen on the pool's held-out
prompts and the probe's separate dev set (``benchmarks/probe_dev.jsonl``), never on the
benchmarks or the probe set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError

#: the hand-written prompts: ``prompt``, ``everyday`` (bool), ``kind`` (everyday | hard | open_ended)
EVERYDAY_PROMPTS = Path(__file__).with_name("data") / "everyday_prompts.jsonl"


@dataclass(frozen=True)
class EverydayExample:
    prompt: str
    everyday: bool
    kind: str


def load_everyday_prompts(path: str | Path = EVERYDAY_PROMPTS) -> list[EverydayExample]:
    """The labelled prompts of ``path`` (JSONL); :class:`DataError` names a bad line."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append(EverydayExample(str(row["prompt"]), bool(row["everyday"]), str(row["kind"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{path}: line {i} is not an everyday-prompt row ({exc})") from None
    if not any(r.everyday for r in rows) or all(r.everyday for r in rows):
        raise DataError(f"{path}: needs both everyday and task prompts")
    return rows


def fit_logistic(x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, c: float,
                 max_iter: int = 50, tol: float = 1e-8) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method: the minimiser of
    ``0.5 |w|^2 + c * sum_i s_i * logloss_i`` with an unpenalised intercept (scikit-learn's
    ``LogisticRegression(C=c)`` objective; a test compares the two)."""
    n, d = x.shape
    xb = np.concatenate([x.astype(np.float64), np.ones((n, 1))], axis=1)
    penalty = np.full(d + 1, 1.0 / c)
    penalty[-1] = 0.0
    theta = np.zeros(d + 1)
    s = np.asarray(sample_weight, dtype=np.float64)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(xb @ theta)))
        grad = xb.T @ (s * (p - y)) + penalty * theta
        hess = (xb * (s * p * (1 - p))[:, None]).T @ xb + np.diag(penalty) + 1e-10 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < tol:
            break
    return theta[:-1], float(theta[-1])


def fit_everyday_prior(train_prompts: Sequence[str], train_embeddings: np.ndarray, embedder: Any,
                       examples: Sequence[EverydayExample], *, c: float = 0.3, pool_prompts: int = 2000,
                       seed: int = 0) -> tuple[np.ndarray, float, dict[str, Any]]:
    """``(weight, bias, report)`` of ``P(task | embedding)``.

    Negatives: the everyday examples (total weight 1). Positives: the hard and open-ended
    examples (weight 1/2) and ``pool_prompts`` of the pool's training prompts, drawn with
    ``seed`` (weight 1/2): the pool is all tasks, and its prompts keep the prior close to 1
    on the kind of prompt the MF knows."""
    if len(train_prompts) != len(train_embeddings):
        raise DataError(f"{len(train_embeddings)} embeddings for {len(train_prompts)} training prompts")
    everyday = [e.prompt for e in examples if e.everyday]
    tasks = [e.prompt for e in examples if not e.everyday]
    if not everyday or not tasks:
        raise DataError("the everyday prior needs both everyday and task examples")
    rng = np.random.default_rng(seed)
    n_pool = min(int(pool_prompts), len(train_prompts))
    pick = rng.choice(len(train_prompts), size=n_pool, replace=False) if n_pool else np.zeros(0, dtype=int)
    x = np.vstack([np.asarray(embedder.embed(everyday), dtype=np.float32),
                   np.asarray(embedder.embed(tasks), dtype=np.float32),
                   np.asarray(train_embeddings, dtype=np.float32)[pick]])
    y = np.r_[np.zeros(len(everyday)), np.ones(len(tasks) + n_pool)]
    w = np.r_[np.full(len(everyday), 1.0 / len(everyday)),
              np.full(len(tasks), (0.5 if n_pool else 1.0) / len(tasks)),
              np.full(n_pool, 0.5 / max(n_pool, 1))]
    w *= len(y) / w.sum()
    weight, bias = fit_logistic(x, y, w, c)
    report = {"everyday_examples": len(everyday), "task_examples": len(tasks), "pool_prompts": n_pool, "c": c}
    return weight.astype(np.float32), bias, report
