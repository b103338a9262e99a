"""The life of one routed call, in one place for every integration.

    calls = CallLifecycle(policy, strong=Backend("strong", "gpt-4o", "openai"),
                          weak=Backend("weak", "gpt-4o-mini", "openai"))
    with calls.begin(turn_of([("user", "Prove Fermat's little theorem")])) as call:
        reply = backend_for(call.route).invoke(...)
        record = call.finish(reply.usage, model=reply.model, text=reply.text)

``begin`` decides and reserves the most the call can cost; ``finish`` prices the call
once, settles the budget, writes the call to the ledger (the lifecycle's state store, in
memory by default: the one ledger; ``CallLifecycle.ledger`` is a view of it) and returns
the one :class:`CallRecord` that adapters stamp into their metadata, events and traces. The handle settles on
**any** exit: an exception (``fail``), ``CancelledError`` (``cancelled``), a generator
closed by a consumer that stopped reading (``abandoned``), a cache hit (``cached``),
or a handle dropped unsettled (garbage collection releases its reservation). Text a
stream delivered before it was cut is charged as estimated tokens: the provider bills
what it sent.

Routing among N models: ``CallLifecycle(policy, backends={key: Backend(key, model,
provider), ...})`` over a policy with ``models=``; every call carries each model's
expected cost (its price table price for the turn's input and the model's expected
output length, learnt from the calls it answered). **Escalation**: when an answer fails
a check, ``call.escalate(reason, usage=...)`` settles it as ``escalated`` (billed, in
the ledger and the budget) and returns a new handle on the next model up; a cascade's
savings are counted once, on its last call.

**A store that is down at settlement** (:class:`~routellm_integrations.errors.StoreUnavailableError`,
a reset store included): the call already ran and is billed, so its settlement and ledger
entry go to the store's write-ahead file (:mod:`routellm_integrations.state.wal`), logged and
counted, and are replayed into the store exactly once when it answers again; the call's
record is returned as usual (its ``budget`` is the state at admission).
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..budgets import Budget
from ..costs import LedgerStatus, PriceTable, Usage
from ..state import CostLedger
from ..decision import RoutingDecision
from ..errors import (BudgetConfigError, BudgetExceeded, InvalidPromptError, InvalidRouteError, PriceTableError,
                      RouteLLMError, StoreUnavailableError)
from ..policy import RoutingPolicy, Ticket
from ..state.base import LedgerEntry
from ..state.wal import has_pending, replay, write_ahead
from .turn import Turn, clean_text

__all__ = ["Backend", "CallLifecycle", "CallRecord", "CallStatus", "RoutedCall", "estimate_tokens"]

CallStatus = LedgerStatus
Reason = Literal["scored", "forced", "no_text", "escalated", "second_sample"]
#: output tokens a model is expected to write before any call of it has been seen
DEFAULT_EXPECTED_OUTPUT_TOKENS = 400
#: weight of the newest call in a model's running mean of output tokens
_EXPECTED_OUTPUT_RATE = 0.1
_PER_MESSAGE_TOKENS = 8  # role markers and separators a chat format adds per message


def estimate_tokens(chars: int) -> int:
    """A typical token count for ``chars`` characters of text (~4 per token for English
    with BPE tokenizers); used only when a provider reported no usage."""
    return int(math.ceil(max(0, chars) / 4))


@dataclass(frozen=True)
class Backend:
    """The model a route calls, as the price table and the reports name it."""

    route: str
    model: str
    provider: str | None = None


class CallRecord(BaseModel):
    """The one report of a routed call: what was decided, what it cost, how it ended."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    route: str
    model: str
    provider: str | None
    score: float | None
    threshold: float | None
    router: str
    latency_ms: float | None
    reason: Reason
    forced: bool
    step_policy: str | None
    scope: str | None
    status: CallStatus | Literal["in_flight"]
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: float | None = None
    #: what the call would have cost on the strong model (for savings); None when unpriced
    strong_cost_usd: float | None = None
    estimated: bool = False
    usage_error: str | None = None
    budget: dict[str, Any] | None = None
    strong_model: str
    strong_provider: str | None
    weak_model: str | None = None
    weak_provider: str | None = None
    #: N-way: the candidates' keys, their predicted qualities and expected costs, the weight
    models: list[str] | None = None
    qualities: dict[str, float] | None = None
    expected_costs_usd: dict[str, float] | None = None
    cost_weight: float | None = None
    #: the route whose answer failed a check, when this call is an escalation
    escalated_from: str | None = None
    #: why this call's answer was escalated (status ``escalated``); on the call that took
    #: over (``escalated_from`` set), why the answer below it was: the record a caller
    #: reads (a reply's metadata) says why it is not the cheap model's
    escalation_reason: str | None = None
    #: the check this call's answer failed when the budget could not take the call up: the
    #: answer was kept (status ``ok``), not escalated
    escalation_refused: str | None = None
    #: a second cheap answer (reason ``second_sample``, for an agreement check): the call it checked
    sample_of: str | None = None
    #: the second answers this call's checks asked for and did not get, by the check's key, and
    #: why (not admitted by the budget, failed, cancelled): those checks gave no verdict
    no_verdict: dict[str, str] | None = None
    #: the strong-call share the threshold is held at (the default when none is given)
    strong_fraction: float | None = None
    #: [strong, weak] as the router scored them, and where that pair came from
    scored_pair: list[str] | None = None
    scored_pair_source: str | None = None

    def metadata(self) -> dict[str, Any]:
        """The plain dict adapters stamp (``response_metadata["routellm"]``, events)."""
        return self.model_dump()


