"""Our routers inside LiteLLM: a classifier plug-in for LiteLLM's complexity router.

Which hook, and why (litellm 1.110): a ``Router`` sends a request for a model group
whose deployment is ``auto_router/complexity_router`` through that strategy before it
picks a deployment, and the strategy, with ``classifier_type: "custom"``, asks a
``ClassifierPlugin`` (``async classify(context) -> tier name``) which tier the request
is; ``tiers`` maps each tier to a model group. That is LiteLLM's documented way to pick a
model group per request, the same in the SDK (``Router(model_list=[...])``) and the proxy
(``config.yaml``, ``classifier_plugin: module.instance``). A ``CustomLogger``'s
``async_pre_routing_hook`` is not called for callbacks in this version, and
``Router(plugins=[...])`` only narrows the deployments inside one group. So our tiers
are the route keys (``strong``/``weak``, or N model keys) and :meth:`RouteLLMPlugin.classify`
returns the key :class:`~routellm_integrations.policy.RoutingPolicy` decided.

The plug-in's marker sets ``max_tokens_from_tier_model: false``: the complexity
router's default replaces each request's ``max_tokens`` with the routed model's output
ceiling, and a routed request should reach its model as the caller sent it.

The decision (route, score, threshold, scored pair, router) goes into the call's
metadata as ``metadata["routellm"]``, so LiteLLM's logging payload
(``kwargs["litellm_params"]["metadata"]``) and every ``CustomLogger`` success/failure
callback show it: the plug-in is also a ``CustomLogger`` whose
``async_pre_call_deployment_hook`` (called with the request's kwargs once the model group
is chosen) writes the decision the classifier made for these messages (LiteLLM runs the
classifier in a task of its own, over a copy of the metadata, so a decision waits, keyed
by the request's messages, for its call's hook; of identical requests, a call takes a
decision for the tier LiteLLM sent it on. Decisions never collected, of requests LiteLLM
dropped after classifying, are let go by age and count: :class:`_Pending`). LiteLLM's own
``routing_decision`` (tier, routed model group) and its ``x-litellm-complexity-router-tier``
response header name the route too, and a whole (not streamed) response carries ours:
``x-routellm-route``, ``x-routellm-model-group``, ``x-routellm-score`` (the proxy sends
them prefixed ``llm_provider-``, as it does every deployment hook's headers).

Budgets, spend and keys stay LiteLLM's: nothing is settled in our ledger. The policy's
online share controller observes every decision (so a held ``strong_fraction`` holds
over the requests LiteLLM routes), checkpointed in ``store`` when one is given; a hot
swap (:meth:`RouteLLMPlugin.swap_router`) keeps the share.

LiteLLM runs pre-routing strategies on its async path only (``Router.acompletion``, the
proxy); ``Router.completion`` on the alias is refused by LiteLLM itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..costs import PriceTable, Usage
from ..decision import RoutingDecision
from ..errors import InvalidPromptError
from ..extras import require
from ..policy import RoutingPolicy, SwapReport
from .config import (
    DEFAULT_MODEL_NAME,
    Group,
    LiteLLMConfigError,
    LiteLLMRouting,
    model_groups,
    proxy_deployment,
    proxy_marker,
    read_proxy_config,
)

_litellm = require("litellm", "litellm.integrations.custom_logger", feature="the LiteLLM routing plug-in",
                   extra="litellm")
CustomLogger = _litellm[1].CustomLogger

__all__ = ["DEFAULT_MODEL_NAME", "METADATA_KEY", "Group", "LiteLLMConfigError", "RouteLLMPlugin", "model_groups"]

log = logging.getLogger(__name__)

#: the key of the call's metadata the decision is written under
METADATA_KEY = "routellm"
#: decisions waiting for their call's deployment hook: a request LiteLLM drops after
#: classifying it (cancelled, a guardrail rewrote its messages, it failed before a
#: deployment was picked) never collects its decision, so the store is bounded in count
#: (the oldest decisions are let go past this many, over all messages) and in age (a
#: decision whose call has not reached its deployment hook this long after classifying
#: never will: LiteLLM goes from the classifier to the hook in milliseconds)
_MAX_PENDING = 10_000
_MAX_PENDING_AGE_S = 300.0
#: N-way expected costs: the output a call is expected to write, and the tokens a chat
#: format adds per message (as the routed client's lifecycle estimates them)
_EXPECTED_OUTPUT_TOKENS = 400
_PER_MESSAGE_TOKENS = 8
#: per alias, the decisions waiting for their call's deployment hook, by messages
_PENDING: dict[str, _Pending] = {}
_PENDING_LOCK = threading.Lock()


def _fingerprint(messages: Any) -> str:
    """The key a decision waits under until its call's deployment hook takes it: the
    request's messages, as sent (LiteLLM hands the classifier and the hook copies)."""
    try:
        text = json.dumps(messages, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(messages)
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


class _Pending:
    """Decisions waiting for their call's deployment hook, keyed by the request's messages,
    bounded in count (``max_entries`` over all keys: 20,000 identical requests are 20,000
    entries, not one key) and in age (``max_age_s``, by ``clock``). Oldest first: a
    decision is let go by age or count in the order it was made.

    Identical concurrent requests wait under one key; :meth:`take` hands each call the
    oldest decision *for the route LiteLLM sent it on*, so a call's record always names
    the route it took. Two waiting decisions of one route for the same messages differ
    at most in the threshold then in force (the score of the same text is the same), so
    which of them a call takes, even one left by a cancelled request, says the same."""

    def __init__(self, max_entries: int = _MAX_PENDING, max_age_s: float = _MAX_PENDING_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self.clock = clock
        self._lock = threading.Lock()
        self._seq = 0
        #: seq -> (key, made at, record), in the order made
        self._entries: OrderedDict[int, tuple[str, float, dict[str, Any]]] = OrderedDict()
        #: key -> the seqs waiting under it, in the order made
        self._by_key: dict[str, deque[int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> int:
        """How many distinct messages have a decision waiting."""
        return len(self._by_key)

    def hold(self, key: str, record: dict[str, Any]) -> None:
        with self._lock:
            now = self.clock()
            self._seq += 1
            self._entries[self._seq] = (key, now, record)
            self._by_key.setdefault(key, deque()).append(self._seq)
            self._expire(now)

    def take(self, key: str, route: str | None = None) -> dict[str, Any] | None:
        """The oldest waiting decision for ``key`` (of ``route``, when given), removed."""
        with self._lock:
            self._expire(self.clock())
            waiting = self._by_key.get(key)
            if not waiting:
                return None
            for seq in waiting:
                record = self._entries[seq][2]
                if route is None or record.get("route") == route:
                    waiting.remove(seq)
                    if not waiting:
                        del self._by_key[key]
                    del self._entries[seq]
                    return record
            return None

    def _expire(self, now: float) -> None:
        while self._entries:
            seq, (key, made, _record) = next(iter(self._entries.items()))
            if len(self._entries) <= self.max_entries and now - made <= self.max_age_s:
                return
            del self._entries[seq]
            waiting = self._by_key[key]
            waiting.remove(seq)  # the oldest of its key: at the left, found at once
            if not waiting:
                del self._by_key[key]


def _served(record: dict[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` naming the group this attempt goes to when LiteLLM sent the call
    elsewhere after the decision (a fallback group, a tier rule of its own): the record
    says both, never only a group the call did not go to."""
    served = metadata.get("deployment_model_name")
    if not isinstance(served, str) or served == record.get("model_group"):
        return {k: v for k, v in record.items() if k != "served_by_model_group"}
    return {**record, "served_by_model_group": served}


class RouteLLMPlugin(CustomLogger):
    """Route a LiteLLM model alias with one of our routers.

    Build it with the model groups to route between and the routing options
    (:class:`~.config.LiteLLMRouting`: ``router``, ``threshold``/``strong_fraction`` or
    ``models`` with ``cost_weight``..., ``route_on``, ``store``), and the ``model_list`` it
    routes in, which is checked here: a typed error names any problem before LiteLLM
    starts. Then put :meth:`deployment` in the ``Router``'s ``model_list`` (the SDK) or
    write the same marker in ``config.yaml`` and build the plug-in with
    :meth:`from_proxy_config` (the proxy); users call the alias (``routellm-router``).
    """

    def __init__(self, *, model_list: Sequence[Mapping[str, Any]], prices: PriceTable | None = None,
                 **options: Any) -> None:
        super().__init__()
        self.config = options.pop("config", None) or LiteLLMRouting(**options)
        self.groups, self.nway = self.config.resolve(model_list)
        #: route key -> model group (the complexity router's tiers)
        self.tiers = {key: group.name for key, group in self.groups.items()}
        names = {key: group.model for key, group in self.groups.items()}
        self.policy: RoutingPolicy = self.config.make_policy(
            list(self.groups), self.nway, default_names=names, store=self.config.store,
            online_key=self.config.online_key, checkpoint_every=self.config.checkpoint_every)
        if not self.nway:
            self.policy.score_pair(names["strong"], names["weak"])
        self.prices = prices
        # load and warm the router now, when the Router or the proxy starts: a router that
        # cannot load fails start-up, and the first request's scoring stays well inside
        # LiteLLM's classifier timeout (past it LiteLLM routes to the fallback tier itself).
        # A dry run: nothing is observed or remembered.
        costs = self._expected_costs(100, 1) if self.policy.chooser.needs_costs else None
        self.policy.decide("warm-up", dry_run=True, costs=costs)
        # shared by the plug-ins of one alias: the proxy may import the module that builds
        # the plug-in once for the classifier and once more for ``callbacks:``
        with _PENDING_LOCK:
            self._pending = _PENDING.setdefault(self.model_name, _Pending())
        # a store that fails while the online controller is checkpointed loses that
        # checkpoint (the next one writes the state again), never the request's decision
        self.checkpoint_error: str | None = None
        self._checkpoint = self.policy.checkpoint
        self.policy.checkpoint = self._guarded_checkpoint  # type: ignore[method-assign]

    def __deepcopy__(self, memo: dict[int, Any]) -> RouteLLMPlugin:
        """Itself: LiteLLM deep-copies ``model_list``, and the plug-in in its marker is a live
        object (one policy, one online controller) that every copy must share."""
        return self

    def __copy__(self) -> RouteLLMPlugin:
        return self

    # -- building ------------------------------------------------------------------------
    @classmethod
    def from_proxy_config(cls, path: str | Path, *, model_name: str | None = None, **options: Any) -> RouteLLMPlugin:
        """The plug-in a LiteLLM proxy ``config.yaml`` names: its routes are the tiers of
        the ``auto_router/complexity_router`` deployment with ``classifier_type: custom``
        (``strong``/``weak`` -> a pair, else N models), checked against the file's
        ``model_list``; ``options`` are the routing options (``router``, ``strong_fraction``...)."""
        config = read_proxy_config(path)
        name, tiers = proxy_marker(config, model_name)
        if set(tiers) == {"strong", "weak"}:
            routes: dict[str, Any] = {"strong": tiers["strong"], "weak": tiers["weak"]}
        else:
            routes = {"models": tiers}
        return cls(model_list=config["model_list"], model_name=name, **routes, **options)

    @property
    def model_name(self) -> str:
        return self.config.model_name

    @property
    def fallback(self) -> str:
        """The route a request takes when there is nothing to score: a pair's weak model,
        N models' cheapest (by the price table; the first key when no price is known)."""
        if not self.nway:
            return "weak"
        costs = self._expected_costs(1000, 1)
        return min(self.groups, key=lambda k: (costs.get(k, math.inf), list(self.groups).index(k)))

    def _marker(self) -> dict[str, Any]:
        routes: dict[str, Any] = {"models": self.tiers} if self.nway else {"strong": self.tiers["strong"],
                                                                           "weak": self.tiers["weak"]}
        return proxy_deployment(**routes, model_name=self.model_name, classifier_plugin=self, fallback=self.fallback)

    def complexity_router_config(self) -> dict[str, Any]:
        """The ``complexity_router_config`` of the marker deployment: this plug-in as the
        custom classifier, one tier per route key, each tier's model group."""
        return self._marker()["litellm_params"]["complexity_router_config"]

    def deployment(self) -> dict[str, Any]:
        """The ``model_list`` entry that makes :attr:`model_name` routed by this plug-in
        (an ``auto_router/complexity_router`` marker, not a model): :func:`~.config.proxy_deployment`
        with this plug-in as the classifier, the entry a proxy's ``config.yaml`` writes with
        ``classifier_plugin: module.instance``. Also registers the plug-in in
        ``litellm.callbacks`` so its decisions reach the call's metadata."""
        self.install()
        return self._marker()

    def install(self) -> None:
        """Register in ``litellm.callbacks`` (once): the deployment hook that writes each
        decision into its call's metadata runs from there."""
        import litellm

        if not any(cb is self for cb in litellm.callbacks):
            litellm.callbacks.append(self)

    def swap_router(self, router: Any, *, prompts: Sequence[str] | None = None) -> SwapReport:
        """Serve another router from the next request on, keeping the strong share
        (:meth:`~routellm_integrations.policy.RoutingPolicy.swap_router`)."""
        return self.policy.swap_router(router, prompts=prompts)

    # -- the classifier: LiteLLM's complexity router asks it for a tier ---------------------
    async def classify(self, context: Any) -> str:
        """The route key (the tier) our policy decides for this request. Scoring that is
        not cheap runs off the event loop. A request with no text to route on goes to the
        fallback route, recorded as such. Any other failure (the router raises, whatever
        the exception) is logged and the request goes to the fallback route, recorded as
        ``step_policy: not_scored`` with the error as ``note``: LiteLLM would send it to
        its ``fallback_tier`` anyway on an exception, but without our record."""
        self.install()
        messages = list(getattr(context, "structured_messages", None) or ())
        raw = getattr(context, "raw_messages", None) or messages
        try:
            decision = await self._decide(messages)
            record = self._record(decision)
        except InvalidPromptError as exc:
            record = self._unscored("no_text", str(exc))
        except Exception as exc:  # noqa: BLE001 - a router can fail in any way; the call must still go
            error = f"{type(exc).__name__}: {exc}"
            log.warning("routellm: routing failed (%s); the request goes to %r", error, self.fallback)
            record = self._unscored("not_scored", f"routing failed: {error}")
            record["error"] = error
        if self.checkpoint_error is not None:
            record["checkpoint_error"] = self.checkpoint_error
        self._hold(_fingerprint(raw), record)
        return record["route"]

    def _unscored(self, reason: str, note: str) -> dict[str, Any]:
        """The fallback route's record when nothing was scored (``reason``: ``no_text``,
        ``not_scored``), admitted by the policy like any decision when it can be."""
        try:
            costs = self._expected_costs(0, 1) if self.policy.chooser.needs_costs else None
            return self._record(self.policy.admit(self.fallback, reason=reason, costs=costs).decision, note=note)
        except Exception as exc:  # noqa: BLE001 - the record of a failure must not fail in turn
            return {"route": self.fallback, "model_group": self.tiers[self.fallback], "score": None,
                    "router": self.policy.router_name, "step_policy": reason,
                    "note": f"{note}; admitting it failed too ({type(exc).__name__})"}

    def _checkpoint_due(self) -> bool:
        """Whether the next decision may write the online controller's checkpoint: that
        decision is made off the event loop whatever its router, since a store can be
        slow or hang (a down SQLite file or Redis waits out its retries) and the loop
        serves every other request meanwhile."""
        policy = self.policy
        return policy.store is not None and policy._since_checkpoint + 1 >= policy.checkpoint_every

    def _guarded_checkpoint(self) -> None:
        """The policy's checkpoint, a failing store logged instead of raised: the decision
        it was called for stands, and the next checkpoint writes the state again.
        ``checkpoint_error`` names the last failure (cleared by a good checkpoint) and goes
        into the records meanwhile. The store's message is not logged: a store URL may
        hold a password."""
        try:
            self._checkpoint()
        except Exception as exc:  # noqa: BLE001 - a store can fail in any way; the call must still go
            self.checkpoint_error = f"{type(exc).__name__} while checkpointing the online controller"
            log.warning("routellm: %s (key %r); its decisions stand, the next checkpoint retries",
                        self.checkpoint_error, self.config.online_key)
        else:
            self.checkpoint_error = None

    async def _decide(self, messages: list[Any]) -> RoutingDecision:
        from ..client.routed import request_turn

        turn = request_turn(messages, route_on=self.config.route_on)
        costs = self._expected_costs(turn.input_chars, turn.messages) if self.policy.chooser.needs_costs else None
        if not turn.has_text:
            return self.policy.admit(self.fallback, reason="no_text", costs=costs).decision
        # the turn's key: a tool-calling step that continues a user turn keeps the turn's
        # route (steps="per_turn"), as in every integration
        options = {"turn_key": turn.key, "followup": turn.followup, "costs": costs}
        if self.policy.scores_inline(turn.text) and not self._checkpoint_due():
            ticket = self.policy.decide(turn.text, **options)
        else:
            ticket = await asyncio.to_thread(self.policy.decide, turn.text, **options)
        return ticket.decision

    def _expected_costs(self, input_chars: int, messages: int) -> dict[str, float]:
        """Each model's expected cost (USD) for a call this size, from the price table
        (a model it has no price for costs 0: it is never avoided for its price)."""
        from ..routing.call import estimate_tokens

        if self.prices is None:
            self.prices = PriceTable.default()
        usage = Usage(input_tokens=estimate_tokens(input_chars) + _PER_MESSAGE_TOKENS * messages,
                      output_tokens=_EXPECTED_OUTPUT_TOKENS)
        out = {}
        for key, group in self.groups.items():
            cost = self.prices.cost(group.model, usage, group.provider, warn=False)
            out[key] = float(cost) if cost is not None and math.isfinite(cost) else 0.0
        return out

    def _record(self, decision: RoutingDecision, note: str | None = None) -> dict[str, Any]:
        record = decision.model_dump(mode="json", exclude_none=True)
        record["model_group"] = self.tiers[decision.route]
        if note:
            record["note"] = note
        return record

    def _hold(self, key: str, record: dict[str, Any]) -> None:
        self._pending.hold(key, record)

    def _take(self, key: str, route: str | None = None) -> dict[str, Any] | None:
        return self._pending.take(key, route)

    # -- the logger side: the decision into the call's metadata -----------------------------
    async def async_pre_call_deployment_hook(self, kwargs: dict[str, Any], call_type: Any) -> dict[str, Any] | None:
        """Write the decision made for this request's messages into its metadata (the
        model group is chosen by now); other requests pass untouched."""
        key = "litellm_metadata" if isinstance(kwargs.get("litellm_metadata"), dict) else "metadata"
        metadata = kwargs.get(key)
        written = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
        if isinstance(written, dict):  # a retry or fallback attempt of a call already recorded
            metadata[METADATA_KEY] = _served(written, metadata)  # type: ignore[index]
            return kwargs
        routing = metadata.get("routing_decision") if isinstance(metadata, dict) else None
        ours = isinstance(routing, Mapping) and routing.get("router_model_name") == self.model_name
        record = None
        if not ours or routing.get("cause") == "classifier_plugin":  # type: ignore[union-attr]
            # the tier LiteLLM sent the call on picks among identical requests' decisions
            tier = routing.get("tier") if ours else None  # type: ignore[union-attr]
            record = self._take(_fingerprint(kwargs.get("messages")), tier if isinstance(tier, str) else None)
        if record is None:
            record = self._unasked(metadata)
            if record is None:
                return None
        if not isinstance(metadata, dict):
            metadata = kwargs[key] = {}
        metadata[METADATA_KEY] = _served(record, metadata)
        return kwargs

    async def async_post_call_success_deployment_hook(self, request_data: dict[str, Any], response: Any,
                                                      call_type: Any) -> Any:
        """Name the route in the response's headers (``x-routellm-route``,
        ``x-routellm-model-group``, ``x-routellm-score``), through LiteLLM's
        ``_hidden_params["additional_headers"]``, which the proxy sends as HTTP headers
        (LiteLLM 1.110 prefixes them: ``llm_provider-x-routellm-route``...). Whole
        responses only: a stream's headers are sent before this hook runs."""
        metadata = request_data.get("litellm_metadata") or request_data.get("metadata")
        record = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
        hidden = getattr(response, "_hidden_params", None)
        if not isinstance(record, Mapping) or not isinstance(hidden, dict):
            return None
        headers = hidden.setdefault("additional_headers", {})
        if isinstance(headers, dict):
            headers["x-routellm-route"] = str(record.get("route"))
            headers["x-routellm-model-group"] = str(record.get("model_group"))
            if record.get("score") is not None:
                headers["x-routellm-score"] = f"{record['score']:.6f}"
        return None

    def _unasked(self, metadata: Any) -> dict[str, Any] | None:
        """The record of a call to our alias that LiteLLM routed without our decision: it
        sends a request with no text straight to the default model group, and one whose
        classifier timed out or failed to its ``fallback_tier``. Which group it went to
        and why (LiteLLM's cause and failure reason), so no call of the alias goes
        unrecorded."""
        routing = metadata.get("routing_decision") if isinstance(metadata, dict) else None
        if not isinstance(routing, Mapping) or routing.get("router_model_name") != self.model_name:
            return None
        group = routing.get("routed_model")
        route = next((k for k, g in self.tiers.items() if g == group), None)
        if routing.get("cause") == "classifier_plugin":
            # we decided, but no decision waits for these messages: they changed between the
            # classifier and the call (a guardrail or hook rewrote them), or it was let go
            return {"route": route, "model_group": group, "score": None, "router": self.policy.router_name,
                    "step_policy": "decision_not_found", "note": "the classifier routed this request, but no "
                    "decision waits for its messages (rewritten after classifying, or older than "
                    f"{_MAX_PENDING_AGE_S:.0f} s)"}
        why = f"cause: {routing.get('cause')!r}"
        if routing.get("classifier_failure_reason"):
            why += f", classifier failure: {routing.get('classifier_failure_reason')!r}"
        return {"route": route, "model_group": group, "score": None, "router": self.policy.router_name,
                "step_policy": "not_scored", "note": f"LiteLLM routed this request without our decision ({why})"}

