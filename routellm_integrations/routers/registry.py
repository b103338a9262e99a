"""Names to routers. ``load_router`` is the one entry point users and integrations call."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from ..errors import CheckpointError, UnknownRouterError
from .base import BaseRouter

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"

Loader = Callable[..., BaseRouter]
_NAMED: dict[str, Loader] = {}
_FROM_FOLDER: dict[str, Loader] = {}


def register_router(name: str, loader: Loader, *, from_folder: Loader | None = None) -> None:
    """Make ``load_router(name)`` work. ``from_folder(path, **options)`` loads folders
    whose ``config.json`` says ``"router": name`` (written by ``save_pretrained``)."""
    _NAMED[name] = loader
    if from_folder is not None:
        _FROM_FOLDER[name] = from_folder


def available_routers() -> list[str]:
    return sorted(_NAMED)


def load_router(name_or_path: str | os.PathLike[str], **options: Any) -> BaseRouter:
    """A router by registered name (``"random"``, ``"length"``, ``"mf"``) or from a folder
    written by ``save_pretrained``. Options go to the router (e.g. ``strong_model=``)."""
    if isinstance(name_or_path, str) and name_or_path in _NAMED:
        return _NAMED[name_or_path](**options)
    path = Path(name_or_path)
    if path.is_dir():
        cfg = path / "config.json"
        try:
            router = json.loads(cfg.read_text()).get("router")
        except FileNotFoundError as exc:
            raise CheckpointError(f"{str(path)!r} is a folder but has no config.json, so it is not a router checkpoint") from exc
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
            raise CheckpointError(f"{cfg} is not a valid router config: {exc}") from exc
        if router not in _FROM_FOLDER:
            raise CheckpointError(f"{cfg} names router {router!r}, which cannot be loaded from a folder "
                                  f"(known: {sorted(_FROM_FOLDER)})")
        return _FROM_FOLDER[router](path, **options)
    raise UnknownRouterError(f"unknown router {str(name_or_path)!r}: use one of {available_routers()} "
                             "or the path of a folder written by save_pretrained")


def _random(**options: Any) -> BaseRouter:
    from .random import RandomRouter
    return RandomRouter(**options)


def _length(**options: Any) -> BaseRouter:
    from .length import LengthRouter
    return LengthRouter(**options)


def _mf_folder(path: Path, **options: Any) -> BaseRouter:
    from .mf import MatrixFactorizationRouter
    return MatrixFactorizationRouter.from_pretrained(path, **options)


def _mf(**options: Any) -> BaseRouter:
    return _mf_folder(CHECKPOINTS / "mf", **options)


def _mf_minilm(**options: Any) -> BaseRouter:
    return _mf_folder(CHECKPOINTS / "mf_minilm", **options)


def _sw_ranking_folder(path: Path, **options: Any) -> BaseRouter:
    from .sw_ranking import SWRankingRouter
    return SWRankingRouter.from_pretrained(path, **options)


def _sw_ranking(**options: Any) -> BaseRouter:
    return _sw_ranking_folder(CHECKPOINTS / "sw_ranking", **options)


def _bert_folder(path: Path, **options: Any) -> BaseRouter:
    from .bert import BertRouter
    return BertRouter.from_pretrained(path, **options)


def _bert(**options: Any) -> BaseRouter:
    return _bert_folder(CHECKPOINTS / "bert", **options)


def _causal_llm_folder(path: Path, **options: Any) -> BaseRouter:
    from .causal_llm import CausalLLMRouter
    return CausalLLMRouter.from_pretrained(path, **options)


def _causal_llm(**options: Any) -> BaseRouter:
    return _causal_llm_folder(CHECKPOINTS / "causal_llm", **options)


register_router("random", _random)
register_router("length", _length)
register_router("mf", _mf, from_folder=_mf_folder)  # wordllama embedding: ~0.1 ms per decision
register_router("mf_minilm", _mf_minilm)  # the same trainer on int8 MiniLM: ~2.5 ms per decision
register_router("sw_ranking", _sw_ranking, from_folder=_sw_ranking_folder)
register_router("bert", _bert, from_folder=_bert_folder)
register_router("causal_llm", _causal_llm, from_folder=_causal_llm_folder)


def _adapted_folder(path: Path, **options: Any) -> BaseRouter:
    from ..adaptation.router import AdaptedRouter
    return AdaptedRouter.from_pretrained(path, **options)


_FROM_FOLDER["adapted"] = _adapted_folder  # written by `routellm adapt`; there is no shipped one to name
