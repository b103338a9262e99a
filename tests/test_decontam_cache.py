"""Decontamination embeddings on disk: a second run embeds nothing, an interrupted run
keeps every chunk it finished, and the cache never changes which prompts are dropped.

A deterministic hashed bag-of-words embedder stands in for MiniLM and counts the texts
that reach it; the cache is the real sqlite one, in a temporary folder."""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np
import pytest

import routellm_integrations.data.decontaminate as decon
from routellm_integrations.data.battles import Battle, BattleTable
from routellm_integrations.data.decontaminate import decontaminate, decontamination_progress, scan_prompts
from routellm_integrations.embedders import CachedEmbedder

DIM = 256
THRESHOLD = 0.95


class Counting:
    """Hashed bag of words (unit rows); counts calls and texts; can fail on a given call."""

    name = "test-counting-bow"
    dim = DIM

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.texts = 0
        self.fail_on_call = fail_on_call

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("interrupted mid-run")  # what Ctrl-C raises
        self.texts += len(texts)
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % DIM] += 1.0
        out[:, 0] += (np.linalg.norm(out, axis=1) == 0)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def references(n: int) -> list[str]:
    return [f"benchmark question {i} about topic{i % 37} and item{i} and part{i * 7}" for i in range(n)]


def training_table(refs: list[str]) -> BattleTable:
    """Copies and near-copies of some references, and unrelated prompts."""
    prompts = [refs[3], refs[40] + " please", f"{refs[77]} kindly now", "write a poem about the sea",
               "how do I sort a list in python", refs[5].upper(), "what is the capital of france"]
    prompts += [f"unrelated training prompt number {i} on gardening" for i in range(30)]
    rows = [Battle(p, "model-a", "model-b", "a", "src1" if i % 2 else "src2") for i, p in enumerate(prompts)]
    return BattleTable.from_battles(rows)


def flagged_by_brute_force(table: BattleTable, refs: list[str]) -> set[str]:
    """The rule computed directly: one embed call for everything, every cosine."""
    emb = Counting()
    used = [table.prompts[i] for i in np.unique(table.prompt_idx)]
    sims = emb.embed(used) @ emb.embed(refs).T
    norm = {decon.normalise_prompt(r) for r in refs}
    return {p for p, s in zip(used, sims.max(axis=1)) if s >= THRESHOLD - 1e-6 or decon.normalise_prompt(p) in norm}


def kept(table: BattleTable) -> set[str]:
    return {table.prompts[i] for i in np.unique(table.prompt_idx)}


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(decon, "EMBED_CHUNK", 50)
    return 50