class _Settlement:
    """What must happen exactly once for a call; held apart from the handle so a
    garbage-collected handle can still release its reservation."""

    def __init__(self, lifecycle: "CallLifecycle", ticket: Ticket) -> None:
        self.lifecycle, self.ticket = lifecycle, ticket
        self.lock = threading.Lock()
        self.record: CallRecord | None = None

    def release_unsettled(self) -> None:
        """Finalizer: the handle was dropped without settling. The garbage collector may
        run this inside any code, even while this thread holds the budget's lock, so the
        release is handed to a worker thread instead of taking that lock here."""
        _ORPHANS.put(self)
        _start_releaser()

    def release(self) -> None:
        with self.lock:
            if self.record is not None:
                return
        self.lifecycle.policy.settle(self.ticket, None, succeeded=False)


#: reservations of dropped handles; SimpleQueue.put is safe from finalizers
_ORPHANS: "queue.SimpleQueue[_Settlement]" = queue.SimpleQueue()
_RELEASER: list[threading.Thread] = []
_RELEASER_LOCK = threading.Lock()


def _release_forever() -> None:
    while True:
        settlement = _ORPHANS.get()
        try:
            settlement.release()
        except Exception as exc:  # noqa: BLE001 - a safety net must keep running
            warnings.warn(f"routellm: releasing a dropped call's reservation failed: {exc}", RuntimeWarning)


def _start_releaser() -> None:
    if _RELEASER and _RELEASER[0].is_alive():
        return
    if not _RELEASER_LOCK.acquire(blocking=False):  # another thread is starting it
        return
    try:
        if not (_RELEASER and _RELEASER[0].is_alive()):
            thread = threading.Thread(target=_release_forever, name="routellm-release", daemon=True)
            thread.start()
            _RELEASER[:] = [thread]
    finally:
        _RELEASER_LOCK.release()


