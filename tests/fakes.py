"""Small deterministic stand-ins used by fast unit tests (real models are tested elsewhere)."""

from __future__ import annotations

import hashlib
import re

import numpy as np


class HashingEmbedder:
    """Bag-of-words hashed into ``dim`` buckets, L2-normalised: similar texts, similar vectors."""

    def __init__(self, dim: int = 32, name: str = "test-hashing") -> None:
        self.dim, self.name = dim, name
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out[:, 0] += (norms[:, 0] == 0)  # empty text -> a fixed unit vector
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class SlipVerifier:
    """A stand-in verifier (``score``, ``threshold``, ``threshold_for_share``, as
    :class:`~routellm_integrations.verification.verifier.Verifier` has them): an answer
    with the slip "82" in it scores ``high`` (the strong answer likely better), any other
    ``low``. With ``prompt``, it checks that the check handed it the routed prompt."""

    def __init__(self, threshold: float = 0.6, *, low: float = 0.2, high: float = 0.9,
                 prompt: str | None = None) -> None:
        self.threshold, self.low, self.high, self.prompt = threshold, low, high, prompt

    def score(self, prompts, answers):
        if self.prompt is not None:
            assert list(prompts) == [self.prompt]  # the check reads the routed prompt
        return np.array([self.high if "82" in a else self.low for a in answers])

    def threshold_for_share(self, share):
        return 1.0 - share
