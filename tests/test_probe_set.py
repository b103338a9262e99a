"""The probe set (benchmarks/probe_prompts.jsonl): prompts a new user tries, labelled strong
or weak, a third of them length-adversarial; and how the shipped `mf` ranks them.

The probe is a test set (written before any tuning; settings are chosen on validation
splits of the training pool): ``python benchmarks/probe_auc.py`` prints the figures.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from routellm_integrations import load_router
from routellm_integrations.routers.length import LengthRouter

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("probe_auc", ROOT / "benchmarks" / "probe_auc.py")
probe_auc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probe_auc)

WEAK = {"greeting", "chit_chat", "fact", "translation", "arithmetic", "rewrite"}
STRONG = {"proof", "system_design", "hard_code", "multistep_math", "analysis"}


@pytest.fixture(scope="module")
def rows():
    return probe_auc.read_probe(ROOT / "benchmarks" / "probe_prompts.jsonl")


def test_probe_set_is_well_formed(rows):
    assert len(rows) >= 100
    assert all(set(r) == {"prompt", "label", "category", "adversarial"} for r in rows)
    assert {r["category"] for r in rows if r["label"] == "weak"} == WEAK
    assert {r["category"] for r in rows if r["label"] == "strong"} == STRONG
    assert sum(r["adversarial"] for r in rows) >= len(rows) / 3
    assert len({r["prompt"] for r in rows}) == len(rows)
    dev = probe_auc.read_probe(ROOT / "benchmarks" / "probe_dev.jsonl")
    assert not {r["prompt"] for r in dev} & {r["prompt"] for r in rows}  # the dev set is separate


def test_length_alone_cannot_pass_it(rows):
    rep = probe_auc.probe_report(LengthRouter().score([r["prompt"] for r in rows]), rows)
    assert rep["auc_adversarial"] == 0.0  # every adversarial strong prompt is shorter than every weak one
    assert rep["auc"] < 0.6


def test_ranking_auc():
    strong = np.array([True, True, False, False])
    assert probe_auc.ranking_auc(np.array([0.9, 0.8, 0.1, 0.2]), strong) == 1.0
    assert probe_auc.ranking_auc(np.array([0.1, 0.2, 0.9, 0.8]), strong) == 0.0
    assert probe_auc.ranking_auc(np.array([0.5, 0.5, 0.5, 0.5]), strong) == 0.5


def test_shipped_mf_ranks_the_probe_set(rows):
    """The issue's bar: >= 0.9 (the shipped mf's everyday prior; 0.42 without it)."""
    rep = probe_auc.probe_report(load_router("mf").score([r["prompt"] for r in rows]), rows)
    assert rep["auc"] >= 0.9, rep
    assert rep["auc_adversarial"] >= 0.85, rep  # not by length: short hard and long easy prompts too


def test_every_everyday_category_ranks_below_every_hard_one(rows):
    """Mean score per category: the everyday ones (greetings, small talk, facts, translations,
    arithmetic, rewrites) all below proofs, hard code, multi-step maths, system design and analysis."""
    scores = load_router("mf").score([r["prompt"] for r in rows])
    mean = {c: float(np.mean([s for s, r in zip(scores, rows) if r["category"] == c])) for c in WEAK | STRONG}
    assert max(mean[c] for c in WEAK) < min(mean[c] for c in STRONG), mean
