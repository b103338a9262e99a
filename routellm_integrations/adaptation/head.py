"""A ridge head with one penalty per input block, fitted in closed form.

Why ridge and closed form: with a few hundred labels a linear head on a frozen embedding
is what the data can support (a probe here: ridge beat a kNN label average at every label
count), and a closed-form fit takes milliseconds, so cross-validating a grid of penalties
on 2 cores stays far below the 30 s the command may take. Block penalties let the head
trust length and the base score long before it trusts 384 embedding weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..routers.ridge_head import Blocks, RidgeHead, Standardiser, design_matrix


@dataclass(frozen=True)
class Penalty:
    """Ridge penalties: ``embedding`` on the embedding weights, ``dense`` on the
    structural features and the base score (an embedding penalty of ``inf`` drops it)."""

    embedding: float
    dense: float

    def label(self) -> str:
        emb = "off" if not np.isfinite(self.embedding) else f"{self.embedding:g}"
        return f"embedding alpha {emb}, dense alpha {self.dense:g}"


def fit_heads(blocks: Blocks, y: np.ndarray, penalties: Sequence[Penalty]) -> list[RidgeHead]:
    """Closed-form ridge for each penalty; the intercept is not penalised (inputs and
    target are centred). The Gram matrix is built once and shared by every penalty, so a
    grid costs one pass over the data plus a small solve per penalty.

    With fewer labels than inputs (a few hundred labels against a 384- or 512-wide
    embedding, the usual case inside cross-validation) the same solution is computed in
    its dual form, ``w = D^-1 X^T (X D^-1 X^T + I)^-1 y`` with ``D`` the penalties: an
    n x n solve per penalty instead of a d x d one."""
    feats = Standardiser.fit(blocks.features)
    prior = Standardiser.fit(blocks.prior) if blocks.prior is not None else None
    x = design_matrix(blocks, feats, prior)
    d_emb = blocks.embedding.shape[1]
    x_mean, y_mean = x.mean(axis=0), float(np.mean(y))
    xc, yc = x - x_mean, np.asarray(y, dtype=np.float64) - y_mean
    n_feat = blocks.features.shape[1]
    if xc.shape[0] < xc.shape[1] and all(p.dense > 0 and (p.embedding > 0) for p in penalties):
        coefs = _dual_coefs(xc, yc, d_emb, penalties)
    else:
        coefs = _primal_coefs(xc, yc, d_emb, penalties)
    heads = []
    for coef in coefs:
        bias = y_mean - float(x_mean @ coef)
        w_prior = float(coef[-1]) if prior is not None else None
        heads.append(RidgeHead(coef[:d_emb], coef[d_emb:d_emb + n_feat], w_prior, bias, feats, prior))
    return heads


def _primal_coefs(xc: np.ndarray, yc: np.ndarray, d_emb: int, penalties: Sequence[Penalty]) -> list[np.ndarray]:
    gram, xty = xc.T @ xc, xc.T @ yc
    out = []
    for penalty in penalties:
        if np.isfinite(penalty.embedding):
            g = gram.copy()
            pen = np.full(g.shape[0], float(penalty.dense))
            pen[:d_emb] = float(penalty.embedding)
            g[np.diag_indices_from(g)] += pen
            coef = np.linalg.solve(g, xty)
        else:  # the embedding block dropped: the dense block alone
            g = gram[d_emb:, d_emb:].copy()
            g[np.diag_indices_from(g)] += float(penalty.dense)
            coef = np.concatenate([np.zeros(d_emb), np.linalg.solve(g, xty[d_emb:])])
        out.append(coef)
    return out


def _dual_coefs(xc: np.ndarray, yc: np.ndarray, d_emb: int, penalties: Sequence[Penalty]) -> list[np.ndarray]:
    xe, xd = xc[:, :d_emb], xc[:, d_emb:]
    k_emb, k_dense = xe @ xe.T, xd @ xd.T
    eye = np.eye(xc.shape[0])
    out = []
    for penalty in penalties:
        if np.isfinite(penalty.embedding):
            a = np.linalg.solve(k_emb / penalty.embedding + k_dense / penalty.dense + eye, yc)
            coef = np.concatenate([xe.T @ a / penalty.embedding, xd.T @ a / penalty.dense])
        else:
            if xd.shape[1] <= xd.shape[0]:  # the dense block is narrow: its primal solve is the small one
                g = xd.T @ xd
                g[np.diag_indices_from(g)] += float(penalty.dense)
                coef = np.concatenate([np.zeros(d_emb), np.linalg.solve(g, xd.T @ yc)])
            else:
                a = np.linalg.solve(k_dense / penalty.dense + eye, yc)
                coef = np.concatenate([np.zeros(d_emb), xd.T @ a / penalty.dense])
        out.append(coef)
    return out


def fit_head(blocks: Blocks, y: np.ndarray, penalty: Penalty) -> RidgeHead:
    return fit_heads(blocks, y, [penalty])[0]


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """k shuffled folds of range(n) (k is lowered to n for tiny sets)."""
    k = max(2, min(int(k), n))
    order = np.random.default_rng(seed).permutation(n)
    return [order[i::k] for i in range(k)]


def out_of_fold(blocks: Blocks, y: np.ndarray, penalties: Sequence[Penalty],
                fold_sets: list[np.ndarray]) -> np.ndarray:
    """Each prompt's prediction from heads that never saw its label: shape
    ``(len(penalties), n)``, one row per penalty."""
    n = len(blocks)
    out = np.empty((len(penalties), n))
    everything = np.arange(n)
    for held in fold_sets:
        train = np.setdiff1d(everything, held, assume_unique=True)
        test = blocks.subset(held)
        for i, head in enumerate(fit_heads(blocks.subset(train), y[train], penalties)):
            out[i, held] = head.predict(test)
    return out
