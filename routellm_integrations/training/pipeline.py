"""``routellm train <router>``: one pipeline for every trainer.

    arguments checked -> pool (sources + battle files, subsampled, decontaminated)
    -> prompt features (embedder, cached on disk) -> ``fit`` -> validation on held-out
    pool prompts -> benchmarks (optional) -> model card -> checkpoint folder

:func:`train` runs it for any :class:`~.registry.TrainerSpec` (by name from
:data:`~.registry.TRAINERS`, or a spec of your own). Every argument, and the trainer's
config, is checked before any data is read: a bad one is a
:class:`~routellm_integrations.errors.TrainingOptionError` (or, for a source name,
:class:`~routellm_integrations.errors.UnknownSourceError`) naming it.

Progress (unless ``progress=False``, ``--quiet``): one line per stage on stderr (reading
sources, decontaminating: embedding N benchmark prompts (M cached), embedding, training,
validating, evaluating, writing), with bars on a terminal. Decontamination embeddings go
through the same on-disk cache as the training embeddings (``$ROUTELLM_CACHE_DIR``, else
``~/.cache/routellm-integrations``), written chunk by chunk: a rerun, or a run after an
interrupted one, embeds only what is missing.

Seeded end to end: the same data, seed and embedder give the same checkpoint (on CPU,
bit for bit with one torch thread; across thread counts up to float rounding).

``train_mf_command`` (here) and ``train_sw_ranking_command`` / ``train_bert_command`` /
``train_causal_llm_command`` (in their trainers' modules) are the older per-router entry
points, kept as thin wrappers over :func:`train`.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL
from ..errors import TrainingOptionError
from .card import render_model_card
from .embedding import cached_embedder, embed_with_progress, unwrap
from .pool import DEFAULT_SOURCES, pool_card, prepare_pool, split_hash, subsample_prompts
from .registry import TRAINERS, TrainerSpec, TrainingRun, get_trainer
from .validation import benchmark_rows, pair_validation_benchmark, validate_and_report

__all__ = ["DEFAULT_SOURCES", "TRAINERS", "TrainerSpec", "TrainingRun", "check_arguments", "train",
           "train_mf_command", "embed_with_progress", "pair_validation_benchmark", "split_hash", "subsample_prompts"]

PathLike = str | os.PathLike[str]
BATTLES_SUFFIXES = (".csv", ".jsonl")


@dataclass(frozen=True)
class Arguments:
    """:func:`train`'s arguments once checked (no data read yet)."""

    spec: TrainerSpec
    out: Path
    sources: tuple[str, ...]
    battles_files: tuple[Path, ...]
    scores_files: tuple[Path, ...]
    seed: int
    max_prompts_per_source: int | None
    config: Any
    embedder: Any  # a name, an embedder object, or None: the trainer's default
    embedder_options: Mapping[str, Any]
    reference_embedder: Any

    def make_embedder(self) -> Any:
        """The embedder (name or object) to train with: the one given, or the trainer's default."""
        if self.embedder is not None:
            return self.embedder
        default = self.spec.default_embedder
        return default if isinstance(default, str) else default(self.config, **self.embedder_options)


def _count(name: str, value: Any, minimum: int, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        raise TrainingOptionError(f"{name} must be {kind}{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def _paths(name: str, value: PathLike | Sequence[PathLike] | None) -> tuple[Any, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, (str, os.PathLike)) else tuple(value)


def _files(name: str, value: PathLike | Sequence[PathLike]) -> tuple[Path, ...]:
    files = tuple(Path(f).expanduser() for f in _paths(name, value))
    for f in files:
        if not f.is_file():
            raise TrainingOptionError(f"{name}: {str(f)!r} does not exist (or is not a file)")
        if f.suffix.lower() not in BATTLES_SUFFIXES:
            raise TrainingOptionError(f"{name}: {str(f)!r} must be a .csv or .jsonl file")
    return files


def _check_embedder(name: str, embedder: Any) -> Any:
    from ..embedders.registry import available_embedders

    if isinstance(embedder, str):
        if embedder not in available_embedders() and not embedder.startswith("openai:"):
            raise TrainingOptionError(f"unknown {name} {embedder!r}; use one of {available_embedders()} "
                                      "or openai:<model>")
    elif not all(hasattr(embedder, a) for a in ("embed", "name", "dim")):
        raise TrainingOptionError(f"{name} must be an embedder name or an object with embed(), name and dim; "
                                  f"got {type(embedder).__name__}")
    return embedder


def build_config(spec: TrainerSpec, config: Any = None, seed: int = 0, *,
                 label: Callable[[str], str] = str, **options: Any) -> Any:
    """``spec.config`` from ``config`` (an instance, a mapping or ``None``) updated with
    ``options`` that name config fields (``None`` keeps the config's value), its ``seed``
    field (if any) set to ``seed``. A bad value is a :class:`TrainingOptionError` naming
    the field as ``label(field)`` (the command line names its flag)."""
    from pydantic import ValidationError

    fields = spec.config.model_fields
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, spec.config):
        base = config.model_dump()
    elif isinstance(config, Mapping):
        base = dict(config)
    else:
        raise TrainingOptionError(f"config for trainer {spec.name!r} must be a {spec.config.__name__} or a "
                                  f"mapping, got {type(config).__name__}")
    unknown = sorted(k for k in [*base, *options] if k not in fields)
    if unknown:
        raise TrainingOptionError(f"unknown option(s) {unknown} for trainer {spec.name!r}; its options: "
                                  f"{', '.join(sorted(k for k in fields if k != 'seed'))}")
    values = {**base, **{k: v for k, v in options.items() if v is not None}}
    if "seed" in fields:
        values["seed"] = seed
    try:
        return spec.config.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(label(str(p)) for p in e['loc'])}={e.get('input')!r}: {e['msg']}"
                             for e in exc.errors())
        raise TrainingOptionError(f"invalid option(s) for trainer {spec.name!r}: {problems}") from None