def test_a_second_run_embeds_nothing(tmp_path, small_chunks):
    refs = references(230)
    table = training_table(refs)
    first = Counting()
    with CachedEmbedder(first, path=tmp_path / "cache.sqlite") as cached:
        clean1, report1 = decontaminate(table, refs, cached)
    assert first.texts == len(set(refs) | kept(table))  # each distinct text once (refs[3] is in both)
    assert first.calls == -(-len(refs) // small_chunks) + 1  # one call per chunk of references, one for training

    second = Counting()  # a new process: nothing in memory, the same file
    with CachedEmbedder(second, path=tmp_path / "cache.sqlite") as cached:
        assert cached.count_cached(refs) == len(refs)
        clean2, report2 = decontaminate(table, refs, cached)
    assert second.calls == 0 and second.texts == 0
    assert report2 == report1 and kept(clean2) == kept(clean1)


def test_an_interrupted_run_keeps_the_chunks_it_finished(tmp_path, small_chunks):
    refs = references(230)  # 5 chunks of at most 50
    table = training_table(refs)
    crashing = Counting(fail_on_call=3)  # two chunks done, then Ctrl-C
    with CachedEmbedder(crashing, path=tmp_path / "cache.sqlite") as cached:
        with pytest.raises(KeyboardInterrupt):
            decontaminate(table, refs, cached)
    assert crashing.texts == 2 * small_chunks

    resumed = Counting()
    with CachedEmbedder(resumed, path=tmp_path / "cache.sqlite") as cached:
        assert cached.count_cached(refs) == 2 * small_chunks
        clean, report = decontaminate(table, refs, cached)
    # only what the first run did not finish
    assert resumed.texts == len(set(refs) | kept(table)) - 2 * small_chunks
    assert kept(table) - kept(clean) == flagged_by_brute_force(table, refs)
    assert report.prompts_dropped == len(flagged_by_brute_force(table, refs))


def test_the_cache_drops_exactly_the_same_items(tmp_path, small_chunks):
    refs = references(230)
    table = training_table(refs)
    expected = flagged_by_brute_force(table, refs)
    assert {refs[3], refs[40] + " please", refs[5].upper()} <= expected  # the test can see a difference
    assert "write a poem about the sea" not in expected

    plain, plain_report = decontaminate(table, refs, Counting())
    with CachedEmbedder(Counting(), path=tmp_path / "c.sqlite") as cold:
        cold_clean, cold_report = decontaminate(table, refs, cold)
    with CachedEmbedder(Counting(), path=tmp_path / "c.sqlite") as warm:
        warm_clean, warm_report = decontaminate(table, refs, warm)
    assert kept(table) - kept(plain) == expected
    assert kept(plain) == kept(cold_clean) == kept(warm_clean)
    assert plain_report == cold_report == warm_report
    # per prompt, the very same similarities (the cache returns the float32 vectors it stored)
    used = sorted(kept(table))
    a = scan_prompts(used, refs, Counting())
    with CachedEmbedder(Counting(), path=tmp_path / "c.sqlite") as warm:
        b = scan_prompts(used, refs, warm)
    np.testing.assert_array_equal(a.max_similarity, b.max_similarity)
    np.testing.assert_array_equal(a.flagged, b.flagged)


def test_progress_says_how_many_were_cached_on_stderr_only_when_asked(tmp_path, small_chunks, capsys):
    refs = references(120)
    table = training_table(refs)
    with CachedEmbedder(Counting(), path=tmp_path / "c.sqlite") as cached:
        cached.embed(refs[:70])  # a run that got part of the way
        decontaminate(table, refs, cached)  # progress off by default
        out = capsys.readouterr()
        assert out.out == "" and out.err == ""
        with decontamination_progress(True):
            decontaminate(table, refs, cached)
        err = capsys.readouterr().err
        assert "decontaminating: embedding 120 benchmark prompts (120 cached) with test-counting-bow" in err
        assert f"embedding {len(kept(table))} training prompts ({len(kept(table))} cached)" in err
    with CachedEmbedder(Counting(), path=tmp_path / "other.sqlite") as fresh:
        fresh.embed(refs[:70])
        decontaminate(table, refs, fresh, progress=True)
    assert "embedding 120 benchmark prompts (70 cached)" in capsys.readouterr().err


def _battles_file(path, copies=()):
    """40 battles of the test's own prompts, plus one per prompt in ``copies`` (benchmark
    prompts copied verbatim, which decontamination must drop)."""
    from routellm_integrations.data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL

    rows = ["prompt,model_a,model_b,winner"]
    for i in range(20):
        rows.append(f"\"prove lemma {i} about primes in full detail\",{DEFAULT_STRONG_MODEL},{DEFAULT_WEAK_MODEL},a")
        rows.append(f"\"say hi to friend {i}\",{DEFAULT_WEAK_MODEL},{DEFAULT_STRONG_MODEL},tie")
    for prompt in copies:
        quoted = prompt.replace('"', '""')
        rows.append(f"\"{quoted}\",{DEFAULT_STRONG_MODEL},{DEFAULT_WEAK_MODEL},a")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_train_reuses_the_benchmark_embeddings_and_reports_its_stages(tmp_path, monkeypatch, capfd):
    """`routellm train`'s pipeline: the static table prefilters the pairs, MiniLM's stand-in
    embeds only the candidates (cached: a second run embeds nothing); progress on stderr."""
    from fakes import HashingEmbedder

    from routellm_integrations.evaluation.benchmarks import all_benchmark_prompts
    from routellm_integrations.training.pipeline import train

    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path / "cache"))
    bench = all_benchmark_prompts()
    copies = [bench[0], bench[-1]]
    battles = _battles_file(tmp_path / "mine.csv", copies)
    # without the everyday prior: its examples' own decontamination would add to the counts checked here
    kw = dict(sources=(), battles_files=[battles], embedder=HashingEmbedder(dim=32), epochs=1, evaluate=False,
              validate=False, everyday_prior=False)
    first = Counting()
    train("mf", out=tmp_path / "a", reference_embedder=first, **kw)
    err = capfd.readouterr().err
    found = re.findall(r"embedding ([\d,]+) candidate (?:training|benchmark) prompts \(([\d,]+) cached\)", err)
    cand, cached = ([int(x[i].replace(",", "")) for x in found] for i in (0, 1))
    assert len(cand) == 2 and cand[0] >= len(copies) and cand[1] >= len(copies)
    assert cached[0] == 0 and cached[1] == len(copies)  # the copies' vectors were just cached as training prompts
    assert first.texts == sum(cand) - sum(cached) and cand[1] < len(bench) // 10  # candidates only
    pos = 0
    for stage in ("reading sources: none and 1 file of yours\n",
                  f"decontaminating: embedding {len(bench):,} benchmark prompts with wordllama",
                  "decontaminating: embedding 42 training prompts with wordllama",
                  f"decontaminating: embedding {cand[0]} candidate training prompts (0 cached) with {Counting.name}\n",
                  f"decontaminating: embedding {cand[1]} candidate benchmark prompts ({len(copies)} cached) with "
                  f"{Counting.name}\n",
                  "embedding 40 training prompts with test-hashing\n", "training mf on 40 battles over 40 prompts\n",
                  f"writing {tmp_path / 'a'}\n"):
        pos = err.index(stage, pos) + len(stage)  # each stage once, in this order

    second = Counting()  # a new run: a new embedder object, the same cache folder
    train("mf", out=tmp_path / "b", reference_embedder=second, **kw)
    err = capfd.readouterr().err
    assert second.texts == 0 and second.calls == 0
    assert f"embedding {cand[1]} candidate benchmark prompts ({cand[1]} cached)" in err

    train("mf", out=tmp_path / "c", reference_embedder=Counting(), progress=False, **kw)
    assert capfd.readouterr().err == ""  # --quiet: nothing on stderr
