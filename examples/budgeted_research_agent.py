"""A multi-step research agent under a spend budget.

A LangChain `create_agent` agent with three tools answers several research questions in
one thread. `RoutedChat` routes each user turn with the shipped `mf` router, keeps the
turn's backend for its tool-calling steps, and holds a per-thread cap on total spend:
each call reserves the most it can cost (its input, plus `max_tokens` of output) before
it runs, so the cap holds however many calls are in flight. Once less than
`tighten_below` of the cap is left, the router must be more confident before it picks
the strong model; a strong call that no longer fits goes weak. Each step prints its
route, the threshold in force and the spend so far.

With OPENAI_API_KEY set it uses gpt-4o / gpt-4o-mini; without, it runs offline against
the local OpenAI-format server shipped in `routellm_integrations.testing`, whose scripted
model calls the tool a question names and then reports the tool's result.

    python examples/budgeted_research_agent.py [--budget 0.01]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import math
import operator
import os
from typing import Iterator

from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from langchain_routellm import RoutedChat
from routellm_integrations import Budget

QUESTIONS = [
    "Use search_notes to find what our notes say about transformer attention, then summarise the key equations.",
    "Use calculator to compute 12 * 7 + 3 for the budget table.",
    "Use search_notes on mixture-of-experts routing and compare it with dense models, with a proof sketch "
    "of why top-2 gating keeps the expected compute constant.",
    "Use word_count on 'the quick brown fox' for the report.",
    "Use search_notes to find the RouteLLM paper's cost savings and derive the break-even strong-call share.",
]


MAX_TOKENS = 256


@tool
def search_notes(topic: str) -> str:
    """Search the team's research notes for a topic."""
    return f"3 notes mention {topic!r}"


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
MAX_EXPRESSION_CHARS = 200
MAX_RESULT_BITS = 1024  # ~308 digits: a power that would exceed it is refused before it is computed


def arithmetic(expression: str) -> int | float:
    """The value of ``expression`` (numbers, ``+ - * / // % **``, unary minus, parentheses),
    parsed with :mod:`ast` and evaluated node by node, never with ``eval``: a model's tool
    input is untrusted. Anything else, or a result above ``MAX_RESULT_BITS`` (``9**9**9``
    is refused from its exponent, not computed), raises ``ValueError`` saying why."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"not an arithmetic expression: {exc}") from None
    return _value(tree.body)


def _value(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        too_big = f"{ast.unparse(node)} is too large (the limit is {MAX_RESULT_BITS} bits)"
        if isinstance(node.op, ast.Pow) and abs(left) > 1 and abs(right) * math.log2(abs(left)) > MAX_RESULT_BITS:
            raise ValueError(too_big)
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ValueError(f"{ast.unparse(node)} divides by zero") from None
        except OverflowError:
            raise ValueError(too_big) from None
        if isinstance(result, complex):
            raise ValueError(f"{ast.unparse(node)} is not a real number")
        if (isinstance(result, int) and result.bit_length() > MAX_RESULT_BITS) or not math.isfinite(result):
            raise ValueError(too_big)
        return result
    raise ValueError(f"{ast.unparse(node)!r} is not allowed: only numbers, + - * / // % **, unary minus "
                     "and parentheses")


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression: numbers, + - * / // % **, parentheses."""
    try:
        return str(arithmetic(expression))
    except ValueError as exc:
        return f"refused: {exc}"


@tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


@contextlib.contextmanager
def backends() -> Iterator[tuple[ChatOpenAI, ChatOpenAI]]:
    if os.environ.get("OPENAI_API_KEY"):
        yield ChatOpenAI(model="gpt-4o"), ChatOpenAI(model="gpt-4o-mini")
        return
    from routellm_integrations.testing import OpenAICompatServer

    with OpenAICompatServer() as server:
        yield (ChatOpenAI(model="gpt-4o", base_url=server.base_url, api_key="offline", stream_usage=True),
               ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url, api_key="offline", stream_usage=True))


def run(budget_usd: float, router: str = "mf", thread: str = "research-1") -> list[dict]:
    """Answer QUESTIONS in one thread under the budget; returns one row per model step."""
    rows: list[dict] = []
    with backends() as (strong, weak):
        # max_tokens bounds each answer, and so what the budget reserves for a call in flight
        llm = RoutedChat(strong=strong, weak=weak, router=router, threshold=0.45, max_tokens=MAX_TOKENS,
                         budget=Budget(max_usd=budget_usd, on_exhausted="weak", tighten_below=0.9))
        agent = create_agent(llm, tools=[search_notes, calculator, word_count], checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": thread}}
        seen = 0
        for i, question in enumerate(QUESTIONS, 1):
            result = agent.invoke({"messages": [("user", question)]}, config=config)
            steps = [m for m in result["messages"] if m.type == "ai"][seen:]
            seen += len(steps)
            for step in steps:
                info = step.response_metadata["routellm"]
                rows.append({"turn": i, "route": info["route"], "model": info["model"],
                             "threshold": info["threshold"], "step_policy": info["step_policy"],
                             "cost_usd": info["cost_usd"], "spent_usd": info["budget"]["spent_usd"],
                             "tool_calls": [c["name"] for c in step.tool_calls]})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=0.01, help="USD cap for the thread (default: $0.01)")
    ap.add_argument("--router", default="mf")
    args = ap.parse_args(argv)
    rows = run(args.budget, args.router)
    print(f"budget ${args.budget:.4f} for the thread; router {args.router}")
    print(f"{'turn':>4} {'route':6} {'model':12} {'threshold':>9} {'step policy':18} {'cost':>10} {'spent':>10}  tools")
    for r in rows:
        print(f"{r['turn']:4d} {r['route']:6} {r['model']:12} {r['threshold']:9.3f} {r['step_policy']:18} "
              f"${r['cost_usd']:.6f} ${r['spent_usd']:.6f}  {', '.join(r['tool_calls']) or '-'}")
    strong = sum(r["cost_usd"] for r in rows if r["route"] == "strong")
    print(f"spent ${rows[-1]['spent_usd']:.6f} (strong ${strong:.6f}) of ${args.budget:.6f}; strong steps: "
          f"{sum(r['route'] == 'strong' for r in rows)}/{len(rows)}. A strong call that no longer fits goes weak "
          "(on_exhausted='weak'; a call that does not fit even weak raises BudgetExceeded, as every call does "
          "under 'raise')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
