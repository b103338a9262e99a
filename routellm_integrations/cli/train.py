"""``routellm train NAME``: one command per trainable router, its options generated from the
trainer's config."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .common import Command, InputFile, Quiet, _help, app

#: a trainer config's field -> its flag, where the flag is older than the field's name
_FLAG_OF_FIELD = {"n_tiers": "tiers"}


def _switch(field: str, annotation: Any) -> tuple[str]:
    """The option's name; a boolean gets its ``--no-`` form too (a default of True can be turned off)."""
    flag = _flag(field)
    return (f"{flag}/--no-{flag[2:]}",) if annotation is bool else (flag,)


def _flag(field: str) -> str:
    return "--" + _FLAG_OF_FIELD.get(field, field).replace("_", "-")


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:] + "."


def _train_command(name: str) -> Callable[..., None]:
    """``routellm train NAME``: the common options, then one option per field of the
    trainer's config (its description is the help, its default is shown), so a new
    trainer gets its command from its config alone."""
    from ..training.pipeline import DEFAULT_SOURCES
    from ..training.registry import TRAINERS

    spec = TRAINERS[name]
    fields = {f: info for f, info in spec.config.model_fields.items() if f != "seed"}
    takes_embedder = isinstance(spec.default_embedder, str)

    def command(**kw: Any) -> None:
        from ..training import pipeline

        options = {f: kw.pop(f) for f in fields}
        extra = {k: kw.pop(k) for k in spec.embedder_options if kw.get(k) is not None}
        sources = kw["sources"]
        chosen = DEFAULT_SOURCES if sources is None else tuple(s for s in sources if s != "none")
        config = pipeline.build_config(spec, None, kw["seed"], label=_flag, **options)  # a bad value names its flag
        # train() checks every other argument, then the data folder, before reading any data
        pipeline.train(spec, out=kw["out"], data_dir=kw["data_dir"], sources=chosen, battles_files=kw["battles"] or (),
                       scores_files=kw["scores"] or (),
                       seed=kw["seed"], max_prompts_per_source=kw["max_prompts_per_source"],
                       embedder=kw.get("embedder"), config=config, evaluate=not kw["no_evaluate"],
                       validate=not kw["no_validate"], progress=not kw["quiet"], **extra)

    P = inspect.Parameter
    params = [
        P("out", P.KEYWORD_ONLY, annotation=Annotated[Path, typer.Option(
            help="Checkpoint folder to write.", file_okay=False, show_default=False)]),
        P("data_dir", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[Path], typer.Option(
            help="The data folder.", show_default="$ROUTELLM_DATA_DIR", exists=True, file_okay=False)]),
        P("sources", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[list[str]], typer.Option(
            help="Public training sources, one or more after the flag; add alpaca_eval for judge data; 'none' "
                 "to train on --battles/--scores only.", show_default=" ".join(DEFAULT_SOURCES),
            metavar="SOURCE...")]),
        P("battles", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[list[Path]], typer.Option(
            help="Your own battles: CSV/JSONL files with prompt, model_a, model_b, winner (a|b|tie).",
            show_default=False, metavar="FILE...", **InputFile)]),
        P("scores", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[list[Path]], typer.Option(
            help="Graded answers of your own traffic: CSV/JSONL files with prompt, model, score (0..1); the "
                 "quality router learns which model gets your prompts right, other routers the battles they imply.",
            show_default=False, metavar="FILE...", **InputFile)]),
        P("seed", P.KEYWORD_ONLY, default=0, annotation=Annotated[int, typer.Option(min=0, help="Random seed.")]),
        P("max_prompts_per_source", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[int], typer.Option(
            min=1, help="Subsample each source (for quick runs and tests).", show_default="all")]),
    ]
    if takes_embedder:
        params.append(P("embedder", P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[str], typer.Option(
            help="Embedding space the router is trained and served in.", show_default=spec.default_embedder)]))
    for option, default in spec.embedder_options.items():
        params.append(P(option, P.KEYWORD_ONLY, default=None, annotation=Annotated[Optional[type(default)],
                        typer.Option(help=f"Option of the default feature extractor ({option}).",
                                     show_default=str(default))]))
    for field, info in fields.items():
        shown = info.default if info.default is not None else "none"
        if isinstance(shown, (list, tuple)):
            shown = " ".join(map(str, shown)) or "none"
        # an option left out is None: the config's own default stands
        params.append(P(field, P.KEYWORD_ONLY, default=None, annotation=Annotated[
            Optional[info.annotation], typer.Option(*_switch(field, info.annotation),
                                                       help=_sentence(info.description or field),
                                                       show_default=str(shown))]))
    params += [
        P("no_evaluate", P.KEYWORD_ONLY, default=False, annotation=Annotated[bool, typer.Option(
            "--no-evaluate", help="Skip the benchmark evaluation in the model card.")]),
        P("no_validate", P.KEYWORD_ONLY, default=False, annotation=Annotated[bool, typer.Option(
            "--no-validate", help="Skip the validation on held-out pool prompts.")]),
        P("quiet", P.KEYWORD_ONLY, default=False, annotation=Quiet),
    ]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = name
    return command


train_app = typer.Typer(name="train", rich_markup_mode=None, no_args_is_help=True)
app.add_typer(train_app, name="train", **_help(
    "Train a router from the preference data and write its checkpoint folder.\n\n"
    "One command per trainable router; its options come from the trainer's config. "
    "Every option is checked before any data is read. Progress goes to stderr, one line per stage "
    "(--quiet: none).\n\n"
    "The training data is decontaminated against the ~15,400 benchmark prompts: cosine >= 0.95 under "
    "exact MiniLM (the paper's rule) on the pairs the static WordLlama table puts within 0.6 (seconds; "
    "on the full default pool it finds every pair MiniLM flags), so MiniLM embeds only those candidates. "
    "They go to the embedding cache ($ROUTELLM_CACHE_DIR, else the user's cache folder) 512 at a time: "
    "an interrupted run keeps what it finished and later runs skip it. The sw_ranking example below is "
    "the quick one: about a minute on 2 cores from a cold cache.",
    "routellm train mf --out my_router/", "routellm train mf --out my_router/ --battles my_battles.csv",
    "routellm train quality --out mine/ --sources none --scores graded.csv",
    "routellm train sw_ranking --out sw/ --sources routerbench --max-prompts-per-source 200 --no-evaluate"
    "   # quick",
    "routellm train bert --out bert/ --epochs 3 --no-validate"))


def _add_train_commands() -> None:
    from ..routers.registry import trainable_routers

    for name in trainable_routers():
        train_app.command(name, cls=Command, **_help(
            f"Train the {name} router and write its checkpoint folder.\n\n"
            "Every option is checked before any data is read.",
            f"routellm train {name} --out my_router/",
            f"routellm train {name} --out my_router/ --battles my_battles.csv",
            f"routellm train {name} --out quick/ --sources routerbench --max-prompts-per-source 200 --no-evaluate"),
        )(_train_command(name))


_add_train_commands()
