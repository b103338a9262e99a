"""The decisions the plug-in holds for their calls' deployment hooks: bounded in count
and age, each call takes the decision made for it (identical concurrent requests, a
cancelled request's leftover), and a router or a store that fails never fails LiteLLM's
call: it goes to the fallback tier, recorded as ``not_scored`` with the reason."""

from __future__ import annotations

import asyncio
import time

import litellm
import numpy as np
import pytest
from llm_helpers import STRONG_MODEL, WEAK_MODEL, logged, models_called

from routellm_integrations.litellm import RouteLLMPlugin
from routellm_integrations.litellm import plugin as plugin_module
from routellm_integrations.litellm.plugin import _fingerprint as fingerprint
from routellm_integrations.litellm.plugin import _Pending
from routellm_integrations.routers.length import LengthRouter

ALIAS = "routellm-router"
pytestmark = pytest.mark.asyncio(loop_scope="session")


class Scripted(LengthRouter):
    """The length router, except: the scores queued in ``next_scores`` come first, and a
    text holding ``FAIL`` raises (a router that breaks at request time)."""

    name = "scripted"

    def __init__(self) -> None:
        super().__init__()
        self.next_scores: list[float] = []

    def _score(self, prompts: list[str]) -> np.ndarray:
        if any("FAIL" in p for p in prompts):
            raise RuntimeError("the scoring model fell over")
        if self.next_scores:
            return np.array([self.next_scores.pop(0) for _ in prompts], dtype=np.float64)
        return super()._score(prompts)


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def context(messages):
    from litellm.types.router import RoutingContext

    return RoutingContext(raw_messages=messages, structured_messages=messages, candidate_models=[])


def routed(model_list, plugin_cls=RouteLLMPlugin, **options):
    options = {"strong": "big", "weak": "small", "threshold": 0.5, **options}
    plugin = plugin_cls(model_list=model_list, **options)
    return plugin, litellm.Router(model_list=[*model_list, plugin.deployment()], num_retries=0)


# -- the store itself ------------------------------------------------------------------------
def test_a_decision_older_than_the_age_limit_is_let_go():
    now = [1000.0]
    pending = _Pending(max_entries=100, max_age_s=300.0, clock=lambda: now[0])
    pending.hold("k", {"route": "strong"})
    now[0] += 299.0
    pending.hold("other", {"route": "weak"})
    assert len(pending) == 2
    now[0] += 2.0  # the first is 301 s old, the second 2 s
    assert pending.take("k") is None
    assert len(pending) == 1 and pending.keys() == 1
    assert pending.take("other") == {"route": "weak"} and len(pending) == 0


def test_the_count_bound_covers_identical_requests():
    """One key holding many decisions counts each: the bound is on decisions, not keys."""
    pending = _Pending(max_entries=50, max_age_s=1e9)
    for i in range(120):
        pending.hold("same", {"route": "weak", "i": i})
    for i in range(30):
        pending.hold(f"k{i}", {"route": "strong", "i": i})
    assert len(pending) == 50 and pending.keys() == 31
    assert pending.take("same")["i"] == 100  # the oldest 70 of "same" were let go, oldest first


def test_a_call_takes_the_decision_of_the_route_it_went_on():
    pending = _Pending()
    pending.hold("k", {"route": "strong", "score": 0.9})
    pending.hold("k", {"route": "weak", "score": 0.1})
    assert pending.take("k", "weak") == {"route": "weak", "score": 0.1}
    assert pending.take("k", "weak") is None  # only a strong one waits
    assert pending.take("k", "strong") == {"route": "strong", "score": 0.9} and len(pending) == 0


async def test_20000_never_completed_requests_stay_bounded(model_list):
    plugin = RouteLLMPlugin(model_list=model_list, strong="big", weak="small", router="length",
                            strong_fraction=0.3)
    plugin._pending = _Pending()  # a store of its own, without earlier tests' leftovers
    for i in range(20_000):
        # half identical, half distinct: classified, never reaching a deployment hook
        await plugin.classify(context(ask("the same question" if i % 2 else f"question {i}")))
    assert len(plugin._pending) == plugin_module._MAX_PENDING
    assert plugin._pending.keys() <= plugin_module._MAX_PENDING // 2 + 1
    assert len(plugin.policy._turns) <= 10_000  # the policy's own memory of turns is bounded too