def check_arguments(trainer: str | TrainerSpec, *, out: PathLike, sources: Sequence[str] | str | None = DEFAULT_SOURCES,
                    battles_files: PathLike | Sequence[PathLike] = (), scores_files: PathLike | Sequence[PathLike] = (),
                    seed: int = 0,
                    max_prompts_per_source: int | None = None, embedder: Any = None, config: Any = None,
                    reference_embedder: Any = "minilm", **trainer_options: Any) -> Arguments:
    """Everything about a :func:`train` call that can be checked without reading any data."""
    from ..data.sources import check_sources

    spec = get_trainer(trainer)
    if not isinstance(out, (str, os.PathLike)) or not str(out):
        raise TrainingOptionError(f"out must be a folder path, got {out!r}")
    out_path = Path(out).expanduser()
    if out_path.exists() and not out_path.is_dir():
        raise TrainingOptionError(f"out={str(out_path)!r} is an existing file; give a folder to write the "
                                  "checkpoint into")
    seed_ = _count("seed", seed, 0, allow_none=False)
    per_source = _count("max_prompts_per_source", max_prompts_per_source, 1, allow_none=True)
    srcs = DEFAULT_SOURCES if sources is None else (sources,) if isinstance(sources, str) else tuple(sources)
    check_sources(srcs)
    files = _files("battles_files", battles_files)
    graded = _files("scores_files", scores_files)
    if not srcs and not files and not graded:
        raise TrainingOptionError("nothing to train on: give sources, battles_files and/or scores_files "
                                  "(--sources / --battles / --scores)")
    emb_options = {k: trainer_options.pop(k) for k in list(trainer_options) if k in spec.embedder_options}
    cfg = build_config(spec, config, seed_, **trainer_options)
    return Arguments(spec, out_path, srcs, files, graded, seed_, per_source, cfg,
                     None if embedder is None else _check_embedder("embedder", embedder),
                     {**spec.embedder_options, **emb_options}, _check_embedder("reference_embedder", reference_embedder))


def _stage(message: str) -> None:
    """One progress line on stderr (stdout first, so lines printed before stay before)."""
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)


def cross_validation(run: TrainingRun) -> list[dict[str, Any]]:
    """The default validation: mean APGR over 4 prompt folds, ``fit`` refitted without each."""
    return validate_and_report(lambda table: run.fit(table)[0], run.pool.table, run.embeddings,
                               label=run.spec.name, seed=run.seed, progress=run.progress)


def _jsonable(report: Any) -> Any:
    return report.model_dump() if hasattr(report, "model_dump") else report


def _command(args: Arguments) -> str:
    """The command line the card says reproduces the checkpoint."""
    if sys.argv[0].endswith("routellm"):
        return "routellm " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    parts = ["routellm", "train", args.spec.name, "--out", str(args.out), "--seed", str(args.seed)]
    embedder = args.embedder if args.embedder is not None else args.spec.default_embedder
    if isinstance(embedder, str):
        parts += ["--embedder", embedder]
    return " ".join(shlex.quote(p) for p in parts)


