"""The plug-in's configuration against LiteLLM's: a proxy config.yaml's marker gives the
routes (a pair or N models), and every misfit is a typed error naming it, before LiteLLM
starts; without the extra, the error names the pip line."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from routellm_integrations.errors import InvalidThresholdError, MissingExtraError
from routellm_integrations.litellm import LiteLLMConfigError, RouteLLMPlugin

GROUPS = """
model_list:
  - {model_name: big, litellm_params: {model: openai/gpt-4-1106-preview}}
  - {model_name: mini, litellm_params: {model: openai/gpt-4o-mini-2024-07-18}}
  - {model_name: old, litellm_params: {model: gpt-3.5-turbo-0125}}
"""


def marker(tiers: str, *, name: str = "routellm-router", classifier: str = "custom") -> str:
    return textwrap.dedent(f"""
      - model_name: {name}
        litellm_params:
          model: auto_router/complexity_router
          complexity_router_config:
            classifier_type: {classifier}
            classifier_plugin: routellm_plugin.routing
            tiers: {tiers}
    """)


def config(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(GROUPS + textwrap.indent(text, "  "))
    return path


def test_a_pair_from_the_proxy_config(tmp_path):
    path = config(tmp_path, marker("{strong: big, weak: mini}"))
    plugin = RouteLLMPlugin.from_proxy_config(path, router="length", strong_fraction=0.4)
    assert not plugin.nway and plugin.tiers == {"strong": "big", "weak": "mini"}
    assert plugin.model_name == "routellm-router" and plugin.policy.strong_fraction == 0.4
    assert plugin.groups["weak"].provider == "openai" and plugin.groups["weak"].model == "gpt-4o-mini-2024-07-18"


def test_n_models_from_the_proxy_config(tmp_path):
    path = config(tmp_path, marker('{"gpt-4-1106-preview": big, "gpt-4o-mini-2024-07-18": mini, '
                                   '"gpt-3.5-turbo-0125": old}', name="auto"))
    plugin = RouteLLMPlugin.from_proxy_config(path, cost_weight=50.0)
    assert plugin.nway and plugin.model_name == "auto" and plugin.policy.router_name == "quality"
    assert plugin.groups["gpt-3.5-turbo-0125"].provider is None
    built = plugin.complexity_router_config()
    assert built["tiers"] == plugin.tiers and [t["name"] for t in built["tier_definitions"]] == list(plugin.tiers)
    assert built["fallback_tier"] in plugin.tiers and built["max_tokens_from_tier_model"] is False


@pytest.mark.parametrize("text, words", [
    ("", "exactly one auto_router/complexity_router"),
    (marker("{strong: big, weak: mini}", classifier="heuristic"), "exactly one"),
    (marker("{strong: big, weak: mini}") + marker("{strong: mini, weak: big}", name="second"), "found 2"),
    (marker("[big, mini]"), "tiers must map"),
    (marker("{strong: big, weak: nowhere}"), "nowhere"),
    (marker("{strong: big, weak: mini}", name="big"), "already a model group"),
])
def test_a_proxy_config_that_does_not_fit_is_refused(tmp_path, text, words):
    with pytest.raises(LiteLLMConfigError, match=words):
        RouteLLMPlugin.from_proxy_config(config(tmp_path, text), router="length")


def test_a_missing_or_broken_config_file_is_named(tmp_path):
    with pytest.raises(LiteLLMConfigError, match="cannot read"):
        RouteLLMPlugin.from_proxy_config(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("model_list: [unclosed")
    with pytest.raises(LiteLLMConfigError, match="cannot read"):
        RouteLLMPlugin.from_proxy_config(tmp_path / "bad.yaml")


def test_the_proxy_config_knob_is_checked_against_its_routes(tmp_path):
    path = config(tmp_path, marker("{strong: big, weak: mini}"))
    with pytest.raises(InvalidThresholdError):
        RouteLLMPlugin.from_proxy_config(path, router="length", cost_weight=1.0)  # a pair has no cost weight


def test_a_model_list_entry_without_a_model_is_named():
    with pytest.raises(LiteLLMConfigError, match="has no litellm_params.model"):
        RouteLLMPlugin(model_list=[{"model_name": "big", "litellm_params": {}}], strong="big", weak="big")


def test_without_litellm_the_error_names_the_extra():
    code = ("import sys; sys.modules['litellm'] = None\n"
            "from routellm_integrations.litellm import LiteLLMRouting\n"  # the options need no litellm
            "from routellm_integrations.litellm import RouteLLMPlugin\n")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and MissingExtraError.__name__ in done.stderr
    assert 'pip install "routellm-integrations[litellm]"' in done.stderr


def test_the_helpers_marker_is_the_one_the_proxy_config_reads(tmp_path):
    from routellm_integrations.litellm import proxy_deployment_yaml

    nway = {"gpt-4-1106-preview": "big", "gpt-4o-mini-2024-07-18": "mini", "gpt-3.5-turbo-0125": "old"}
    path = config(tmp_path, textwrap.dedent(proxy_deployment_yaml(models=nway, fallback="gpt-3.5-turbo-0125",
                                                                  model_name="auto")))
    plugin = RouteLLMPlugin.from_proxy_config(path, cost_weight=50.0)
    assert plugin.nway and plugin.tiers == nway and plugin.model_name == "auto"
    import yaml

    [entry] = [e for e in yaml.safe_load(path.read_text())["model_list"] if e["model_name"] == "auto"]
    options = entry["litellm_params"]["complexity_router_config"]
    assert options["fallback_tier"] == "gpt-3.5-turbo-0125" and options["max_tokens_from_tier_model"] is False
    assert entry["litellm_params"]["complexity_router_default_model"] == "old"


@pytest.mark.parametrize("options, words", [
    ({"strong": "big"}, "strong= and weak="),
    ({"models": {"a": "big", "b": "mini"}}, "name the fallback tier"),
    ({"strong": "big", "weak": "mini", "fallback": "medium"}, "'medium' is not a route key"),
    ({"strong": "big", "weak": "mini", "classifier_plugin": object()}, "module.instance"),
])
def test_the_helper_refuses_a_marker_that_does_not_fit(options, words):
    from routellm_integrations.litellm import proxy_deployment_yaml

    with pytest.raises(LiteLLMConfigError, match=words):
        proxy_deployment_yaml(**options)


def test_the_config_command_prints_the_marker_or_names_the_problem():
    import yaml

    from routellm_integrations.litellm import proxy_deployment

    cmd = [sys.executable, "-m", "routellm_integrations.litellm", "config"]
    done = subprocess.run([*cmd, "--model", "a=big", "--model", "b=mini", "--fallback", "b", "--model-name", "x",
                           "--classifier-plugin", "mine.plugin"], check=True, capture_output=True, text=True,
                          timeout=120)
    assert yaml.safe_load(done.stdout) == [proxy_deployment(models={"a": "big", "b": "mini"}, fallback="b",
                                                            model_name="x", classifier_plugin="mine.plugin")]
    bad = subprocess.run([*cmd, "--model", "a=big", "--model", "b=mini"], check=False, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "LiteLLMConfigError" in bad.stderr and "fallback" in bad.stderr
    assert not bad.stdout
