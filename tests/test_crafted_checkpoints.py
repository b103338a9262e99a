"""Checkpoint folders crafted as an attacker (or a bad download) would: each one is a
typed CheckpointError (or another RouteLLMError) naming the problem, quickly, with no hang,
no memory blow-up and no silent acceptance. And a save that dies half-way leaves the old
checkpoint, not a mix."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from routellm_integrations.errors import CheckpointError, RouteLLMError
from routellm_integrations.routers import load_router
from routellm_integrations.routers.registry import CHECKPOINTS

PROMPTS = ["Prove that there are infinitely many primes.", "hi"]


def copy_of(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(CHECKPOINTS / name, folder)
    return folder


def edit_config(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    change(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))


def load_within(folder: Path, seconds: float = 20.0, **options: Any) -> BaseException | None:
    """Load in a thread: what it raised, or a failure if it neither loaded nor raised in time."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["router"] = load_router(folder, **options)
        except BaseException as exc:  # noqa: BLE001 - what it raised is what we check
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"loading {folder} hung"
    return box.get("error")


def setter(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda cfg: cfg.__setitem__(key, value)


CONFIG_CASES: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("mf", "router as a list", setter("router", ["mf"]), "router"),
    ("mf", "router missing", lambda c: c.pop("router"), "router"),
    ("mf", "models an int", setter("models", 5), "models"),
    ("mf", "models with a number", setter("models", ["gpt-4", 3]), "models"),
    ("mf", "models twice", lambda c: c.__setitem__("models", c["models"][:1] * 2 + c["models"][2:]), "twice"),
    ("mf", "models missing", lambda c: c.pop("models"), "models"),
    ("mf", "embedding_dim a string", setter("embedding_dim", "abc"), "embedding_dim"),
    ("mf", "embedding_dim a bool", setter("embedding_dim", True), "embedding_dim"),
    ("mf", "embedding_dim negative", setter("embedding_dim", -256), "embedding_dim"),
    ("mf", "embedding_dim wrong", setter("embedding_dim", 384), "text_proj"),
    ("mf", "embedder_key a number", setter("embedder_key", 123), "embedder_key"),
    ("mf", "embedder_key unknown", setter("embedder_key", "no-such-embedder"), "no-such-embedder"),
    ("mf", "embedder another space", setter("embedder", "minilm-onnx-int8"), "trained on"),
    ("mf", "features a string", setter("features", "log_chars"), "features"),
    ("mf", "features unknown", setter("features", ["log_chars", "no_such_feature"]), "no_such_feature"),
    ("mf", "default strong not a model", setter("default_strong_model", "gpt-17"), "gpt-17"),
    ("mf", "default weak a number", setter("default_weak_model", 7), "default_weak_model"),
    ("sw_ranking", "l2 a string", setter("l2", "abc"), "l2"),
    ("sw_ranking", "l2 negative", setter("l2", -1.0), "l2"),
    ("sw_ranking", "n_tiers a string", setter("n_tiers", "abc"), "n_tiers"),
    ("sw_ranking", "top_k a string", setter("top_k", "5"), "top_k"),
    ("sw_ranking", "newton_steps a float", setter("newton_steps", 2.5), "newton_steps"),
    ("sw_ranking", "tiers a list", setter("tiers", [0, 1]), "tiers"),
    ("sw_ranking", "a tier out of range", lambda c: c["tiers"].__setitem__(next(iter(c["tiers"])), 99), "tiers"),
    ("bert", "router says mf", setter("router", "mf"), "model.safetensors"),  # read as an mf folder
    ("bert", "embedding_dim a float", setter("embedding_dim", 384.0), "embedding_dim"),
    ("causal_llm", "max_prompt_tokens a string", setter("max_prompt_tokens", "384"), "max_prompt_tokens"),
]


@pytest.mark.parametrize(("router", "case", "change", "named"), CONFIG_CASES, ids=[c[1] for c in CONFIG_CASES])
def test_a_crafted_config_is_a_typed_error(tmp_path, router, case, change, named) -> None:
    folder = copy_of(tmp_path, router)
    edit_config(folder, change)
    error = load_within(folder)
    assert isinstance(error, RouteLLMError), f"{case}: got {error!r}"
    assert named in str(error), f"{case}: {error}"


