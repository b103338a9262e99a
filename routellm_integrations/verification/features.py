"""What the verifier reads of a (prompt, answer) pair.

- the embeddings of the prompt and of the answer, side by side: what kind of question,
  and what kind of reply (a refusal, a derivation, a one-word guess);
- dense features: the prompt's structural features (the prompt head's), the answer's
  own structural features, and the zero-label signals of :mod:`.signals` as numbers
  (each flag, the a-priori score, whether a final answer is stated, whether it merely
  repeats a number of the prompt, how long the answer is against the prompt).

The verifier's ridge head weighs the two blocks with separate penalties, chosen by
cross-validation on the user's labels (the adapted prompt head's machinery).
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np

from ..embedders.base import Embedder
from ..routers.features import FEATURES, structural_features
from ..routers.ridge_head import Blocks
from . import signals

#: the zero-label flags, one 0/1 feature each (names as :func:`.signals.answer_flags` gives them)
FLAG_FEATURES: tuple[str, ...] = tuple(signals.FLAG_WEIGHTS)
_ANSWER_EXTRA: tuple[str, ...] = ("zero_label_score", "maths_like", "has_final_answer", "final_is_number",
                                  "final_in_prompt", "log_equations", "log_numbers", "log_answer_to_prompt")
#: every dense feature, in order (a saved verifier records them and is refused if they differ)
DENSE_FEATURES: tuple[str, ...] = (tuple(f"prompt_{n}" for n in FEATURES) + tuple(f"answer_{n}" for n in FEATURES)
                                   + tuple(f"flag_{n.replace(' ', '_').replace('-', '_')}" for n in FLAG_FEATURES)
                                   + _ANSWER_EXTRA)

_NUMBERS = re.compile(r"\d+(?:\.\d+)?")


def _answer_features(prompt: str, answer: str) -> list[float]:
    flags = {f.split(":", 1)[0] for f in signals.answer_flags(prompt, answer)}
    final = signals.final_answer(answer)
    number = final is not None and signals._as_number(final) is not None
    prompt_numbers = set(_NUMBERS.findall(prompt.replace(",", "")))
    out = [1.0 if name in flags else 0.0 for name in FLAG_FEATURES]
    keep = 1.0
    for name in flags:
        keep *= 1.0 - signals.FLAG_WEIGHTS.get(name, 0.3)
    out += [
        1.0 - keep,
        float(signals.is_maths_like(prompt)),
        float(final is not None),
        float(number),
        float(number and final in prompt_numbers),
        math.log1p(answer.count("=")),
        math.log1p(len(_NUMBERS.findall(answer))),
        math.log1p(len(answer)) - math.log1p(len(prompt)),
    ]
    return out


def dense_features(prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """``(n, len(DENSE_FEATURES))`` float64."""
    p = structural_features(list(prompts), tuple(FEATURES)).astype(np.float64)
    a = structural_features([x if x else " " for x in answers], tuple(FEATURES)).astype(np.float64)
    extra = np.array([_answer_features(q, x) for q, x in zip(prompts, answers)], dtype=np.float64)
    extra = extra.reshape(len(prompts), len(FLAG_FEATURES) + len(_ANSWER_EXTRA))
    return np.concatenate([p, a, extra], axis=1)


def _embed(embedder: Embedder, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    items = [t if t.strip() else " " for t in texts]  # an empty answer still embeds (as blank)
    parts = [np.asarray(embedder.embed(items[s:s + batch_size]), dtype=np.float32)
             for s in range(0, len(items), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, 2 * embedder.dim), np.float32)


def verifier_blocks(prompts: Sequence[str], answers: Sequence[str], embedder: Embedder) -> Blocks:
    """The verifier's inputs: ``[emb(prompt), emb(answer)]`` and the dense features."""
    if not prompts:
        return Blocks(np.zeros((0, 2 * embedder.dim), np.float32), np.zeros((0, len(DENSE_FEATURES))), None)
    emb = np.concatenate([_embed(embedder, prompts), _embed(embedder, answers)], axis=1)
    return Blocks(emb, dense_features(prompts, answers), None)


__all__ = ["DENSE_FEATURES", "FLAG_FEATURES", "dense_features", "verifier_blocks"]
