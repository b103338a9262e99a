"""Answer checks (issue 26): the zero-label checks, ``escalate_if`` by name / mapping /
verifier, and the routed client over a real local OpenAI-format server: a final-answer
or flag check escalates with its reason in the record; an agreement check makes exactly
one more cheap call, settled in the ledger and the budget, and escalates on disagreement
only; a second call that fails gives no verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakes import SlipVerifier
from routellm_integrations.budgets import Budget
from routellm_integrations.client import AsyncRoutedClient, RouteConfig, RoutedClient
from routellm_integrations.costs import PriceTable
from routellm_integrations.routing.answer_checks import (CHECK_NAMES, agreement, answer_flags, as_check,
                                                         escalation_checks, final_answer_missing, verifier,
                                                         zero_label)
from routellm_integrations.routing.escalation import Answer, EscalationCheckError, SampleNeeded, first_failure
from routellm_integrations.testing.openai_compat import Reply

PRICES = PriceTable.default().with_prices({"openai": {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}})
MATHS = "Tom has 12 boxes with 7 pens in each box. How many pens does Tom have?"
CHAT = "Write a short poem about the sea."
LONG = " ".join([MATHS] * 5)  # the length router scores it 0.47


# -- the checks on their own ----------------------------------------------------------------

def test_final_answer_check_fires_on_a_maths_prompt_without_a_stated_answer():
    check = final_answer_missing()
    assert check(Answer(text="Let me think about the pens.", prompt=MATHS)) == \
        "no stated final answer (a maths-like prompt)"
    assert check(Answer(text="12 * 7 = 84, so Tom has 84 pens.", prompt=MATHS)) is None
    assert check(Answer(text="Waves and foam.", prompt=CHAT)) is None  # not maths: not checked


def test_answer_flags_name_what_they_found_and_read_the_finish_reason():
    check = answer_flags()
    reason = check(Answer(text="12 * 7 = 82. So Tom has 82 pens.", prompt=MATHS))
    assert reason is not None and reason.startswith("answer flags: arithmetic slip") and "12 * 7 = 82" in reason
    assert check(Answer(text="12 * 7 = 84. So Tom has 84 pens.", prompt=MATHS)) is None
    # the provider said it stopped at the output bound
    cut = Answer(text="12 * 7 = 84. So Tom has 84 pens.", prompt=MATHS, finish_reason="length")
    assert cut.truncated and "truncated" in check(cut)
    assert answer_flags(max_chars=10)(Answer(text="Waves and foam and more waves.", prompt=CHAT)) == \
        "answer flags: answer of 30 characters (> 10)"
    with pytest.raises(EscalationCheckError, match="unknown flag"):
        answer_flags(flags=["vibes"])


def test_zero_label_check_escalates_above_its_threshold():
    assert zero_label(0.5)(Answer(text="12 * 7 = 82. So Tom has 82 pens.", prompt=MATHS)).startswith(
        "zero-label score")
    assert zero_label(0.5)(Answer(text="12 * 7 = 84. So Tom has 84 pens.", prompt=MATHS)) is None


def test_agreement_asks_for_a_second_answer_then_compares_them():
    check = agreement()
    with pytest.raises(SampleNeeded) as need:
        check(Answer(text="Tom has 84 pens.", prompt=MATHS))
    key = need.value.key
    assert need.value.params == {"temperature": 0.7} and need.value.route is None
    # first_failure lets the request through to the engine, not as a failing check
    with pytest.raises(SampleNeeded):
        first_failure((check,), Answer(text="Tom has 84 pens.", prompt=MATHS))
    agree = Answer(text="So Tom has 84 pens.", prompt=MATHS, samples={key: "12 x 7 is 84. The answer is 84."})
    disagree = Answer(text="So Tom has 84 pens.", prompt=MATHS, samples={key: "The answer is 82."})
    failed = Answer(text="So Tom has 84 pens.", prompt=MATHS, samples={key: None})
    assert check(agree) is None and check(failed) is None
    assert check(disagree) == "agreement: the answer (84) disagrees with a second sample (82)"


def test_escalate_if_takes_names_mappings_and_refuses_unknown_ones(tmp_path):
    checks = escalation_checks(["final_answer", "answer_flags", {"check": "agreement", "temperature": 1.0}])
    assert [c.__name__ for c in checks] == ["final_answer_missing", "answer_flags", "agreement"]
    assert len(escalation_checks("defaults")) == 3 and len(escalation_checks([True, "final_answer"])) == 4
    assert set(CHECK_NAMES) >= {"final_answer", "answer_flags", "agreement", "zero_label"}
    with pytest.raises(EscalationCheckError, match="neither a check name"):
        escalation_checks(["final_answr"])
    with pytest.raises(EscalationCheckError, match="needs check"):
        escalation_checks({"check": "nope"})
    with pytest.raises(EscalationCheckError, match="bad options for the agreement check"):
        escalation_checks({"check": "agreement", "temprature": 1.0})
    with pytest.raises(EscalationCheckError, match="temperature must be in"):
        as_check({"check": "agreement", "temperature": 9})
    with pytest.raises(EscalationCheckError):
        RouteConfig(escalate_if=["final_answer", 3])


def test_a_folder_without_a_verifier_is_a_typed_error_at_construction(tmp_path):
    from routellm_integrations.errors import RouteLLMError

    with pytest.raises(RouteLLMError, match=str(tmp_path.name)):
        RouteConfig(escalate_if=str(tmp_path))


def test_verifier_check_uses_its_threshold_or_a_share():
    v = SlipVerifier()
    bad, good = Answer(text="So 82.", prompt=MATHS), Answer(text="So 84.", prompt=MATHS)
    assert verifier(v)(bad) == "verifier: P(strong better) 0.900 >= 0.600" and verifier(v)(good) is None
    assert verifier(v, share=0.95)(good) == "verifier: P(strong better) 0.200 >= 0.050"
    assert verifier(v, threshold=0.95)(bad) is None
    assert as_check(v).__name__ == "verifier"  # an object with score() is wrapped
    with pytest.raises(EscalationCheckError, match="share or threshold"):
        verifier(v, share=0.1, threshold=0.2)


# -- the routed client over real HTTP --------------------------------------------------------

def _client(openai_server, **route):
    budget = route.pop("budget", None)
    route = {"router": "length", "threshold": 0.3, **route}  # MATHS scores 0.15: weak; LONG 0.47: strong
    return RoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", openai_base_url=openai_server.base_url,
                        openai_api_key="sk-test-0123456789", prices=PRICES, max_retries=0,
                        routes={"auto": RouteConfig(**route)}, budget=budget)


def _chat_bodies(openai_server):
    return [r.json for r in openai_server.requests_to("/v1/chat/completions")]


def test_client_final_answer_check_escalates_with_its_reason(openai_server):
    openai_server.chat.push(Reply(text="Let me think about the pens."), model="gpt-4o-mini")
    openai_server.chat.push(Reply(text="12 * 7 = 84. The answer is 84."), model="gpt-4o")
    with _client(openai_server, escalate_if=["final_answer", "answer_flags"]) as client:
        reply = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": MATHS}])
        meta = reply.routellm
        assert meta["route"] == "strong" and meta["escalated_from"] == "weak"
        (first,) = meta["escalations"]
        assert first["status"] == "escalated" and first["escalation_reason"] == \
            "no stated final answer (a maths-like prompt)"
        assert meta["escalation_reason"] == first["escalation_reason"]  # the answer's own record says why
        # an arithmetic slip: the flag check's reason names it
        openai_server.chat.push(Reply(text="12 * 7 = 82. The answer is 82."), model="gpt-4o-mini")
        meta = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": MATHS}]).routellm
        assert meta["escalations"][0]["escalation_reason"] == "answer flags: arithmetic slip: 12 * 7 = 82"
        # a right answer stays on the weak model
        openai_server.chat.push(Reply(text="12 * 7 = 84. The answer is 84."), model="gpt-4o-mini")
        meta = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": MATHS}]).routellm
        assert meta["route"] == "weak" and "escalations" not in meta
        assert client.aclient.store.usage().as_dict()["escalated_calls"] == 2


def test_client_truncated_answer_escalates_from_the_providers_finish_reason(openai_server):
    with _client(openai_server, escalate_if="answer_flags") as client:
        # max_tokens=4: the server cuts the answer and says finish_reason "length"
        openai_server.chat.push(Reply(text="Tom has twelve boxes of seven pens each so he has 84"), model="gpt-4o-mini")
        meta = client.chat.completions.create(model="auto", max_tokens=4,
                                              messages=[{"role": "user", "content": MATHS}]).routellm
        assert "truncated" in meta["escalations"][0]["escalation_reason"]


@pytest.mark.parametrize("second, escalates", [("12 x 7 = 84, so the answer is 84.", False),
                                               ("The answer is 82.", True)])
def test_client_agreement_makes_one_more_cheap_call_settled_and_budgeted(openai_server, second, escalates):
    budget = Budget(max_usd=5.0)
    openai_server.chat.push(Reply(text="Tom has 84 pens."), Reply(text=second), model="gpt-4o-mini")
    with _client(openai_server, escalate_if="agreement", budget=budget) as client:
        reply = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": MATHS}],
                                               scope="u1")
        meta = reply.routellm
        bodies = _chat_bodies(openai_server)
        models = [b["model"] for b in bodies]
        # exactly one more cheap call, at the check's temperature; the strong one only on disagreement
        assert models == ["gpt-4o-mini", "gpt-4o-mini"] + (["gpt-4o"] if escalates else [])
        assert "temperature" not in bodies[0] and bodies[1]["temperature"] == 0.7
        entries = client.aclient.store.entries()
        weak = [e for e in entries if e.route == "weak"]
        assert sorted(e.status for e in weak) == (["escalated", "ok"] if escalates else ["ok", "ok"])
        assert all(e.cost_usd > 0 for e in entries)
        usage = client.aclient.store.usage().as_dict()
        assert usage["calls"] == (3 if escalates else 2)
        # the budget was charged for every call of the cascade, the second sample included
        spent = client.budget_state("u1").spent_usd
        assert spent == pytest.approx(sum(e.cost_usd for e in entries))
        if escalates:
            assert meta["route"] == "strong"
            assert meta["escalations"][0]["escalation_reason"] == \
                "agreement: the answer (84) disagrees with a second sample (82)"
        else:
            assert meta["route"] == "weak" and "escalations" not in meta


def test_the_second_samples_record_names_the_call_it_checked(openai_server):
    records = []
    openai_server.chat.push(Reply(text="Tom has 84 pens."), Reply(text="The answer is 84."), model="gpt-4o-mini")
    with _client(openai_server, escalate_if="agreement") as client:
        client.on_settled(lambda record, call: records.append(record))
        meta = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": MATHS}]).routellm
    sample = next(r for r in records if r.reason == "second_sample")
    assert sample.sample_of == meta["call_id"] and sample.route == "weak" and sample.status == "ok"


def test_a_failed_second_call_gives_no_verdict(openai_server):
    openai_server.chat.push(Reply(text="Tom has 84 pens."), model="gpt-4o-mini")
    original = openai_server.chat.answer

    def answer(turn):  # the first call answers, then the next request (the second sample) gets a 500
        result = original(turn)
        openai_server.fail_next(500)
        return result

    openai_server.chat.answer = answer
    try:
        with _client(openai_server, escalate_if="agreement") as client:
            meta = client.chat.completions.create(model="auto",
                                                  messages=[{"role": "user", "content": MATHS}]).routellm
            statuses = sorted(e.status for e in client.aclient.store.entries())
    finally:
        del openai_server.chat.answer
    assert meta["route"] == "weak" and "escalations" not in meta
    assert statuses == ["failed", "ok"]  # the second call settled as failed, at no cost


async def test_async_client_stream_with_agreement_holds_then_escalates(openai_server):
    openai_server.chat.push(Reply(text="Tom has 84 pens."), Reply(text="The answer is 82."), model="gpt-4o-mini")
    client = AsyncRoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", openai_base_url=openai_server.base_url,
                               openai_api_key="sk-test-0123456789", prices=PRICES, max_retries=0,
                               routes={"auto": RouteConfig(router="length", threshold=0.3, escalate_if="agreement")})
    try:
        stream = await client.create(model="auto", stream=True, messages=[{"role": "user", "content": MATHS}])
        chunks = [c async for c in stream]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.startswith("Hello from gpt-4o")  # no chunk of the weak answer was sent
        meta = chunks[-1].routellm
        assert meta["route"] == "strong" and "disagrees" in meta["escalations"][0]["escalation_reason"]
        bodies = _chat_bodies(openai_server)
        assert [b["model"] for b in bodies] == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]
        assert bodies[0]["stream"] is True and not bodies[1].get("stream") and "stream_options" not in bodies[1]
    finally:
        await client.aclose()


def test_hard_prompts_skip_the_cheap_call(openai_server):
    with _client(openai_server, escalate_if=["final_answer", "agreement"]) as client:
        meta = client.chat.completions.create(model="auto",
                                              messages=[{"role": "user", "content": LONG}]).routellm
    assert meta["route"] == "strong" and [b["model"] for b in _chat_bodies(openai_server)] == ["gpt-4o"]
    assert json.dumps(meta)  # the record stays plain JSON


# -- a real verifier's folder as escalate_if ---------------------------------------------------

def _slips(n: int, seed: int = 0):
    """GSM8K-like pairs: a fifth of the weak answers carry an arithmetic slip (then the strong
    model's answer is the better one)."""
    rng = np.random.default_rng(seed)
    prompts, answers, strong_better = [], [], []
    for _ in range(n):
        a, b = int(rng.integers(3, 20)), int(rng.integers(3, 20))
        wrong = rng.uniform() < 0.4
        c = a * b + (int(rng.integers(1, 9)) if wrong else 0)
        prompts.append(f"Tom has {a} boxes with {b} pens in each box. How many pens does Tom have?")
        answers.append(f"{a} * {b} = {c}. So the answer is {c}.")
        strong_better.append(float(wrong))
    return prompts, answers, np.array(strong_better)


@pytest.fixture(scope="module")
def verifier_folder(tmp_path_factory):
    """A verifier fitted by ``fit_verifier`` (the static WordLlama embedder; nested
    cross-validation, calibration and the guard against a prompt router that knows
    nothing here) on 80 labelled GSM8K-like answers, saved to a folder."""
    from routellm_integrations.embedders import get_embedder
    from routellm_integrations.verification import fit_verifier

    prompts, answers, strong_better = _slips(80)
    labels = np.column_stack([np.ones(80), 1.0 - strong_better])  # (strong, weak) correct
    flat = np.random.default_rng(1).normal(0.5, 0.01, 80)  # a prompt router with nothing to say
    fit = fit_verifier(prompts, answers, labels, embedder=get_embedder("wordllama"), prompt_scores=flat, folds=3,
                       n_boot=50)
    assert fit.served, fit.report.summary()
    folder = tmp_path_factory.mktemp("adapted")
    fit.verifier.save(folder)
    return folder


def test_a_verifier_folder_as_escalate_if_on_the_client(openai_server, verifier_folder):
    from routellm_integrations.verification import load_verifier

    v = load_verifier(verifier_folder)
    prompts, answers, y = _slips(40, seed=1)
    scores = v.score(prompts, answers)
    assert scores[y == 1].mean() > scores[y == 0].mean() + 0.3  # it separates slips from right answers
    slip, right = "12 * 7 = 89. So the answer is 89.", "12 * 7 = 84. So the answer is 84."
    prompt = "Tom has 12 boxes with 7 pens in each box. How many pens does Tom have?"
    assert v.score([prompt], [slip])[0] >= v.threshold > v.score([prompt], [right])[0]
    with _client(openai_server, escalate_if=str(verifier_folder)) as client:
        openai_server.chat.push(Reply(text=slip), Reply(text=right), model="gpt-4o-mini")
        meta = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": prompt}]).routellm
        assert meta["route"] == "strong" and meta["escalations"][0]["escalation_reason"].startswith(
            "verifier: P(strong better) ")
        meta = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": prompt}]).routellm
        assert meta["route"] == "weak" and "escalations" not in meta
    # a share of the labelled traffic instead of the fit's threshold, as a config file writes it
    check = as_check({"check": "verifier", "path": str(verifier_folder), "share": 0.1})
    assert check.threshold == pytest.approx(v.threshold_for_share(0.1))


def test_agreement_with_a_second_cheap_model_among_n(openai_server, anthropic_server):
    from routellm_integrations.errors import InvalidRouteError

    models = ["openai:gpt-4o", "openai:gpt-4o-mini", "anthropic:claude-3-haiku-20240307"]
    prices = PriceTable.default().with_prices({"openai": {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)},
                                               "anthropic": {"claude-3-haiku-20240307": (0.25, 1.25)}})
    second = {"check": "agreement", "route": "claude-3-haiku-20240307", "temperature": None}
    with pytest.raises(InvalidRouteError, match="agreement check's route \\['claude-haiku'\\]"):
        RouteConfig(models=models, cost_weight=1e7, escalate_if={**second, "route": "claude-haiku"})
    openai_server.chat.push(Reply(text="So Tom has 84 pens."), model="gpt-4o-mini")
    anthropic_server.chat.push(Reply(text="The answer is 82."))
    with RoutedClient(openai_base_url=openai_server.base_url, openai_api_key="sk-test-0123456789",
                      anthropic_base_url=anthropic_server.base_url, anthropic_api_key="sk-ant-test-0123456789",
                      prices=prices, max_retries=0,
                      routes={"auto": RouteConfig(models=models, cost_weight=1e7, escalate_if=second)}) as client:
        meta = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": MATHS}]).routellm
    # the cheapest model answered, the second cheap model disagreed: escalated to the next model up
    assert meta["escalated_from"] == "gpt-4o-mini"
    assert meta["escalations"][0]["escalation_reason"] == \
        "agreement: the answer (84) disagrees with the claude-3-haiku-20240307 model (82)"
    assert len(anthropic_server.requests_to("/v1/messages")) >= 1
    assert "temperature" not in anthropic_server.requests_to("/v1/messages")[0].json


