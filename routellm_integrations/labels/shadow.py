"""Shadow sampling: labels from live traffic, gathered off the user's critical path.

For every call it is shown, the sampler records the prompt and the decision (so feedback
can later find the call by its ``call_id``); for a sampled fraction it also asks the
*other* backend the same question and has a judge compare both answers (both orders, as
``routellm label`` does), and stores the verdict. All of that runs on a worker thread:
``offer`` only enqueues, never blocks, never raises into the user's call. A full queue
drops the work and counts it; a spent shadow budget skips it and counts it.

Privacy: ``record="embedding"`` keeps only the prompt's embedding and structural
features, never its text (adaptation reads them back; see :mod:`.store`).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from ..budgets import Budget
from ..state import BudgetTracker
from ..costs import PriceTable, Usage
from ..routing.call import Backend
from ..errors import BudgetConfigError, BudgetExceeded, DataError
from .store import LabelStore

RecordMode = Literal["text", "embedding"]
#: what the other backend's answer comes back as: text, its usage and the model that answered
OtherAnswer = Callable[[], Awaitable[tuple[str, Usage | None, str | None]]]
_SCOPE = "shadow"
JUDGE_MAX_TOKENS = 1024  # per judge order, as routellm label's default


class ShadowStats(BaseModel):
    """Counts since the sampler started (read with ``sampler.stats``)."""

    offered: int = 0
    recorded: int = 0
    sampled: int = 0
    labelled: int = 0
    dropped_queue_full: int = 0
    skipped_budget: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    last_error: str | None = None


@dataclass
class _Job:
    call_id: str
    prompt: str
    route: str
    model: str | None
    strong_model: str
    weak_model: str
    strong_provider: str | None
    weak_provider: str | None
    answer: str | None
    other: OtherAnswer | None
    judge: Any

    @property
    def other_backend(self) -> Backend:
        """The backend that did not answer the call: the one the shadow asks."""
        if self.route == "strong":
            return Backend("weak", self.weak_model, self.weak_provider)
        return Backend("strong", self.strong_model, self.strong_provider)


class ShadowSampler:
    """Give one to ``RoutedChat(shadow=...)`` or ``RoutedLLM(shadow=...)``.

    - ``store``: a :class:`LabelStore` or its path (SQLite).
    - ``rate``: the share of calls shadowed (0 records calls for feedback only).
    - ``judge``: a chat client (``routellm_integrations.labels.ChatClient``); default:
      the strong backend of the model it is attached to.
    - ``budget``: caps what shadowing spends (its own, apart from the user's calls).
    """

    def __init__(self, store: LabelStore | str | os.PathLike[str], *, rate: float = 0.05, judge: Any = None,
                 budget: Budget | None = None, record: RecordMode = "text", embedder: Any = None,
                 max_pending: int = 64, max_answer_tokens: int = 1024, prices: PriceTable | None = None,
                 seed: int | None = None) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) <= 1.0:
            raise DataError(f"shadow rate must be a share in [0, 1], got {rate!r}")
        if record not in ("text", "embedding"):
            raise DataError(f"record must be 'text' or 'embedding', got {record!r}")
        if budget is not None and not isinstance(budget, Budget):
            raise TypeError(f"budget must be a Budget(...), got {type(budget).__name__}")
        self.store = store if isinstance(store, LabelStore) else LabelStore(store)
        self.rate = float(rate)
        self.judge = judge
        self.record = record
        self._embedder = embedder
        self.max_pending = int(max_pending)
        self.max_answer_tokens = int(max_answer_tokens)
        self.prices = prices or PriceTable.default()
        self.budget = BudgetTracker(budget) if budget is not None else None
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._stats = ShadowStats()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"ShadowSampler(store={self.store!r}, rate={self.rate}, record={self.record!r})"

    @property
    def stats(self) -> ShadowStats:
        with self._lock:
            return self._stats.model_copy()

    def check_prices(self, *models: tuple[str, str | None]) -> None:
        """A dollar shadow budget over a model it cannot price could never be kept."""
        if self.budget is None or self.budget.budget.max_usd is None:
            return
        for model, provider in models:
            if self.prices.price(model, provider, warn=False) is None:
                raise BudgetConfigError(f"the shadow budget caps dollars, but {model!r} (provider {provider!r}) has "
                                        "no price: add it with PriceTable.default().with_prices(...)")

    # -- the user's path: enqueue and return -------------------------------------------------
    def offer(self, *, call_id: str, prompt: str, route: str, model: str | None, strong_model: str,
              weak_model: str, answer: str | None, other: OtherAnswer | None, judge: Any = None,
              strong_provider: str | None = None, weak_provider: str | None = None) -> bool:
        """Record a finished call and maybe shadow it. Returns whether it was sampled.
        Never raises: a sampler must not fail the call it watches."""
        try:
            with self._lock:
                self._stats.offered += 1
                if self._pending >= self.max_pending:
                    self._stats.dropped_queue_full += 1
                    return False
                sampled = other is not None and answer is not None and self._rng.random() < self.rate
                self._stats.sampled += sampled
                self._pending += 1
            job = _Job(call_id, prompt, route, model, strong_model, weak_model, strong_provider, weak_provider,
                       answer, other if sampled else None, judge or self.judge)
            asyncio.run_coroutine_threadsafe(self._run(job), self._worker_loop())
            return sampled
        except Exception as exc:  # noqa: BLE001 - never into the user's call
            warnings.warn(f"routellm: shadow sampling could not take a call: {exc}", RuntimeWarning, stacklevel=2)
            return False

    def feedback(self, call_id: str, score: float) -> None:
        """A score in [0, 1] for a call this sampler recorded (the call's own record may
        still be queued: wait for it first)."""
        self.drain(timeout=5.0)
        self.store.add_feedback(call_id, score)

    def drain(self, timeout: float | None = 30.0) -> bool:
        """Wait until every queued job finished (tests, shutdown). False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self) -> None:
        self.drain()
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

    # -- the worker ------------------------------------------------------------------------------
    def _worker_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="routellm-shadow", daemon=True).start()
                self._loop = loop
            return self._loop

    def _count(self, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                if key in ("cost_usd",):
                    self._stats.cost_usd += float(value)
                elif key == "last_error":
                    self._stats.last_error = value
                else:
                    setattr(self._stats, key, getattr(self._stats, key) + int(value))

    def _embedding(self, prompt: str) -> tuple[Any, str | None]:
        if self.record != "embedding":
            return None, None
        if self._embedder is None:
            from ..embedders import get_embedder
            self._embedder = get_embedder("minilm-onnx-int8")
        return self._embedder.embed([prompt])[0], self._embedder.name

    async def _run(self, job: _Job) -> None:
        try:
            vector, space = await asyncio.to_thread(self._embedding, job.prompt)
            await asyncio.to_thread(self.store.record_call, job.call_id, job.prompt, route=job.route, model=job.model,
                                    strong_model=job.strong_model, weak_model=job.weak_model, record=self.record,
                                    embedding=vector, embedder=space)
            self._count(recorded=1)
            if job.other is not None:
                await self._shadow(job, vector, space)
        except Exception as exc:  # noqa: BLE001 - counted and reported, never raised
            self._count(failed=1, last_error=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _bound(self, job: _Job) -> dict[str, float] | None:
        """The most one shadow costs: the other answer plus both judge orders, bounded as
        judge labelling bounds them (the answer the call gave is known, the other is not)."""
        if self.budget is None or self.budget.budget.max_usd is None:
            return None
        from .bounds import answer_bound, judge_bound

        total = answer_bound(self.prices, job.other_backend, job.prompt, self.max_answer_tokens)
        total += 2 * judge_bound(self.prices, job.judge, job.prompt, job.answer, None,
                                 max_answer_tokens=self.max_answer_tokens, judge_max_tokens=JUDGE_MAX_TOKENS)
        return {"strong": total, "weak": total}

    async def _shadow(self, job: _Job, vector: Any, space: str | None) -> None:
        from .judge import call_cost, judge_pair

        reservation = None
        if self.budget is not None:
            try:
                reservation = self.budget.reserve(_SCOPE, "strong", self._bound(job))
            except BudgetExceeded:
                self._count(skipped_budget=1)
                return
        spent = 0.0
        ok = False
        try:
            other_text, usage, other_model = await job.other()  # type: ignore[misc]
            spent += call_cost(self.prices, job.other_backend, other_model, usage) or 0.0
            strong_text, weak_text = ((job.answer, other_text) if job.route == "strong" else (other_text, job.answer))
            result = await judge_pair(job.judge, job.prompt, strong_text or "", weak_text or "",
                                      max_tokens=JUDGE_MAX_TOKENS, prices=self.prices)
            spent += float(result.cost_usd or 0.0)
            await asyncio.to_thread(self.store.add_verdict, job.prompt, result.verdict, strong_model=job.strong_model,
                                    weak_model=job.weak_model, source=f"shadow:{getattr(job.judge, 'model', 'judge')}",
                                    call_id=job.call_id, record=self.record, embedding=vector, embedder=space,
                                    strong_answer=strong_text, weak_answer=weak_text)
            ok = True
            self._count(labelled=1)
        finally:
            self._count(cost_usd=spent)
            if reservation is not None:
                self.budget.settle(reservation, spent, succeeded=ok or spent > 0)  # type: ignore[union-attr]


def offer_call(sampler: ShadowSampler, call: Any, record: Any, *, other: OtherAnswer | None, judge: Any) -> bool:
    """Offer a settled :class:`~routellm_integrations.routing.RoutedCall` to the sampler.
    Only a scored first step of a turn that answered is shadowed (a forced, failed or
    cached call, or a tool-calling step, has nothing comparable to judge); every call is
    recorded. ``other`` is None where the adapter cannot ask the other backend the same
    (e.g. the call carried tools)."""
    answer = call.answer
    shadowable = (record.status == "ok" and bool(answer) and call.reason == "scored"
                  and not call.turn.followup)
    return sampler.offer(call_id=record.call_id, prompt=call.turn.text, route=record.route, model=record.model,
                         strong_model=record.strong_model, weak_model=record.weak_model,
                         strong_provider=record.strong_provider, weak_provider=record.weak_provider,
                         answer=answer if shadowable else None, other=other if shadowable else None, judge=judge)
