"""The pure-Python tokenizer of the default embedding gives exactly the ids ``tokenizers``
gives for the same JSON (``add_special_tokens=False``), and the shipped WordLlama files are
byte for byte the ``wordllama`` package's."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from routellm_integrations.embedders import wordllama_files
from routellm_integrations.embedders.bpe import BPETokenizer

ROOT = Path(__file__).resolve().parents[1]
ALPHABET = list(" \t\n\r  abcXYZ019.,;'\"é中文日本語🙂👍🏽\u200b\u2581\x00\x7fكلمة\u00a0") + [
    "<s>", "</s>", "<unk>", "  ", "the ", " \u2581x", "def f(x):\n    return x", "▁▁▁", "<s", "/s>"]


def _texts() -> list[str]:
    rnd = random.Random(0)
    texts = [json.loads(line)["prompt"] for name in ("probe_prompts.jsonl", "probe_dev.jsonl")
             for line in (ROOT / "benchmarks" / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    texts += (ROOT / "README.md").read_text(encoding="utf-8").split("\n\n")
    texts += ["".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 80))) for _ in range(3000)]
    texts += ["", " ", "  ", "\u2581", "a  b", "</s>", "<s><s>", " </s> ", "x" * 5000, "\u4e2d" * 3000,
              "ab " * 2000, "1234567890" * 300]
    return texts


@pytest.fixture(scope="module")
def reference():
    import tokenizers  # a dev dependency (through wordllama), not a core one

    tok = tokenizers.Tokenizer.from_file(str(wordllama_files.TOKENIZER))
    tok.no_padding()
    tok.no_truncation()
    return tok


def test_the_ids_are_those_of_tokenizers(reference):
    ours = BPETokenizer.from_file(wordllama_files.TOKENIZER)
    texts = _texts()
    differ = [t for t in texts if ours.encode(t) != reference.encode(t, add_special_tokens=False).ids]
    assert not differ, f"{len(differ)} of {len(texts)} texts tokenize differently, e.g. {differ[0][:80]!r}"
    # the word cache changes nothing: the same texts again, now from the cache
    assert [ours.encode(t) for t in texts[:300]] == [reference.encode(t, add_special_tokens=False).ids
                                                      for t in texts[:300]]


def test_a_small_cache_is_emptied_not_grown():
    spec = json.loads(wordllama_files.TOKENIZER.read_text(encoding="utf-8"))
    tok = BPETokenizer(spec["model"]["vocab"], spec["model"]["merges"], ["<unk>", "<s>", "</s>"], cache_size=8)
    first = tok.encode(" ".join(f"word{i}" for i in range(50)))
    assert len(tok._cache) <= 8
    assert tok.encode(" ".join(f"word{i}" for i in range(50))) == first


def test_a_tokenizer_it_does_not_implement_is_refused(tmp_path):
    spec = json.loads(wordllama_files.TOKENIZER.read_text(encoding="utf-8"))
    for change in ({"pre_tokenizer": {"type": "Whitespace"}}, {"normalizer": {"type": "Lowercase"}},
                   {"model": {**spec["model"], "byte_fallback": False}}):
        path = tmp_path / "t.json"
        path.write_text(json.dumps({**spec, **change}), encoding="utf-8")
        with pytest.raises(ValueError, match="not a Llama-2 style BPE tokenizer"):
            BPETokenizer.from_file(path)
    inside = {**spec, "model": {**spec["model"], "vocab": {**spec["model"]["vocab"], "a\u2581b": 32000}}}
    path.write_text(json.dumps(inside), encoding="utf-8")
    with pytest.raises(ValueError, match="inside a word"):
        BPETokenizer.from_file(path)


def test_the_shipped_files_are_the_packages():
    for target, (_, digest) in wordllama_files.SOURCES.items():
        assert wordllama_files.sha256(target) == digest, target


def test_the_export_command_reproduces_them(tmp_path, monkeypatch):
    """From the ``wordllama`` package (a dev dependency), as the model card says."""
    monkeypatch.setattr(wordllama_files, "FOLDER", tmp_path)
    sources = {tmp_path / target.name: spec for target, spec in wordllama_files.SOURCES.items()}
    monkeypatch.setattr(wordllama_files, "SOURCES", sources)
    written = wordllama_files.export()
    assert sorted(p.name for p in written) == sorted(p.name for p in sources)
    for path in written:
        assert wordllama_files.sha256(path) == sources[path][1]
