"""The toy router: ``P(strong wins) = sigmoid((log length - threshold) / scale)``.

It is what a contributor writes for a new router: a :class:`BaseRouter` with one
``_score``, ``save_pretrained``/``from_pretrained`` over the shared checkpoint module,
and ``with_pair`` for validation. No other file in the package is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from routellm_integrations.routers.base import BaseRouter
from routellm_integrations.routers.checkpoint import optional_number, read_config, save_checkpoint


class ToyRouter(BaseRouter):
    name = "toy"

    def __init__(self, config: Mapping[str, Any], embedder: Any = None, path: Path | None = None) -> None:
        self.config_data = dict(config)
        self.threshold = float(config["threshold"])
        self.scale = float(config["scale"])
        self.embedder = embedder  # the pipeline records its name; scoring needs none
        self.path = path

    def scores_from_embeddings(self, prompts: Sequence[str], features: Any = None) -> np.ndarray:
        x = np.log([max(len(p), 1) for p in prompts])
        return 1.0 / (1.0 + np.exp(-(x - self.threshold) / self.scale))

    def _score(self, prompts: list[str]) -> np.ndarray:
        return self.scores_from_embeddings(prompts)

    def with_pair(self, strong_model: str, weak_model: str) -> "ToyRouter":
        return self

    def save_pretrained(self, path: str | Path, model_card: str | None = None) -> Path:
        return save_checkpoint(path, self.config_data, card=model_card)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "ToyRouter":
        folder = Path(path)
        config = read_config(folder, expected_router="toy", required=("threshold", "scale"))
        optional_number(config, "threshold", folder / "config.json", 0.0)
        optional_number(config, "scale", folder / "config.json", 1.0, minimum=1e-6)
        return cls(config, path=folder)
