"""Judge labelling of a user's own prompts: concurrent, budgeted, resumable, priced.

For each prompt: the strong and the weak backend answer (concurrently), then the judge
compares the answers in both orders (:mod:`.judge`), and the verdict goes into the
:class:`~routellm_integrations.labels.LabelStore` with source ``judge:<judge model>``.

Resuming: every paid step (each answer, each judge order) is written to the store's
``work`` table the moment it completes, keyed by what determines it (the model and the
prompt; for a judgment also both answers in their order), and a finished prompt gets a
marker. A rerun after a crash, a failure or an exhausted budget pays only for steps never
completed, and skips finished prompts entirely. A label is written only once both orders
are judged. (The marker is written right after the label; a crash between the two makes
the rerun record the same verdict again, at no cost, which the store's per-prompt
averaging reads as one label.)

Unreadable verdicts: a judge order with no ``[[A]]``/``[[B]]``/``[[C]]`` is never a tie and
never a label. The prompt is counted in ``n_unparsable`` (one example text is kept,
truncated, in ``unparsable_example``) and left unlabelled; its answers stay in the store,
and a rerun reuses them and asks the judge again for the unreadable order only (a stored
judgment without a verdict is never reused). Once at least :data:`MIN_JUDGED_TO_FAIL`
prompts are judged and more than half of them are unreadable, the run starts no new
prompt (``n_stopped``) and ends in :class:`~routellm_integrations.errors.JudgeVerdictError`,
which carries the report: the judge does not follow the format, and paying for more of
the same would be wasted.

Budget: the cap applies to what *this run* spends (reused steps are free). Before a
prompt starts it reserves an upper bound of its unpaid steps: input counted as one token
per UTF-8 byte plus a per-message overhead (byte-level BPE never yields more tokens than
bytes), plus ``max_tokens`` of output, times the price; an answer the judge has not seen
yet counts as ``max_answer_tokens``. A prompt is admitted while spend plus reservations in
flight are under the cap (:class:`~routellm_integrations.budgets.BudgetTracker`), so a run
ends less than one prompt's cost past the cap; prompts refused once nothing else is in
flight are reported as ``n_unlabelled_budget`` and a rerun with a bigger cap picks them up.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from ..budgets import Budget, Reservation
from ..state import BudgetTracker
from ..costs import PriceTable, Usage
from ..errors import BudgetConfigError, BudgetExceeded, DataError, JudgeVerdictError
from .store import LabelStore, work_key
from .clients import ChatClient, Completion
from .bounds import answer_bound, judge_bound
from .judge import call_cost, combine_orders, judge_call, judge_messages, parse_verdict

__all__ = ["MIN_JUDGED_TO_FAIL", "LabellingReport", "alabel_prompts", "check_verdicts", "export_battles",
           "label_prompts"]

Role = Literal["strong", "weak", "judge"]
_SCOPE = "labelling"

#: judged prompts a run needs before "most verdicts unreadable" stops it (a handful:
#: one or two unreadable answers at the start of a run say little)
MIN_JUDGED_TO_FAIL = 8
#: characters of an unreadable judgment kept as the report's example
EXAMPLE_CHARS = 200


class LabellingReport(BaseModel):
    """What a labelling run did and what it cost (this run's spend; reused steps are free)."""

    strong_model: str
    weak_model: str
    judge_model: str
    source: str = Field(description="the label source written to the store, judge:<model>")
    n_prompts: int = Field(description="distinct prompts given")
    n_duplicates: int = Field(0, description="repeated prompts dropped before labelling")
    n_labelled: int = Field(0, description="prompts labelled by this run")
    n_already_labelled: int = Field(0, description="prompts skipped: labelled by an earlier run")
    n_resumed_steps: int = Field(0, description="paid steps (answers, judge orders) reused from the store")
    n_paid_calls: int = Field(0, description="calls this run made and paid for")
    n_unlabelled_budget: int = Field(0, description="prompts not labelled because the budget ran out")
    n_failed: int = Field(0, description="prompts whose backend or judge call failed")
    first_error: str | None = None
    verdicts: dict[str, int] = Field(default_factory=lambda: {"strong": 0, "weak": 0, "tie": 0})
    position_disagreements: int = Field(0, description="labels whose two orders named different winners (-> tie)")
    n_unparsable: int = Field(0, description="prompts judged without a readable verdict in some order: not "
                                             "labelled (never a tie); a rerun asks the judge again")
    n_unparsable_verdicts: int = Field(0, description="judge orders with no [[A]]/[[B]]/[[C]]")
    unparsable_example: str | None = Field(None, description="the start of one unreadable judgment")
    n_stopped: int = Field(0, description="prompts not started: most verdicts were unreadable, the run stopped")
    cost_usd: float = Field(0.0, description="this run's spend on priced calls")
    cost_by_role: dict[str, float] = Field(default_factory=lambda: {"strong": 0.0, "weak": 0.0, "judge": 0.0})
    unpriced: bool = Field(False, description="some call could not be priced (unknown model or no usage)")
    unpriced_models: list[str] = Field(default_factory=list)
    max_usd: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def n_judged(self) -> int:
        """Prompts this run finished judging: labelled or unreadable."""
        return self.n_labelled + self.n_unparsable

    def summary(self) -> str:
        """One line: how the judging went (parsed verdicts, ties among them, unreadable)."""
        v = self.verdicts
        text = (f"judged {self.n_judged} prompts: {self.n_labelled} parsed ({v.get('strong', 0)} strong, "
                f"{v.get('weak', 0)} weak, {v.get('tie', 0)} ties), {self.n_unparsable} unparsable (not labelled)")
        extra = [f"{n} {what}" for n, what in ((self.n_already_labelled, "already labelled"),
                                               (self.n_failed, "failed"),
                                               (self.n_unlabelled_budget, "left by the budget"),
                                               (self.n_stopped, "not started")) if n]
        return text + ("; " + ", ".join(extra) if extra else "") + f"; ${self.cost_usd:.4f} spent"


def _usage_dict(usage: Usage | None) -> dict[str, int] | None:
    return asdict(usage) if usage is not None else None


def _completion(rec: dict[str, Any]) -> Completion:
    usage = rec.get("usage")
    return Completion(text=str(rec.get("text") or ""), usage=Usage(**usage) if usage else None,
                      model=str(rec.get("model") or ""))


def _check_prompts(prompts: Iterable[str]) -> tuple[list[str], int]:
    if isinstance(prompts, str):
        raise DataError("prompts must be a list of strings, not one string")
    seen: dict[str, None] = {}
    n = 0
    for i, p in enumerate(prompts):
        n += 1
        if not isinstance(p, str) or not p.strip():
            raise DataError(f"prompt {i} must be non-empty text, got {p!r:.80}")
        seen.setdefault(p, None)
    if not seen:
        raise DataError("no prompts to label (the list or file is empty)")
    return list(seen), n - len(seen)


class _Run:
    """One labelling run's state (single event loop: no locks needed around counters)."""

    def __init__(self, *, strong: ChatClient, weak: ChatClient, judge: ChatClient, store: LabelStore,
                 budget: Budget | None, prices: PriceTable, max_answer_tokens: int, judge_max_tokens: int,
                 report: LabellingReport) -> None:
        self.strong, self.weak, self.judge, self.store = strong, weak, judge, store
        self.prices, self.report = prices, report
        self.max_answer_tokens, self.judge_max_tokens = max_answer_tokens, judge_max_tokens
        self.tracker = None if budget is None else BudgetTracker(
            budget.model_copy(update={"on_exhausted": "raise", "max_strong_calls": None}))
        self.exhausted = False
        self.stopped = False  # most verdicts unreadable: start no new prompt
        self._settled = asyncio.Event()
        self._unpriced: set[str] = set()

    # -- keys ---------------------------------------------------------------------------
    def answer_key(self, client: ChatClient, prompt: str) -> str:
        return work_key("answer", client.provider or "", client.model, prompt)

    def judge_key(self, prompt: str, answer_a: str, answer_b: str) -> str:
        return work_key("judge", self.judge.provider or "", self.judge.model, prompt, answer_a, answer_b)

    def done_key(self, prompt: str) -> str:
        return work_key("label", self.report.source, self.strong.model, self.weak.model, prompt)

    # -- bounds -------------------------------------------------------------------------
    def answer_bound(self, client: ChatClient, prompt: str) -> float:
        return answer_bound(self.prices, client, prompt, self.max_answer_tokens)

    def judge_bound(self, prompt: str, strong_text: str | None, weak_text: str | None) -> float:
        return judge_bound(self.prices, self.judge, prompt, strong_text, weak_text,
                           max_answer_tokens=self.max_answer_tokens, judge_max_tokens=self.judge_max_tokens)

    # -- budget -------------------------------------------------------------------------
    async def admit(self, bound: float) -> Reservation | None:
        """A reservation for one prompt, waiting while prompts in flight may free room;
        ``None`` once the budget is spent (nothing in flight and still refused)."""
        assert self.tracker is not None
        while not self.exhausted:
            try:
                return self.tracker.reserve(_SCOPE, "strong", {"strong": bound})
            except BudgetExceeded:
                if self.tracker.state(_SCOPE).in_flight == 0:
                    self.exhausted = True
                    break
                await self._settled.wait()
        return None

    def settle(self, reservation: Reservation | None, spent: float) -> None:
        if reservation is None or self.tracker is None:
            return
        self.tracker.settle(reservation, spent)
        event, self._settled = self._settled, asyncio.Event()
        event.set()

    # -- steps --------------------------------------------------------------------------
    async def step(self, role: Role, client: ChatClient, key: str, messages: list[dict[str, str]],
                   max_tokens: int, bound: float, spend: list[float]) -> Completion:
        """One paid call, or its stored result; persisted as soon as it returns."""
        cached = self.store.get_work(key)
        if cached is not None and not (role == "judge" and not _has_verdict(cached)):
            self.report.n_resumed_steps += 1
            return _completion(cached)
        completion = await client.complete(messages, max_tokens=max_tokens)
        cost = call_cost(self.prices, client, completion.model, completion.usage)
        self.store.put_work(key, {"role": role, "text": completion.text, "model": completion.model,
                                  "usage": _usage_dict(completion.usage), "cost_usd": cost})
        self.report.n_paid_calls += 1
        if cost is None:
            self.report.unpriced = True
            self._unpriced.add(completion.model or client.model)
            self.report.unpriced_models = sorted(self._unpriced)
            spend.append(bound)  # unknown spend counts as its bound against the cap
        else:
            self.report.cost_usd += cost
            self.report.cost_by_role[role] += cost
            spend.append(cost)
        return completion

    async def both(self, *calls: Any) -> list[Any]:
        """Run calls together; raise the first error only after all have ended, so no
        call is still spending when the prompt's reservation is settled."""
        results = await asyncio.gather(*calls, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return list(results)

    # -- one prompt ---------------------------------------------------------------------
    async def label(self, prompt: str, sem: asyncio.Semaphore) -> None:
        async with sem:
            ks, kw = self.answer_key(self.strong, prompt), self.answer_key(self.weak, prompt)
            s_rec, w_rec = self.store.get_work(ks), self.store.get_work(kw)
            s_text = None if s_rec is None else str(s_rec.get("text") or "")
            w_text = None if w_rec is None else str(w_rec.get("text") or "")
            b_strong = 0.0 if s_rec is not None else self.answer_bound(self.strong, prompt)
            b_weak = 0.0 if w_rec is not None else self.answer_bound(self.weak, prompt)
            b_judge = self.judge_bound(prompt, s_text, w_text)
            judged = 0
            if s_text is not None and w_text is not None:
                judged = sum(_has_verdict(self.store.get_work(k)) for k in (self.judge_key(prompt, s_text, w_text),
                                                                           self.judge_key(prompt, w_text, s_text)))
            bound = b_strong + b_weak + (2 - judged) * b_judge
            reservation = None
            if self.stopped:
                self.report.n_stopped += 1
                return
            if self.tracker is not None and bound > 0:
                reservation = await self.admit(bound)
                if reservation is None:
                    self.report.n_unlabelled_budget += 1
                    return
            spend: list[float] = []
            try:
                strong_c, weak_c = await self.both(
                    self.step("strong", self.strong, ks, [{"role": "user", "content": prompt}],
                              self.max_answer_tokens, b_strong, spend),
                    self.step("weak", self.weak, kw, [{"role": "user", "content": prompt}],
                              self.max_answer_tokens, b_weak, spend))
                sa, wa = strong_c.text, weak_c.text
                b_judge = self.judge_bound(prompt, sa, wa)
                first, second = await self.both(
                    self.step("judge", self.judge, self.judge_key(prompt, sa, wa), judge_messages(prompt, sa, wa),
                              self.judge_max_tokens, b_judge, spend),
                    self.step("judge", self.judge, self.judge_key(prompt, wa, sa), judge_messages(prompt, wa, sa),
                              self.judge_max_tokens, b_judge, spend))
                result = combine_orders(judge_call("strong_first", first, None),
                                        judge_call("strong_second", second, None))
                self.report.n_unparsable_verdicts += result.n_unparsable
                if result.verdict is None:  # unreadable: no label, no done mark; a rerun asks again
                    self.report.n_unparsable += 1
                    if self.report.unparsable_example is None:
                        self.report.unparsable_example = self.example(result.unparsable_text or "")
                    self.stopped = self.stopped or _mostly_unreadable(self.report)
                    return
                self.store.add_verdict(prompt, result.verdict, strong_model=self.strong.model,  # label and mark:
                                       weak_model=self.weak.model, source=self.report.source,  # one transaction
                                       done=(self.done_key(prompt), {"verdict": result.verdict}),
                                       strong_answer=sa, weak_answer=wa)  # the verifier learns from both
                self.report.n_labelled += 1
                self.report.verdicts[result.verdict] += 1
                self.report.position_disagreements += result.position_disagreement
            except Exception as exc:  # noqa: BLE001 - one prompt's failure must not lose the others
                self.report.n_failed += 1
                if self.report.first_error is None:
                    self.report.first_error = self.redact(f"{type(exc).__name__}: {exc}")[:2000]
            finally:
                self.settle(reservation, sum(spend))

    def example(self, text: str) -> str:
        """An unreadable judgment as a short one-line example (keys redacted)."""
        flat = " ".join(self.redact(text).split())
        return flat if len(flat) <= EXAMPLE_CHARS else flat[:EXAMPLE_CHARS - 3] + "..."

    def redact(self, text: str) -> str:
        for client in (self.strong, self.weak, self.judge):
            scrub = getattr(client, "redact", None)
            if callable(scrub):
                text = scrub(text)
        return text


def _has_verdict(record: dict[str, Any] | None) -> bool:
    """A stored judgment that can be reused: it exists and names a verdict."""
    return record is not None and parse_verdict(str(record.get("text") or "")) is not None


def _mostly_unreadable(report: LabellingReport) -> bool:
    judged = report.n_judged
    return judged >= MIN_JUDGED_TO_FAIL and 2 * report.n_unparsable > judged


def check_verdicts(report: LabellingReport) -> LabellingReport:
    """``report``, or :class:`JudgeVerdictError` when at least :data:`MIN_JUDGED_TO_FAIL`
    prompts were judged and more than half of them had no readable verdict (or the run
    stopped for that reason, even if prompts still in flight then brought it under half)."""
    if _mostly_unreadable(report) or report.n_stopped:
        raise JudgeVerdictError(
            f"the judge {report.judge_model!r} gave no readable verdict for {report.n_unparsable} of "
            f"{report.n_judged} judged prompts (it must end with [[A]], [[B]] or [[C]]); none of them was stored "
            f"as a label" + (f", and {report.n_stopped} prompts were not started" if report.n_stopped else "")
            + f". Example: {report.unparsable_example!r}. Check the judge model (--judge) or its server; a rerun "
            "reuses the answers already paid for and asks the judge again", report=report)
    return report


def _check_budget(budget: Budget | None, prices: PriceTable, clients: Iterable[ChatClient]) -> None:
    if budget is None:
        return
    if budget.max_usd is None:
        raise BudgetConfigError("a labelling budget caps dollars: give Budget(max_usd=...)")
    for c in clients:
        if prices.price(c.model, c.provider, warn=False) is None:
            raise BudgetConfigError(f"budget max_usd={budget.max_usd} cannot be kept: the price table has no price "
                                    f"for {c.model!r} (provider {c.provider!r}); add it with "
                                    "PriceTable.with_prices({provider: {model: (input, output)}})")


async def alabel_prompts(prompts: Iterable[str], *, strong: ChatClient, weak: ChatClient,
                         judge: ChatClient | None = None, store: LabelStore, budget: Budget | None = None,
                         prices: PriceTable | None = None, concurrency: int = 8, max_answer_tokens: int = 1024,
                         judge_max_tokens: int = 1024, progress: bool = True) -> LabellingReport:
    """Label ``prompts`` for the pair (``strong``, ``weak``) with ``judge`` (default: the
    strong backend), writing each verdict to ``store``. See the module docstring for
    resuming, the budget and unreadable verdicts. Raises :class:`DataError` for bad prompts
    and :class:`BudgetConfigError` for a dollar budget over an unpriced model, before any
    call; :class:`JudgeVerdictError` (with the report) when most verdicts were unreadable."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise DataError(f"concurrency must be a positive integer, got {concurrency!r}")
    for name, v in (("max_answer_tokens", max_answer_tokens), ("judge_max_tokens", judge_max_tokens)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise DataError(f"{name} must be a positive integer, got {v!r}")
    judge = strong if judge is None else judge
    table = prices if prices is not None else PriceTable.default()
    unique, n_dup = _check_prompts(prompts)
    _check_budget(budget, table, (strong, weak, judge))
    report = LabellingReport(strong_model=strong.model, weak_model=weak.model, judge_model=judge.model,
                             source=f"judge:{judge.model}", n_prompts=len(unique), n_duplicates=n_dup,
                             max_usd=None if budget is None else budget.max_usd)
    run = _Run(strong=strong, weak=weak, judge=judge, store=store, budget=budget, prices=table,
               max_answer_tokens=max_answer_tokens, judge_max_tokens=judge_max_tokens, report=report)
    todo = []
    for p in unique:
        if store.get_work(run.done_key(p)) is not None:
            report.n_already_labelled += 1
        else:
            todo.append(p)
    sem = asyncio.Semaphore(concurrency)
    every = max(1, len(todo) // 20)

    async def one(p: str) -> None:
        await run.label(p, sem)
        if progress:
            done = (report.n_labelled + report.n_unparsable + report.n_failed + report.n_unlabelled_budget
                    + report.n_stopped)
            if done % every == 0 or done == len(todo):
                unreadable = f", {report.n_unparsable} unparsable" if report.n_unparsable else ""
                print(f"routellm label: {done}/{len(todo)} prompts done{unreadable}, ${report.cost_usd:.4f} spent",
                      file=sys.stderr, flush=True)

    await asyncio.gather(*(one(p) for p in todo))
    return check_verdicts(report)


def label_prompts(prompts: Iterable[str], *, strong: ChatClient, weak: ChatClient, judge: ChatClient | None = None,
                  store: LabelStore, budget: Budget | None = None, prices: PriceTable | None = None,
                  concurrency: int = 8, max_answer_tokens: int = 1024, judge_max_tokens: int = 1024,
                  progress: bool = True) -> LabellingReport:
    """:func:`alabel_prompts` on a fresh event loop (closing the clients' HTTP pools of
    that loop at the end). Call ``await alabel_prompts(...)`` inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("label_prompts() cannot run inside a running event loop; await alabel_prompts(...)")

    async def main() -> LabellingReport:
        try:
            return await alabel_prompts(prompts, strong=strong, weak=weak, judge=judge, store=store, budget=budget,
                                        prices=prices, concurrency=concurrency, max_answer_tokens=max_answer_tokens,
                                        judge_max_tokens=judge_max_tokens, progress=progress)
        finally:
            for c in {id(c): c for c in (strong, weak, judge) if c is not None}.values():
                close = getattr(c, "aclose", None)
                if callable(close):
                    await close()

    return asyncio.run(main())


def export_battles(store: LabelStore, path: str | os.PathLike[str], strong_model: str, weak_model: str) -> int:
    """Write the store's labels of the pair as a battles JSONL file
    (``prompt, model_a=strong, model_b=weak, winner=a|b|tie``, what
    :func:`~routellm_integrations.data.user_files.load_battles_file` and ``routellm train
    --battles`` read). Several labels of a prompt are averaged first; prompts recorded
    without their text (privacy mode) cannot be written and are left out. Returns the
    number of rows written. Raises :class:`DataError` when the pair has no labels."""
    labels = store.label_set(strong_model=strong_model, weak_model=weak_model, feedback=False)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for prompt, s, w in zip(labels.prompts, labels.strong, labels.weak):
            if prompt is None:
                continue
            winner = "a" if s > w else ("b" if w > s else "tie")
            fh.write(json.dumps({"prompt": prompt, "model_a": strong_model, "model_b": weak_model,
                                 "winner": winner}) + "\n")
            n += 1
    os.replace(tmp, out)
    return n
