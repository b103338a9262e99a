"""``routellm evaluate --cascade``: a cascade's table beside the routers', on one answer set.

The check scores every cheap answer (``checks``: the zero-label checks, no labels;
a folder or a :class:`~routellm_integrations.verification.Verifier`: the verifier
learned by ``routellm adapt``); where the set holds a second cheap answer the agreement
check is evaluated too (one more cheap call per prompt). Each router named is evaluated
as a plain router and, with the check, as the route-then-verify hybrid.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .answers import AnswerSet
from .cascade import PRICE_RATIOS, PolicyResult, bootstrap, format_cascade_table, policy

#: the share of prompts the hybrid sends straight to the strong model, a priori (not tuned)
DEFAULT_STRAIGHT_SHARE = 0.2

_AGREEMENT = {True: 0.0, None: 0.5, False: 1.0}


def agreement_scores(prompts: Sequence[str], weak_answers: Sequence[str],
                     second_answers: Sequence[str]) -> np.ndarray:
    """The agreement check as a score: 1 where the two cheap answers' final answers
    differ, 0.5 where either states none, 0 where they agree; within each group the
    zero-label score breaks ties (it moves a score by at most 0.001)."""
    from ..verification.signals import answers_agree, zero_label_score

    if not (len(prompts) == len(weak_answers) == len(second_answers)):
        raise DataError(f"agreement needs one prompt and two answers per row: got {len(prompts)} prompts, "
                        f"{len(weak_answers)} weak and {len(second_answers)} second answers")
    base = np.array([_AGREEMENT[answers_agree(a, b)] for a, b in zip(weak_answers, second_answers)])
    return base + 1e-3 * np.asarray(zero_label_score(list(prompts), list(weak_answers)), dtype=float)


def check_scores(check: Any, prompts: Sequence[str], answers: Sequence[str]) -> tuple[str, np.ndarray]:
    """(name, scores) of a check: ``"checks"`` (zero-label), a verifier folder, or an
    object with ``score(prompts, answers)``."""
    if isinstance(check, str) and check == "checks":
        from ..verification.signals import zero_label_score

        return "zero-label checks", np.asarray(zero_label_score(list(prompts), list(answers)), dtype=float)
    if isinstance(check, (str, os.PathLike)):
        from ..verification import load_verifier

        # evaluated even where its guard did not serve it: this is where one looks at why
        verifier = load_verifier(check, allow_unserved=True)
        name = f"verifier ({Path(check).name})" + ("" if verifier.served else ", not served by its guard")
        return name, np.asarray(verifier.score(list(prompts), list(answers)), dtype=float)
    if hasattr(check, "score"):
        return "verifier", np.asarray(check.score(list(prompts), list(answers)), dtype=float)
    raise DataError(f"a cascade check is 'checks' or a verifier folder, not {check!r}")


def cascade_report(answers: AnswerSet, router_scores: dict[str, np.ndarray], *, check: Any = "checks",
                   ratios: Sequence[float] = PRICE_RATIOS, straight_share: float = DEFAULT_STRAIGHT_SHARE,
                   n_boot: int = 200, seed: int = 0) -> list[PolicyResult]:
    """Routers, the cascade with ``check``, agreement (if the set has second answers) and
    each router's hybrid with the check, all on the same bootstrap resamples."""
    prompts = answers.prompts
    name, scores = check_scores(check, prompts, answers.weak_answers)
    policies = {r: policy("router", s, ratios=ratios, name=r) for r, s in router_scores.items()}
    policies[name] = policy("cascade", scores, ratios=ratios, name=name)
    if answers.second_answers is not None:
        agree = agreement_scores(prompts, answers.weak_answers, answers.second_answers)
        label = f"agreement ({answers.second_model})"
        policies[label] = policy("cascade", agree, cheap_calls=2.0, ratios=ratios, name=label)
    for r, s in router_scores.items():
        label = f"hybrid: {r} top {straight_share:.0%}, then {name}"
        policies[label] = policy("hybrid", s, scores, straight_share=straight_share, ratios=ratios, name=label)
    return list(bootstrap(policies, answers.bench, n_boot=n_boot, seed=seed).with_intervals().values())


def print_cascade_report(answers: AnswerSet, results: Sequence[PolicyResult]) -> None:
    b = answers.bench
    print(f"\n{b.name}: {len(b)} prompts, strong {b.strong_model} = {b.strong_quality:.3f}, weak {b.weak_model} = "
          f"{b.weak_quality:.3f} ({b.outcome_kind}); cascades pay the cheap call on every prompt")
    print(format_cascade_table(results))
    print("APGR (share): quality against the share answered by the strong model; cost APGR @Rx: against total "
          "cost at a strong/weak price ratio R (0 = all cheap, 1 = all strong); 95% bootstrap intervals.")
