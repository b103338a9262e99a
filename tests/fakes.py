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
