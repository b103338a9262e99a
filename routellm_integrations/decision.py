"""The one decision type both framework integrations report."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Route = Literal["strong", "weak"]
#: a route: ``"strong"``/``"weak"`` for a pair, or one of N models' keys (``RoutedChat(models={...})``)
RouteKey = str


class RoutingDecision(BaseModel):
    """What a router decided for one prompt, and why.

    For a strong/weak pair, ``route`` is ``"strong"`` when ``score >= threshold`` (the
    paper's convention: the score is the predicted probability that the strong model's
    answer wins). Routing among N models, ``route`` is the chosen model's key, ``score``
    its predicted quality, ``qualities``/``expected_costs_usd`` what every candidate was
    predicted to score and cost, and ``cost_weight`` the weight in force (``threshold``
    is None: no threshold applies).
    """

    model_config = ConfigDict(frozen=True)

    route: RouteKey = Field(min_length=1)
    score: float | None = Field(ge=0.0, le=1.0, description="P(strong model wins) for this prompt (N-way: the "
                                "chosen model's predicted quality); None when the route was set without scoring "
                                "(forced, or no text to score)")
    threshold: float | None = Field(ge=0.0, le=1.0, description="None when routing among N models")
    router: str = Field(description="name of the router that scored the prompt")
    latency_ms: float | None = Field(default=None, ge=0.0, description="time spent scoring")
    forced: bool = Field(default=False, description="the caller forced the route; the score is informational")
    step_policy: str | None = Field(default=None, description="what made the decision: 'per_turn', "
                                    "'every_step', 'sticky', 'forced'; ':kept' when an earlier decision of "
                                    "the turn/thread was kept, ':budget' when the budget overrode it")
    budget: dict[str, Any] | None = Field(default=None, description="the scope's budget state after admission")
    qualities: dict[str, float] | None = Field(default=None, description="N-way: predicted quality per model key")
    expected_costs_usd: dict[str, float] | None = Field(default=None, description="N-way: expected cost per "
                                                        "model key for this call")
    cost_weight: float | None = Field(default=None, ge=0.0, description="N-way: quality points per USD in force")
    escalated_from: str | None = Field(default=None, description="the route whose answer failed a check, when "
                                       "this call is an escalation")
    strong_fraction: float | None = Field(default=None, ge=0.0, le=1.0, description="the share of strong calls "
                                          "the threshold is held at on live traffic (the default when no threshold "
                                          "is given); None with a fixed threshold or among N models")
    scored_pair: list[str] | None = Field(default=None, description="[strong, weak]: the two models the router "
                                          "scored, in its own names; None for routers that read no model names")
    scored_pair_source: Literal["backends", "default", "router_options", "router"] | None = Field(
        default=None, description="where scored_pair came from: the backends' model names, the router's default "
        "pair (a backend model it does not know), router_options, or a router object given with its own pair")

    @property
    def is_strong(self) -> bool:
        return self.route == "strong"