def test_a_json_nan_is_not_a_dimension(tmp_path) -> None:
    folder = copy_of(tmp_path, "mf")
    text = (folder / "config.json").read_text().replace('"embedding_dim": 256', '"embedding_dim": NaN')
    (folder / "config.json").write_text(text)
    assert isinstance(load_within(folder), CheckpointError)


def test_deeply_nested_json_is_refused_without_recursing(tmp_path) -> None:
    folder = copy_of(tmp_path, "mf")
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    error = load_within(folder)
    assert isinstance(error, CheckpointError) and "nests deeper" in str(error)


def test_config_json_as_a_directory(tmp_path) -> None:
    folder = copy_of(tmp_path, "mf")
    (folder / "config.json").unlink()
    (folder / "config.json").mkdir()
    error = load_within(folder)
    assert isinstance(error, CheckpointError) and "directory" in str(error)


def test_config_json_as_a_fifo_does_not_hang(tmp_path) -> None:
    folder = copy_of(tmp_path, "mf")
    (folder / "config.json").unlink()
    os.mkfifo(folder / "config.json")
    error = load_within(folder, seconds=10)
    assert isinstance(error, CheckpointError) and "FIFO" in str(error)


@pytest.mark.parametrize("target", ["config.json", "model.safetensors"])
def test_a_symlink_to_dev_zero_is_refused_before_reading(tmp_path, target) -> None:
    folder = copy_of(tmp_path, "mf")
    (folder / target).unlink()
    (folder / target).symlink_to("/dev/zero")
    error = load_within(folder, seconds=10)
    assert isinstance(error, CheckpointError) and "device" in str(error)


def test_an_oversized_config_is_refused_before_reading(tmp_path) -> None:
    folder = copy_of(tmp_path, "mf")
    with open(folder / "config.json", "r+b") as fh:
        fh.truncate(64 * 1024 * 1024)  # sparse: no disk used, but over the limit
    error = load_within(folder)
    assert isinstance(error, CheckpointError) and "limit" in str(error)


def test_config_that_is_not_utf8(tmp_path) -> None:
    folder = copy_of(tmp_path, "mf")
    (folder / "config.json").write_bytes(b'{"router": "\xff\xfe"}')
    assert isinstance(load_within(folder), CheckpointError)


def test_config_that_is_a_json_list(tmp_path) -> None:
    folder = copy_of(tmp_path, "mf")
    (folder / "config.json").write_text("[1, 2, 3]")
    error = load_within(folder)
    assert isinstance(error, CheckpointError) and "object" in str(error)


def _tensors(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def _write_tensors(folder: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    save_file(tensors, str(folder / "model.safetensors"))


TENSOR_CASES: list[tuple[str, Callable[[Path], None], str]] = [
    ("missing", lambda f: (f / "model.safetensors").unlink(), "model.safetensors"),
    ("random bytes", lambda f: (f / "model.safetensors").write_bytes(os.urandom(4096)), "safetensors"),
    ("truncated", lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:5000]),
     "safetensors"),
    ("empty", lambda f: (f / "model.safetensors").write_bytes(b""), "safetensors"),
    ("header claims a huge length", lambda f: (f / "model.safetensors").write_bytes(
        (2 ** 62).to_bytes(8, "little") + b"{}"), "safetensors"),
    ("a tensor missing", lambda f: _write_tensors(f, {k: v for k, v in _tensors(f).items() if k != "classifier"}),
     "classifier"),
    ("a tensor of the wrong shape", lambda f: _write_tensors(f, {**_tensors(f), "classifier": np.zeros(3, np.float32)}),
     "expected"),
    ("a NaN weight", lambda f: _write_tensors(f, {**_tensors(f), "model_bias": np.full_like(_tensors(f)["model_bias"],
                                                                                            np.nan)}), "NaN"),
    ("a bool tensor", lambda f: _write_tensors(f, {**_tensors(f), "model_bias": np.zeros_like(
        _tensors(f)["model_bias"], dtype=bool)}), "dtype"),
    ("a zero std", lambda f: _write_tensors(f, {**_tensors(f), "feature_std": np.zeros_like(
        _tensors(f)["feature_std"])}), "feature_std"),
    ("a directory", lambda f: ((f / "model.safetensors").unlink(), (f / "model.safetensors").mkdir()), "directory"),
]


