"""``routellm route`` and ``routellm demo``: decisions for prompts, with no model called."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Annotated, Optional

import typer

from .common import UNIT, Command, Router, StrongModel, WeakModel, _help, _load, _model_names, app

DEMO_PROMPTS = [
    "Hi! How are you today?",
    "What is the capital of Australia?",
    "Translate 'good morning' into French.",
    "Write a haiku about autumn leaves.",
    "Give me three tips for a job interview.",
    "A train leaves at 3:15 pm and travels 210 km at 84 km/h. When does it arrive? Show your work.",
    "Prove that there are infinitely many primes p such that p = 3 (mod 4).",
    "Write a Python function that returns the longest palindromic substring of a string in O(n^2) time, with tests.",
    "Implement an LRU cache in Rust with O(1) get and put, and explain the ownership issues.",
    "Solve for x: 3x^2 - 12x + 9 = 0, and explain each step.",
    "Summarise the causes of the French Revolution in two sentences.",
    "Design a distributed rate limiter for an API gateway handling 1M requests/s; discuss consistency trade-offs.",
]


def _stdin_lines() -> Iterator[str]:
    """Non-blank lines of stdin, decoded as argv is (a byte that is not UTF-8 becomes a lone
    surrogate, routed like any other character, rather than a decoding error)."""
    raw = getattr(sys.stdin, "buffer", None)
    lines = (b.decode("utf-8", "surrogateescape") for b in raw) if raw is not None else sys.stdin
    for line in lines:
        line = line.rstrip("\r\n")
        if line.strip():
            yield line


@app.command(cls=Command, **_help(
    "Score prompts and print one JSON decision per prompt.\n\n"
    "Each decision has the route, the score, the model it picks and latency_ms, the time that "
    "prompt's own scoring took. A PROMPT of '-' reads prompts from stdin, one per line (blank lines "
    "are skipped); a prompt that starts with '-' goes after '--'.",
    'routellm route "What is 2+2?" --router mf',
    'routellm route "What is 2+2?" --router mf --threshold 0.6',
    'routellm route --router length "Hi!" "Prove that sqrt(2) is irrational."',
    "cat prompts.txt | routellm route - --router mf",
    'routellm route --router mf -- "-1 squared is?"'))
def route(prompts: Annotated[list[str], typer.Argument(help="The prompts; '-' reads them from stdin.",
                                                       show_default=False, metavar="PROMPT")],
          router: Router = "mf", strong_model: StrongModel = None, weak_model: WeakModel = None,
          threshold: Annotated[Optional[float], typer.Option(
              **UNIT, help="Route strong when score >= this (0 to 1).",
              show_default="the threshold that sends 30% of the reference mix strong")] = None) -> None:
    from ..calibration import reference_threshold
    from ..errors import InvalidPromptError
    from ..policy import DEFAULT_STRONG_FRACTION
    from ..routers.registry import is_model_free

    for i, p in enumerate(prompts, 1):
        if p != "-" and not p.strip():
            raise InvalidPromptError(f"prompt {i} is empty")
    r = _load(router, strong_model, weak_model)
    strong, weak = _model_names(r, strong_model, weak_model)
    if not is_model_free(router):
        r.score(["warm up"])  # embedders load lazily: the first prompt's latency is its own, not the load's
    if threshold is None:
        threshold = reference_threshold(r, DEFAULT_STRONG_FRACTION)
    n = 0
    for prompt in (line for p in prompts for line in (_stdin_lines() if p == "-" else [p])):
        d = r.route(prompt, threshold)
        print(json.dumps({**d.model_dump(), "model": strong if d.route == "strong" else weak}), flush=True)
        n += 1
    if n == 0:
        raise InvalidPromptError("no prompts: stdin held only blank lines")


@app.command(cls=Command, **_help(
    "Route a dozen sample prompts offline and print the decisions.",
    "routellm demo", "routellm demo --router length --threshold 0.3"))
def demo(router: Router = "mf", strong_model: StrongModel = None, weak_model: WeakModel = None,
         threshold: Annotated[Optional[float], typer.Option(
             **UNIT, help="Route strong when score >= this.",
             show_default="the threshold that sends 30% of the reference mix strong")] = None) -> None:
    from ..calibration import reference_threshold
    from ..policy import DEFAULT_STRONG_FRACTION

    print(f"Loading the {router!r} router (bundled checkpoint and embedding model, offline)...", flush=True)
    r = _load(router, strong_model, weak_model)
    strong, weak = _model_names(r, strong_model, weak_model)
    t = threshold if threshold is not None else reference_threshold(r, DEFAULT_STRONG_FRACTION)
    print(f"router={r.name} strong={strong} weak={weak} threshold={t:.3f}\n")
    print(f"{'route':6}  {'score':>5}  {'model':28}  prompt")
    n_strong = 0
    for prompt, d in zip(DEMO_PROMPTS, r.route_batch(DEMO_PROMPTS, t)):
        n_strong += d.route == "strong"
        model = strong if d.route == "strong" else weak
        text = prompt if len(prompt) <= 70 else prompt[:67] + "..."
        print(f"{d.route:6}  {d.score:5.3f}  {model:28}  {text}")
    print(f"\n{n_strong}/{len(DEMO_PROMPTS)} prompts routed to {strong}.")
