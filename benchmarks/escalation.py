"""Escalation on a structured-output workload: how often the cheap model's answer is
re-sent up, and what the cascade costs against always calling the strong model.

    python benchmarks/escalation.py                        # 400 calls, 15% invalid JSON from the cheap model
    python benchmarks/escalation.py --calls 1000 --invalid 0.3 --stream

The backends are ``ChatOpenAI`` clients over real HTTP to the local OpenAI-format server
(``routellm_integrations.testing.openai_compat``), which answers every structured-output
request with schema-valid JSON except for a seeded share (``--invalid``) of the cheap
model's answers, which it breaks in one of three ways: truncated JSON, a wrong type, a
missing field (by tool calling: arguments of the wrong type, a missing field, or no tool
call at all). ``RoutedChat(models={gpt-4o, gpt-4o-mini}, cost_weight=1e9,
escalate_if=True)`` sends every call to the cheap model first (the cascade alone is
measured; N-way choice is measured by ``nway_aiq.py``). Tokens are the server's count,
priced at list prices (gpt-4o $2.50/$10.00, gpt-4o-mini $0.15/$0.60 per 1M tokens).

Printed: the share of calls escalated, the share of final answers that validate, the
cascade's cost per call against always-strong and always-cheap (on the same prompts),
and the median added latency of an escalated call (two round trips).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time

from pydantic import BaseModel, Field


class Invoice(BaseModel):
    """Fields extracted from an invoice."""

    vendor: str = Field(description="who issued it")
    total: float = Field(description="the amount due")
    currency: str = Field(description="ISO 4217 code")
    line_items: int = Field(description="how many lines it has")


def prompts(n: int) -> list[str]:
    vendors = ["Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises"]
    return [f"Extract the invoice fields: invoice #{1000 + i} from {vendors[i % len(vendors)]}, "
            f"{(i % 9) + 1} line items, total {(i * 37) % 5000 + 12.5:.2f} {'EUR' if i % 3 else 'USD'}. "
            + "Notes: " + " ".join(["net 30 days"] * (i % 5)) for i in range(n)]


def broken(i: int) -> str:
    return ['{"vendor": "Acme", "total": 12', '{"vendor": "Acme", "total": "twelve", "currency": "USD", '
            '"line_items": 2}', '{"vendor": "Acme", "currency": "USD"}'][i % 3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=400)
    ap.add_argument("--invalid", type=float, default=0.15, help="share of the cheap model's answers that fail")
    ap.add_argument("--stream", action="store_true", help="also run the workload streamed (native json_schema)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from langchain_openai import ChatOpenAI

    from langchain_routellm import RoutedChat
    from routellm_integrations.costs import PriceTable, Usage
    from routellm_integrations.testing.openai_compat import OpenAICompatServer, Reply

    prices = PriceTable({"openai": {"gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}})
    server = OpenAICompatServer().start()

    def fails(prompt: str) -> bool:
        h = int.from_bytes(hashlib.blake2b(f"{args.seed}:{prompt}".encode(), digest_size=8).digest(), "little")
        return h / 2**64 < args.invalid

    def responder(turn):  # the cheap model breaks a seeded share of its structured answers
        if turn.model != "gpt-4o-mini" or not fails(turn.last_user_text):
            return None
        i = len(turn.last_user_text)
        if turn.tools:  # structured output by a forced tool call: bad arguments, or no call at all
            bad = [{"vendor": "Acme", "total": "twelve", "currency": "USD", "line_items": 2},
                   {"vendor": "Acme", "currency": "USD"}]
            return Reply(text="Here are the fields.") if i % 3 == 0 else Reply(
                tool_calls=[{"name": turn.tools[0]["name"], "args": bad[i % 2]}])
        return Reply(text=broken(i))

    server.chat.responder = responder

    def client(model: str) -> ChatOpenAI:
        return ChatOpenAI(model=model, base_url=server.base_url, api_key="sk-bench", max_retries=0, stream_usage=True)

    def run(method: str, stream: bool) -> dict:
        llm = RoutedChat(models={"gpt-4o": client("gpt-4o"), "gpt-4o-mini": client("gpt-4o-mini")}, prices=prices,
                         cost_weight=1e9, escalate_if=True)
        structured = llm.with_structured_output(Invoice, method=method, include_raw=True)
        server.chat.usage.clear()
        valid, escalated_ms, plain_ms = 0, [], []
        for p in prompts(args.calls):
            t0 = time.perf_counter()
            if stream:
                out = None
                for out in structured.stream(p):
                    pass
            else:
                out = structured.invoke(p)
            ms = (time.perf_counter() - t0) * 1000
            valid += isinstance(out, dict) and isinstance(out.get("parsed"), Invoice)
            meta = (out["raw"].response_metadata or {}).get("routellm", {}) if isinstance(out, dict) else {}
            (escalated_ms if meta.get("escalated_from") else plain_ms).append(ms)
        s = llm.ledger.summary()
        usage = list(server.chat.usage)
        strong_cost = sum(prices.cost("gpt-4o", Usage(u["input_tokens"], u["output_tokens"]), "openai")
                          for u in usage if u["model"] == "gpt-4o-mini")  # the same prompts, always strong
        return {"escalated": s["escalated_calls"] / args.calls, "valid": valid / args.calls,
                "cost": s["cost_usd"] / args.calls, "strong": strong_cost / args.calls,
                "cheap_only": s["by_route"]["gpt-4o-mini"]["cost_usd"] / args.calls,
                "ms_plain": statistics.median(plain_ms) if plain_ms else float("nan"),
                "ms_escalated": statistics.median(escalated_ms) if escalated_ms else float("nan")}

    modes = [("function_calling", False), ("json_schema", False)] + ([("json_schema", True)] if args.stream else [])
    print(f"{args.calls} calls, cheap model breaks {args.invalid:.0%} of its structured answers (seed {args.seed})")
    print(f"{'method':22} {'escalated':>9} {'valid':>6} {'$/call cascade':>15} {'always strong':>14} "
          f"{'cascade/strong':>15} {'ms plain':>9} {'ms escalated':>13}")
    for method, stream in modes:
        r = run(method, stream)
        label = method + (" (stream)" if stream else "")
        print(f"{label:22} {r['escalated']:9.1%} {r['valid']:6.1%} {r['cost']:15.7f} {r['strong']:14.7f} "
              f"{r['cost'] / r['strong']:15.3f} {r['ms_plain']:9.1f} {r['ms_escalated']:13.1f}")
    server.stop()


if __name__ == "__main__":
    main()
