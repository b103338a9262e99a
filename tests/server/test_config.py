"""The server's configuration: files (YAML, TOML), flags over files, validation errors that
name the field, client keys, and the JSON that workers are started with."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from routellm_integrations.errors import InvalidThresholdError, RouteLLMError
from routellm_integrations.server.auth import AuthError, KeyRing
from routellm_integrations.cli import main as routellm
from routellm_integrations.cli.serve import add_serve_parser, config_from_args
from routellm_integrations.server.config import ConfigError, ServerConfig, load_config

YAML = """
strong: openai:gpt-4o
weak: anthropic:claude-3-5-haiku-latest
routers: [mf, length]
threshold: 0.11593
state: sqlite:///routing.sqlite
routes:
  cheap: {router: length, threshold: 0.8}
  balanced: {router: mf, strong_fraction: 0.3, weak: openai:gpt-4o-mini}
budget: {max_usd: 5.0}
keys:
  - {label: alice, key_env: ALICE_KEY, budget: {max_usd: 20, on_exhausted: raise}}
  - {label: ci, key: rk-local-ci-key-1}
providers:
  openai: {base_url: "http://localhost:8000/v1", api_key_env: VLLM_KEY}
"""

TOML = """
strong = "openai:gpt-4o"
weak = "openai:gpt-4o-mini"
routers = ["random"]
strong_fraction = 0.25

[routes.fast]
router = "random"
threshold = 0.9

[[keys]]
label = "team-a"
key = "rk-team-a-secret-1"
budget = { max_strong_calls = 10 }
"""


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="routellm")
    add_serve_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["serve", *argv])


def test_yaml_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(YAML)
    config = load_config(path)
    assert config.routes["balanced"].strong_fraction == 0.3 and config.routes["cheap"].router == "length"
    assert config.keys[0].budget.on_exhausted == "raise" and config.budget.max_usd == 5.0
    assert config.advertised_models() == ["router-mf-0.11593", "router-length-0.11593", "cheap", "balanced"]
    monkeypatch.setenv("ALICE_KEY", "rk-alice-from-env-1")
    ring = KeyRing.from_config(config, environ={})
    assert ring.authenticate({"authorization": "Bearer rk-alice-from-env-1"}).budget.max_usd == 20
    assert ring.authenticate({"x-api-key": "rk-local-ci-key-1"}).budget.max_usd == 5.0  # the default budget
    with pytest.raises(AuthError):
        ring.authenticate({"authorization": "Bearer rk-nope-nope-nope"})
    with pytest.raises(AuthError):
        ring.authenticate({})
    assert "rk-alice-from-env-1" not in repr(ring) + repr(config)


def test_toml_config_and_flags_over_it(tmp_path: Path) -> None:
    path = tmp_path / "server.toml"
    path.write_text(TOML)
    config = load_config(path)
    assert config.strong_fraction == 0.25 and config.advertised_models() == ["router-random-share0.25", "fast"]
    args = _parse("--config", str(path), "--router", "length", "--threshold", "0.4", "--port", "7000",
                  "--db", "sqlite:///x.sqlite", "--workers", "3", "--no-access-log")
    flagged = config_from_args(args)
    assert flagged.routers == ["length"] and flagged.threshold == 0.4 and flagged.strong_fraction is None
    assert (flagged.port, flagged.state, flagged.workers, flagged.access_log) == (7000, "sqlite:///x.sqlite", 3, False)
    assert flagged.keys[0].label == "team-a" and flagged.routes["fast"].threshold == 0.9
    assert _parse("--state", "redis://localhost:6379/0").state == "redis://localhost:6379/0"


def test_a_route_without_threshold_holds_the_default_share() -> None:
    from routellm_integrations.policy import DEFAULT_STRONG_FRACTION
    from routellm_integrations.server.config import ServerConfig

    config = ServerConfig.model_validate({"routes": {"x": {"router": "random"}}})
    assert config.routes["x"].threshold is None and config.routes["x"].strong_fraction is None
    assert config.advertised_models() == [f"router-mf-share{DEFAULT_STRONG_FRACTION}", "x"]


@pytest.mark.parametrize("text, problem", [
    ("strong: gpt-4o\n", "strong: Value error, a backend is 'provider:model'"),
    ("routers: [nope]\n", "unknown routers ['nope']"),
    ("colour: blue\n", "colour: unknown field"),
    ("budget: {max_usd: -1}\n", "budget.max_usd"),
    ("budget: {max_usd: 1, cap: 2}\n", "budget.cap: unknown field"),
    ("keys:\n  - {label: a}\n", "give exactly one of key or key_env"),
    ("keys:\n  - {label: a, key: rk-aaaaaaaa1}\n  - {label: a, key: rk-aaaaaaaa2}\n", "repeated: ['a']"),
    ("state: postgres://x\n", "state is memory://"),
    ("- a list\n", "must hold a mapping"),
    ("strong: [unclosed\n", "is not valid YAML"),
])
def test_config_errors_name_the_field(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert isinstance(info.value, RouteLLMError) and problem in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text, problem", [
    ("routes:\n  x: {router: random, threshold: 2}\n", "routes.x: threshold must be in [0, 1], got 2.0"),
    ("routes:\n  x: {router: random, threshold: 0.1, strong_fraction: 0.2}\n", "routes.x: give threshold or "
     "strong_fraction, not both"),
])
def test_a_route_misuse_in_the_file_is_the_error_every_surface_raises(tmp_path: Path, text: str,
                                                                     problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InvalidThresholdError) as info:  # as RoutedChat(threshold=2) raises it
        load_config(path)
    assert problem in str(info.value) and str(path) in str(info.value)


def test_config_file_problems_exit_2_or_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert routellm(["serve", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "x.ini").write_text("[a]\n")
    assert routellm(["serve", "--config", str(tmp_path / "x.ini")]) == 1  # found while reading: an error, not a usage error
    assert ".yaml, .yml, .toml or .json" in capsys.readouterr().err


def test_workers_get_the_whole_config_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(None, keys=[{"label": "a", "key": "rk-aaaaaaaaaa", "budget": {"max_usd": 2}}],
                         routes={"r": {"router": "random", "threshold": 0.2}}, workers=4)
    monkeypatch.setenv("ROUTELLM_SERVER_CONFIG", config.to_env_json())
    back = ServerConfig.from_env()
    assert back.keys[0].secret() == "rk-aaaaaaaaaa" and back.keys[0].budget.max_usd == 2
    assert back.routes == config.routes and back.workers == 4
    monkeypatch.setenv("ROUTELLM_SERVER_CONFIG", '{"workers": 0}')
    with pytest.raises(ConfigError, match="workers"):
        ServerConfig.from_env()


def test_env_keys_get_labels_and_short_keys_are_refused() -> None:
    ring = KeyRing.from_config(ServerConfig(), environ={"ROUTELLM_SERVER_API_KEYS": "ops=rk-ops-key-12345,rk-bare-key-6789"})
    assert ring.labels()[1] == "ops" and ring.labels()[0].startswith("key-")
    assert ring.authenticate({"authorization": "Bearer rk-bare-key-6789"}).label.startswith("key-")
    with pytest.raises(ConfigError, match="shorter than 8"):
        KeyRing.from_config(ServerConfig(), environ={"ROUTELLM_SERVER_API_KEYS": "abc"})
    assert KeyRing.from_config(ServerConfig(), environ={}).open