class RoutedCall:
    """A routed call in flight. Use it as a (sync or async) context manager, or call
    exactly one of :meth:`finish`, :meth:`fail`, :meth:`cancel`, :meth:`abandon`,
    :meth:`cached`; later calls return the first record unchanged."""

    def __init__(self, lifecycle: "CallLifecycle", ticket: Ticket, turn: Turn, reason: Reason,
                 scope: str | None, api_key: str | None = None) -> None:
        self._lifecycle = lifecycle
        self.api_key = api_key
        self.ticket = ticket
        self.turn = turn
        self.reason: Reason = reason
        self.scope = scope
        self.call_id = uuid.uuid4().hex
        self._delivered_chars = 0
        self._delivered: list[str] = []  # the answer's text, as delivered (for shadow sampling)
        self._answering = False  # a streamed chunk arrived: the provider took (and bills) the input
        self._lease_s: float | None = getattr(lifecycle.store, "lease_s", None) if ticket.reservation else None
        self._renewed_at = time.monotonic()
        self._settlement = _Settlement(lifecycle, ticket)
        self._finalizer = weakref.finalize(self, self._settlement.release_unsettled)
        self._listeners: list[Callable[[CallRecord], Any]] = []
        self._escalation_reason: str | None = None
        self._escalation_refused: str | None = None
        self.max_output_tokens: int | None = None  # the call's output bound (an escalation reserves it too)
        #: second cheap answers made for this call's checks, by key (None: that call failed or did not fit)
        self.samples: dict[str, str | None] = {}
        #: a second-sample call: the call it checks, and the request parameters it is sent with
        self.sample_of: str | None = None
        self.sample_params: dict[str, Any] = {}
        #: why a second answer asked for is missing, by key (``CallRecord.no_verdict``)
        self.no_verdict: dict[str, str] = {}

    # -- what was decided --------------------------------------------------------------
    @property
    def decision(self) -> RoutingDecision:
        return self.ticket.decision

    @property
    def route(self) -> str:
        return self.ticket.decision.route

    @property
    def backend(self) -> Backend:
        return self._lifecycle.backend(self.route)

    @property
    def settled(self) -> bool:
        return self._settlement.record is not None

    @property
    def store_io(self) -> bool:
        """Settling this call waits on the state store's I/O (see ``CallLifecycle.store_io``)."""
        return self._lifecycle.store_io

    @property
    def next_up(self) -> str | None:
        """The model an escalation of this call would go to (None at the top)."""
        return self._lifecycle.next_up(self)

    @property
    def record(self) -> CallRecord | None:
        return self._settlement.record

    def preview_record(self) -> CallRecord:
        """The decision as a record before the call ended (for run metadata)."""
        return self._make_record("in_flight", None, None, None, None, False, None)

    def on_settled(self, listener: Callable[[CallRecord], Any]) -> None:
        """Call ``listener(record)`` once the call settles (at once if it has): how a
        framework's cost tracker hears of a call however it ended. A listener that raises
        is reported as a warning; it never undoes the settlement."""
        record = self._settlement.record
        if record is not None:
            _notify(listener, record)
        else:
            self._listeners.append(listener)

    # -- while it runs -----------------------------------------------------------------
    def delivered(self, text: str | None) -> None:
        """Count a chunk a stream delivered (call it for every chunk, empty ones too): once
        the provider answers, a stream that is cut or abandoned is charged for its input and
        the text delivered so far."""
        self._answering = True
        if text:
            self._delivered_chars += len(text)
            self._delivered.append(text)
        if self._lease_s is not None and time.monotonic() - self._renewed_at > self._lease_s / 3:
            self._renew()

    def _renew(self) -> None:
        """A long stream keeps its reservation: a shared store would reclaim it once its
        lease ran out (as for a process that died), and the cap could then be passed."""
        self._renewed_at = time.monotonic()
        reservation, tracker = self.ticket.reservation, self._lifecycle.policy.budget
        if reservation is not None and tracker is not None:
            tracker.renew(reservation)

    @property
    def answer(self) -> str | None:
        """The text delivered so far: the whole answer once a call finished (what shadow
        sampling judges); None when nothing was delivered."""
        return "".join(self._delivered) if self._delivered else None

    @property
    def answering(self) -> bool:
        """The provider began answering (a streamed chunk arrived)."""
        return self._answering

    @property
    def delivered_chars(self) -> int:
        return self._delivered_chars

    # -- how it ended ------------------------------------------------------------------
    def finish(self, usage: Usage | Mapping[str, Any] | None = None, *, model: str | None = None,
               text: str | None = None) -> CallRecord:
        """The backend answered: price ``usage`` (the provider's counts; estimated from
        the input and ``text``/the delivered text when it reported none or nonsense). On a
        call already settled it changes nothing and returns the record."""
        if self.settled:
            return self.record  # type: ignore[return-value]
        if text:
            self.delivered(text)
        return self._settle("ok", usage, model)

    def fail(self, exc: BaseException | None = None) -> CallRecord:
        """The backend raised. Text already delivered was billed: status ``cut``."""
        return self._settle("cut" if self._answering else "failed", None, None)

    def cancel(self) -> CallRecord:
        """The caller's task was cancelled (``CancelledError``)."""
        return self._settle("cut" if self._answering else "cancelled", None, None)

    def abandon(self) -> CallRecord:
        """The consumer stopped reading a stream, or the call ended without a result."""
        return self._settle("abandoned", None, None)

    def cached(self) -> CallRecord:
        """A cache answered: no backend call, nothing spent."""
        return self._settle("cached", None, None)

    def escalate(self, reason: str, usage: Usage | Mapping[str, Any] | None = None, *, model: str | None = None,
                 text: str | None = None) -> "RoutedCall | None":
        """The answer failed a check (``reason`` says which): settle this call as
        ``escalated`` (billed like a finished call: ``usage``, else estimated from
        ``text``) and return a handle on the next model up, admitted by the budget. None,
        with this call settled as ``ok``, when there is no model up or the budget cannot
        take one: the caller keeps this answer (refused by the budget, its record's
        ``escalation_refused`` says which check it failed)."""
        nxt = self._lifecycle.next_up(self)
        ticket = None
        if nxt is not None and not self.settled:
            try:
                ticket = self._lifecycle.escalation_ticket(self, nxt)
            except BudgetExceeded:
                ticket = None
                self._escalation_refused = f"{reason} (the budget could not take the {nxt} call)"
        if ticket is None:
            self.finish(usage, model=model, text=text)
            return None
        if text:
            self.delivered(text)
        listeners = list(self._listeners)
        self._escalation_reason = str(reason)
        self._settle("escalated", usage, model)
        up = RoutedCall(self._lifecycle, ticket, self.turn, "escalated", self.scope, self.api_key)
        up._listeners, up.max_output_tokens = listeners, self.max_output_tokens
        up._escalation_reason = self._escalation_reason
        return up

    def review(self, checks: Any, answer: Any, usage: Usage | Mapping[str, Any] | None = None, *,
               model: str | None = None, text: str | None = None) -> "RoutedCall | None":
        """Run the escalation ``checks`` on ``answer``
        (:class:`~routellm_integrations.routing.escalation.Answer`; its ``prompt`` is this
        call's routing text when the adapter left it empty, its ``samples`` the second
        answers made for it). It passes: None, and this call is still open (finish it as
        usual). It fails: :meth:`escalate` (None when there is no model up: this call is
        then finished with the answer). A check that raises finishes this call (its
        answer was billed), then raises
        :class:`~routellm_integrations.routing.escalation.EscalationCheckError`. A check
        that needs a second cheap answer raises
        :class:`~routellm_integrations.routing.escalation.SampleNeeded` with this call
        still open: the cascade engine makes it (:meth:`sample`) and reviews again."""
        from dataclasses import replace

        from .escalation import Answer, SampleNeeded, first_failure

        if isinstance(answer, Answer):
            answer = replace(answer, prompt=answer.prompt or self.turn.text,
                             samples={**self.samples, **dict(answer.samples)})
        try:
            reason = first_failure(checks, answer)
        except SampleNeeded:
            raise
        except Exception:
            self.finish(usage, model=model, text=text)
            raise
        return None if reason is None else self.escalate(reason, usage, model=model, text=text)

    def sample(self, route: str | None = None, params: Mapping[str, Any] | None = None) -> "RoutedCall | None":
        """A second call for this one's checks (an agreement check: the same cheap model
        sampled again, or a second cheap model ``route``): a handle of its own, admitted
        by the budget (None when it does not fit: the check then has no second answer),
        settled and written to the ledger like any call (reason ``second_sample``, its
        record's ``sample_of`` naming this call). Send it as this call is sent, with
        ``sample_params`` merged into the request."""
        route = route or self.route
        try:
            ticket = self._lifecycle.sample_ticket(self, route)
        except BudgetExceeded:
            return None
        other = RoutedCall(self._lifecycle, ticket, self.turn, "second_sample", self.scope, self.api_key)
        other.max_output_tokens, other.sample_of = self.max_output_tokens, self.call_id
        other.sample_params = dict(params or {})
        other._listeners = list(self._listeners)  # whoever hears of this call's cost hears of its sample's
        return other

    def __enter__(self) -> "RoutedCall":
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.settle_on_exit(exc)

    async def __aenter__(self) -> "RoutedCall":
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.settle_on_exit(exc)

    def settle_on_exit(self, exc: BaseException | None) -> CallRecord:
        """Settle by how the block ended (a no-op when already settled)."""
        if self.settled:
            return self.record  # type: ignore[return-value]
        if exc is None or isinstance(exc, (GeneratorExit, StopIteration, StopAsyncIteration)):
            return self.abandon()
        if isinstance(exc, asyncio.CancelledError):
            return self.cancel()
        return self.fail(exc)

    # -- settling, once ------------------------------------------------------------------
    def _settle(self, status: CallStatus, usage: Any, model: str | None) -> CallRecord:
        st = self._settlement
        with st.lock:
            if st.record is not None:
                return st.record
            record = self._lifecycle._settle(self, status, usage, model)
            st.record = record
        self._finalizer.detach()
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            _notify(listener, record)
        return record

    def _make_record(self, status: str, model: str | None, usage: Usage | None, cost: float | None,
                     budget: dict[str, Any] | None, estimated: bool, usage_error: str | None,
                     strong_cost: float | None = None) -> CallRecord:
        d, lc = self.decision, self._lifecycle
        backend = lc.backend(d.route)
        return CallRecord(
            call_id=self.call_id, route=d.route, model=model or backend.model, provider=backend.provider,
            score=d.score, threshold=d.threshold, router=d.router, latency_ms=d.latency_ms, reason=self.reason,
            forced=d.forced, step_policy=d.step_policy, scope=(d.budget or {}).get("scope", self.scope),
            status=status,  # type: ignore[arg-type]
            input_tokens=usage.input_tokens if usage is not None else None,
            output_tokens=usage.output_tokens if usage is not None else None,
            cache_read_tokens=usage.cache_read_tokens if usage is not None else None,
            cache_write_tokens=usage.cache_write_tokens if usage is not None else None,
            cost_usd=cost, strong_cost_usd=strong_cost, estimated=estimated, usage_error=usage_error,
            budget=budget if budget is not None else d.budget,
            strong_model=lc.strong.model, strong_provider=lc.strong.provider, weak_model=lc.weak.model,
            weak_provider=lc.weak.provider, models=lc.candidates, qualities=d.qualities,
            expected_costs_usd=d.expected_costs_usd, cost_weight=d.cost_weight, escalated_from=d.escalated_from,
            escalation_reason=self._escalation_reason if status == "escalated" or d.escalated_from else None,
            escalation_refused=self._escalation_refused, sample_of=self.sample_of,
            no_verdict=dict(self.no_verdict) or None,
            strong_fraction=d.strong_fraction, scored_pair=d.scored_pair, scored_pair_source=d.scored_pair_source)