async def test_a_verifier_reviews_off_the_event_loop(openai_server):
    import threading

    seen = []

    class Watched(SlipVerifier):
        def score(self, prompts, answers):
            seen.append(threading.current_thread())
            return super().score(prompts, answers)

    client = AsyncRoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", openai_base_url=openai_server.base_url,
                               openai_api_key="sk-test-0123456789", prices=PRICES, max_retries=0,
                               routes={"auto": RouteConfig(router="length", threshold=0.3, escalate_if=Watched())})
    try:
        openai_server.chat.push(Reply(text="So the answer is 82."), model="gpt-4o-mini")
        reply = await client.create(model="auto", messages=[{"role": "user", "content": MATHS}])
        assert reply.routellm["escalations"][0]["escalation_reason"] == "verifier: P(strong better) 0.900 >= 0.600"
        assert seen and seen[0] is not threading.current_thread()  # the loop's thread never embedded
    finally:
        await client.aclose()


async def test_a_parallel_agreement_sends_both_cheap_calls_at_once(openai_server):
    import threading

    lock, both_in = threading.Lock(), threading.Event()
    arrivals, overlapped = [], []

    def answer(turn):  # the first cheap request waits until the second one has arrived
        if turn.model != "gpt-4o-mini":
            return None
        with lock:
            arrivals.append(turn)
            n = len(arrivals)
        if n == 1:
            overlapped.append(both_in.wait(timeout=10))
            return Reply(text="So Tom has 84 pens.")
        both_in.set()
        return Reply(text="The answer is 82.")

    openai_server.chat.responder = answer
    check = agreement(parallel=True)
    client = AsyncRoutedClient("openai:gpt-4o", "openai:gpt-4o-mini", openai_base_url=openai_server.base_url,
                               openai_api_key="sk-test-0123456789", prices=PRICES, max_retries=0,
                               routes={"auto": RouteConfig(router="length", threshold=0.3, escalate_if=[check])})
    try:
        reply = await client.create(model="auto", messages=[{"role": "user", "content": MATHS}])
    finally:
        await client.aclose()
    assert overlapped == [True]  # the second cheap call was in flight before the first answered
    assert reply.routellm["route"] == "strong" and "disagrees" in reply.routellm["escalations"][0]["escalation_reason"]
    assert sorted(e.status for e in client.store.entries()) == ["escalated", "ok", "ok"]


