"""``routellm label``: judge labels for your prompts, concurrent, budgeted and resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from .common import Command, Engine, PromptsFile, Quiet, Workers, _help, app, read_prompts


def _label_spec(provider: str, model: str, base_url: str | None, key_env: str | None, *,
                temperature: float | None = None):
    from ..scale.label import ClientSpec

    return ClientSpec(provider, model, base_url, key_env, temperature)  # type: ignore[arg-type]


@app.command(cls=Command, **_help(
    "Label your prompts: a judge model compares both backends' answers (both orders), into a label store.\n\n"
    "Prints the report as JSON, and a one-line summary on stderr (judged prompts: parsed verdicts, "
    "ties, unparsable). A judgment without [[A]], [[B]] or [[C]] is never a tie and never stored: the "
    "prompt stays unlabelled. Exit status 1 when some prompts failed or got no readable verdict (they "
    "are in the report, and a rerun retries only them, reusing the answers already paid for); when "
    "most verdicts are unreadable the run stops early with an error showing one example. A missing "
    "API key or an unpriceable --max-usd fails before any call.",
    "routellm label --prompts mine.jsonl --store labels.sqlite --strong-model gpt-4o --weak-model gpt-4o-mini",
    "routellm label --prompts log.jsonl --store labels.sqlite --strong-model gpt-4o --weak-model gpt-4o-mini "
    "--engine ray --workers 8 --max-usd 5"))
def label(prompts: PromptsFile,
          store: Annotated[Path, typer.Option(help="The SQLite label store to write (created if missing).",
                                              dir_okay=False, show_default=False)],
          strong_model: Annotated[str, typer.Option(help="The strong model.", show_default=False)],
          weak_model: Annotated[str, typer.Option(help="The weak model.", show_default=False)],
          judge: Annotated[Optional[str], typer.Option(help="The judge model.",
                                                       show_default="the strong model")] = None,
          base_url: Annotated[Optional[str], typer.Option(help="An OpenAI-compatible server.",
                                                          show_default="the SDK's")] = None,
          provider: Annotated[Literal["openai", "anthropic"], typer.Option(
              help="The API the models are called through.")] = "openai",
          api_key_env: Annotated[Optional[str], typer.Option(
              help="Environment variable holding the API key.",
              show_default="OPENAI_API_KEY / ANTHROPIC_API_KEY")] = None,
          max_usd: Annotated[Optional[float], typer.Option(help="Cap on what this run spends, in USD.",
                                                           show_default="no cap")] = None,
          concurrency: Annotated[int, typer.Option(min=1, help="Prompts labelled at once.")] = 8,
          max_answer_tokens: Annotated[int, typer.Option(min=1, help="Output cap of each backend answer.")] = 1024,
          battles_out: Annotated[Optional[Path], typer.Option(
              help="Also write the pair's labels as a battles .jsonl file.", dir_okay=False,
              show_default=False)] = None,
          engine: Engine = "local", workers: Workers = None, quiet: Quiet = False) -> None:
    from ..budgets import Budget
    from ..errors import BudgetConfigError, JudgeVerdictError
    from ..labels import export_battles, label_prompts
    from ..labels import LabelStore

    if max_usd is not None and not (max_usd > 0 and max_usd != float("inf")):
        raise BudgetConfigError(f"--max-usd must be a positive number of USD, got {max_usd}")
    specs = [_label_spec(provider, strong_model, base_url, api_key_env),
             _label_spec(provider, weak_model, base_url, api_key_env),
             _label_spec(provider, judge or strong_model, base_url, api_key_env,
                         temperature=0.0)]  # MT-Bench judges at temperature 0
    strong, weak, judge_client = (spec.build() for spec in specs)  # a missing key fails here, before any work
    texts = read_prompts(prompts) if engine == "local" else None  # a bad file fails before the store is made
    with LabelStore(store) as labels:
        if texts is None:  # a large log: Ray Data workers label batches into the same store
            from ..scale.label import label_log

            report = label_log(prompts, store=store, strong=specs[0], weak=specs[1], judge=specs[2],
                               engine="ray", num_workers=workers, max_usd=max_usd,
                               concurrency=concurrency, max_answer_tokens=max_answer_tokens)
        else:
            budget = Budget(max_usd=max_usd) if max_usd is not None else None
            try:
                report = label_prompts(texts, strong=strong, weak=weak, judge=judge_client, store=labels,
                                       budget=budget, concurrency=concurrency, max_answer_tokens=max_answer_tokens,
                                       progress=not quiet)
            except JudgeVerdictError as exc:  # the report still goes out, then the error line
                if exc.report is not None:
                    print(exc.report.model_dump_json(indent=2))  # type: ignore[attr-defined]
                raise
        print(report.model_dump_json(indent=2))
        if not quiet:
            typer.echo(f"routellm label: {report.summary()}", err=True)
        if battles_out:
            n = export_battles(labels, battles_out, strong_model, weak_model)
            if not quiet:
                typer.echo(f"routellm label: wrote {n} battles to {battles_out}", err=True)
    if report.n_failed or report.n_unparsable:
        raise typer.Exit(1)