class CallLifecycle:
    """Decides, reserves, prices, settles and records routed calls for one strong/weak
    pair (``strong=``/``weak=``, or ``backends={"strong": ..., "weak": ...}``), or for N
    models (``backends=``, over a policy with ``models=``): one backend per route key of
    the policy's chooser (:attr:`RoutingPolicy.chooser`), which says what differs.
    Framework-free: ``RoutedChat``, ``RoutedLLM`` and the routed client are thin layers
    over it.

    Every settled call is written once, to the lifecycle's state store (``store``, else
    the policy's, else ``ledger``'s, else a new in-memory one that keeps the last 1,000
    entries and totals of every call): in the same step as its budget settlement when the
    budget settles in that store.
    ``ledger`` (a :class:`~routellm_integrations.state.CostLedger`) is a view that reads
    it; a ledger handed in reads this store too.

    With a dollar budget, every model must be priced (a call that cannot be priced
    could never be counted against the cap): :class:`BudgetConfigError` otherwise; N-way
    routing needs every price too (a cost weight compares prices), else
    :class:`~routellm_integrations.errors.PriceTableError`.

    N-way, ``reference`` names the model savings are counted against (default: the
    dearest, as "always the strong model" is for a pair), and ``expected_output_tokens``
    (one number, or one per key) seeds each model's expected output length."""

    def __init__(self, policy: RoutingPolicy, *, strong: Backend | None = None, weak: Backend | None = None,
                 backends: Mapping[str, Backend] | None = None, reference: str | None = None,
                 expected_output_tokens: int | Mapping[str, int] = DEFAULT_EXPECTED_OUTPUT_TOKENS,
                 prices: PriceTable | None = None, ledger: CostLedger | None = None,
                 on_no_text: Literal["strong", "weak", "error"] = "strong", store: Any = None) -> None:
        if on_no_text not in ("strong", "weak", "error"):
            raise ValueError(f"on_no_text must be 'strong', 'weak' or 'error', got {on_no_text!r}")
        from ..state import open_store
        from ..state.memory import IN_PROCESS_MAX_ENTRIES, MemoryStore

        self.policy = policy
        self.on_no_text = on_no_text
        if store is not None:
            store = open_store(store)
            if policy.store is not None and policy.store is not store:
                raise ValueError("the call lifecycle and its policy must share one state store")
        #: the one ledger every settled call is written to (a budget without a store of its own
        #: settles in a private in-memory store that keeps numbers only, no entries)
        found = [s for s in (store, policy.store, ledger.store if ledger is not None else None) if s is not None]
        # (``found[0] if found``, not ``or``: an empty MemoryStore is falsy, it has __len__)
        self.store = found[0] if found else MemoryStore(max_entries=IN_PROCESS_MAX_ENTRIES)
        #: whether deciding and settling wait on I/O (SQLite, Redis): the async paths then do
        #: them in a worker thread, so a store that hangs never holds an event loop
        self.store_io = any(not isinstance(s, MemoryStore) for s in (self.store, policy.store) if s is not None)
        if ledger is not None:
            ledger.attach(self.store)
        else:
            ledger = CostLedger(prices, store=self.store)
        self.ledger = ledger
        self.prices = prices if prices is not None else ledger.prices
        chooser = policy.chooser
        self._backends = self._check_backends(policy, strong, weak, backends)
        # a pair's router scores the two models the calls go to
        policy.score_backends({k: b.model for k, b in self._backends.items()})
        self.keys = list(self._backends)
        #: the keys each call's record lists as its candidates (None: a pair's routes are roles)
        self.candidates = chooser.candidates
        self._expected_out = self._check_expected_output(expected_output_tokens)
        self._out_lock = threading.Lock()
        budget: Budget | None = policy.budget.budget if policy.budget is not None else None
        unpriced = [b for b in self._backends.values() if self.prices.price(b.model, b.provider, warn=False) is None]
        if unpriced and budget is not None and budget.max_usd is not None:
            b = unpriced[0]
            raise BudgetConfigError(
                f"Budget(max_usd={budget.max_usd}) over the {b.route} model {b.model!r} "
                f"(provider {b.provider!r}), which the price table cannot price: its calls could "
                "never be counted against the cap. Add its price with "
                "PriceTable.default().with_prices({provider: {model: (input_usd_per_1M, "
                "output_usd_per_1M)}}), or cap strong calls with max_strong_calls instead.")
        if unpriced and chooser.needs_costs:
            raise PriceTableError(
                f"routing among N models weighs prices, and the price table cannot price "
                f"{', '.join(f'{b.route!r} ({b.model!r}, provider {b.provider!r})' for b in unpriced)}. Add them "
                "with PriceTable.default().with_prices({provider: {model: (input_usd_per_1M, output_usd_per_1M)}}).")
        nominal = {k: self.prices.cost(b.model, Usage(1000, 500), b.provider, warn=False) or 0.0
                   for k, b in self._backends.items()}
        # the model savings count against ("strong") and the bottom one ("weak"): a pair's by role
        self._strong_key = chooser.reference(nominal, reference)
        self._weak_key = chooser.cheapest(nominal)
        self._no_text_key = {"strong": self._strong_key, "weak": self._weak_key}.get(on_no_text, on_no_text)

    @property
    def nway(self) -> bool:
        """Routing among N models (the policy's ``models=``) rather than a strong/weak pair."""
        return self.policy.nway

    @staticmethod
    def _check_backends(policy: RoutingPolicy, strong: Backend | None, weak: Backend | None,
                        backends: Mapping[str, Backend] | None) -> dict[str, Backend]:
        """One backend per route key of the policy's chooser, in its order, each named by
        its key (``strong=``/``weak=`` are the mapping ``{"strong": ..., "weak": ...}``)."""
        keys = policy.chooser.keys
        if backends is None:
            if strong is None or weak is None:
                raise InvalidRouteError("give strong= and weak= backends, or backends={key: Backend, ...}")
            roles = {"strong": strong, "weak": weak}
            if set(keys) != set(roles):
                raise InvalidRouteError("the policy routes among N models (models=): give backends={...}")
            return {k: Backend(k, roles[k].model, roles[k].provider) for k in keys}
        if strong is not None or weak is not None:
            raise InvalidRouteError("give strong=/weak= or backends=, not both")
        if set(backends) != set(keys):
            raise InvalidRouteError(f"backends {sorted(backends)} must be the policy's models {sorted(keys)}")
        out = {}
        for key in keys:
            b = backends[key]
            if not isinstance(b, Backend):
                raise TypeError(f"backends[{key!r}] must be a Backend, got {type(b).__name__}")
            out[key] = Backend(key, b.model, b.provider)
        return out

    def _check_expected_output(self, value: int | Mapping[str, int]) -> dict[str, float]:
        per = value if isinstance(value, Mapping) else {k: value for k in self._backends}
        out = {}
        for key in self._backends:
            n = per.get(key, DEFAULT_EXPECTED_OUTPUT_TOKENS)
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise InvalidRouteError(f"expected_output_tokens for {key!r} must be a positive int, got {n!r}")
            out[key] = float(n)
        unknown = set(per) - set(self._backends) if isinstance(value, Mapping) else set()
        if unknown:
            raise InvalidRouteError(f"expected_output_tokens names unknown model(s) {sorted(unknown)}")
        return out

    @property
    def strong(self) -> Backend:
        """The strong model of a pair; N-way, the reference model savings count against."""
        return self._backends[self._strong_key]

    @property
    def weak(self) -> Backend:
        """The weak model of a pair; N-way, the cheapest model."""
        return self._backends[self._weak_key]

    @property
    def backends(self) -> dict[str, Backend]:
        return dict(self._backends)

    def backend(self, route: str) -> Backend:
        return self._backends[route]

    def expected_output_tokens(self, route: str) -> float:
        """The output length a call on ``route`` is expected to have (a running mean)."""
        with self._out_lock:
            return self._expected_out[route]

    def expected_costs(self, turn: Turn) -> dict[str, float]:
        """Each model's expected cost (USD) for this turn: its input as estimated tokens,
        its output the model's expected length."""
        input_tokens = estimate_tokens(turn.input_chars) + _PER_MESSAGE_TOKENS * turn.messages
        out = {}
        for key, b in self._backends.items():
            usage = Usage(input_tokens=input_tokens, output_tokens=int(round(self.expected_output_tokens(key))))
            cost = self.prices.cost(b.model, usage, b.provider, warn=False)
            out[key] = float(cost) if cost is not None and math.isfinite(cost) else 0.0
        return out

    def next_up(self, call: "RoutedCall") -> str | None:
        """The model an escalation of ``call`` goes to (a pair: weak -> strong; None at the
        top). N-way: among the models dearer than the call's for this turn (or as dear and
        predicted better), the cheapest one predicted at least as good as the call's model,
        else the cheapest one (:meth:`~routellm_integrations.choosers.Chooser.next_up`)."""
        d = call.decision
        costs = d.expected_costs_usd or self._costs(call.turn)
        return self.policy.chooser.next_up(call.route, d.qualities or {}, costs)

    def _costs(self, turn: Turn) -> dict[str, float] | None:
        """The turn's expected cost per model, when the policy's chooser weighs costs."""
        return self.expected_costs(turn) if self.policy.chooser.needs_costs else None

    def escalation_ticket(self, call: "RoutedCall", route: str) -> Ticket:
        """Admit the escalation of ``call`` to ``route`` (refused, never downgraded, when it
        does not fit the budget: :class:`BudgetExceeded`)."""
        costs = self._costs(call.turn)
        bounds = self.bounds(call.turn, call.max_output_tokens)
        ticket = self.policy.admit(route, scope=call.scope, reason="escalated", bounds=bounds, costs=costs,
                                   escalated_from=call.route, degrade=False)
        d = call.decision  # the escalation reports what the choice predicted for every model
        q = (d.qualities or {}).get(route)
        ticket.decision = ticket.decision.model_copy(update={
            "qualities": d.qualities, "cost_weight": d.cost_weight, "router": d.router,
            "score": q if q is not None else ticket.decision.score})
        # the turn's later steps (steps="per_turn") keep the model that answered, not the one that failed
        self.policy.remember_turn(call.scope, call.turn.key, ticket.decision)
        if call.reason == "scored" and not (d.step_policy or "").startswith("per_turn:kept"):
            self.policy.escalated(call.route, route)  # the online share saw this call: it counts the escalation
        return ticket

    def sample_ticket(self, call: "RoutedCall", route: str) -> Ticket:
        """Admit a second-sample call for ``call``'s checks on ``route`` (refused, never
        moved to another route, when it does not fit the budget: :class:`BudgetExceeded`).
        It is not a routing decision: the online share does not count it; its cost goes to
        the budget, the spend target and the ledger."""
        costs = self._costs(call.turn)
        bounds = self.bounds(call.turn, call.max_output_tokens)
        return self.policy.admit(route, scope=call.scope, reason="second_sample", bounds=bounds, costs=costs,
                                 degrade=False)

    # -- before the call -------------------------------------------------------------------
    def bounds(self, turn: Turn, max_output_tokens: int | None = None) -> dict[str, float] | None:
        """The most a call on each route can cost (USD): every input byte a token (BPE
        tokens are at least a byte) plus a per-message overhead, and the output bound."""
        tracker = self.policy.budget
        if tracker is None or tracker.budget.max_usd is None:
            return None
        output = int(max_output_tokens) if isinstance(max_output_tokens, int) and max_output_tokens > 0 \
            else tracker.budget.default_output_tokens
        usage = Usage(input_tokens=turn.input_bytes + _PER_MESSAGE_TOKENS * (turn.messages + 1),
                      output_tokens=output)
        out: dict[str, float] = {}
        for route, b in self._backends.items():
            cost = self.prices.cost(b.model, usage, b.provider, warn=False)
            out[route] = float(cost) if cost is not None and math.isfinite(cost) else 0.0
        return out

    def _ticket(self, turn: Turn, force: str | None, scope: str | None, max_output_tokens: int | None,
                dry_run: bool) -> tuple[Ticket, Reason]:
        if force is not None:
            self.policy.chooser.check_route(force)
        bounds = self.bounds(turn, max_output_tokens)
        costs = self._costs(turn)
        if force is not None:
            return self.policy.admit(force, scope=scope, reason="forced", bounds=bounds, dry_run=dry_run,
                                     costs=costs), "forced"
        if not turn.has_text:
            if self.on_no_text == "error":
                raise InvalidPromptError("the message to route on has no text (e.g. only images): force a route "
                                         "('strong' or 'weak') or set on_no_text")
            return self.policy.admit(self._no_text_key, scope=scope, reason="no_text", bounds=bounds,
                                     dry_run=dry_run, costs=costs), "no_text"
        ticket = self.policy.decide(turn.text, scope=scope, turn_key=turn.key, followup=turn.followup,
                                    bounds=bounds, dry_run=dry_run, costs=costs)
        return ticket, "scored"

    def begin(self, turn: Turn, *, force: str | None = None, scope: str | None = None,
              max_output_tokens: int | None = None, api_key: str | None = None) -> RoutedCall:
        """Decide and reserve. The handle must be settled (it is a context manager).
        ``api_key`` names the caller's key in the ledger (an id or label, never the secret)."""
        scope, api_key = (None if v is None else clean_text(str(v)) for v in (scope, api_key))
        ticket, reason = self._ticket(turn, force, scope, max_output_tokens, dry_run=False)
        call = RoutedCall(self, ticket, turn, reason, scope, api_key)
        call.max_output_tokens = max_output_tokens
        return call

    async def abegin(self, turn: Turn, *, force: str | None = None, scope: str | None = None,
                     max_output_tokens: int | None = None, api_key: str | None = None) -> RoutedCall:
        """:meth:`begin` with the router's scoring off the event loop. Cancelled while the
        router scores, the reservation the scoring thread then takes is released."""
        if not self.store_io and (force is not None or not turn.has_text or self.policy.scores_inline(turn.text)):
            return self.begin(turn, force=force, scope=scope, max_output_tokens=max_output_tokens, api_key=api_key)
        # the scope contextvar is copied into the thread by to_thread
        task = asyncio.ensure_future(asyncio.to_thread(self.begin, turn, force=force, scope=scope,
                                                       max_output_tokens=max_output_tokens, api_key=api_key))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_release_orphan)
            raise

    def preview(self, turn: Turn, *, force: str | None = None, scope: str | None = None,
                max_output_tokens: int | None = None) -> RoutingDecision:
        """Where a call would go now; reserves, observes and remembers nothing."""
        ticket, _ = self._ticket(turn, force, scope, max_output_tokens, dry_run=True)
        return ticket.decision

    # -- after the call ------------------------------------------------------------------------
    def _usage(self, call: RoutedCall, status: CallStatus, usage: Any) -> tuple[Usage | None, bool, str | None]:
        """The usage to charge: the provider's, else an estimate from the text."""
        if status in ("cached",):
            return Usage(), False, None
        error = None
        if usage is not None and status in ("ok", "escalated"):
            try:
                parsed = usage if isinstance(usage, Usage) else Usage.from_dict(usage)
            except (RouteLLMError, ValueError, TypeError, OverflowError) as exc:
                parsed, error = None, f"{type(exc).__name__}: {exc}"
                warnings.warn(f"routellm: the {call.route} backend reported unusable usage ({exc}); the call is "
                              "charged from its text instead (estimated)", RuntimeWarning, stacklevel=4)
            if parsed is not None:
                return parsed, False, None
        if status in ("ok", "escalated") or call.answering:
            turn = call.turn
            return Usage(input_tokens=estimate_tokens(turn.input_chars) + _PER_MESSAGE_TOKENS * turn.messages,
                         output_tokens=estimate_tokens(call.delivered_chars)), True, error
        return None, False, None

    def _price(self, model: str, backend: Backend, usage: Usage) -> float | None:
        cost = self.prices.cost(model, usage, backend.provider)
        if cost is None and model != backend.model:  # a dated snapshot name the table lacks
            cost = self.prices.cost(backend.model, usage, backend.provider, warn=False)
        return cost if cost is None or math.isfinite(cost) else None

    def _settle(self, call: RoutedCall, status: CallStatus, usage_in: Any, model: str | None) -> CallRecord:
        backend = call.backend
        model = model or backend.model
        usage, estimated, usage_error = self._usage(call, status, usage_in)
        if usage is not None and usage.total_tokens and status not in ("ok", "cached", "escalated"):
            status = "cut" if status in ("failed", "cancelled") else status
        cost = self._price(model, backend, usage) if usage is not None else None
        billed = usage is not None and status != "cached"
        strong_cost = None
        if billed and status == "escalated":
            strong_cost = 0.0  # a cascade is compared with the strong model once, on its last call
        elif billed:
            strong = self.strong
            strong_cost = cost if call.route == self._strong_key else self.prices.cost(
                strong.model, usage, strong.provider, warn=False)
        if usage is not None and status in ("ok", "escalated") and not estimated and usage.output_tokens:
            with self._out_lock:
                old = self._expected_out[call.route]
                self._expected_out[call.route] = old + _EXPECTED_OUTPUT_RATE * (usage.output_tokens - old)
        if status == "cached":
            cost = 0.0
        # the record first (its budget state comes from the settlement), then its one ledger entry
        record = call._make_record(status, model, usage, cost, None, estimated, usage_error, strong_cost)
        entry = LedgerEntry.of(record, api_key=call.api_key)
        reservation = call.ticket.reservation
        tracker = self.policy.budget
        # with a budget settling in this store, the entry is written in the same atomic step
        atomic = reservation is not None and tracker is not None and tracker.store is self.store
        # a store that cannot take the write: the call is billed, so it goes to the write-ahead file
        budget_store = tracker.store if reservation is not None and tracker is not None else None
        budget = None
        try:
            budget = self.policy.settle(call.ticket, cost if billed else None, succeeded=billed,
                                        entry=entry if atomic else None)
        except StoreUnavailableError as exc:
            if budget_store is None:
                raise
            write_ahead(budget_store, reservation=reservation, cost_usd=cost if billed else None, succeeded=billed,
                        entry=entry if atomic else None, error=exc)
        else:
            _recover(budget_store)
        if not atomic:
            try:
                self.store.record(entry)
            except StoreUnavailableError as exc:
                write_ahead(self.store, reservation=None, cost_usd=cost, succeeded=billed, entry=entry, error=exc)
            else:
                _recover(self.store)
        return record.model_copy(update={"budget": budget}) if budget is not None else record


def _recover(store: Any) -> None:
    """After a write that reached ``store``: replay its pending write-ahead lines (one
    ``stat`` when there are none)."""
    if store is None or not has_pending(store):
        return
    try:
        replay(store)
    except Exception as exc:  # noqa: BLE001 - the call itself settled; the lines wait for the next try
        warnings.warn(f"routellm: replaying the write-ahead file of {getattr(store, 'url', '?')} failed: "
                      f"{type(exc).__name__}", RuntimeWarning, stacklevel=2)


def _notify(listener: Callable[[CallRecord], Any], record: CallRecord) -> None:
    try:
        listener(record)
    except Exception as exc:  # noqa: BLE001 - a reporting hook must not break the call
        warnings.warn(f"routellm: a listener on call {record.call_id} raised {type(exc).__name__}: {exc}",
                      RuntimeWarning, stacklevel=3)


def _release_orphan(task: "asyncio.Future[RoutedCall]") -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().cancel()
