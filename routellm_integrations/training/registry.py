"""Trainers: what ``routellm train <name>`` can build, each one a :class:`TrainerSpec`.

A trainer module (``training/mf.py``, ``sw_ranking.py``, ``bert.py``, ``causal_llm.py``)
defines ``TRAINER = TrainerSpec(...)``: its config class, default embedder, the ``fit``
that turns a battle table and its prompt features into a router, and what the model card
says about the method. Everything else -- pool, decontamination, embedding, validation,
card, save -- is :func:`routellm_integrations.training.pipeline.train`, once for all.

:data:`TRAINERS` maps names to specs and imports a trainer's module only when its spec
is first asked for, so ``import routellm_integrations`` never imports torch.

**Adding a trainer:** write a module with a pydantic config (every field a default and a
``Field(description=...)``) and a ``fit(table, embeddings, config, *, embedder,
strong_model, weak_model, progress) -> (router, report)``; define ``TRAINER =
TrainerSpec(...)``; name it in the router's registry entry
(``RouterSpec(..., trainer="module.path:TRAINER")``, or call :func:`register_trainer`). ``train(spec_or_name, out=...)`` then does the
rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..errors import TrainingOptionError

if TYPE_CHECKING:
    import numpy as np
    from pydantic import BaseModel

    from ..data.battles import BattleTable
    from .pool import Pool


@dataclass(frozen=True)
class TrainerSpec:
    """One trainer, as the pipeline sees it.

    * ``config``: a pydantic model class; every field has a default and a description (a
      CLI can be generated from it). A field named ``seed`` is set from ``train(seed=)``.
    * ``fit(table, embeddings, config, *, embedder, strong_model, weak_model, progress)``
      returns ``(router, report)``: a router over ``table`` (``embeddings[i]`` belongs to
      ``table.prompts[i]``; ``embedder`` is the cached embedder that produced them) and a
      JSON-able report (a dict or a pydantic model) for the card. It must be
      deterministic given ``config`` (validation refits it on folds of the pool).
    * ``describe``: what the card says about the method; a string or
      ``describe(checkpoint_config) -> str``.
    * ``default_embedder``: an embedder name, or ``factory(config, **embedder_options)``
      returning an embedder object; used when ``train(embedder=None)``.
    * ``embedder_options``: extra keyword options ``train`` accepts for the default
      embedder, with their defaults (e.g. ``{"device": "cpu"}``).
    * ``validate(run) -> rows``: the validation rows for the card (``None``: mean APGR over
      4 prompt folds, refitting ``fit`` without each fold, :func:`.validation.cross_validate`).
    * ``report_key``: where the report goes in the card (``config["card"][report_key]``).
    * ``needs_everyday``: ``fit`` also takes ``everyday=``, the hand-written everyday and task
      prompts of ``training.everyday`` (decontaminated with the pool), when the run's config
      has ``everyday_prior`` set.
    * ``needs_outcomes``: ``fit`` also takes ``outcomes=``, the golden labels (per prompt
      and model: was the answer right) of the pool's prompts, as an
      :class:`~routellm_integrations.data.sources.OutcomeTable` over ``table.prompts``.
    """

    name: str
    config: type["BaseModel"]
    fit: Callable[..., tuple[Any, Any]]
    describe: str | Callable[[Mapping[str, Any]], str]
    default_embedder: str | Callable[..., Any] = "minilm-onnx-int8"
    embedder_options: Mapping[str, Any] = field(default_factory=dict)
    validate: Callable[["TrainingRun"], list[dict[str, Any]]] | None = None
    report_key: str = "training_report"
    embed_batch_size: int = 256
    needs_outcomes: bool = False
    needs_everyday: bool = False

    def description(self, checkpoint_config: Mapping[str, Any]) -> str:
        return self.describe if isinstance(self.describe, str) else self.describe(checkpoint_config)


@dataclass
class TrainingRun:
    """One run of the pipeline, as a trainer's ``validate`` hook sees it."""

    spec: TrainerSpec
    config: Any
    pool: "Pool"
    embedder: Any  # the cached embedder; its ``inner`` is what the checkpoint records
    embeddings: "np.ndarray"
    strong_model: str
    weak_model: str
    seed: int
    progress: bool
    router: Any = None
    report: Any = None
    outcomes: Any = None  # the pool's golden labels, for a spec that ``needs_outcomes``

    def fit(self, table: "BattleTable", *, progress: bool = False) -> tuple[Any, Any]:
        """The trainer's ``fit`` on ``table`` (a part of the pool) with this run's settings
        (and, for a spec that needs them, the golden labels of ``table``'s prompts)."""
        extra: dict[str, Any] = {}
        if self.spec.needs_outcomes:
            from .pool import outcomes_of

            # the whole pool keeps its graded prompts that make no battle; a part keeps its own prompts
            extra["outcomes"] = outcomes_of(table, self.outcomes, whole=table is self.pool.table)
        if self.spec.needs_everyday and self.pool.everyday is not None:
            extra["everyday"] = self.pool.everyday
        return self.spec.fit(table, self.embeddings, self.config, embedder=self.embedder,
                             strong_model=self.strong_model, weak_model=self.weak_model, progress=progress, **extra)


class _Trainers(Mapping[str, TrainerSpec]):
    """Name -> :class:`TrainerSpec`. The router registry is the one list of routers: a
    router whose :class:`~routellm_integrations.routers.registry.RouterSpec` names a
    ``trainer`` is trainable, and its trainer's module is imported on first access."""

    def __init__(self) -> None:
        self._specs: dict[str, TrainerSpec] = {}  # given to register_trainer
        self._loaded: dict[tuple[str, Any], TrainerSpec] = {}  # imported for a registry entry

    @staticmethod
    def _registered() -> list[str]:
        from ..routers.registry import trainable_routers

        return trainable_routers()

    def __getitem__(self, name: str) -> TrainerSpec:
        if isinstance(name, str) and name in self._specs:
            return self._specs[name]
        if not isinstance(name, str) or name not in self._registered():
            raise TrainingOptionError(f"unknown trainer {name!r}; known: {', '.join(self)}")
        from ..routers.registry import router_spec

        entry = router_spec(name)
        key = (name, entry.trainer)  # a re-registered router with another trainer is looked up again
        if key not in self._loaded:
            self._loaded[key] = entry.load_trainer()
        return self._loaded[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._registered(), *self._specs]))

    def __len__(self) -> int:
        return len(set(self._registered()) | set(self._specs))

    def __contains__(self, name: object) -> bool:
        return name in self._specs or (isinstance(name, str) and name in self._registered())

    def register(self, spec: TrainerSpec) -> TrainerSpec:
        self._specs[spec.name] = spec
        return spec


TRAINERS = _Trainers()


def register_trainer(spec: TrainerSpec) -> TrainerSpec:
    """Make ``spec`` available as ``TRAINERS[spec.name]`` (and to ``train(spec.name, ...)``)."""
    return TRAINERS.register(spec)


def get_trainer(trainer: str | TrainerSpec) -> TrainerSpec:
    """A spec by name (an unknown name is a :class:`TrainingOptionError` listing the known
    ones), or the spec itself."""
    if isinstance(trainer, TrainerSpec):
        return trainer
    if not isinstance(trainer, str):
        raise TrainingOptionError(f"trainer must be a name or a TrainerSpec, got {type(trainer).__name__}")
    return TRAINERS[trainer]
