"""The one decision type both framework integrations report."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Route = Literal["strong", "weak"]


class RoutingDecision(BaseModel):
    """What a router decided for one prompt, and why.

    ``route`` is ``"strong"`` when ``score >= threshold`` (the paper's convention: the
    score is the predicted probability that the strong model's answer wins).
    """

    model_config = ConfigDict(frozen=True)

    route: Route
    score: float | None = Field(ge=0.0, le=1.0, description="P(strong model wins) for this prompt; None when "
                                "the route was set without scoring (forced, or no text to score)")
    threshold: float = Field(ge=0.0, le=1.0)
    router: str = Field(description="name of the router that scored the prompt")
    latency_ms: float | None = Field(default=None, ge=0.0, description="time spent scoring")
    forced: bool = Field(default=False, description="the caller forced the route; the score is informational")
    step_policy: str | None = Field(default=None, description="what made the decision: 'per_turn', "
                                    "'every_step', 'sticky', 'forced'; ':kept' when an earlier decision of "
                                    "the turn/thread was kept, ':budget' when the budget overrode it")
    budget: dict[str, Any] | None = Field(default=None, description="the scope's budget state after admission")

    @property
    def is_strong(self) -> bool:
        return self.route == "strong"