def test_a_verifier_the_guard_did_not_serve_is_not_used(verifier_folder, tmp_path):
    """``routellm adapt`` saves a verifier that lost to the prompt router as unserved: as
    ``escalate_if`` its folder adds no check (the prompt router alone decides), with a
    warning saying why; ``allow_unserved`` in the mapping form uses it anyway."""
    from routellm_integrations.verification import UnservedVerifierError, load_verifier

    v = load_verifier(verifier_folder)
    v.served, v.reason = False, "it did not beat the prompt router on your labels"
    v.save(tmp_path)
    with pytest.warns(RuntimeWarning, match="no verifier check: .*did not beat the prompt router"):
        assert RouteConfig(escalate_if=str(tmp_path)).checks == ()
    with pytest.warns(RuntimeWarning):
        assert [c.__name__ for c in escalation_checks(["final_answer", tmp_path])] == ["final_answer_missing"]
    forced = escalation_checks({"check": "verifier", "path": str(tmp_path), "allow_unserved": True})
    assert [c.__name__ for c in forced] == ["verifier"]
    with pytest.raises(UnservedVerifierError):  # asked for by name in code: the typed error
        verifier(str(tmp_path))


def test_a_second_call_that_cannot_be_admitted_leaves_the_answer_reviewable(openai_server):
    def wants_an_unknown_route(answer):  # a check of one's own asking for a route the policy refuses
        if "k" not in answer.samples:
            raise SampleNeeded("k", "nope")
        return None if answer.samples["k"] is None else "unexpected"

    openai_server.chat.push(Reply(text="So Tom has 84 pens."), model="gpt-4o-mini")
    with _client(openai_server, escalate_if=[wants_an_unknown_route]) as client:
        with pytest.warns(RuntimeWarning, match="second call .* was not made \\(InvalidRouteError"):
            meta = client.chat.completions.create(model="auto",
                                                  messages=[{"role": "user", "content": MATHS}]).routellm
        assert meta["route"] == "weak" and meta["status"] == "ok"
        assert [e.status for e in client.aclient.store.entries()] == ["ok"]
