"""Cheap structural features of a prompt, used beside its embedding.

Sentence embeddings say which *kind* of task a prompt is, and little about how hard it
is within that kind; length and structure carry part of the within-task signal (see
``shared/notes/routing-quality.md``). Features are named so a checkpoint can record,
and check, which ones it was trained with.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ..errors import CheckpointError

_CODE = re.compile(r"```|\bdef |\bclass |\breturn\b|[{};]\s*$|#include|\bimport ", re.M)
_MATH = re.compile(r"[=+\-*/^<>]|\\frac|\\sqrt|\$")
_DIGIT = re.compile(r"\d")


def _log_chars(p: str) -> float:
    return float(np.log1p(len(p)))


def _log_words(p: str) -> float:
    return float(np.log1p(len(p.split())))


def _log_lines(p: str) -> float:
    return float(np.log1p(p.count("\n")))


def _digit_fraction(p: str) -> float:
    return len(_DIGIT.findall(p)) / max(len(p), 1)


def _code_markers(p: str) -> float:
    return float(np.log1p(len(_CODE.findall(p))))


def _math_symbol_fraction(p: str) -> float:
    return len(_MATH.findall(p)) / max(len(p), 1)


def _log_questions(p: str) -> float:
    return float(np.log1p(p.count("?")))


FEATURES = {
    "log_chars": _log_chars,
    "log_words": _log_words,
    "log_lines": _log_lines,
    "digit_fraction": _digit_fraction,
    "code_markers": _code_markers,
    "math_symbol_fraction": _math_symbol_fraction,
    "log_questions": _log_questions,
}


def structural_features(prompts: Sequence[str], names: Sequence[str] = tuple(FEATURES)) -> np.ndarray:
    """Raw (unstandardised) features, shape ``(len(prompts), len(names))``, float32."""
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise CheckpointError(f"unknown prompt feature(s) {unknown}; known: {sorted(FEATURES)}")
    fns = [FEATURES[n] for n in names]
    out = np.empty((len(prompts), len(fns)), dtype=np.float32)
    for i, p in enumerate(prompts):
        for j, fn in enumerate(fns):
            out[i, j] = fn(p)
    return out
