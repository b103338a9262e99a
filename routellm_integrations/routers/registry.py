"""Names to routers. ``load_router`` is the one entry point users and integrations call.

Every router is one :class:`RouterSpec`: its class, the shipped checkpoint it loads by
name (if any), the trainer that makes such checkpoints (if any), and whether it needs no
model at all. Adding a router is one router file, one trainer file and one
``register_router(RouterSpec(...))`` line; nothing else in the package names routers.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, RouterOptionError, UnknownRouterError
from .base import BaseRouter

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


@dataclass(frozen=True)
class RouterSpec:
    """One router the registry knows.

    ``router``: the class, or ``"module:Class"`` imported on first use (so naming a
    router costs no import of torch). ``checkpoint``: the folder ``load_router(name)``
    loads, a name under the shipped ``checkpoints/`` or a path; ``None`` builds the
    class from its options. ``kind``: the ``"router"`` value its folders' ``config.json``
    carries (default: ``name``); several names may share a kind (``mf`` and
    ``mf_minilm``). ``trainer``: its :class:`~routellm_integrations.training.registry.TrainerSpec`,
    or ``"module:OBJECT"`` naming it, for ``routellm train`` and ``train(name, ...)``. ``model_free``: nothing to load, so a first call may score it on an event
    loop. ``named``: whether ``load_router(name)`` serves it (an ``adapted`` router only
    exists as a folder).
    """

    name: str
    router: type[BaseRouter] | str
    checkpoint: str | os.PathLike[str] | None = None
    kind: str | None = None
    trainer: Any = None
    model_free: bool = False
    named: bool = True

    @property
    def folder_kind(self) -> str:
        return self.kind or self.name

    def router_class(self) -> type[BaseRouter]:
        if not isinstance(self.router, str):
            return self.router
        module, _, attr = self.router.partition(":")
        return getattr(importlib.import_module(module), attr)

    def checkpoint_folder(self) -> Path | None:
        if self.checkpoint is None:
            return None
        path = Path(self.checkpoint)
        return path if path.is_absolute() else CHECKPOINTS / path

    def load(self, **options: Any) -> BaseRouter:
        """The router this spec names, with ``options`` checked against what it takes."""
        cls = self.router_class()
        folder = self.checkpoint_folder()
        if folder is None:
            _check_options(self.name, cls, options)
            return cls(**options)
        return load_folder(cls, folder, self.name, options)

    def load_trainer(self) -> Any:
        if self.trainer is None:
            raise UnknownRouterError(f"router {self.name!r} has no trainer (trainable: {trainable_routers()})")
        if not isinstance(self.trainer, str):
            return self.trainer
        module, _, attr = self.trainer.partition(":")
        return getattr(importlib.import_module(module), attr)


_SPECS: dict[str, RouterSpec] = {}


def register_router(spec: RouterSpec) -> RouterSpec:
    """Make ``load_router(spec.name)`` work (and folders whose config says ``spec.kind``)."""
    if not isinstance(spec, RouterSpec):
        raise TypeError(f"register_router takes a RouterSpec, got {type(spec).__name__}")
    if not isinstance(spec.name, str) or not spec.name.strip() or "/" in spec.name or os.sep in spec.name:
        raise UnknownRouterError(f"a router name must be a plain non-empty name, got {spec.name!r}")
    _SPECS[spec.name] = spec
    return spec


def unregister_router(name: str) -> None:
    _SPECS.pop(name, None)


def router_spec(name: str) -> RouterSpec:
    try:
        return _SPECS[name]
    except (KeyError, TypeError):
        raise UnknownRouterError(f"unknown router {name!r}: use one of {available_routers()}") from None


def available_routers() -> list[str]:
    """The names ``load_router`` serves."""
    return sorted(n for n, s in _SPECS.items() if s.named)


def trainable_routers() -> list[str]:
    """The names ``routellm train`` takes, in registration order."""
    return [n for n, s in _SPECS.items() if s.trainer is not None]


def is_model_free(name: str) -> bool:
    spec = _SPECS.get(name) if isinstance(name, str) else None
    return spec is not None and spec.model_free


def check_router_name(name_or_path: Any) -> None:
    """Raise :class:`UnknownRouterError` unless ``name_or_path`` names a registered router
    or is a folder (what :func:`load_router` would load): callers that load the router
    later (on the first call) check it when they are built."""
    if not isinstance(name_or_path, (str, os.PathLike)) or (isinstance(name_or_path, str) and not name_or_path.strip()):
        raise UnknownRouterError(f"load_router needs a router name or a checkpoint folder, got {name_or_path!r} "
                                 f"(names: {available_routers()})")
    named = isinstance(name_or_path, str) and name_or_path in _SPECS and _SPECS[name_or_path].named
    if not named and not Path(name_or_path).is_dir():
        raise UnknownRouterError(f"unknown router {str(name_or_path)!r}: use one of {available_routers()} "
                                 "or the path of a folder written by save_pretrained")


def load_router(name_or_path: str | os.PathLike[str], **options: Any) -> BaseRouter:
    """A router by registered name (``"random"``, ``"length"``, ``"mf"``, ...) or from a
    folder written by ``save_pretrained``. Options go to the router (e.g. ``strong_model=``);
    one it does not take is a :class:`RouterOptionError` naming the ones it does."""
    check_router_name(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in _SPECS and _SPECS[name_or_path].named:
        return _SPECS[name_or_path].load(**options)
    path = Path(name_or_path)
    if path.is_dir():
        from .checkpoint import CONFIG_FILE, read_json

        config = read_json(path / CONFIG_FILE)
        if not isinstance(config, dict):
            raise CheckpointError(f"{path / CONFIG_FILE} must hold a JSON object, got {type(config).__name__}")
        kind = config.get("router")
        for spec in _SPECS.values():
            if spec.folder_kind == kind:
                return load_folder(spec.router_class(), path, str(path), options)
        kinds = sorted({s.folder_kind for s in _SPECS.values() if s.checkpoint is not None or not s.named})
        raise CheckpointError(f"{path / CONFIG_FILE} names router {kind!r}, which cannot be loaded from a folder "
                              f"(known: {kinds})")
    raise UnknownRouterError(f"unknown router {str(name_or_path)!r}")  # unreachable: checked above


def load_folder(cls: type[BaseRouter], folder: Path, what: str, options: dict[str, Any]) -> BaseRouter:
    loader = getattr(cls, "from_pretrained", None)
    if loader is None:
        raise CheckpointError(f"{cls.__name__} cannot be loaded from a folder (it has no from_pretrained)")
    _check_options(what, loader, options)
    return loader(folder, **options)


def _check_options(what: str, target: Any, options: dict[str, Any]) -> None:
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):  # a builtin or C callable: let it check for itself
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                and n not in ("self", "cls", "path")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise RouterOptionError(f"router {what!r} takes no option(s) {unknown}; it takes {accepted or 'none'}")


_R = "routellm_integrations.routers."
_T = "routellm_integrations.training."
for _spec in (
    RouterSpec("random", _R + "random:RandomRouter", model_free=True),
    RouterSpec("length", _R + "length:LengthRouter", model_free=True),
    # WordLlama static embedding: ~0.2 ms per decision; the default learned router
    RouterSpec("mf", _R + "mf:MatrixFactorizationRouter", checkpoint="mf", trainer=_T + "mf:TRAINER"),
    # the same trainer on int8 MiniLM (~5 ms per decision): adaptation's default base
    RouterSpec("mf_minilm", _R + "mf:MatrixFactorizationRouter", checkpoint="mf_minilm", kind="mf"),
    # calibrated P(correct) of each of 65 models: N-way routing under a cost weight
    RouterSpec("quality", _R + "quality:QualityRouter", checkpoint="quality", trainer=_T + "quality:TRAINER"),
    RouterSpec("sw_ranking", _R + "sw_ranking:SWRankingRouter", checkpoint="sw_ranking",
               trainer=_T + "sw_ranking:TRAINER"),
    RouterSpec("bert", _R + "bert:BertRouter", checkpoint="bert", trainer=_T + "bert:TRAINER"),
    RouterSpec("causal_llm", _R + "causal_llm:CausalLLMRouter", checkpoint="causal_llm",
               trainer=_T + "causal_llm:TRAINER"),
    # written by `routellm adapt`; there is no shipped one to name
    RouterSpec("adapted", _R + "adapted:AdaptedRouter", named=False),
):
    register_router(_spec)
del _spec