def train(trainer: str | TrainerSpec, *, out: PathLike, data_dir: PathLike | None = None,
          sources: Sequence[str] | str | None = DEFAULT_SOURCES, battles_files: PathLike | Sequence[PathLike] = (),
          scores_files: PathLike | Sequence[PathLike] = (), seed: int = 0, max_prompts_per_source: int | None = None,
          evaluate: bool = True, validate: bool = True,
          progress: bool = True, embedder: Any = None, config: Any = None, reference_embedder: Any = "minilm",
          **trainer_options: Any) -> Path:
    """Train ``trainer`` (a name in :data:`TRAINERS` or a :class:`TrainerSpec`) and write its
    checkpoint folder (weights, ``config.json``, ``README.md`` card) to ``out``.

    ``sources``: public training sources or tasks (``None``: the defaults); ``battles_files``:
    the user's own CSV/JSONL battles; ``scores_files``: graded answers of the user's
    traffic (``prompt, model, score``: the quality router's in-domain labels; other
    trainers take the battles they imply); ``max_prompts_per_source``: subsample for quick runs;
    ``embedder``: name or object (``None``: the trainer's default); ``reference_embedder``: the
    space near-duplicates of benchmark prompts are judged in; ``config``: the trainer's config
    (instance or mapping); ``trainer_options``: config fields (e.g. ``epochs=2``) and the
    trainer's embedder options (e.g. ``device="cuda"``). ``evaluate``: add the paper's
    benchmarks to the card; ``validate``: add validation on held-out pool prompts.
    """
    from ..paths import resolve_data_dir

    args = check_arguments(trainer, out=out, sources=sources, battles_files=battles_files, scores_files=scores_files,
                           seed=seed,
                           max_prompts_per_source=max_prompts_per_source, embedder=embedder, config=config,
                           reference_embedder=reference_embedder, **trainer_options)
    from ..data.decontaminate import decontamination_progress

    root = resolve_data_dir(data_dir)  # the last check: says how to pass the folder when it is missing
    spec = args.spec
    say = _stage if progress else (lambda *a, **k: None)

    files = len(args.battles_files) + len(args.scores_files)
    say("reading sources: " + " ".join(args.sources or ("none",))
        + (f" and {files} file{'s' * (files != 1)} of yours" if files else ""))
    with decontamination_progress(progress):
        pool = prepare_pool(data_dir=root, sources=args.sources, battles_files=args.battles_files,
                            scores_files=args.scores_files,
                            max_prompts_per_source=args.max_prompts_per_source, seed=args.seed,
                            reference_embedder=args.reference_embedder, progress=progress,
                            everyday=spec.needs_everyday and bool(getattr(args.config, "everyday_prior", False)))
    emb = cached_embedder(args.make_embedder())
    say(f"embedding {len(pool.table.prompts):,} training prompts with {emb.name}")
    embeddings = embed_with_progress(emb, pool.table.prompts, progress, batch_size=spec.embed_batch_size)

    run = TrainingRun(spec, args.config, pool, emb, embeddings, DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL,
                      args.seed, progress)
    if spec.needs_outcomes:
        from .pool import load_pool_outcomes

        run.outcomes = load_pool_outcomes(pool, args.sources)
        say(f"{len(run.outcomes):,} golden labels over {len(run.outcomes.models)} models")
    say(f"training {spec.name} on {len(pool.table):,} battles over {len(pool.table.prompts):,} prompts")
    run.router, run.report = run.fit(pool.table, progress=progress)
    router = run.router
    router.embedder = emb  # scores through the cache while validating and evaluating
    card: dict[str, Any] = {**pool_card(pool), spec.report_key: _jsonable(run.report)}
    if validate:
        say("validating on held-out pool prompts")
        card["validation"] = (spec.validate or cross_validation)(run)
    if evaluate:
        say("evaluating on the benchmarks")
        card["benchmarks"] = benchmark_rows(router, spec.name, pool.root, progress)
    router.config_data["card"] = card
    router.embedder = unwrap(emb)
    say(f"writing {args.out}")
    router.save_pretrained(args.out, model_card=render_model_card(router.config_data, _command(args),
                                                                  spec.description(router.config_data)))
    say(f"saved {args.out}")
    return args.out


def train_mf_command(*, out: Path, data_dir: str | os.PathLike[str] | None = None,
                     sources: Sequence[str] | None = DEFAULT_SOURCES, seed: int = 0, epochs: int | None = None,
                     dim: int | None = None, hidden: int | None = None,
                     embedder: Any = "wordllama", reference_embedder: Any = "minilm",
                     max_prompts_per_source: int | None = None, evaluate: bool = True,
                     battles_files: Sequence[str | os.PathLike[str]] = (),
                     progress: bool = True) -> Path:
    """``routellm train mf`` (:func:`train` with the ``mf`` trainer; ``None`` options keep
    the defaults)."""
    return train("mf", out=out, data_dir=data_dir, sources=sources, battles_files=battles_files, seed=seed,
                 max_prompts_per_source=max_prompts_per_source, evaluate=evaluate, progress=progress,
                 embedder=embedder, reference_embedder=reference_embedder, epochs=epochs, dim=dim, hidden=hidden)
