"""A verifier learned from your labels: P(the strong model's answer is better), read from
the prompt *and* the cheap model's answer.

    fit = fit_verifier(prompts, weak_answers, labels)      # labels: strong/weak outcomes
    print(fit.report.summary())
    fit.verifier.save("my-router")                        # beside `routellm adapt`'s router
    v = load_verifier("my-router")
    v.score(["What is 12 * 7?"], ["12 * 7 = 82. #### 82"])  # -> array([0.9...])

Why guarded: answer features mean different things per task (a verifier trained on one
pool does not transfer), and on letter-answer multiple choice or MT-Bench-like mixes the
answer adds nothing the prompt router lacks. So the verifier is fitted on the user's
labels only, its APGR is measured by nested cross-validation on them, and it is
*served* only when a paired bootstrap says it beats the prompt router those same labels
chose (the adapted head, the base router or length) in ``confidence`` of the resamples.
A folder whose verifier was not served still holds it, for the record, but
:func:`load_verifier` refuses it with :class:`UnservedVerifierError` saying why (pass
``allow_unserved=True`` to inspect it), and ``escalate_if=<folder>`` adds no check and
warns why: a verifier the labels did not support must never escalate without a word.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..embedders.base import Embedder
from ..errors import CheckpointError, DataError, InvalidThresholdError, RouteLLMError
from ..evaluation.benchmarks import Benchmark
from ..evaluation.metrics import CandidateReport
from ..routers.ridge_head import Blocks, RidgeHead, Standardiser
from .features import DENSE_FEATURES, verifier_blocks

VERIFIER_CONFIG = "verifier.json"
VERIFIER_TENSORS = "verifier.safetensors"
FORMAT = "routellm-verifier"
FORMAT_VERSION = 1
#: the embedding the verifier reads by default: static (WordLlama), so scoring an answer
#: costs well under a millisecond and no model download (it ships in the wheel)
DEFAULT_EMBEDDER = "wordllama"
#: shuffles of the nested cross-validation whose mean the guard compares
NESTED_REPEATS = 2
#: the OOF score quantiles kept for threshold_for_share (enough for any share to 0.1%)
_QUANTILES = 1001


class NoVerifierError(CheckpointError):
    """The folder holds no verifier: ``routellm adapt`` fits one only when the outcome
    file has a ``weak_answer`` column (or the label store holds the weak answers)."""


class UnservedVerifierError(RouteLLMError, ValueError):
    """The folder's verifier did not beat the prompt router on the labels it was fitted
    on, so it is not served; the message says by how much. ``.verifier`` holds it."""

    def __init__(self, message: str, verifier: "Verifier | None" = None) -> None:
        super().__init__(message)
        self.verifier = verifier


#: one scorer's cross-validated APGR on the labels, with a 95% bootstrap interval (the
#: record the adaptation guard reports its candidates in)
VerifierCandidate = CandidateReport


class VerifierReport(BaseModel):
    """What the labels said about reading the answer, and whether the verifier is served."""

    model_config = ConfigDict(frozen=True)

    n_labels: int
    n_informative: int
    embedder: str
    candidates: list[VerifierCandidate]
    served: bool
    reason: str
    p_better: float
    diff: float
    diff_lo: float
    diff_hi: float
    penalty: str
    folds: int
    confidence: float
    threshold: float
    share_at_threshold: float
    seconds: float

    def summary(self) -> str:
        lines = [f"verifier on (prompt, answer): {self.n_labels} labels ({self.n_informative} where the models "
                 "differ); cross-validated APGR of escalating answers in score order:"]
        for c in self.candidates:
            lines.append(f"  {c.name:13} {c.apgr:.3f}  [{c.lo:.3f}, {c.hi:.3f}]  {c.detail}")
        lines.append(f"verifier served: {'yes' if self.served else 'no'} ({self.reason})")
        return "\n".join(lines)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


class Verifier:
    """Scores (prompt, cheap answer) pairs: P(the strong model's answer is better).

    ``threshold`` (0.5 unless set): escalate when the score is at least it, i.e. when the
    strong answer is more likely better than not. :meth:`threshold_for_share` gives the
    threshold that escalated a given share of the labelled answers instead."""

    def __init__(self, *, head: RidgeHead, embedder: Embedder, calibration: tuple[float, float, float, float],
                 oof_quantiles: np.ndarray, threshold: float = 0.5, served: bool = True, reason: str = "",
                 config: dict[str, Any] | None = None, path: Path | None = None) -> None:
        self.head = head
        self.embedder = embedder
        self.calibration = tuple(float(c) for c in calibration)  # (pred mean, pred std, slope, intercept)
        self.oof_quantiles = np.sort(np.asarray(oof_quantiles, dtype=np.float64))
        self.threshold = float(threshold)
        self.served = bool(served)
        self.reason = reason
        self.config_data: dict[str, Any] = dict(config or {})
        self.path = path

    def __repr__(self) -> str:
        return (f"Verifier(embedder={self.embedder.name!r}, served={self.served}, "
                f"threshold={self.threshold:.3f})")

    @property
    def report(self) -> VerifierReport | None:
        card = self.config_data.get("report")
        return VerifierReport.model_validate(card) if isinstance(card, dict) else None

    # -- scoring ------------------------------------------------------------------------
    def score(self, prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
        """P(the strong model's answer is better) per pair, shape ``(n,)``, in (0, 1)."""
        p, a = _check_pairs(prompts, answers)
        if not p:
            return np.zeros(0)
        return self._calibrate(self.head.predict(verifier_blocks(p, a, self.embedder)))

    def escalates(self, prompts: Sequence[str], answers: Sequence[str], threshold: float | None = None) -> np.ndarray:
        """Which answers to escalate at ``threshold`` (default: :attr:`threshold`)."""
        t = self.threshold if threshold is None else _unit(threshold, "threshold")
        return self.score(prompts, answers) >= t

    def _calibrate(self, pred: np.ndarray) -> np.ndarray:
        mean, std, slope, intercept = self.calibration
        return _sigmoid(slope * (np.asarray(pred, dtype=np.float64) - mean) / std + intercept)

    def threshold_for_share(self, share: float) -> float:
        """The threshold at which ``share`` of the labelled answers (scored out of fold at
        fit time, so as new traffic would be) escalated: ``score >= threshold``."""
        s = _unit(share, "share")
        q = self.oof_quantiles
        if s <= 0.0:
            return float(np.nextafter(q[-1], np.inf))
        return float(np.quantile(q, 1.0 - s))

    # -- persistence --------------------------------------------------------------------
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``verifier.json`` and ``verifier.safetensors`` into ``directory`` (made if
        missing; a router folder's other files are left alone). Each file is written to a
        temporary name and renamed, so a crash never leaves half a verifier."""
        from safetensors.numpy import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        config = dict(self.config_data)
        config.update({"format": FORMAT, "version": FORMAT_VERSION, "embedder": self.embedder.name,
                       "embedding_dim": int(self.head.w_embedding.shape[0]), "features": list(DENSE_FEATURES),
                       "served": self.served, "reason": self.reason, "threshold": self.threshold,
                       "calibration": list(self.calibration)})
        tensors = {"w_embedding": self.head.w_embedding, "w_features": self.head.w_features,
                   "bias": np.array([self.head.bias]), "features_mean": self.head.features.mean,
                   "features_std": self.head.features.std, "oof_quantiles": self.oof_quantiles}
        tmp_t = out / f".{VERIFIER_TENSORS}.tmp"
        tmp_c = out / f".{VERIFIER_CONFIG}.tmp"
        save_file({k: np.ascontiguousarray(np.asarray(v, dtype=np.float64)) for k, v in tensors.items()},
                  str(tmp_t), metadata={"format": FORMAT, "version": str(FORMAT_VERSION)})
        tmp_c.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        os.replace(tmp_t, out / VERIFIER_TENSORS)
        os.replace(tmp_c, out / VERIFIER_CONFIG)  # the config last: its presence means a whole verifier
        self.config_data, self.path = config, out
        return out


def load_verifier(directory: str | os.PathLike[str], *, allow_unserved: bool = False) -> Verifier:
    """The verifier saved in ``directory`` (a ``routellm adapt --out`` folder).

    Raises :class:`NoVerifierError` when the folder holds none, :class:`CheckpointError`
    when its files are corrupt, and :class:`UnservedVerifierError` when the guard did not
    serve it (unless ``allow_unserved=True``, for inspection)."""
    from ..routers.checkpoint import read_json, read_tensors

    folder = Path(directory).expanduser()
    if not folder.is_dir():
        raise NoVerifierError(f"verifier folder {str(folder)!r} does not exist")
    cfg_path = folder / VERIFIER_CONFIG
    if not cfg_path.is_file():
        raise NoVerifierError(f"{str(folder)!r} holds no verifier ({VERIFIER_CONFIG} missing): `routellm adapt` "
                              "fits one when the outcome file has a weak_answer column, or the label store holds "
                              "the weak model's answers")
    config = read_json(cfg_path)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path} is not a verifier config")
    if config.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path}: verifier format version {config.get('version')!r}; this version reads "
                              f"{FORMAT_VERSION}")
    if config.get("features") != list(DENSE_FEATURES):
        raise CheckpointError(f"{cfg_path} was fitted on features {config.get('features')}; this version computes "
                              f"{list(DENSE_FEATURES)}: re-run routellm adapt")
    t = read_tensors(folder / VERIFIER_TENSORS)
    dim, n_feat = config.get("embedding_dim"), len(DENSE_FEATURES)
    if not isinstance(dim, int) or dim <= 0:
        raise CheckpointError(f"{cfg_path}: 'embedding_dim' must be a positive integer, got {dim!r}")
    shapes = {"w_embedding": (dim,), "w_features": (n_feat,), "features_mean": (n_feat,), "features_std": (n_feat,),
              "bias": (1,)}
    for name, shape in shapes.items():
        if name not in t:
            raise CheckpointError(f"{folder / VERIFIER_TENSORS} is missing tensor {name!r}")
        if t[name].shape != shape:
            raise CheckpointError(f"verifier tensor {name!r} has shape {t[name].shape}, expected {shape}")
    q = t.get("oof_quantiles")
    if q is None or q.ndim != 1 or q.size == 0:
        raise CheckpointError(f"{folder / VERIFIER_TENSORS} is missing its 'oof_quantiles'")
    for name in [*shapes, "oof_quantiles"]:
        if not np.isfinite(t[name]).all():
            raise CheckpointError(f"verifier tensor {name!r} holds NaN or infinite values")
    calibration = config.get("calibration")
    if (not isinstance(calibration, list) or len(calibration) != 4
            or not all(isinstance(c, (int, float)) and math.isfinite(c) for c in calibration) or calibration[1] <= 0):
        raise CheckpointError(f"{cfg_path}: 'calibration' must be 4 finite numbers, got {calibration!r}")
    threshold = config.get("threshold", 0.5)
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise CheckpointError(f"{cfg_path}: 'threshold' must be in [0, 1], got {threshold!r}")
    embedder = _embedder(config.get("embedder"), cfg_path)
    if embedder.dim * 2 != dim:
        raise CheckpointError(f"{cfg_path}: embedding_dim {dim} does not fit {embedder.name!r} ({embedder.dim} per "
                              "text, prompt and answer side by side)")
    head = RidgeHead(t["w_embedding"], t["w_features"], None, float(t["bias"][0]),
                     Standardiser(t["features_mean"], t["features_std"]), None)
    verifier = Verifier(head=head, embedder=embedder, calibration=tuple(calibration),  # type: ignore[arg-type]
                        oof_quantiles=q, threshold=float(threshold), served=bool(config.get("served")),
                        reason=str(config.get("reason", "")), config=config, path=folder)
    if not verifier.served and not allow_unserved:
        raise UnservedVerifierError(
            f"the verifier in {str(folder)!r} is not served: {verifier.reason or 'the guard did not serve it'}. "
            "Route with the folder's prompt router (load_router), or gather more labels and adapt again "
            "(load_verifier(..., allow_unserved=True) loads it anyway, for inspection)", verifier)
    return verifier


def _embedder(name: Any, where: Path) -> Embedder:
    from ..embedders import get_embedder

    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{where}: 'embedder' must name the embedding space, got {name!r}")
    embedder = get_embedder(name)
    if embedder.name != name:
        raise CheckpointError(f"{where}: the verifier was fitted on {name!r} embeddings; got {embedder.name!r}")
    return embedder


def _unit(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidThresholdError(f"{what} must be a number in [0, 1], got {value!r}")
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise InvalidThresholdError(f"{what} must be in [0, 1], got {v}")
    return v


def _check_pairs(prompts: Sequence[str], answers: Sequence[str]) -> tuple[list[str], list[str]]:
    if isinstance(prompts, str) or isinstance(answers, str):
        raise DataError("pass lists of prompts and answers, not single strings (wrap one pair as [prompt], [answer])")
    p, a = list(prompts), list(answers)
    if len(p) != len(a):
        raise DataError(f"got {len(p)} prompts and {len(a)} answers; they must pair one to one")
    bad_p = [i for i, x in enumerate(p) if not isinstance(x, str)]
    bad_a = [i for i, x in enumerate(a) if not isinstance(x, str)]
    if bad_p:
        raise DataError(f"prompt(s) at {bad_p[:10]} are not text (got {type(p[bad_p[0]]).__name__})")
    if bad_a:
        raise DataError(f"answer(s) at {bad_a[:10]} are not text (got {type(a[bad_a[0]]).__name__}); "
                        "a missing answer cannot be verified")
    return p, a


# --------------------------------------------------------------------------- fitting


@dataclass
class VerifierFit:
    verifier: Verifier
    report: VerifierReport
    oof: np.ndarray  # the verifier's nested out-of-fold scores on the labels (what the guard compared)

    @property
    def served(self) -> bool:
        return self.report.served


def _outcomes(labels: Any, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    from ..labels.labelset import LabelSet

    if isinstance(labels, LabelSet):
        strong, weak, kind = labels.strong, labels.weak, labels.kind
    elif isinstance(labels, Benchmark):
        strong, weak, kind = labels.strong_outcome, labels.weak_outcome, labels.outcome_kind
    else:
        arr = np.asarray(labels, dtype=np.float64)
        if arr.ndim == 2 and arr.shape == (2, n):
            arr = arr.T
        if arr.shape != (n, 2):
            raise DataError(f"labels must be a LabelSet, a Benchmark or (strong, weak) outcomes of the {n} prompts; "
                            f"got shape {arr.shape}")
        strong, weak, kind = arr[:, 0], arr[:, 1], "score"
    strong, weak = np.asarray(strong, dtype=np.float64), np.asarray(weak, dtype=np.float64)
    if strong.shape != (n,):
        raise DataError(f"got {strong.shape[0]} labels for {n} prompts")
    if not (np.isfinite(strong).all() and np.isfinite(weak).all()):
        raise DataError("labels hold non-finite outcomes")
    return strong, weak, kind


def _logistic(x: np.ndarray, t: np.ndarray, l2: float = 1e-2, steps: int = 50) -> tuple[float, float]:
    """slope, intercept of P(t) = sigmoid(slope * x + intercept), by Newton's method."""
    w = np.zeros(2)
    X = np.column_stack([x, np.ones_like(x)])
    for _ in range(steps):
        p = _sigmoid(X @ w)
        grad = X.T @ (p - t) + l2 * np.array([w[0], 0.0])
        hess = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.diag([1.0, 1e-9])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), float(w[1])


def _calibration(oof: np.ndarray, strong: np.ndarray, weak: np.ndarray) -> tuple[float, float, float, float]:
    """Maps the head's prediction to P(strong better), fitted on out-of-fold predictions
    (so a head that overfits its own labels is not believed)."""
    mean, std = float(np.mean(oof)), float(np.std(oof)) or 1.0
    better = (strong > weak).astype(np.float64)
    if better.min() == better.max():  # nothing to calibrate against: keep the order, centre at the base rate
        rate = float(np.clip(better.mean(), 0.01, 0.99))
        return mean, std, 1.0, math.log(rate / (1.0 - rate))
    slope, intercept = _logistic((oof - mean) / std, better)
    if slope <= 0:  # the head does not rank on held-out labels; the guard will not serve it anyway
        slope = 1e-3
    return mean, std, slope, intercept


def _candidate(scores: np.ndarray, bench: Benchmark, name: str, detail: str, n_boot: int,
               seed: int) -> VerifierCandidate:
    from ..adaptation.guard import interval

    return interval(np.asarray(scores, dtype=np.float64), bench, name, detail, n_boot, seed)


def _prompt_router_scores(prompts: list[str], bench: Benchmark, y: np.ndarray, embedder: Embedder, *, folds: int,
                          confidence: float, n_boot: int, seed: int) -> tuple[np.ndarray, str]:
    """Without a prompt router given: the one ``routellm adapt`` would serve on these
    labels with no base router (the prompt head if it beats length, else length)."""
    from ..adaptation.guard import guard, nested_oof
    from ..routers.ridge_head import compute_blocks

    blocks = compute_blocks(prompts, embedder, None)
    honest = nested_oof(blocks, y, bench, k=folds, repeats=NESTED_REPEATS, seed=seed)
    length = np.array([len(p) for p in prompts], dtype=np.float64)
    decision = guard(honest, length, None, bench, confidence=confidence, base_confidence=1.0, n_boot=n_boot,
                     seed=seed)
    if decision.serves == "adapted":
        return honest, "prompt head (ridge on the prompt alone, nested CV)"
    return length, "prompt length (the prompt head did not beat it)"


def fit_verifier(prompts: Sequence[str], answers: Sequence[str], labels: Any, *, embedder: Embedder | None = None,
                 prompt_scores: Sequence[float] | np.ndarray | None = None, prompt_router: str = "prompt router",
                 folds: int = 5, confidence: float = 0.95, n_boot: int = 200, seed: int = 0,
                 strong_model: str = "strong", weak_model: str = "weak") -> VerifierFit:
    """Fit a verifier on labelled (prompt, weak answer) pairs, guarded.

    ``labels``: the pairs' outcomes, as a :class:`~routellm_integrations.labels.LabelSet`,
    a :class:`~routellm_integrations.evaluation.benchmarks.Benchmark` or ``(n, 2)``
    (strong, weak) numbers. ``prompt_scores``: what the prompt router the user would
    otherwise serve scores on these prompts, *out of fold* when it was fitted on them
    (``routellm adapt`` passes its guard's choice); without them the prompt head
    ``routellm adapt`` would fit is cross-validated here. The verifier is served when its
    nested cross-validated APGR beats the prompt router's in ``confidence`` of paired
    bootstrap resamples (default 0.95, a one-sided 95% test: a cascade pays a cheap call before every
    escalation, so it must clearly earn its place)."""
    from ..adaptation.guard import _p_better, cv_select, default_grid, nested_oof
    from ..adaptation.head import fit_head
    from ..evaluation.metrics import paired_bootstrap_apgr

    start = time.perf_counter()
    p, a = _check_pairs(prompts, answers)
    n = len(p)
    strong, weak, kind = _outcomes(labels, n)
    informative = int(np.count_nonzero(strong != weak))
    if informative < 4:
        raise DataError(f"only {informative} of {n} labelled answers have different outcomes for the two models; "
                        "at least 4 are needed to measure anything (more than 100 to fit a verifier usefully)")
    bench = Benchmark("your labels", tuple(p), strong, weak, strong_model, weak_model,
                      "accuracy" if kind == "accuracy" else "score")  # type: ignore[arg-type]
    if bench.strong_quality == bench.weak_quality:
        raise DataError("on these labels the strong and the weak model score the same on average, so no "
                        "escalation can gain anything (APGR is undefined)")
    if embedder is None:
        from ..embedders import CachedEmbedder, get_embedder
        from ..paths import embedding_cache_path

        embedder = CachedEmbedder(get_embedder(DEFAULT_EMBEDDER), path=embedding_cache_path())
    y = strong - weak
    blocks: Blocks = verifier_blocks(p, a, embedder)
    grid = default_grid()
    selection = cv_select(blocks, y, bench, grid=grid, k=folds, repeats=2, seed=seed)
    oof = nested_oof(blocks, y, bench, grid=grid, k=folds, repeats=NESTED_REPEATS, seed=seed)
    if prompt_scores is None:
        fallback, fallback_detail = _prompt_router_scores(p, bench, y, embedder, folds=folds, confidence=0.75,
                                                          n_boot=n_boot, seed=seed)
    else:
        fallback = np.asarray(prompt_scores, dtype=np.float64)
        if fallback.shape != (n,) or not np.isfinite(fallback).all():
            raise DataError(f"prompt_scores must be {n} finite numbers, one per prompt; got shape {fallback.shape}")
        fallback_detail = prompt_router
    from .signals import zero_label_score

    zero = zero_label_score(p, a)
    candidates = [
        _candidate(oof, bench, "verifier", f"ridge on (prompt, answer) ({selection.penalty.label()}), nested "
                                           f"{folds}-fold", n_boot, seed),
        _candidate(fallback, bench, "prompt router", fallback_detail, n_boot, seed),
        _candidate(zero, bench, "answer checks", "zero-label answer checks (no fit)", n_boot, seed),
        _candidate(np.array([len(x) for x in p], dtype=np.float64), bench, "length", "prompt length (no model)",
                   n_boot, seed),
    ]
    p_better = _p_better(oof, fallback, bench, n_boot, seed + 1)
    if np.ptp(oof) > 0 and np.ptp(fallback) > 0:
        paired = paired_bootstrap_apgr(oof, fallback, bench, n_boot=n_boot, seed=seed + 1)
        diff, lo, hi = float(paired["diff"]), float(paired["lo"]), float(paired["hi"])
    else:
        diff = candidates[0].apgr - candidates[1].apgr
        lo = hi = diff
    served = p_better >= confidence
    verb = "beats" if served else "beats only"
    reason = (f"cross-validated APGR of the verifier {candidates[0].apgr:.3f} vs {fallback_detail} "
              f"{candidates[1].apgr:.3f} (paired difference {diff:+.3f} [{lo:+.3f}, {hi:+.3f}]): it {verb} it in "
              f"{p_better:.0%} of bootstrap resamples (needs {confidence:.0%})")
    if not served:
        reason += "; serving the prompt router"
    head = fit_head(blocks, y, selection.penalty)
    calibration = _calibration(oof, strong, weak)
    mean, std, slope, intercept = calibration
    oof_p = _sigmoid(slope * (oof - mean) / std + intercept)
    quantiles = np.quantile(oof_p, np.linspace(0.0, 1.0, min(_QUANTILES, max(2, n))))
    threshold = 0.5
    report = VerifierReport(
        n_labels=n, n_informative=informative, embedder=embedder.name, candidates=candidates, served=served,
        reason=reason, p_better=p_better, diff=diff, diff_lo=lo, diff_hi=hi, penalty=selection.penalty.label(),
        folds=folds, confidence=confidence, threshold=threshold,
        share_at_threshold=float(np.mean(oof_p >= threshold)), seconds=time.perf_counter() - start)
    inner = getattr(embedder, "inner", None)
    verifier = Verifier(head=head, embedder=inner if isinstance(inner, Embedder) else embedder,
                        calibration=calibration, oof_quantiles=quantiles, threshold=threshold, served=served,
                        reason=reason, config={"report": report.model_dump(), "strong_model": strong_model,
                                               "weak_model": weak_model})
    return VerifierFit(verifier, report, oof)


__all__ = ["DEFAULT_EMBEDDER", "NoVerifierError", "UnservedVerifierError", "Verifier", "VerifierCandidate",
           "VerifierFit", "VerifierReport", "fit_verifier", "load_verifier"]
