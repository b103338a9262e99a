"""The routing server with answer checks (issue 26) over real HTTP, its backends the local
OpenAI-format server: check names in a route's config, a final-answer escalation's
reason in the reply's record, an agreement check's one extra cheap call settled in the
usage, the key's budget and the metrics, escalating on disagreement only; bad names and
folders refused when the config loads, naming the field."""

from __future__ import annotations

import numpy as np
import openai
import pytest
from srv_helpers import CLIENT_KEY

from routellm_integrations.choosers import CascadeShareController
from routellm_integrations.server.config import ConfigError, load_config
from routellm_integrations.testing.openai_compat import Reply

PRICES = {"openai": {"gpt-4o": [2.5, 10.0], "gpt-4o-mini": [0.15, 0.6]}}
MATHS = "Tom has 12 boxes with 7 pens in each box. How many pens does Tom have?"
ASK = [{"role": "user", "content": MATHS}]
# threshold 1.0: every call goes to the weak model first (a plain cascade)
CASCADE = {"router": "random", "threshold": 1.0}


def sdk(server) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=server.base_url, api_key=CLIENT_KEY, max_retries=0)


def _serve(serve, **routes):  # type: ignore[no-untyped-def]
    return serve(strong="openai:gpt-4o", weak="openai:gpt-4o-mini", prices=PRICES,
                 keys=[{"label": "alice", "key": CLIENT_KEY, "budget": {"max_usd": 5.0}}], routes=routes)


def test_final_answer_check_by_name_escalates_over_http(serve, openai_server) -> None:
    server = _serve(serve, cascade={**CASCADE, "escalate_if": ["final_answer", "answer_flags"]})
    openai_server.chat.push(Reply(text="Let me think about the pens."), model="gpt-4o-mini")
    raw = sdk(server).chat.completions.with_raw_response.create(model="cascade", messages=ASK)
    meta = raw.parse().routellm
    assert meta["route"] == "strong" and raw.headers["x-routellm-escalated-from"] == "weak"
    assert meta["escalations"][0]["escalation_reason"] == "no stated final answer (a maths-like prompt)"
    listed = {m["id"]: m for m in server.get("/v1/models").json()["data"]}
    assert listed["cascade"]["routellm"]["escalate_if"] == ["final_answer", "answer_flags"]


@pytest.mark.parametrize("second, escalates", [("The answer is 84.", False), ("The answer is 82.", True)])
def test_agreement_over_http_is_one_more_cheap_call_in_usage_budget_and_metrics(serve, openai_server, second,
                                                                                escalates) -> None:
    server = _serve(serve, cascade={**CASCADE, "escalate_if": [{"check": "agreement", "temperature": 1.0}]})
    openai_server.chat.push(Reply(text="So Tom has 84 pens."), Reply(text=second), model="gpt-4o-mini")
    meta = sdk(server).chat.completions.create(model="cascade", messages=ASK).routellm
    bodies = [r.json for r in openai_server.requests_to("/v1/chat/completions")]
    assert [b["model"] for b in bodies] == ["gpt-4o-mini", "gpt-4o-mini"] + (["gpt-4o"] if escalates else [])
    assert bodies[1]["temperature"] == 1.0
    assert meta["route"] == ("strong" if escalates else "weak")
    report = server.get("/v1/routing/usage").json()
    usage = report["total"]
    assert usage["calls"] == len(bodies) and usage["by_route"]["weak"]["calls"] == 2
    assert usage["escalated_calls"] == int(escalates)
    # the key's budget paid every call of the cascade, the second sample included
    state = report["key"]["budget"]
    assert state["spent_usd"] == pytest.approx(usage["cost_usd"]) and state["in_flight"] == 0
    metrics = server.get("/metrics", key=None).text
    assert 'route="weak",status="ok"} ' + ("1.0" if escalates else "2.0") in metrics
    if escalates:
        assert meta["escalations"][0]["escalation_reason"] == \
            "agreement: the answer (84) disagrees with a second sample (82)"


def test_route_then_verify_on_the_server_holds_the_share_with_escalations(serve, openai_server) -> None:
    """strong_fraction 0.3 with a final-answer check: the share of calls answered strong,
    escalations included, holds; long prompts (the length router's surest) skip the cheap
    call."""
    def answers(turn):  # the weak model states no final answer on every third prompt
        if turn.model == "gpt-4o-mini" and int(turn.last_user_text.split(":")[0][1:]) % 3 == 0:
            return Reply(text="Let me think about the boxes.")
        return Reply(text="Each box holds 7 pens, so the answer is 42.")

    openai_server.chat.responder = answers
    server = _serve(serve, hybrid={"router": "length", "strong_fraction": 0.3, "escalate_if": "final_answer"})
    client, rng = sdk(server), np.random.default_rng(3)
    strong, direct = [], []
    for i in range(150):
        filler = " Please show your working." * int(rng.integers(0, 12))
        meta = client.chat.completions.create(model="hybrid", messages=[
            {"role": "user", "content": f"Q{i}: Tom has {i % 9 + 2} boxes with 7 pens each. How many pens?{filler}"}
        ]).routellm
        strong.append(meta["route"] == "strong")
        direct.append(meta["route"] == "strong" and meta["escalated_from"] is None)
    assert np.mean(strong[50:]) == pytest.approx(0.3, abs=0.08)
    assert np.mean(direct[50:]) < np.mean(strong[50:]) - 0.1  # escalations fill part of the share
    usage = server.get("/v1/routing/usage").json()["total"]
    weak_requests = sum(r.json["model"] == "gpt-4o-mini" for r in openai_server.requests_to("/v1/chat/completions"))
    assert weak_requests == 150 - sum(direct) and usage["escalated_calls"] == sum(strong) - sum(direct)
    routed = [r for r in server.client._routed.values() if r.key == "hybrid"]
    assert routed and all(isinstance(r.policy.online, CascadeShareController) for r in routed)


def test_bad_check_names_and_folders_fail_when_the_config_loads(provider_env, tmp_path) -> None:
    for value, problem in [("final-answer", "neither a check name"), ("[final_answer, nope]", "'nope'"),
                           ("{check: agreement, temp: 1}", "bad options for the agreement check"),
                           (str(tmp_path), "routes.auto.escalate_if")]:
        path = tmp_path / "bad.yaml"
        path.write_text(f"routes:\n  auto: {{router: random, threshold: 1.0, escalate_if: {value}}}\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert "routes.auto.escalate_if" in str(info.value) and problem in str(info.value), str(info.value)
    good = tmp_path / "good.yaml"
    good.write_text("routes:\n  auto: {router: random, threshold: 1.0, escalate_if: [final_answer, agreement]}\n")
    assert load_config(good).routes["auto"].escalate_if == ["final_answer", "agreement"]