# -- in a real litellm.Router -------------------------------------------------------------------
class _HoldsFirst(RouteLLMPlugin):
    """Its first classification waits after deciding: the second identical request,
    decided later, reaches its deployment hook first."""

    first = True

    async def classify(self, ctx):
        route = await super().classify(ctx)
        if type(self).first:
            type(self).first = False
            await asyncio.sleep(0.3)
        return route


async def test_identical_concurrent_requests_each_get_their_own_decision(model_list, openai_server, recorder):
    scripted = Scripted()
    plugin, router = routed(model_list, _HoldsFirst, router=scripted)
    scripted.next_scores = [0.9, 0.1]  # same messages: the first decided strong, the second weak
    text = "identical ask"
    await asyncio.gather(router.acompletion(model=ALIAS, messages=ask(text)),
                         router.acompletion(model=ALIAS, messages=ask(text)))
    assert models_called(openai_server) == [WEAK_MODEL, STRONG_MODEL]  # the second one went first
    events = await logged(recorder, [text, text])
    by_model = {e["model"]: e["routellm"] for e in events}
    assert by_model[WEAK_MODEL]["route"] == "weak" and by_model[WEAK_MODEL]["score"] == pytest.approx(0.1)
    assert by_model[STRONG_MODEL]["route"] == "strong" and by_model[STRONG_MODEL]["score"] == pytest.approx(0.9)
    assert plugin._pending.take(fingerprint(ask(text))) is None  # nothing left behind


class _Blocks(RouteLLMPlugin):
    """Decides, then waits at ``gate`` before LiteLLM gets the tier: the request can be
    cancelled between its classification and its call."""

    gate: asyncio.Event
    decided: asyncio.Event

    async def classify(self, ctx):
        route = await super().classify(ctx)
        self.decided.set()
        await self.gate.wait()
        return route


