"""MT-Bench pairwise judging (the RouteLLM paper's GPT-4-judge labels), both orders.

A judge model reads the user question and two answers and names the better one. LLM
judges favour whichever answer they read first, so every pair is judged twice, the
strong answer as "A" and then as "B", and a verdict counts only when both orders agree;
when they disagree the pair is a tie (MT-Bench's "inconsistent" verdicts), which is what
a position-biased judge deserves.

An unparsable judgment (no ``[[A]]``/``[[B]]``/``[[C]]`` in the text) is *not* a tie: a
tie says the judge read both answers and found them equal, an unreadable text says
nothing. When either order is unreadable the pair has no verdict (``JudgeResult.verdict``
is ``None``, :attr:`JudgeResult.n_unparsable` counts the unreadable orders) and callers
store no label for it; :mod:`.run` counts such prompts, leaves them unlabelled so a rerun
asks the judge again, and stops a run whose judge is mostly unreadable. Such a half is
not counted as a position disagreement.

This module knows nothing of the label store: shadow sampling of live traffic reuses
:func:`judge_pair` directly; :mod:`.run` persists each order through the pieces
(:func:`judge_messages`, :func:`judge_call`, :func:`combine_orders`).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Literal

from ..costs import PriceTable, Usage
from .clients import ChatClient, Completion

__all__ = ["JUDGE_PROMPT_TEMPLATE", "JUDGE_SYSTEM_PROMPT", "JudgeCall", "JudgeResult", "Order", "RawVerdict",
           "Verdict", "call_cost", "combine_orders", "judge_call", "judge_messages", "judge_pair", "parse_verdict"]

Verdict = Literal["strong", "weak", "tie"]
RawVerdict = Literal["A", "B", "C"]
Order = Literal["strong_first", "strong_second"]

#: MT-Bench's "pair-v2" system prompt (FastChat ``judge_prompts.jsonl``), verbatim.
JUDGE_SYSTEM_PROMPT = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user question displayed below. You should choose the assistant that follows the user's instructions and "
    "answers the user's question better. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by "
    "comparing the two responses and provide a short explanation. Avoid any position biases and ensure that the "
    "order in which the responses were presented does not influence your decision. Do not allow the length of the "
    "responses to influence your evaluation. Do not favor certain names of the assistants. Be as objective as "
    "possible. After providing your explanation, output your final verdict by strictly following this format: "
    "\"[[A]]\" if assistant A is better, \"[[B]]\" if assistant B is better, and \"[[C]]\" for a tie.")

#: MT-Bench's "pair-v2" user turn.
JUDGE_PROMPT_TEMPLATE = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]")

_VERDICT_RX = re.compile(r"\[\[\s*([ABC])\s*\]\]")

_MAP: dict[Order, dict[str, Verdict]] = {
    "strong_first": {"A": "strong", "B": "weak", "C": "tie"},
    "strong_second": {"A": "weak", "B": "strong", "C": "tie"},
}


def parse_verdict(text: str) -> RawVerdict | None:
    """The judge's final verdict: the *last* ``[[A]]``, ``[[B]]`` or ``[[C]]`` in ``text``
    (judges quote the format while explaining), or ``None`` when there is none."""
    found = _VERDICT_RX.findall(text or "")
    return found[-1] if found else None  # type: ignore[return-value]


def judge_messages(prompt: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
    """The chat a judge is asked for one order."""
    return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT},
            {"role": "user", "content": JUDGE_PROMPT_TEMPLATE.format(question=prompt, answer_a=answer_a,
                                                                     answer_b=answer_b)}]


def call_cost(prices: PriceTable, client: ChatClient, model: str | None, usage: Usage | None) -> float | None:
    """USD of one call: priced under the model that answered (a dated snapshot resolves
    to its family) or else the client's model; ``None`` when unpriced or no usage came back."""
    if usage is None:
        return None
    if model and model != client.model:
        cost = prices.cost(model, usage, client.provider, warn=False)
        if cost is not None:
            return cost
    return prices.cost(client.model, usage, client.provider)


@dataclass(frozen=True)
class JudgeCall:
    """One order's judgment: the raw verdict (about positions A/B) and what it means."""

    order: Order
    raw: RawVerdict | None
    verdict: Verdict | None  # mapped back to strong/weak/tie; None when unparsable
    text: str
    model: str
    usage: Usage | None
    cost_usd: float | None


def judge_call(order: Order, completion: Completion, cost_usd: float | None) -> JudgeCall:
    """Read one order's completion."""
    raw = parse_verdict(completion.text)
    return JudgeCall(order, raw, _MAP[order][raw] if raw else None, completion.text, completion.model,
                     completion.usage, cost_usd)


@dataclass(frozen=True)
class JudgeResult:
    """Both orders and the verdict they give together."""

    verdict: Verdict | None  # None: an order held no readable verdict (never a tie)
    strong_first: JudgeCall
    strong_second: JudgeCall

    @property
    def readable(self) -> bool:
        """Both orders named a verdict, so the pair has one."""
        return self.verdict is not None

    @property
    def unparsable_text(self) -> str | None:
        """The first order's text that held no verdict (``None`` when both were read)."""
        for call in (self.strong_first, self.strong_second):
            if call.verdict is None:
                return call.text
        return None

    @property
    def position_disagreement(self) -> bool:
        """Both orders were read and named different winners (position bias, or a coin flip)."""
        a, b = self.strong_first.verdict, self.strong_second.verdict
        return a is not None and b is not None and a != b

    @property
    def n_unparsable(self) -> int:
        return (self.strong_first.verdict is None) + (self.strong_second.verdict is None)

    @property
    def cost_usd(self) -> float | None:
        """Both calls' cost; ``None`` when either is unpriced."""
        costs = (self.strong_first.cost_usd, self.strong_second.cost_usd)
        return None if None in costs else sum(c for c in costs if c is not None)


def combine_orders(strong_first: JudgeCall, strong_second: JudgeCall) -> JudgeResult:
    """The verdict both orders agree on; a tie when they disagree; ``None`` (no verdict,
    not a tie) when either is unparsable."""
    a, b = strong_first.verdict, strong_second.verdict
    verdict: Verdict | None
    if a is None or b is None:
        verdict = None
    else:
        verdict = a if a == b else "tie"
    return JudgeResult(verdict, strong_first, strong_second)


async def judge_pair(judge: ChatClient, prompt: str, strong_answer: str, weak_answer: str, *,
                     max_tokens: int = 1024, prices: PriceTable | None = None) -> JudgeResult:
    """Ask ``judge`` both orders (concurrently) and combine them. Raises whatever the
    judge's client raises (no half result). The result's ``verdict`` is ``None`` when an
    order could not be read: store no label for it."""
    table = prices if prices is not None else PriceTable.default()

    async def one(order: Order) -> JudgeCall:
        a, b = (strong_answer, weak_answer) if order == "strong_first" else (weak_answer, strong_answer)
        completion = await judge.complete(judge_messages(prompt, a, b), max_tokens=max_tokens)
        return judge_call(order, completion, call_cost(table, judge, completion.model, completion.usage))

    first, second = await asyncio.gather(one("strong_first"), one("strong_second"))
    return combine_orders(first, second)
