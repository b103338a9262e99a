"""The SQLite label store: labels of one pair, calls and feedback, paid work, atomic marks."""

from __future__ import annotations

import numpy as np
import pytest

from routellm_integrations.errors import DataError
from routellm_integrations.labels import LabelStore, UnknownCallError, work_key


def test_labels_feedback_and_pairs(tmp_path):
    with LabelStore(tmp_path / "s.sqlite") as store:
        store.add_verdict("p1", "strong", strong_model="s", weak_model="w", source="judge:j")
        store.add_verdict("p1", "tie", strong_model="s", weak_model="w", source="judge:j")  # averaged
        store.add_outcome("p2", 7.0, 9.0, strong_model="s", weak_model="w", source="file:x")
        store.record_call("c1", "p3", route="weak", model="w", strong_model="s", weak_model="w")
        store.record_call("c2", "p4", route="strong", model="s", strong_model="s", weak_model="w")
        store.add_feedback("c1", 0.2)
        store.add_feedback("c2", 0.9)
        store.add_feedback("c2", 0.8)  # replaces
        store.add_verdict("q", "weak", strong_model="a", weak_model="b", source="judge:j")
        assert store.pairs() == [("a", "b", 1), ("s", "w", 5)]
        with pytest.raises(DataError, match="several pairs"):
            store.label_set()
        labels = store.label_set(strong_model="s", weak_model="w")
        by_prompt = dict(zip(labels.prompts, zip(labels.strong, labels.weak)))
        assert by_prompt["p1"] == (0.75, 0.25) and by_prompt["p2"] == (7.0, 9.0)
        assert by_prompt["p3"] == pytest.approx((0.8, 0.2))  # weak observed; strong = its mean feedback
        assert by_prompt["p4"] == pytest.approx((0.8, 0.2))  # strong observed; weak = its mean feedback
        with pytest.raises(UnknownCallError, match="no recorded call"):
            store.add_feedback("nope", 0.5)
        for bad in (1.5, float("nan"), "0.5", True):
            with pytest.raises(DataError):
                store.add_feedback("c1", bad)
        with pytest.raises(DataError, match="verdict"):
            store.add_verdict("p", "maybe", strong_model="s", weak_model="w", source="j")
        with pytest.raises(DataError, match="non-empty text"):
            store.add_outcome("  ", 1, 0, strong_model="s", weak_model="w", source="j")


def test_a_label_and_its_done_mark_are_one_transaction(tmp_path):
    with LabelStore(tmp_path / "t.sqlite") as store:
        key = work_key("label", "p")
        store.add_verdict("p", "strong", strong_model="s", weak_model="w", source="j", done=(key, {"v": 1}))
        assert store.count() == 1 and store.get_work(key) == {"v": 1}
        with pytest.raises(TypeError):  # the mark cannot be written: the label is rolled back with it
            store.add_verdict("q", "weak", strong_model="s", weak_model="w", source="j",
                              done=(work_key("label", "q"), {"v": object()}))
        assert store.count() == 1 and store.get_work(work_key("label", "q")) is None


def test_privacy_mode_needs_an_embedding_and_keeps_no_text(tmp_path):
    with LabelStore(tmp_path / "p.sqlite") as store:
        with pytest.raises(DataError, match="needs the prompt's embedding"):
            store.add_outcome("secret prompt", 1, 0, strong_model="s", weak_model="w", source="j",
                              record="embedding")
        store.add_outcome("secret prompt", 1, 0, strong_model="s", weak_model="w", source="j", record="embedding",
                          embedding=np.ones(8), embedder="e")
        assert store._db.execute("SELECT text FROM prompts").fetchall() == [(None,)]
        labels = store.label_set()
        assert labels.prompts == (None,) and labels.embeddings.shape == (1, 8) and labels.embedder == "e"
    with pytest.raises(DataError, match="is a folder"):
        LabelStore(tmp_path)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(DataError, match="not a label store"):
        LabelStore(tmp_path / "junk.sqlite")
