"""``adapt_router``: fit a router to a user's own labelled traffic, guarded.

    result = adapt_router("mf_minilm", outcomes="my_outcomes.csv")
    print(result.report.summary())
    result.save("my-router")            # load_router("my-router") serves it

The labels are the only data used: the head's penalties are chosen by cross-validation
on them, and the guard compares the adapted head's cross-validated APGR with the base
router's and prompt length's on them, serving whichever it can trust (see
:mod:`.guard`). Embeddings are cached on disk, so re-adapting after more labels arrive
costs only the fits.

Labels that carry the weak model's answers (an outcome file's ``weak_answer`` column,
the label store's judge and shadow labels) also fit an answer verifier
(:mod:`..verification.verifier`), guarded against the prompt router the step above
chose; the folder then holds both: ``load_router(folder)`` serves the prompt router,
``load_verifier(folder)`` the verifier (or says why it is not served).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..embedders.base import Embedder
from ..errors import DataError
from ..routers.base import BaseRouter
from ..labels.labelset import LabelSet, load_battle_labels, load_outcome_labels
from .guard import CandidateReport, cv_select, default_grid, guard, interval, nested_oof
from .head import fit_head
from ..routers.ridge_head import FEATURE_NAMES, Blocks, compute_blocks
from ..routers.adapted import AdaptedRouter
from ..verification.verifier import Verifier, VerifierReport

#: below this many labels on which the two models differ, APGR cannot be estimated at all
MIN_INFORMATIVE = 4
#: shuffles of the nested cross-validation the guard compares (their mean is far less noisy)
NESTED_REPEATS = 3


class AdaptationReport(BaseModel):
    """What the labels said, and what the folder serves because of it."""

    model_config = ConfigDict(frozen=True)

    base: str
    strong_model: str
    weak_model: str
    n_labels: int
    n_informative: int
    sources: list[str]
    embedder: str
    candidates: list[CandidateReport]
    serves: str
    reason: str
    penalty: str
    folds: int
    repeats: int
    confidence: float
    base_confidence: float
    seconds: float
    #: the answer verifier's report, when the labels carried the weak model's answers
    verifier: VerifierReport | None = None
    #: why no verifier was fitted although answers were given (too few usable labels)
    verifier_note: str | None = None

    def summary(self) -> str:
        lines = [f"{self.n_labels} labels ({self.n_informative} where the models differ), "
                 f"strong {self.strong_model} vs weak {self.weak_model}; cross-validated APGR on your labels:"]
        for c in self.candidates:
            lines.append(f"  {c.name:8} {c.apgr:.3f}  [{c.lo:.3f}, {c.hi:.3f}]  {c.detail}")
        lines.append(f"serves: {self.serves} ({self.reason})")
        if self.verifier is not None:
            lines.append(self.verifier.summary())
        elif self.verifier_note:
            lines.append(f"verifier: {self.verifier_note}")
        return "\n".join(lines)


@dataclass
class Adaptation:
    router: AdaptedRouter
    report: AdaptationReport
    verifier: Verifier | None = None

    def save(self, path: str | os.PathLike[str], command: str | None = None) -> Path:
        """The router folder; with a verifier, its files beside the router's (written
        after the router, whose save replaces the folder)."""
        from .card import render_adapted_card

        out = Path(path)
        self.router.config_data.update({"card": self.report.model_dump(), "reason": self.report.reason})
        self.router.save_pretrained(out)
        if self.verifier is not None:
            self.verifier.save(out)
        (out / "README.md").write_text(render_adapted_card(self.router.config_data, command))
        return out


def load_labels(*, outcomes: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
                battles: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
                store: Any = None, labels: LabelSet | None = None, strong_model: str = "strong",
                weak_model: str = "weak") -> LabelSet:
    """Every label source given, as one :class:`LabelSet` of one pair."""
    from ..labels.store import LabelStore

    parts: list[LabelSet] = []
    if labels is not None:
        parts.append(labels)
    for path in _paths(outcomes):
        parts.append(load_outcome_labels(path, strong_model=strong_model, weak_model=weak_model))
    for path in _paths(battles):
        parts.append(load_battle_labels(path, strong_model=strong_model, weak_model=weak_model))
    if store is not None:
        st = store if isinstance(store, LabelStore) else LabelStore(store)
        try:
            pairs = {(s, w) for s, w, _ in st.pairs()}
            wanted = (strong_model, weak_model)
            parts.append(st.label_set(strong_model=strong_model, weak_model=weak_model) if wanted in pairs
                         else st.label_set())
        finally:
            if st is not store:
                st.close()
    if not parts:
        raise DataError("nothing to adapt on: give outcomes=, battles= or store= (labels of your own prompts)")
    if len(parts) > 1:  # outcome files name the pair generically: join them under the pair adapted
        parts = [LabelSet(p.prompts, p.strong, p.weak, strong_model, weak_model, p.kind, p.embedder, p.embeddings,
                          p.features, p.sources, p.weak_answers, p.strong_answers) for p in parts]
    return LabelSet.concat(parts)


def _paths(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    return list(value)


def _label_blocks(labels: LabelSet, embedder: Embedder, base: BaseRouter | None) -> Blocks:
    """Inputs for every label: computed from text, or the recorded embedding and features."""
    if labels.has_all_text:
        return compute_blocks([p for p in labels.prompts if p is not None], embedder, base)
    if labels.embedder != embedder.name:
        raise DataError(f"labels hold embeddings from {labels.embedder!r} but the head embeds with "
                        f"{embedder.name!r}; adapt with embedder={labels.embedder!r}")
    assert labels.embeddings is not None and labels.features is not None
    emb = np.array(labels.embeddings, dtype=np.float32)
    feats = np.array(labels.features, dtype=np.float64)
    texted = [i for i, p in enumerate(labels.prompts) if p is not None]
    if texted:
        part = compute_blocks([labels.prompts[i] for i in texted], embedder, None)  # type: ignore[misc]
        emb[texted], feats[texted] = part.embedding, part.features
    return Blocks(emb, feats, None)  # the base cannot score a prompt it cannot read


def _default_embedder(base: BaseRouter) -> Embedder:
    from ..embedders import CachedEmbedder, get_embedder
    from ..paths import embedding_cache_path

    own = getattr(base, "embedder", None)
    inner = own if own is not None else get_embedder("minilm-onnx-int8")
    return inner if isinstance(inner, CachedEmbedder) else CachedEmbedder(inner, path=embedding_cache_path())


def adapt_router(base: BaseRouter | str | os.PathLike[str] = "mf_minilm", *, outcomes: Any = None, battles: Any = None,
                 store: Any = None, labels: LabelSet | None = None, strong_model: str | None = None,
                 weak_model: str | None = None, embedder: Embedder | None = None, folds: int = 5,
                 repeats: int = 2, confidence: float = 0.75, base_confidence: float = 0.9, n_boot: int = 200,
                 seed: int = 0, verify: bool | None = None, verifier_confidence: float = 0.95,
                 verifier_embedder: Embedder | None = None,
                 progress: bool = True) -> Adaptation:
    """Adapt ``base`` (any router, by name, folder or object) to labelled prompts.

    ``outcomes``: ``prompt,strong,weak`` files (any numeric scale); ``battles``:
    ``prompt,model_a,model_b,winner`` files between the pair; ``store``: a
    :class:`~routellm_integrations.labels.LabelStore` (or its path). ``confidence`` is the
    share of bootstrap resamples in which the adapted head must beat the fallback before
    it is served, ``base_confidence`` the share in which the base must beat prompt length
    to be that fallback (see :func:`.guard.guard`).

    ``verify``: fit the answer verifier too (default: when the labels carry the weak
    model's answers; ``True`` without answers is a :class:`DataError`). It is served
    only when it beats the prompt router chosen above in ``verifier_confidence`` of the
    paired bootstrap resamples (see :func:`..verification.verifier.fit_verifier`).
    """
    from tqdm.auto import tqdm

    from ..routers.registry import load_router

    start = time.perf_counter()
    base_router = base if isinstance(base, BaseRouter) else load_router(base)
    strong = strong_model or str(getattr(base_router, "strong_model", "strong"))
    weak = weak_model or str(getattr(base_router, "weak_model", "weak"))
    data = load_labels(outcomes=outcomes, battles=battles, store=store, labels=labels, strong_model=strong,
                       weak_model=weak)
    if strong_model is None and weak_model is None and (data.strong_model, data.weak_model) != ("strong", "weak"):
        strong, weak = data.strong_model, data.weak_model  # the pair the labels were gathered for
    if data.informative < MIN_INFORMATIVE:
        raise DataError(f"only {data.informative} of {len(data)} labelled prompts have different outcomes for the "
                        f"two models; at least {MIN_INFORMATIVE} are needed to measure anything (more than 50 to "
                        "adapt usefully)")
    bench = data.as_benchmark()
    if bench.strong_quality == bench.weak_quality:
        raise DataError("on these labels the strong and the weak model score the same on average, so no routing "
                        "can gain anything (APGR is undefined)")
    answered = data.answered
    if verify and not len(answered):
        raise DataError("verify=True needs labels with the weak model's answers (a weak_answer column in the outcome "
                        "file, or a label store that recorded them)")
    verify = bool(len(answered)) if verify is None else bool(verify)
    emb = embedder or _default_embedder(base_router)
    y = data.target
    grid = default_grid()
    with tqdm(total=repeats + NESTED_REPEATS + 2 + int(verify), desc="adapting", unit="step", disable=not progress, leave=False) as bar:
        blocks = _label_blocks(data, emb, base_router)
        bar.update(1)
        selection = cv_select(blocks, y, bench, grid=grid, k=folds, repeats=repeats, seed=seed,
                              tick=lambda: bar.update(1))
        honest = nested_oof(blocks, y, bench, grid=grid, k=folds, repeats=NESTED_REPEATS, seed=seed,
                            tick=lambda: bar.update(1))
        length_scores = np.array([len(p) if p is not None else float(np.expm1(f[0]))
                                  for p, f in zip(data.prompts, blocks.features)])
        base_scores = (1.0 / (1.0 + np.exp(-blocks.prior)) if blocks.prior is not None else None)
        decision = guard(honest, length_scores, base_scores, bench, confidence=confidence,
                         base_confidence=base_confidence, n_boot=n_boot, seed=seed)
        candidates = [interval(length_scores, bench, "length", "prompt length (no model)", n_boot, seed)]
        if base_scores is not None:
            candidates.append(interval(base_scores, bench, "base", f"{base_router.name} as shipped", n_boot, seed))
        candidates.append(interval(honest, bench, "adapted",
                                   f"ridge head ({selection.penalty.label()}), nested {folds}-fold", n_boot, seed))
        head = fit_head(blocks, y, selection.penalty)
        bar.update(1)
        served_scores = {"adapted": honest, "base": base_scores, "length": length_scores}[decision.serves]
        served_name = next(c.detail for c in candidates if c.name == decision.serves)
        verifier, verifier_report, verifier_note = None, None, None
        if verify:
            verifier, verifier_report, verifier_note = _fit_verifier(
                data, answered, served_scores, f"{decision.serves}: {served_name}", folds=folds,
                confidence=verifier_confidence, n_boot=n_boot, seed=seed, embedder=verifier_embedder,
                strong_model=strong, weak_model=weak)
            bar.update(1)
    fitted = head.predict(blocks)
    scale = float(np.std(fitted)) or 1.0
    midpoint = int(np.median([len(p) for p in data.prompts if p is not None] or [400]))
    serves = decision.serves  # "base" only when the base had scores to compare
    # the base is kept only when what is served needs it: a length-serving folder loads no model
    needs_base = serves == "base" or (serves == "adapted" and head.w_prior is not None)
    router = AdaptedRouter(serves=serves, base=base_router if needs_base else None, head=head, embedder=emb,
                           length_midpoint=midpoint, score_scale=scale,
                           config={"strong_model": strong, "weak_model": weak, "reason": decision.reason})
    report = AdaptationReport(
        base=str(base if isinstance(base, (str, os.PathLike)) else base_router.name), strong_model=strong,
        weak_model=weak, n_labels=len(data), n_informative=data.informative, sources=list(data.sources),
        embedder=emb.name, candidates=candidates, serves=serves, reason=decision.reason,
        penalty=selection.penalty.label(), folds=folds, repeats=repeats, confidence=confidence,
        base_confidence=base_confidence,
        seconds=time.perf_counter() - start, verifier=verifier_report, verifier_note=verifier_note)
    return Adaptation(router, report, verifier)


def _fit_verifier(data: LabelSet, answered: np.ndarray, served_scores: Any, served_name: str, *, folds: int,
                  confidence: float, n_boot: int, seed: int, embedder: Embedder | None, strong_model: str,
                  weak_model: str) -> tuple[Verifier | None, VerifierReport | None, str | None]:
    """The verifier on the labels that carry an answer, compared with the served prompt
    router's scores on the same labels (out of fold when it is the adapted head)."""
    from ..verification.verifier import fit_verifier

    part = data.subset(answered)
    if not part.has_all_text:  # answered rows have text by construction; kept as a guard
        raise DataError("labels with answers must carry the prompt's text")
    bench = part.as_benchmark()
    if part.informative < MIN_INFORMATIVE or bench.strong_quality == bench.weak_quality:
        return None, None, (f"not fitted: only {part.informative} of the {len(part)} labels with answers have "
                            f"different outcomes for the two models (at least {MIN_INFORMATIVE} needed, more than "
                            "100 to fit usefully)")
    assert part.weak_answers is not None
    fit = fit_verifier([p for p in part.prompts if p is not None], [a or "" for a in part.weak_answers], part,
                       embedder=embedder, prompt_scores=np.asarray(served_scores, dtype=np.float64)[answered],
                       prompt_router=served_name, folds=folds, confidence=confidence, n_boot=n_boot, seed=seed,
                       strong_model=strong_model, weak_model=weak_model)
    note = None if len(part) == len(data) else f"fitted on the {len(part)} of {len(data)} labels that carry answers"
    return fit.verifier, fit.report, note


__all__ = ["Adaptation", "AdaptationReport", "FEATURE_NAMES", "adapt_router", "load_labels"]