@pytest.mark.parametrize(("case", "damage", "named"), TENSOR_CASES, ids=[c[0] for c in TENSOR_CASES])
def test_crafted_tensors_are_a_typed_error(tmp_path, case, damage, named) -> None:
    folder = copy_of(tmp_path, "mf")
    damage(folder)
    error = load_within(folder)
    assert isinstance(error, CheckpointError), f"{case}: got {error!r}"
    assert named in str(error), f"{case}: {error}"


def test_a_damaged_head_is_a_typed_error(tmp_path) -> None:
    folder = copy_of(tmp_path, "bert")
    (folder / "head.safetensors").write_bytes(b"\x00" * 64)
    assert isinstance(load_within(folder), CheckpointError)


@pytest.mark.parametrize(("base", "named"), [({"folder": "../elsewhere"}, "base folder"),
                                               ({"router": "/etc"}, "not a shipped router"),
                                               ({"router": ["mf"]}, "must be a name"),
                                               ({"router": "length", "options": "x"}, "options"),
                                               ("length", "'base' must be an object")])
def test_an_adapted_folder_cannot_point_outside_itself(tmp_path, base, named) -> None:
    folder = tmp_path / "adapted"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"router": "adapted", "serves": "base", "base": base}))
    error = load_within(folder)
    assert isinstance(error, CheckpointError) and named in str(error), error


@pytest.mark.parametrize(("key", "value"), [("score_scale", "abc"), ("score_scale", -1.0),
                                            ("length_midpoint", "400"), ("length_midpoint", 0)])
def test_an_adapted_folder_with_string_hyperparameters(tmp_path, key, value) -> None:
    folder = tmp_path / "adapted"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"router": "adapted", "serves": "length", key: value}))
    error = load_within(folder)
    assert isinstance(error, CheckpointError) and key in str(error), error


# -- options ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [None, 5, "", ["mf"]])
def test_load_router_with_no_name(bad) -> None:
    with pytest.raises(RouteLLMError, match="router name or a checkpoint folder"):
        load_router(bad)


@pytest.mark.parametrize(("name", "options", "named"), [("mf", {"strong_modle": "gpt-4"}, "strong_modle"),
                                                         ("length", {"mid_point": 3}, "mid_point"),
                                                         ("random", {"sead": 1}, "sead")])
def test_an_unknown_option_names_the_ones_it_takes(name, options, named) -> None:
    from routellm_integrations.errors import RouterOptionError

    with pytest.raises(RouterOptionError, match=named):
        load_router(name, **options)


@pytest.mark.parametrize("embedder", [5, object(), ["wordllama"]])
def test_an_embedder_that_is_not_one(embedder) -> None:
    with pytest.raises(RouteLLMError, match="embedder"):
        load_router("mf", embedder=embedder)


# -- atomic save -----------------------------------------------------------------------------
def test_a_save_that_dies_leaves_the_old_checkpoint(tmp_path, monkeypatch) -> None:
    from routellm_integrations.routers import checkpoint

    out = tmp_path / "mine"
    router = load_router("mf")
    router.save_pretrained(out)
    before = load_router(out).score(PROMPTS)
    other = load_router("mf_minilm")  # another checkpoint, saved over it, dies writing config.json

    def die(*args: Any, **kwargs: Any) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.json, "dumps", die)
    with pytest.raises(OSError, match="disk full"):
        other.save_pretrained(out)
    monkeypatch.undo()
    assert np.array_equal(load_router(out).score(PROMPTS), before)  # the old one, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary folder left behind


def test_a_save_replaces_a_checkpoint_whole(tmp_path) -> None:
    out = tmp_path / "mine"
    load_router("mf_minilm").save_pretrained(out)
    (out / "stale.txt").write_text("from the last run")
    load_router("mf").save_pretrained(out, model_card="# card\n")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert np.allclose(load_router(out).score(PROMPTS), load_router("mf").score(PROMPTS))


def test_a_save_never_replaces_an_unrelated_folder(tmp_path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_router("mf").save_pretrained(out)
    assert (out / "holiday.jpg").exists()
