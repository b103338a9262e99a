"""The router ``routellm adapt`` writes: a base router plus what the user's labels taught.

The folder serves whichever candidate the guard chose on the user's labels: the adapted
head, the base router, or prompt length. It is self-contained: a base loaded from a
folder is copied inside it (``base/``), a shipped base is named; ``load_router(folder)``
serves it like any other router.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from ..embedders.base import Embedder
from ..errors import CheckpointError
from .base import BaseRouter
from .checkpoint import (CONFIG_FILE, optional_number, positive_int, read_json, read_tensors,
                                  save_checkpoint)
from .length import LengthRouter
from .ridge_head import FEATURE_NAMES, RidgeHead, Standardiser, compute_blocks

HEAD_FILE = "head.safetensors"
BASE_FOLDER = "base"
FORMAT_VERSION = 1

Serves = Literal["adapted", "base", "length"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


class AdaptedRouter(BaseRouter):
    """Scores with the head the guard chose (``serves``); ``explain()`` says why."""

    name = "adapted"

    def __init__(self, *, serves: Serves, base: BaseRouter | None, head: RidgeHead | None,
                 embedder: Embedder | None, length_midpoint: int, score_scale: float = 1.0,
                 config: Mapping[str, Any] | None = None, path: Path | None = None) -> None:
        if serves not in ("adapted", "base", "length"):
            raise CheckpointError(f"an adapted router serves 'adapted', 'base' or 'length', not {serves!r}")
        if serves == "adapted" and (head is None or embedder is None):
            raise CheckpointError("an adapted router serving its head needs the head and its embedder")
        if serves == "base" and base is None:
            raise CheckpointError("an adapted router serving its base needs the base router")
        if serves == "adapted" and head is not None and head.w_prior is not None and base is None:
            raise CheckpointError("the head reads the base router's score, but no base router was given")
        self.serves: Serves = serves
        self.base = base
        self.head = head
        self.embedder = embedder
        self.length = LengthRouter(midpoint=max(1, int(length_midpoint)))
        self.score_scale = float(score_scale) if score_scale > 0 else 1.0
        self.config_data: dict[str, Any] = dict(config or {})
        self.path = path
        self.strong_model = self.config_data.get("strong_model") or getattr(base, "strong_model", "strong")
        self.weak_model = self.config_data.get("weak_model") or getattr(base, "weak_model", "weak")

    def explain(self) -> str:
        """What this router serves and why (the guard's reason, from the user's labels)."""
        return str(self.config_data.get("reason", f"serves {self.serves}"))

    def _score(self, prompts: list[str]) -> np.ndarray:
        if self.serves == "length":
            return self.length.score(prompts)
        if self.serves == "base":
            return self.base.score(prompts)  # type: ignore[union-attr]
        embeddings = np.asarray(self.embedder.embed(prompts), dtype=np.float32)  # type: ignore[union-attr]
        return self.scores_from_embeddings(prompts, embeddings)

    def scores_from_embeddings(self, prompts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """Score with embeddings computed elsewhere (in the head's embedding space)."""
        if self.serves != "adapted":
            return self._score(list(prompts))
        head = self.head
        assert head is not None and self.embedder is not None
        blocks = compute_blocks(prompts, self.embedder, self.base if head.w_prior is not None else None,
                                embeddings=embeddings)
        return _sigmoid(head.predict(blocks) / self.score_scale)

    def config(self) -> dict[str, Any]:
        return {"serves": self.serves, "base": getattr(self.base, "name", None),
                "strong_model": self.strong_model, "weak_model": self.weak_model}

    # -- persistence ----------------------------------------------------------------------
    def save_pretrained(self, path: str | Path, model_card: str | None = None) -> Path:
        """Write the folder atomically: a base loaded from a folder is copied in as ``base/``."""
        out = Path(path)
        config = dict(self.config_data)
        base_spec, base_folder = self._base_spec()
        config.update({"router": "adapted", "format_version": FORMAT_VERSION, "serves": self.serves,
                       "length_midpoint": self.length.midpoint, "score_scale": self.score_scale,
                       "strong_model": self.strong_model, "weak_model": self.weak_model,
                       "features": list(FEATURE_NAMES), "base": base_spec})
        tensors = {}
        if self.head is not None and self.embedder is not None:
            config["embedder"] = self.embedder.name
            config["embedding_dim"] = int(self.head.w_embedding.shape[0])
            config["uses_base_score"] = self.head.w_prior is not None
            tensors[HEAD_FILE] = (_head_tensors(self.head), {"format": "routellm-adapted",
                                                             "version": str(FORMAT_VERSION)})

        def populate(tmp: Path) -> None:
            if base_folder is not None:
                shutil.copytree(base_folder, tmp / BASE_FOLDER)

        save_checkpoint(out, config, tensors=tensors, card=model_card, populate=populate)
        self.config_data = config
        return out

    def _base_spec(self) -> tuple[dict[str, Any] | None, Path | None]:
        """How the config names the base, and the folder to copy in as ``base/`` (a shipped
        base is named, one loaded from a folder travels inside this one)."""
        base = self.base
        if base is None:
            return None, None
        from ..routers.registry import CHECKPOINTS, available_routers

        folder = getattr(base, "path", None)
        shipped = folder is None or Path(folder).resolve().parent == CHECKPOINTS.resolve()
        if shipped and base.name in available_routers():
            options = {k: v for k, v in base.config().items() if k in ("strong_model", "weak_model", "midpoint")}
            return {"router": base.name, "options": options}, None
        if folder is None or not Path(folder).is_dir():
            raise CheckpointError(f"the base router {base!r} was not loaded from a folder or by a registered "
                                  "name, so the adapted router could not load it again; save it first")
        options = {k: v for k, v in base.config().items() if k in ("strong_model", "weak_model")}
        return {"folder": BASE_FOLDER, "options": options}, Path(folder)

    @classmethod
    def from_pretrained(cls, path: str | Path, **options: Any) -> "AdaptedRouter":
        folder = Path(path)
        config = read_config_adapted(folder)
        base = _load_base(folder, config.get("base"), options)
        head = embedder = None
        if config["serves"] == "adapted":  # a head kept for the record costs no embedder at load
            positive_int(config, "embedding_dim", folder / CONFIG_FILE)
            if not isinstance(config.get("embedder"), str):
                raise CheckpointError(f"{folder / CONFIG_FILE}: an adapted head needs its 'embedder' name, "
                                      f"got {config.get('embedder')!r}")
            head = _read_head(read_tensors(folder / HEAD_FILE), config)
            embedder = _embedder_for(config, base)
        serves = config["serves"]
        where = folder / CONFIG_FILE
        midpoint = positive_int(config, "length_midpoint", where, default=400)
        scale = optional_number(config, "score_scale", where, 1.0)
        if scale <= 0:
            raise CheckpointError(f"{where}: 'score_scale' must be positive, got {scale}")
        return cls(serves=serves, base=base, head=head, embedder=embedder, length_midpoint=midpoint,
                   score_scale=scale, config=config, path=folder)


def read_config_adapted(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {str(folder)!r} does not exist")
    cfg = folder / CONFIG_FILE
    config = read_json(cfg)
    if not isinstance(config, dict) or config.get("router") != "adapted":
        raise CheckpointError(f"{cfg} is not an adapted router")
    if config.get("serves") not in ("adapted", "base", "length"):
        raise CheckpointError(f"{cfg}: 'serves' must be adapted, base or length, got {config.get('serves')!r}")
    if config.get("features", list(FEATURE_NAMES)) != list(FEATURE_NAMES):
        raise CheckpointError(f"{cfg} was trained with features {config.get('features')}; this version computes "
                              f"{list(FEATURE_NAMES)}")
    return config


def _load_base(folder: Path, spec: Any, options: Mapping[str, Any]) -> BaseRouter | None:
    from .registry import load_router

    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise CheckpointError(f"{folder / CONFIG_FILE}: 'base' must be an object, got {spec!r}")
    saved = spec.get("options", {})
    if not isinstance(saved, dict) or not all(isinstance(v, str) or isinstance(v, int) for v in saved.values()):
        raise CheckpointError(f"{folder / CONFIG_FILE}: the base's 'options' must map names to values, got {saved!r}")
    opts = {**saved, **{k: v for k, v in options.items() if k in ("strong_model", "weak_model")}}
    if "router" in spec:
        if not isinstance(spec["router"], str):
            raise CheckpointError(f"{folder / CONFIG_FILE}: the base 'router' must be a name, got {spec['router']!r}")
        from ..routers.registry import available_routers

        if spec["router"] not in available_routers():  # a name, never a path to somewhere else
            raise CheckpointError(f"{folder / CONFIG_FILE}: the base router {spec['router']!r} is not a shipped "
                                  f"router (known: {available_routers()})")
        return load_router(spec["router"], **opts)
    if "folder" in spec:
        if spec["folder"] != BASE_FOLDER:  # inside this folder, never a path out of it
            raise CheckpointError(f"{folder / CONFIG_FILE}: the base folder must be {BASE_FOLDER!r}, "
                                  f"got {spec['folder']!r}")
        return load_router(folder / BASE_FOLDER, **opts)
    raise CheckpointError(f"{folder / CONFIG_FILE}: 'base' names neither a router nor a folder")


def _embedder_for(config: Mapping[str, Any], base: BaseRouter | None) -> Embedder:
    own = getattr(base, "embedder", None)
    if own is not None and getattr(own, "name", None) == config.get("embedder"):
        return own  # one embedding per prompt for the base and the head
    from ..embedders import get_embedder

    embedder = get_embedder(config["embedder"])  # the registry knows embedding spaces by name
    if embedder.name != config["embedder"]:
        raise CheckpointError(f"the head was trained on {config['embedder']!r} embeddings; got {embedder.name!r}")
    return embedder


def _head_tensors(head: RidgeHead) -> dict[str, np.ndarray]:
    t = {"w_embedding": head.w_embedding, "w_features": head.w_features, "bias": np.array([head.bias]),
         "features_mean": head.features.mean, "features_std": head.features.std}
    if head.w_prior is not None and head.prior is not None:
        t.update({"w_prior": np.array([head.w_prior]), "prior_mean": np.atleast_1d(head.prior.mean),
                  "prior_std": np.atleast_1d(head.prior.std)})
    return {k: np.ascontiguousarray(np.asarray(v, dtype=np.float64)) for k, v in t.items()}


def _read_head(t: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> RidgeHead:
    need = ["w_embedding", "w_features", "bias", "features_mean", "features_std"]
    if config.get("uses_base_score"):
        need += ["w_prior", "prior_mean", "prior_std"]
    missing = [k for k in need if k not in t]
    if missing:
        raise CheckpointError(f"adapted head is missing tensor(s) {missing}")
    n_feat = len(FEATURE_NAMES)
    dim = int(config.get("embedding_dim", t["w_embedding"].shape[0]))
    for name, shape in {"w_embedding": (dim,), "w_features": (n_feat,), "features_mean": (n_feat,),
                        "features_std": (n_feat,), "bias": (1,)}.items():
        if t[name].shape != shape:
            raise CheckpointError(f"adapted head tensor {name!r} has shape {t[name].shape}, expected {shape}")
    for name in need:
        if not np.isfinite(t[name]).all():
            raise CheckpointError(f"adapted head tensor {name!r} holds NaN or infinite values")
    prior = Standardiser(t["prior_mean"][0], t["prior_std"][0]) if "w_prior" in t else None
    return RidgeHead(t["w_embedding"], t["w_features"], float(t["w_prior"][0]) if "w_prior" in t else None,
                     float(t["bias"][0]), Standardiser(t["features_mean"], t["features_std"]), prior)