async def test_a_cancelled_requests_decision_is_not_taken_by_a_later_one(model_list, openai_server, recorder):
    scripted = Scripted()
    plugin, router = routed(model_list, _Blocks, router=scripted)
    plugin.gate, plugin.decided = asyncio.Event(), asyncio.Event()
    text = "asked twice"
    scripted.next_scores = [0.95]  # the cancelled request's decision: strong
    task = asyncio.create_task(router.acompletion(model=ALIAS, messages=ask(text)))
    await asyncio.wait_for(plugin.decided.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert models_called(openai_server) == []
    plugin.gate.set()
    scripted.next_scores = [0.05]  # the same messages later: weak
    await router.acompletion(model=ALIAS, messages=ask(text))
    assert models_called(openai_server) == [WEAK_MODEL]
    [event] = await logged(recorder, [text])
    assert event["routellm"]["route"] == "weak" and event["routellm"]["score"] == pytest.approx(0.05)
    # the leftover waits until the age limit lets it go
    plugin._pending.clock = lambda: time.monotonic() + plugin_module._MAX_PENDING_AGE_S + 1
    assert plugin._pending.take(fingerprint(ask(text))) is None and len(plugin._pending) == 0
    plugin._pending.clock = time.monotonic


async def test_a_failing_router_sends_the_call_to_the_fallback_and_says_why(model_list, openai_server, recorder):
    _plugin, router = routed(model_list, router=Scripted(), threshold=0.0)  # threshold 0: any score is strong
    text = "FAIL " + "x" * 900
    reply = await router.acompletion(model=ALIAS, messages=ask(text))
    assert reply.choices[0].message.content
    assert models_called(openai_server) == [WEAK_MODEL]
    [event] = await logged(recorder, [text])
    record = event["routellm"]
    assert event["kind"] == "success" and record["route"] == "weak" and record["model_group"] == "small"
    assert record["step_policy"] == "not_scored" and record.get("score") is None
    assert "RuntimeError" in record["note"] and "the scoring model fell over" in record["note"]


async def test_a_classifier_litellm_times_out_is_recorded_as_not_scored(model_list, openai_server, recorder):
    class Slow(RouteLLMPlugin):
        async def classify(self, ctx):
            await asyncio.sleep(1.0)
            return await super().classify(ctx)

    plugin = Slow(model_list=model_list, strong="big", weak="small", router="length", threshold=0.0)
    marker = plugin.deployment()
    marker["litellm_params"]["complexity_router_config"]["classifier_plugin_timeout_ms"] = 50
    router = litellm.Router(model_list=[*model_list, marker], num_retries=0)
    text = "slow " + "y" * 900
    await router.acompletion(model=ALIAS, messages=ask(text))
    assert models_called(openai_server) == [WEAK_MODEL]  # LiteLLM's fallback_tier
    [event] = await logged(recorder, [text])
    record = event["routellm"]
    assert record["route"] == "weak" and record["step_policy"] == "not_scored"
    assert "classifier_fallback" in record["note"] and "timeout" in record["note"]


async def test_an_unavailable_store_loses_a_checkpoint_not_the_call(model_list, openai_server, recorder,
                                                                    tmp_path, caplog):
    db = tmp_path / "routing.db"
    plugin, router = routed(model_list, router="length", threshold=None, strong_fraction=0.5,
                            store=f"sqlite:///{db}", online_key="litellm-down", checkpoint_every=1)
    await router.acompletion(model=ALIAS, messages=ask("before the store goes"))
    # the store goes: its file is gone and nothing can be opened at its path
    for path in tmp_path.glob("routing.db*"):
        path.unlink()
    db.mkdir()
    texts = [f"{i} " + "s" * (200 * i) for i in range(4)]
    for t in texts:
        await router.acompletion(model=ALIAS, messages=ask(t))
    assert len(models_called(openai_server)) == 5
    events = await logged(recorder, texts)
    assert len(events) == 4
    for e in events:
        assert e["kind"] == "success" and e["routellm"]["score"] is not None  # scored, not a fallback
        assert "while checkpointing" in e["routellm"]["checkpoint_error"]
    assert plugin.policy.online.state_dict()["seen"] == 5  # the controller saw every call
    assert "while checkpointing the online controller" in caplog.text and str(tmp_path) not in caplog.text


async def test_a_decision_that_checkpoints_is_made_off_the_event_loop(model_list, openai_server, tmp_path):
    """A store can hang (it waits out its retries): the decision that writes the
    checkpoint runs in a worker thread, even for a router that scores inline."""
    import threading

    plugin, router = routed(model_list, router="length", threshold=None, strong_fraction=0.5,
                            store=f"sqlite:///{tmp_path / 'routing.db'}", online_key="litellm-thread",
                            checkpoint_every=2)
    threads = []
    checkpoint = plugin._checkpoint
    plugin._checkpoint = lambda: (threads.append(threading.current_thread()), checkpoint())
    for i in range(4):
        await router.acompletion(model=ALIAS, messages=ask(f"{i} " + "t" * 300 * i))
    assert len(threads) == 2 and threading.main_thread() not in threads
    assert plugin.checkpoint_error is None


async def test_a_call_whose_messages_changed_after_classifying_says_so(model_list):
    """A guardrail rewrote the messages between the classifier and the call: the decision
    waits under the old messages; the call's record says it was not found, not a wrong one."""
    plugin = RouteLLMPlugin(model_list=model_list, strong="big", weak="small", router="length", threshold=0.5)
    plugin._pending = _Pending()
    assert await plugin.classify(context(ask("x" * 900))) == "strong"
    routing = {"router_model_name": ALIAS, "routed_model": "big", "cause": "classifier_plugin", "tier": "strong"}
    kwargs = {"messages": ask("[redacted]"), "metadata": {"routing_decision": routing}}
    await plugin.async_pre_call_deployment_hook(kwargs, "acompletion")
    record = kwargs["metadata"]["routellm"]
    assert record["step_policy"] == "decision_not_found" and record["route"] == "strong"
    assert record["model_group"] == "big" and record["score"] is None and "rewritten" in record["note"]
    assert len(plugin._pending) == 1  # the decision for the old messages waits until let go by age
