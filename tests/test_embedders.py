"""Embedders: contract, fidelity of the fast path, cache, OpenAI over real HTTP, registry."""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from routellm_integrations.embedders import (CachedEmbedder, Embedder, UnknownEmbedderError,
                                             available_embedders, get_embedder)
from routellm_integrations.errors import EmbedderError, InvalidPromptError
from routellm_integrations.testing.openai_compat import fake_embedding

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-SECRET-0123456789abcdefXYZ"

# Measured on 500 real prompts (benchmarks/embedder_speed.py --fidelity): fp32 ONNX vs
# torch min cosine > 0.999999; int8 mean 0.9973, min 0.9940. Thresholds leave a margin.
FP32_MIN_COS = 0.9999
INT8_MEAN_COS = 0.995
INT8_MIN_COS = 0.985


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def embed_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ONNX export lands in ROUTELLM_CACHE_DIR; honour one set by CI (export once per
    run), else use a temp folder so tests never write to the user's cache."""
    old = os.environ.get("ROUTELLM_CACHE_DIR")
    path = Path(old) if old else tmp_path_factory.mktemp("routellm-cache")
    os.environ["ROUTELLM_CACHE_DIR"] = str(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    yield path
    if old is None:
        os.environ.pop("ROUTELLM_CACHE_DIR", None)


@pytest.fixture(scope="session")
def onnx_fp32(embed_cache_dir: Path) -> Embedder:
    return get_embedder("minilm-onnx", eager=True)


@pytest.fixture(scope="session")
def onnx_int8(embed_cache_dir: Path, onnx_fp32: Embedder) -> Embedder:
    return get_embedder("minilm-onnx-int8", eager=True)


@pytest.fixture(scope="session")
def torch_minilm(embed_cache_dir: Path) -> Embedder:
    return get_embedder("minilm-torch", eager=True)


@pytest.fixture(scope="session")
def real_prompts() -> list[str]:
    spec = importlib.util.spec_from_file_location("embedder_speed", ROOT / "benchmarks" / "embedder_speed.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.sample_prompts(80, seed=1)


VARIED = ["", "hi", "What is 2 + 2?", "Write a haiku about routers. " * 3,
          "def f(x):\n    return x ** 2\n# explain this code", "Ünïcödé — 日本語のテキスト 🙂",
          "Question: " + "the quick brown fox jumps over the lazy dog " * 40 + "Answer:"]


class CountingEmbedder:
    """A cheap deterministic inner embedder that records every call."""

    name = "counting-test"
    dim = 8

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.stack([fake_embedding(t, self.dim) for t in texts])


# ------------------------------------------------------------------ import laziness
def test_package_import_does_not_load_heavy_dependencies() -> None:
    code = ("import sys, routellm_integrations.embedders as e; e.get_embedder('minilm'); "
            "e.get_embedder('openai', api_key='x'); "
            "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'openai', 'wordllama') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_onnx_inference_never_imports_torch(onnx_fp32: Embedder, embed_cache_dir: Path) -> None:
    code = ("import sys; from routellm_integrations.embedders import get_embedder; "
            "v = get_embedder('minilm').embed(['route me']); assert v.shape == (1, 384); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    env = {**os.environ, "ROUTELLM_CACHE_DIR": str(embed_cache_dir)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)


# ------------------------------------------------------------------------ contract
@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["onnx_fp32", "onnx_int8", "torch_minilm"])
def test_minilm_contract(fixture: str, request: pytest.FixtureRequest) -> None:
    emb: Embedder = request.getfixturevalue(fixture)
    assert isinstance(emb, Embedder) and emb.dim == 384
    v = emb.embed(VARIED)
    assert v.shape == (len(VARIED), 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_wordllama_contract() -> None:
    emb = get_embedder("wordllama")
    v = emb.embed(VARIED)
    assert v.shape == (len(VARIED), emb.dim) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)  # "" included
    assert emb.name == "wordllama-l2_supercat-256"


def test_wordllama_vectors_are_the_packages_own() -> None:
    """We read the wheel's files ourselves (fp16 table, no fp32 copy); the vectors must be
    exactly what ``wordllama.WordLlama.embed`` gives, or the shipped mf would score wrong."""
    import wordllama
    from wordllama import WordLlama

    ref = WordLlama.load(config="l2_supercat", cache_dir=Path(wordllama.__file__).parent, disable_download=True,
                         dim=256)
    texts = [t for t in VARIED if t.strip()] + ["caf\u00e9 na\u00efve \u4e2d\u6587", "x" * 5000]
    want = np.asarray(ref.embed(texts, norm=False), dtype=np.float32)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(get_embedder("wordllama").embed(texts), want, atol=1e-6)
    # past 2,048 tokens rows are counted, not gathered, and summed in float64: the exact mean,
    # which WordLlama's float32 sum of 4,001 rows misses by up to 2e-6
    long = ["\U0001f642" * 1000, "lorem ipsum dolor " * 1000]
    want = np.asarray(ref.embed(long, norm=False), dtype=np.float32)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(get_embedder("wordllama").embed(long), want, atol=1e-5)
    small = get_embedder("wordllama", dim=64)
    assert small.name == "wordllama-l2_supercat-64" and small.embed(["hello"]).shape == (1, 64)
    with pytest.raises(EmbedderError, match="dim must be one of"):
        get_embedder("wordllama", dim=300)


def test_names_record_the_numerics(onnx_fp32: Embedder, onnx_int8: Embedder, torch_minilm: Embedder) -> None:
    # fp32 ONNX reproduces torch, so they share a space; int8 is its own space.
    assert onnx_fp32.name == torch_minilm.name == "all-MiniLM-L6-v2"
    assert onnx_int8.name == "all-MiniLM-L6-v2@onnx-int8"
    assert get_embedder().name == "all-MiniLM-L6-v2"


@pytest.mark.slow
def test_very_long_prompt_is_truncated_not_rejected(onnx_fp32: Embedder, torch_minilm: Embedder) -> None:
    long = " ".join(f"word{i % 97}" for i in range(20_000))
    a, b = onnx_fp32.embed([long]), torch_minilm.embed([long])
    assert a.shape == b.shape == (1, 384)
    assert float(a[0] @ b[0]) > FP32_MIN_COS
    # only the first 256 tokens count: appending text past the limit changes nothing
    c = onnx_fp32.embed([long + " completely different ending"])
    assert float(a[0] @ c[0]) > 0.999999


@pytest.mark.parametrize("bad", [[], "a bare string", [1, 2], ["ok", None], None])
def test_invalid_batches_raise_invalid_prompt(bad: object) -> None:
    from routellm_integrations.embedders.onnx_minilm import OnnxMiniLMEmbedder
    with pytest.raises(InvalidPromptError):
        OnnxMiniLMEmbedder().embed(bad)  # type: ignore[arg-type]  # validated before loading
    with pytest.raises(InvalidPromptError):
        CachedEmbedder(CountingEmbedder()).embed(bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ fidelity
@pytest.mark.slow
def test_onnx_matches_torch_on_real_prompts(onnx_fp32: Embedder, onnx_int8: Embedder,
                                            torch_minilm: Embedder, real_prompts: list[str]) -> None:
    ref = torch_minilm.embed(real_prompts)
    fp32 = np.sum(ref * onnx_fp32.embed(real_prompts), axis=1)
    int8 = np.sum(ref * onnx_int8.embed(real_prompts), axis=1)
    assert fp32.min() > FP32_MIN_COS, fp32.min()
    assert int8.mean() > INT8_MEAN_COS and int8.min() > INT8_MIN_COS, (int8.mean(), int8.min())


@pytest.mark.slow
def test_batching_and_padding_do_not_change_vectors(onnx_fp32: Embedder, real_prompts: list[str]) -> None:
    prompts = real_prompts[:40]
    batched = onnx_fp32.embed(prompts)
    singles = np.concatenate([onnx_fp32.embed([p]) for p in prompts[:10]])
    np.testing.assert_allclose(np.sum(batched[:10] * singles, axis=1), 1.0, atol=1e-5)
    reordered = onnx_fp32.embed(prompts[::-1])[::-1]
    np.testing.assert_allclose(batched, reordered, atol=1e-5)


def test_export_is_reused(onnx_fp32: Embedder, embed_cache_dir: Path) -> None:
    from routellm_integrations.embedders.onnx_minilm import exported_model_path
    files = sorted((embed_cache_dir / "onnx").glob("*.onnx"))
    assert files and all(".tmp" not in f.name for f in files)
    mtime = exported_model_path().stat().st_mtime
    assert exported_model_path().stat().st_mtime == mtime  # no second export


# --------------------------------------------------------------------------- cache
def test_cache_only_embeds_missing_texts_once_in_order() -> None:
    inner = CountingEmbedder()
    cache = CachedEmbedder(inner)
    assert cache.name == inner.name and cache.dim == inner.dim
    first = cache.embed(["a", "b", "a", "c"])
    assert inner.calls == [["a", "b", "c"]]  # duplicate embedded once
    np.testing.assert_array_equal(first[0], first[2])
    second = cache.embed(["c", "d", "a"])
    assert inner.calls[-1] == ["d"]  # hits never reach the inner embedder
    np.testing.assert_array_equal(second[0], first[3])
    np.testing.assert_array_equal(second[2], first[0])
    cache.embed(["a", "b", "c", "d"])
    assert len(inner.calls) == 2
    assert cache.hits == 1 + 2 + 4 and cache.misses == 4


def test_cache_memory_is_bounded() -> None:
    inner = CountingEmbedder()
    cache = CachedEmbedder(inner, max_items=3)
    cache.embed([str(i) for i in range(10)])
    assert len(cache) == 3
    cache.embed(["0"])  # evicted, so embedded again
    assert inner.calls[-1] == ["0"]


def test_sqlite_cache_persists_across_instances(tmp_path: Path) -> None:
    db = tmp_path / "emb.sqlite"
    inner = CountingEmbedder()
    with CachedEmbedder(inner, db) as cache:
        want = cache.embed(["alpha", "beta", ""])
    fresh_inner = CountingEmbedder()
    with CachedEmbedder(fresh_inner, db) as again:
        got = again.embed(["beta", "", "alpha", "gamma"])
    assert fresh_inner.calls == [["gamma"]]
    np.testing.assert_array_equal(got[:3], want[[1, 2, 0]])
    # another embedding space never gets these vectors
    other = CountingEmbedder()
    other.name = "other-space"
    with CachedEmbedder(other, db) as third:
        third.embed(["alpha"])
    assert other.calls == [["alpha"]]


def test_cache_is_thread_safe(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    cache = CachedEmbedder(inner, tmp_path / "t.sqlite", max_items=50)
    texts = [f"t{i}" for i in range(200)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(0, 200, 20):
                batch = texts[(i + offset) % 200:(i + offset) % 200 + 20]
                out = cache.embed(batch)
                np.testing.assert_allclose(out, np.stack([fake_embedding(t, 8) for t in batch]))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 7,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache.close()
    assert not errors, errors[0]


# ---------------------------------------------------------------------- OpenAI/HTTP
def _openai(server, **kw):  # type: ignore[no-untyped-def]
    from routellm_integrations.embedders import OpenAIEmbedder
    return OpenAIEmbedder(api_key=SECRET, base_url=server.base_url, **kw)


def test_openai_embeds_over_http_in_batches(openai_server) -> None:  # type: ignore[no-untyped-def]
    emb = _openai(openai_server, batch_size=3)
    texts = [f"prompt {i}" for i in range(7)] + [""]
    v = emb.embed(texts)
    assert v.shape == (8, 1536) and v.dtype == np.float32 and emb.dim == 1536
    np.testing.assert_allclose(v[2], fake_embedding("prompt 2", 1536), atol=1e-6)
    reqs = openai_server.requests_to("/v1/embeddings")
    assert [len(r.json["input"]) for r in reqs] == [3, 3, 2]
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in reqs)
    assert reqs[0].json["model"] == "text-embedding-3-small"
    assert emb.name == "openai:text-embedding-3-small"


def test_openai_dimensions_and_registry_space_names(openai_server) -> None:  # type: ignore[no-untyped-def]
    emb = get_embedder("openai:text-embedding-3-large@256", api_key=SECRET,
                       base_url=openai_server.base_url)
    assert emb.name == "openai:text-embedding-3-large@256" and emb.dim == 256
    assert emb.embed(["x"]).shape == (1, 256)
    assert openai_server.requests[-1].json["dimensions"] == 256


def test_openai_unknown_model_learns_dim(openai_server) -> None:  # type: ignore[no-untyped-def]
    emb = _openai(openai_server, model="my-local-embedder")
    assert emb.dim == 1536


def test_openai_retries_transient_errors(openai_server) -> None:  # type: ignore[no-untyped-def]
    openai_server.fail_next(500, times=1)
    emb = _openai(openai_server, max_retries=2)
    assert emb.embed(["retry me"]).shape == (1, 1536)
    assert len(openai_server.requests) == 2


@pytest.mark.parametrize("status", [401, 429, 500])
def test_openai_errors_name_model_and_status_but_never_the_key(openai_server, caplog, status) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    openai_server.fail_next(status, times=5, message=f"Incorrect API key provided: {SECRET}")
    emb = _openai(openai_server, max_retries=1)
    with pytest.raises(EmbedderError) as info:
        emb.embed(["will fail"])
    text = str(info.value)
    assert "text-embedding-3-small" in text and f"HTTP {status}" in text
    assert SECRET not in text and SECRET[:12] not in text
    assert info.value.__cause__ is None and info.value.status_code == status  # type: ignore[attr-defined]
    assert SECRET not in caplog.text
    assert openai_server.requests[0].headers["authorization"].endswith(SECRET)  # it was sent


def test_openai_key_never_in_repr_or_pickle(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from routellm_integrations.embedders import OpenAIEmbedder
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    emb = OpenAIEmbedder(api_key=SECRET, base_url="http://127.0.0.1:9/v1")
    assert SECRET not in repr(emb) and SECRET not in str(emb) and "***" in repr(emb)
    assert SECRET.encode() not in pickle.dumps(emb)


def test_openai_connection_error_and_missing_key(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from routellm_integrations.embedders import OpenAIEmbedder
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EmbedderError, match="no API key"):
        OpenAIEmbedder().embed(["x"])
    emb = OpenAIEmbedder(api_key=SECRET, base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=2)
    with pytest.raises(EmbedderError, match="cannot connect") as info:
        emb.embed(["x"])
    assert SECRET not in str(info.value)


# ------------------------------------------------------------------------- registry
def test_unknown_embedder_lists_valid_names() -> None:
    with pytest.raises(UnknownEmbedderError) as info:
        get_embedder("minilm-l12")
    msg = str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, EmbedderError)
    for name in ("minilm", "minilm-torch", "minilm-onnx-int8", "openai", "wordllama"):
        assert name in msg and name in available_embedders()


def test_registry_rejects_unknown_options() -> None:
    with pytest.raises(EmbedderError, match="minilm"):
        get_embedder("minilm", no_such_option=1)


def test_int8_vectors_do_not_depend_on_the_batch() -> None:
    """A routing decision must not change with the other prompts scored beside it."""
    emb = get_embedder("minilm-onnx-int8")
    texts = ["Solve for x: 3x^2 - 12x + 9 = 0 and explain each step.", "Hi, how are you?",
             "Write a long essay about the history of the Roman empire. " * 20]
    together = emb.embed(texts)
    for i, t in enumerate(texts):
        np.testing.assert_array_equal(emb.embed([t])[0], together[i])
    from routellm_integrations import EmbedderError
    with pytest.raises(EmbedderError, match="one prompt per call"):
        get_embedder("minilm-onnx-int8", batch_size=8)
