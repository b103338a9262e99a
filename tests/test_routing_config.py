"""One ``RoutingConfig``: every surface takes or extends it, so an option has one name and a
misuse raises the same typed error from ``RoutedChat``, ``RoutedLLM``, the routed client's
``RouteConfig`` and the server's config file."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from llama_index.core.llms import MockLLM

from langchain_routellm import RoutedChat
from llamaindex_routellm import RoutedLLM
from routellm_integrations import InvalidRouteError, InvalidThresholdError, RoutingConfig, UnknownRouterError
from routellm_integrations.client import RouteConfig
from routellm_integrations.routing.config import RoutedModelConfig
from routellm_integrations.server.config import RouteSpec, load_config


def chat(**options):
    pair = {"strong": FakeListChatModel(responses=["a"]), "weak": FakeListChatModel(responses=["b"])}
    return RoutedChat(**{**pair, **options})


def llm(**options):
    return RoutedLLM(**{"strong": MockLLM(), "weak": MockLLM(), **options})


def client(**options):
    return RouteConfig(**options)


def server(tmp_path: Path, **options):
    import yaml

    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump({"routes": {"r": options}}))
    return load_config(path).routes["r"]


SURFACES = [pytest.param(lambda tmp, **o: chat(**o), id="RoutedChat"),
            pytest.param(lambda tmp, **o: llm(**o), id="RoutedLLM"),
            pytest.param(lambda tmp, **o: client(**o), id="RouteConfig"),
            pytest.param(lambda tmp, **o: server(tmp, **o), id="server")]


@pytest.mark.parametrize("build", SURFACES)
@pytest.mark.parametrize("options, error, says", [
    ({"threshold": 0.3, "strong_fraction": 0.2}, InvalidThresholdError, "not both"),
    ({"threshold": 1.5}, InvalidThresholdError, "threshold must be in [0, 1]"),
    ({"strong_fraction": -0.1}, InvalidThresholdError, "strong_fraction must be in [0, 1]"),
    ({"cost_weight": 3.0}, InvalidThresholdError, "cost_weight choose among N models: give models= too"),
    ({"router": "nope"}, UnknownRouterError, "nope"),
    ({"steps": "sometimes"}, InvalidRouteError, "steps must be"),
])
def test_one_misuse_is_one_error_type_on_every_surface(build, options, error, says, tmp_path) -> None:
    with pytest.raises(error) as info:
        build(tmp_path, **options)
    assert says in str(info.value), str(info.value)


def test_strong_weak_and_models_both_is_an_invalid_route_everywhere(tmp_path) -> None:
    a, b = FakeListChatModel(responses=["a"]), FakeListChatModel(responses=["b"])
    with pytest.raises(InvalidRouteError, match="not both"):
        RoutedChat(strong=a, weak=b, models={"a": a, "b": b})
    x, y = MockLLM(), MockLLM()
    with pytest.raises(InvalidRouteError, match="not both"):
        RoutedLLM(strong=x, weak=y, models={"x": x, "y": y})
    specs = ["openai:gpt-4o", "openai:gpt-4o-mini"]
    with pytest.raises(InvalidRouteError, match="not both"):
        RouteConfig(strong="openai:gpt-4o", models=specs)
    with pytest.raises(InvalidRouteError, match="not both"):
        server(tmp_path, strong="openai:gpt-4o", models=specs)
    with pytest.raises(InvalidRouteError, match="strong= and weak="):
        RoutedChat(strong=a)


def test_every_surface_extends_the_one_config() -> None:
    assert issubclass(RoutedChat, RoutedModelConfig) and issubclass(RoutedLLM, RoutedModelConfig)
    assert issubclass(RouteConfig, RoutingConfig) and issubclass(RouteSpec, RouteConfig)
    shared = set(RoutingConfig.model_fields)
    for surface in (RoutedChat, RoutedLLM, RouteConfig, RouteSpec):
        assert shared <= set(surface.model_fields), surface
    # one name per concept: none of the old names is a field anywhere
    old = {"escalate", "cost_ledger", "price_table", "force", "model_name"}
    for surface in (RoutedChat, RoutedLLM, RouteConfig, RouteSpec):
        assert not old & set(surface.model_fields), surface


@pytest.mark.parametrize("old, new, value, build", [
    ("escalate", "escalate_if", True, lambda **o: RouteConfig(**o)),
    ("escalate", "escalate_if", True, lambda **o: chat(**o)),
    ("model", "route", "weak", lambda **o: chat(**o)),
])
def test_old_names_still_work_with_a_warning_naming_the_new_one(old, new, value, build) -> None:
    with pytest.warns(DeprecationWarning, match=f"{old}= is now called {new}="):
        built = build(**{old: value})
    assert getattr(built, new) == value
    with pytest.raises(InvalidRouteError, match="not both"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build(**{old: value, new: value})


def test_route_on_last_human_is_last_user_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="last_user"):
        assert chat(route_on="last_human").route_on == "last_user"
    with pytest.raises(InvalidRouteError, match="route_on must be"):
        llm(route_on="the middle one")


def test_llamaindex_ledger_and_prices_have_the_one_name() -> None:
    from routellm_integrations.costs import PriceTable
    from routellm_integrations.state import CostLedger

    ledger = CostLedger(PriceTable.default())
    with pytest.warns(DeprecationWarning, match="cost_ledger= is now called ledger="):
        routed = llm(cost_ledger=ledger)
    assert routed.ledger is ledger
    with pytest.warns(DeprecationWarning, match="price_table= is now called prices="):
        llm(price_table=PriceTable.default())


def test_a_forced_route_is_route_on_every_surface() -> None:
    routed = chat(route="weak", threshold=0.0)
    assert routed.invoke("hi").response_metadata["routellm"]["route"] == "weak"
    assert chat(threshold=0.0).invoke("hi", route="weak").response_metadata["routellm"]["route"] == "weak"
    li = llm(route="weak", threshold=0.0)
    assert li.complete("hi").additional_kwargs["routellm"]["route"] == "weak"
    with pytest.raises(InvalidRouteError, match="route='middle' names no backend"):
        llm(route="middle")
    with pytest.raises(InvalidRouteError, match="route='middle' names no backend"):
        chat(route="middle")
