"""The most one paid step can cost, reserved against a budget before it is made.

Shared by judge labelling and shadow sampling so both keep the same promise: spend passes
the cap by less than one step's bound. Every input byte counts as a token (BPE tokens are
at least a byte) plus per-message and per-call overheads; output counts at its cap.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..costs import PriceTable
from .judge import JUDGE_PROMPT_TEMPLATE, JUDGE_SYSTEM_PROMPT

MSG_OVERHEAD_TOKENS = 8   # role markers and separators per message (OpenAI's are 3-4)
CALL_OVERHEAD_TOKENS = 16


def tokens_bound(messages_text: Iterable[str]) -> int:
    texts = list(messages_text)
    return sum(len(t.encode("utf-8", "surrogatepass")) + MSG_OVERHEAD_TOKENS for t in texts) + CALL_OVERHEAD_TOKENS


def usd_bound(prices: PriceTable, client: Any, input_tokens: int, output_tokens: int) -> float:
    """``client`` is anything with ``model`` and ``provider`` (a ChatClient, a Backend);
    an unpriced model bounds at 0 (a dollar budget refuses unpriced models up front)."""
    price = prices.price(client.model, client.provider, warn=False)
    if price is None:
        return 0.0
    return (input_tokens * price.input + output_tokens * price.output) / 1_000_000


def answer_bound(prices: PriceTable, client: Any, prompt: str, max_answer_tokens: int) -> float:
    return usd_bound(prices, client, tokens_bound([prompt]), max_answer_tokens)


def judge_bound(prices: PriceTable, judge: Any, prompt: str, strong_text: str | None, weak_text: str | None, *,
                max_answer_tokens: int, judge_max_tokens: int) -> float:
    """One judge order's bound; an answer not seen yet counts as ``max_answer_tokens``."""
    frame = tokens_bound([JUDGE_SYSTEM_PROMPT, JUDGE_PROMPT_TEMPLATE.format(question=prompt, answer_a="",
                                                                              answer_b="")])
    answers = sum(len(t.encode("utf-8", "surrogatepass")) if t is not None else max_answer_tokens
                  for t in (strong_text, weak_text))
    return usd_bound(prices, judge, frame + answers, judge_max_tokens)
