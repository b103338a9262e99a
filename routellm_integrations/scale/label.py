"""Judge-labelling a large traffic log, locally or on Ray Data (``routellm label --engine ray``).

Every worker labels its batches with :func:`~routellm_integrations.labels.label_prompts`
into the same SQLite label store (WAL: several processes may write it), so a crashed run
resumes from the store exactly as a local one does. Workers build their own clients from
a :class:`ClientSpec`, which names the environment variable holding the API key, never the
key itself: nothing secret travels through Ray's object store. A dollar cap is split
evenly between the workers (each keeps its own budget across its batches), so the run
spends at most the cap plus one prompt per worker.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import DataError
from .engines import BatchFn, Row, map_log


@dataclass(frozen=True)
class ClientSpec:
    """How a worker builds one chat client: provider, model, server, key variable."""

    provider: Literal["openai", "anthropic"]
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None

    def build(self) -> Any:
        from ..labels import AnthropicChatClient, MissingCredentialsError, OpenAIChatClient

        env = self.api_key_env or ("ANTHROPIC_API_KEY" if self.provider == "anthropic" else "OPENAI_API_KEY")
        key = os.environ.get(env)
        if not key:
            raise MissingCredentialsError(f"no API key: set the environment variable {env} (or name another one "
                                          "with --api-key-env)")
        cls = AnthropicChatClient if self.provider == "anthropic" else OpenAIChatClient
        return cls(self.model, base_url=self.base_url, api_key=key, temperature=self.temperature)


class LogLabeller:
    """A picklable factory: per worker, the clients, the store and its share of the budget."""

    def __init__(self, store: str | os.PathLike[str], strong: ClientSpec, weak: ClientSpec, judge: ClientSpec,
                 max_usd: float | None, concurrency: int, max_answer_tokens: int) -> None:
        self.store, self.strong, self.weak, self.judge = str(store), strong, weak, judge
        self.max_usd, self.concurrency, self.max_answer_tokens = max_usd, concurrency, max_answer_tokens

    def __call__(self) -> BatchFn:
        from ..budgets import Budget
        from ..labels import label_prompts
        from ..labels import LabelStore

        from ..labels.labelling import LabellingReport

        store = LabelStore(self.store)
        clients = [self.strong.build(), self.weak.build(), self.judge.build()]
        left = {"usd": self.max_usd}  # this worker's share, carried across its batches

        def label(rows: list[Row]) -> list[Row]:
            prompts = [r["prompt"] for r in rows]
            if left["usd"] is not None and left["usd"] <= 0:
                report = LabellingReport(strong_model=clients[0].model, weak_model=clients[1].model,
                                         judge_model=clients[2].model, source=f"judge:{clients[2].model}",
                                         n_prompts=len(prompts), n_unlabelled_budget=len(prompts))
            else:
                budget = Budget(max_usd=left["usd"]) if left["usd"] is not None else None
                report = label_prompts(prompts, strong=clients[0], weak=clients[1], judge=clients[2], store=store,
                                       budget=budget, concurrency=self.concurrency,
                                       max_answer_tokens=self.max_answer_tokens, progress=False)
                if left["usd"] is not None:
                    left["usd"] -= report.cost_usd
            out: list[Row] = [{} for _ in rows]
            out[-1] = {"report": report.model_dump_json()}  # one report per batch, on its last row
            return out

        return label


def merge_reports(reports: list[Any]) -> Any:
    """Batch reports of one run as one: counts and costs summed."""
    from ..labels.labelling import LabellingReport

    if not reports:
        raise DataError("the log held no prompts")
    first = reports[0]
    total = first.model_copy(deep=True)
    for r in reports[1:]:
        for field in ("n_prompts", "n_duplicates", "n_labelled", "n_already_labelled", "n_resumed_steps",
                      "n_paid_calls", "n_unlabelled_budget", "n_failed", "position_disagreements",
                      "n_unparsable_verdicts", "cost_usd"):
            setattr(total, field, getattr(total, field) + getattr(r, field))
        total.verdicts = {k: total.verdicts.get(k, 0) + v for k, v in r.verdicts.items()}
        total.cost_by_role = {k: total.cost_by_role.get(k, 0.0) + v for k, v in r.cost_by_role.items()}
        total.unpriced = total.unpriced or r.unpriced
        total.unpriced_models = sorted(set(total.unpriced_models) | set(r.unpriced_models))
        total.first_error = total.first_error or r.first_error
    assert isinstance(total, LabellingReport)
    return total


def label_log(log: str | os.PathLike[str], *, store: str | os.PathLike[str], strong: ClientSpec, weak: ClientSpec,
              judge: ClientSpec | None = None, engine: Literal["local", "ray"] = "local",
              num_workers: int | None = None, max_usd: float | None = None, concurrency: int = 8,
              max_answer_tokens: int = 1024, batch_size: int = 64) -> Any:
    """Label every prompt of a JSONL/CSV log (field ``prompt``) into ``store``; returns
    the merged :class:`~routellm_integrations.labels.labelling.LabellingReport` (with
    ``max_usd`` the whole run's cap)."""
    if max_usd is not None and not max_usd > 0:
        raise DataError(f"max_usd must be a positive number of USD, got {max_usd}")
    workers = 1 if engine == "local" else (num_workers or os.cpu_count() or 1)
    share = None if max_usd is None else max_usd / workers
    factory = LogLabeller(Path(store).resolve(), strong, weak, judge or strong, share, concurrency,
                          max_answer_tokens)
    reports = []
    from ..labels.labelling import LabellingReport

    for row in map_log(log, factory, engine=engine, batch_size=batch_size, num_workers=num_workers):
        if "report" in row:
            reports.append(LabellingReport.model_validate(json.loads(row["report"])))
    total = merge_reports(reports)
    total.max_usd = max_usd
    return total
