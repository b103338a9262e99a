"""Model tiers, shared by the tier-based trainers (``sw_ranking``, ``bert``, ``causal_llm``).

A global Bradley-Terry fit with ties over every battle (each source given the same total
weight, so CRUXEval's ~1,100 pairs per prompt do not set the scale), then ``n_tiers``
quantile tiers by rating (:func:`~routellm_integrations.data.elo.assign_tiers`), as the
paper groups Arena models into 10 tiers. With ``tiering="family"`` snapshots of one model
line share a rating instead. Battles re-coded to tiers are the labels of ``bert`` and
``causal_llm`` (:func:`tier_soft_labels`) and the index of ``sw_ranking``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..data.battles import BattleTable
from ..data.elo import EloRatings, assign_tiers, fit_bradley_terry
from ..errors import DataError
from ..routers.sw_ranking import DEFAULT_L2
from .pool import balanced_battle_weights


def battle_weights(table: BattleTable, balance: str) -> np.ndarray:
    """Per-battle weights (mean 1, float64): every source the same total, or all equal; a
    tie counts as much as a win."""
    return balanced_battle_weights(table, balance=balance, tie_weight=1.0).astype(np.float64)


def fit_tiers(table: BattleTable, n_tiers: int, *, tiering: Literal["model", "family"] = "model",
              balance: str = "source", l2: float = DEFAULT_L2) -> tuple[EloRatings, dict[str, int]]:
    """Global ratings and tiers (0 = strongest) of every model with a battle."""
    from ..data.models import model_family

    w = battle_weights(table, balance)
    if tiering == "model":
        ratings = fit_bradley_terry(table, w, l2=l2)
        return ratings, assign_tiers(ratings, n_tiers)
    fams = [model_family(m) for m in table.models]
    names, inv = np.unique(fams, return_inverse=True)
    keep = inv[table.model_a] != inv[table.model_b]
    fam_table = BattleTable(table.prompts, list(names), table.sources, table.prompt_idx[keep],
                            inv[table.model_a][keep], inv[table.model_b][keep], table.winner[keep],
                            table.source_idx[keep])
    fam_ratings = fit_bradley_terry(fam_table, w[keep], l2=l2)
    fam_tiers = assign_tiers(fam_ratings, n_tiers)
    played = np.bincount(np.concatenate([table.model_a, table.model_b]), minlength=len(table.models)) > 0
    ratings = {m: fam_ratings.ratings[f] for m, f, p in zip(table.models, fams, played) if p and f in fam_tiers}
    tiers = {m: fam_tiers[model_family(m)] for m in ratings}
    return EloRatings(ratings=ratings, n_battles=fam_ratings.n_battles, total_weight=fam_ratings.total_weight,
                      l2=l2, iterations=fam_ratings.iterations), tiers


def _tier_codes(table: BattleTable, tiers: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per battle: tier of side a, tier of side b, and whether both have a tier and differ."""
    code = np.array([tiers.get(m, -1) for m in table.models], dtype=np.int64)
    ta, tb = code[table.model_a], code[table.model_b]
    return ta, tb, (ta >= 0) & (tb >= 0) & (ta != tb)


def tier_table(table: BattleTable, tiers: dict[str, int], n_tiers: int) -> tuple[BattleTable, np.ndarray]:
    """Battles re-coded to tiers (models ``"tier-0"``...), same-tier battles dropped;
    also returns the kept rows of ``table``."""
    ta, tb, cross = _tier_codes(table, tiers)
    keep = np.flatnonzero(cross)
    return BattleTable(table.prompts, [f"tier-{i}" for i in range(n_tiers)], table.sources, table.prompt_idx[keep],
                       ta[keep], tb[keep], table.winner[keep], table.source_idx[keep]), keep


def tier_soft_labels(table: BattleTable, tiers: dict[str, int], balance: str = "source",
                     pair_tiers: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(labels (P, 3), weight (P,))``: per prompt, the weighted share of cross-tier
    battles the better tier won / tied / lost, and the prompt's total battle weight.
    With ``pair_tiers=(strong_tier, weak_tier)`` only battles between those two tiers count."""
    ta, tb, keep = _tier_codes(table, tiers)
    if pair_tiers is not None:
        keep &= ((ta == pair_tiers[0]) & (tb == pair_tiers[1])) | ((ta == pair_tiers[1]) & (tb == pair_tiers[0]))
        if not keep.any():
            raise DataError(f"no battles between tiers {pair_tiers[0]} and {pair_tiers[1]}")
    w = battle_weights(table, balance)[keep]
    a_better = (ta < tb)[keep] if pair_tiers is None else (ta == pair_tiers[0])[keep]
    win = table.winner[keep]
    cls = np.where(win == 2, 1, np.where((win == 0) == a_better, 0, 2))
    counts = np.zeros((len(table.prompts), 3))
    np.add.at(counts, (table.prompt_idx[keep], cls), w)
    total = counts.sum(axis=1)
    labels = counts / np.where(total > 0, total, 1.0)[:, None]
    return labels, total
