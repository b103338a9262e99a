"""Escalation checks that read the cheap model's *answer*: zero-label checks and a verifier.

A prompt router says which kind of prompt needs the strong model, not which prompt of
one kind; the cheap answer says more (a stated final answer, an arithmetic slip, a
second cheap answer that disagrees). These checks plug into the cascade that
``escalate_if=`` already runs on every surface (``RoutedChat``, ``RoutedLLM``, the
routed client, the server): an answer that fails one goes to the next model up, and its
reason is the escalated call's ``escalation_reason`` in the record.

- :func:`final_answer_missing`: a maths-like prompt whose answer states no final answer;
- :func:`answer_flags`: an arithmetic slip in the answer (``12 * 7 = 82``), truncation
  (the provider's ``finish_reason`` or a mid-way stop), self-correction, hedging, a
  missing or conflicting final answer; optionally an answer shorter or longer than you
  allow;
- :func:`agreement`: one more cheap call (the same cheap model sampled again at
  ``temperature``, or a second cheap model ``route``) answers too; the two extracted
  answers (a number, a choice letter, code output, short normalised text) disagreeing
  escalates. The engine makes that call through the call lifecycle, so it is admitted
  by the budget, settled and recorded (reason ``second_sample``);
- :func:`zero_label`: the zero-label score of the answer's flags above a threshold;
- :func:`verifier`: a verifier learned from your labels (``routellm adapt`` with a
  ``weak_answer`` column; :func:`~routellm_integrations.load_verifier`), escalating
  above its threshold or the threshold that escalates a share of your labelled traffic.

``escalate_if=`` takes them as objects, by name (:data:`CHECK_NAMES`: ``"final_answer"``,
``"answer_flags"``, ``"agreement"``, ``"zero_label"``, and the built-in
``"structured_output"``, ``"tool_call"``, ``"empty_or_refusal"``, ``"low_confidence"``,
``"defaults"``), a verifier object, or a verifier's folder (:func:`as_check`). The
signals themselves are :mod:`routellm_integrations.verification.signals` (regular
expressions; no model, no labels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .escalation import (DEFAULT_CHECKS, Answer, EscalationCheck, EscalationCheckError, SampleNeeded,
                         empty_or_refusal, invalid_structured_output, invalid_tool_call, low_confidence)

__all__ = ["CHECK_NAMES", "agreement", "ahead", "answer_flags", "as_check", "blocking", "escalation_checks",
           "final_answer_missing", "verifier", "zero_label"]


def _signals() -> Any:
    from ..verification import signals

    return signals


def _named(check: Callable[[Answer], "str | None"], name: str) -> EscalationCheck:
    check.__name__ = name
    check.__qualname__ = name
    return check


def _short(value: str | None, limit: int = 60) -> str:
    text = " ".join(str(value).split()) if value is not None else "none"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def final_answer_missing() -> EscalationCheck:
    """A maths-like prompt (numbers with a question, arithmetic, units of money or
    measure) whose answer states no final answer: no ``answer is``/``####``/boxed value,
    no number in its closing sentence (a final answer with no number in it, such as
    "let me think about it", counts as none for a maths-like prompt). Answers with tool
    calls are not checked."""

    def check(answer: Answer) -> str | None:
        if answer.tool_calls or answer.invalid_tool_calls:
            return None
        s = _signals()
        if not s.is_maths_like(answer.prompt):
            return None
        stated = s.final_answer(answer.text)
        if stated is None or not any(c.isdigit() for c in stated):
            return "no stated final answer (a maths-like prompt)"
        return None

    return _named(check, "final_answer_missing")


#: the flags :func:`answer_flags` escalates on by default (hedging alone is weak: models
#: also hedge when right; add it with ``flags=``)
DEFAULT_FLAGS = ("arithmetic slip", "truncated", "conflicting final answers", "no stated final answer",
                 "self-correction", "empty answer")
_ALL_FLAGS = DEFAULT_FLAGS + ("hedging",)


def answer_flags(flags: Iterable[str] | None = None, *, min_chars: int | None = None,
                 max_chars: int | None = None) -> EscalationCheck:
    """The answer shows a sign of a wrong answer (:func:`~..verification.signals.answer_flags`):
    ``flags`` names which ones escalate (default :data:`DEFAULT_FLAGS`; also
    ``"hedging"``); truncation counts the provider's ``finish_reason`` (``length``).
    ``min_chars``/``max_chars``: an answer shorter/longer than that escalates too. The
    reason lists every flag found (``"answer flags: arithmetic slip: 12 * 7 = 82;
    self-correction"``). Answers with tool calls are not checked."""
    wanted = tuple(DEFAULT_FLAGS if flags is None else flags)
    unknown = sorted(set(wanted) - set(_ALL_FLAGS))
    if unknown:
        raise EscalationCheckError(f"answer_flags: unknown flag(s) {unknown}; known: {list(_ALL_FLAGS)}")
    for name, value in (("min_chars", min_chars), ("max_chars", max_chars)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise EscalationCheckError(f"answer_flags: {name} must be a non-negative int, got {value!r}")

    def check(answer: Answer) -> str | None:
        if answer.tool_calls or answer.invalid_tool_calls:
            return None
        found = [f for f in _signals().answer_flags(answer.prompt, answer.text, truncated=answer.truncated)
                 if f.split(":", 1)[0].strip() in wanted]
        n = len(answer.text.strip())
        if min_chars is not None and n < min_chars:
            found.append(f"answer of {n} characters (< {min_chars})")
        if max_chars is not None and n > max_chars:
            found.append(f"answer of {n} characters (> {max_chars})")
        return "answer flags: " + "; ".join(found) if found else None

    return _named(check, "answer_flags")


def zero_label(threshold: float = 0.5) -> EscalationCheck:
    """The zero-label score of the answer
    (:func:`~..verification.signals.zero_label_score`: its flags weighted a priori,
    ties broken by length) is at least ``threshold``."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise EscalationCheckError(f"zero_label: threshold must be in [0, 1], got {threshold!r}")

    def check(answer: Answer) -> str | None:
        if answer.tool_calls or answer.invalid_tool_calls:
            return None
        score = float(_signals().zero_label_score([answer.prompt], [answer.text])[0])
        return f"zero-label score {score:.3f} >= {threshold:.3f}" if score >= threshold else None

    return _named(check, "zero_label")


def agreement(route: str | None = None, *, temperature: float | None = 0.7,
              params: Mapping[str, Any] | None = None, on_no_answer: str = "keep",
              parallel: bool = False) -> EscalationCheck:
    """A second cheap answer to the same call, compared with the first on its extracted
    final answer (:func:`~..verification.signals.answers_agree`: a number, a choice
    letter, code output, short normalised text); they disagree: escalate.

    ``route``: the route key that answers second (a pair: ``"weak"``, the default, the
    same cheap model; N models: any key, e.g. another cheap model); ``temperature``: what
    the second call is sampled at (None: the request's own); ``params``: other request
    parameters for it. The second call is made only when the checks before this one
    passed, through the call lifecycle: admitted by the budget (no room: no second call,
    no verdict), settled and written to the ledger with reason ``second_sample`` (its
    record's ``sample_of`` is the checked call's id), counted by the budget and a spend
    target, not by the online strong share. A second call that is not admitted, fails or
    times out gives no verdict (the first answer stands); the checked call's record says
    why in ``no_verdict`` (by this check's key). A caller cancelled while the second call
    is in flight: the first call is billed at its answer's usage, the second settles
    ``cancelled`` (no response arrived: nothing charged, its reservation released). ``on_no_answer``: ``"keep"`` (default) keeps
    an answer when either answer states nothing comparable, ``"escalate"`` escalates it.
    Answers with tool calls are not checked.

    ``parallel=True`` (whole answers on the async path: ``ainvoke``/``achat``, the routed
    client, sync or async, and the server): the second call is sent at the same time as
    the first, so the check adds no
    round trip to the call's latency; it is then paid even when an earlier check already
    escalates, or when the first call fails after it answered (one still in flight then is
    cancelled: nothing charged, its reservation released). Elsewhere (sync calls, streams) it is made after
    the first answer, as without it."""
    if on_no_answer not in ("keep", "escalate"):
        raise EscalationCheckError(f"agreement: on_no_answer must be 'keep' or 'escalate', got {on_no_answer!r}")
    if route is not None and (not isinstance(route, str) or not route.strip()):
        raise EscalationCheckError(f"agreement: route must be a route key, got {route!r}")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                                    or not 0.0 <= temperature <= 2.0):
        raise EscalationCheckError(f"agreement: temperature must be in [0, 2] or None, got {temperature!r}")
    extra = dict(params or {})
    if temperature is not None:
        extra.setdefault("temperature", float(temperature))
    key = f"agreement:{route or 'self'}:{sorted(extra.items())!r}"

    def check(answer: Answer) -> str | None:
        if answer.tool_calls or answer.invalid_tool_calls:
            return None
        if key not in answer.samples:
            raise SampleNeeded(key, route, extra)
        second = answer.samples[key]
        if second is None:  # the second call failed or did not fit the budget: no verdict
            return None
        s = _signals()
        agree = s.answers_agree(answer.text, second)
        mine, theirs = s.final_answer(answer.text), s.final_answer(second)
        if agree is False and s.is_maths_like(answer.prompt):
            # a maths answer stated in words ("Tom has 84 pens") against a marked one ("the
            # answer is 84"): compare their numbers
            a, b = _last_number(mine), _last_number(theirs)
            if a is not None and b is not None:
                agree = s.answers_agree(f"The answer is {a}.", f"The answer is {b}.")
                mine, theirs = a, b
        who = f"the {route} model" if route else "a second sample"
        if agree is False:
            return f"agreement: the answer ({_short(mine)}) disagrees with {who} ({_short(theirs)})"
        if agree is None and on_no_answer == "escalate":
            return f"agreement: no comparable final answer (answer: {_short(mine)}, {who}: {_short(theirs)})"
        return None

    check = _named(check, "agreement")
    check.sample_route = route  # type: ignore[attr-defined]  # checked against the backends' keys (RoutingConfig)
    check.ahead = SampleNeeded(key, route, extra) if parallel else None  # type: ignore[attr-defined]
    return check


def _last_number(final: str | None) -> str | None:
    """The last number in an extracted final answer (None: it holds none)."""
    import re

    found = re.findall(r"-?\d+(?:[.,/]\d+)*", final or "")
    return found[-1] if found else None


def verifier(v: Any, *, share: float | None = None, threshold: float | None = None) -> EscalationCheck:
    """A learned verifier as a check: the answer escalates when ``v.score([prompt],
    [answer])`` (P(the strong model's answer is better)) reaches the threshold:
    ``threshold`` given, else ``v.threshold_for_share(share)`` (the score above which
    ``share`` of your labelled traffic's answers escalated), else ``v.threshold`` (the
    one the fit recommends). ``v``: a verifier object or its folder
    (:func:`~routellm_integrations.load_verifier`). Answers with tool calls are not
    checked. Scoring embeds the prompt and the answer (CPU work on the reviewing
    thread)."""
    if share is not None and threshold is not None:
        raise EscalationCheckError("verifier: give share or threshold, not both")
    model = _load(v) if isinstance(v, (str, Path)) else v
    if not callable(getattr(model, "score", None)):
        raise EscalationCheckError(f"verifier: expected a verifier (an object with score(prompts, answers)) or its "
                                   f"folder, got {type(v).__name__}")
    for name, value in (("share", share), ("threshold", threshold)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0.0 <= value <= 1.0):
            raise EscalationCheckError(f"verifier: {name} must be in [0, 1], got {value!r}")
    if threshold is not None:
        cut = float(threshold)
    elif share is not None:
        cut = float(model.threshold_for_share(float(share)))
    else:
        cut = float(getattr(model, "threshold", 0.5))

    def check(answer: Answer) -> str | None:
        if answer.tool_calls or answer.invalid_tool_calls:
            return None
        score = float(model.score([answer.prompt], [answer.text])[0])
        return f"verifier: P(strong better) {score:.3f} >= {cut:.3f}" if score >= cut else None

    check = _named(check, "verifier")
    check.blocking = True  # type: ignore[attr-defined]  # async surfaces review in a worker thread
    check.verifier = model  # type: ignore[attr-defined]
    check.threshold = cut  # type: ignore[attr-defined]
    return check


def ahead(checks: Iterable[Any]) -> list[SampleNeeded]:
    """The second calls ``checks`` want sent at the same time as the first
    (``agreement(parallel=True)``)."""
    return [c.ahead for c in checks if getattr(c, "ahead", None) is not None]


def blocking(checks: Iterable[Any]) -> bool:
    """Whether any of ``checks`` does CPU work an event loop should not wait on (a
    verifier: ``check.blocking``); the async surfaces then review in a worker thread."""
    return any(getattr(c, "blocking", False) for c in checks)


def _load(folder: str | Path, allow_unserved: bool = False) -> Any:
    """The verifier saved in ``folder`` (``load_verifier``'s typed error when it holds none)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise EscalationCheckError(f"escalate_if: {str(folder)!r} is neither a check name ({', '.join(CHECK_NAMES)}) "
                                   "nor a folder holding a verifier")
    from ..verification import load_verifier

    return load_verifier(path, allow_unserved=allow_unserved)


def _served_or_none(folder: str | Path, **options: Any) -> Any:
    """The verifier check of ``folder``, or ``()`` when its guard did not serve it (it did
    not beat the prompt router on your labels): the answers are then not checked by it,
    as ``routellm adapt`` decided, and a warning says why (``allow_unserved=True`` in a
    ``{check: verifier, ...}`` mapping uses it anyway)."""
    import warnings

    from ..verification import UnservedVerifierError

    try:
        return verifier(_load(folder), **options)
    except UnservedVerifierError as exc:
        warnings.warn(f"routellm: escalate_if={str(folder)!r}: no verifier check: {exc}", RuntimeWarning,
                      stacklevel=4)
        return ()


#: the checks ``escalate_if=`` takes by name, each built with its defaults
CHECK_NAMES: dict[str, Callable[[], Any]] = {
    "final_answer": final_answer_missing,
    "answer_flags": answer_flags,
    "agreement": agreement,
    "zero_label": zero_label,
    "structured_output": invalid_structured_output,
    "tool_call": invalid_tool_call,
    "empty_or_refusal": empty_or_refusal,
    "low_confidence": low_confidence,
    "defaults": lambda: DEFAULT_CHECKS,
}


def _from_mapping(item: Mapping[str, Any]) -> Any:
    """``{"check": name, **options}`` (a config file's way to pass options):
    ``{"check": "verifier", "path": folder, "share": 0.2}``, ``{"check": "agreement",
    "route": "mini", "temperature": 1.0}``, ``{"check": "answer_flags", "flags": [...]}``."""
    options = dict(item)
    name = options.pop("check", None)
    if name == "verifier":
        path = options.pop("path", None)
        if not isinstance(path, (str, Path)):
            raise EscalationCheckError("escalate_if: {check: verifier} needs path: the verifier's folder")
        if options.pop("allow_unserved", False) is True:
            build: Callable[..., Any] = lambda **kw: verifier(_load(path, allow_unserved=True), **kw)  # noqa: E731
        else:
            build = lambda **kw: _served_or_none(path, **kw)  # noqa: E731
    elif name in ("final_answer", "answer_flags", "agreement", "zero_label", "low_confidence", "empty_or_refusal"):
        build = CHECK_NAMES[name]
    else:
        raise EscalationCheckError(f"escalate_if: a check given as a mapping needs check: one of verifier, "
                                   f"final_answer, answer_flags, agreement, zero_label, low_confidence, "
                                   f"empty_or_refusal; got {name!r}")
    try:
        return build(**options)
    except TypeError as exc:
        if isinstance(exc, EscalationCheckError):
            raise
        raise EscalationCheckError(f"escalate_if: bad options for the {name} check: {exc}") from None


def as_check(item: Any) -> Any:
    """One ``escalate_if`` item as a check: a check's name (:data:`CHECK_NAMES`), a
    mapping ``{"check": name, **options}`` (a config file's form), a verifier's folder
    (``str``/``Path``), a verifier object (wrapped by
    :func:`verifier`), or a callable ``answer -> reason | None`` (as it is). Anything
    else: :class:`EscalationCheckError` naming it; a folder without a verifier:
    ``load_verifier``'s typed error; a folder whose verifier the guard did not serve: no
    check (``()``), with a warning. ``"defaults"`` gives a tuple (the built-in three)."""
    if isinstance(item, str) and item in CHECK_NAMES:
        return CHECK_NAMES[item]()
    if isinstance(item, Mapping):  # a file's form: {"check": "agreement", "temperature": 0.5}
        return _from_mapping(item)
    if isinstance(item, (str, Path)):
        return _served_or_none(item)
    if callable(getattr(item, "score", None)) and not hasattr(item, "__name__"):
        return verifier(item)
    if callable(item):
        return item
    raise EscalationCheckError(f"escalate_if takes True, a check (answer -> reason or None), a check's name "
                               f"({', '.join(CHECK_NAMES)}), a verifier or its folder, or a list of them; got "
                               f"{type(item).__name__}")


def escalation_checks(value: Any) -> tuple[EscalationCheck, ...]:
    """``escalate_if=`` as a tuple of checks: True (the defaults), one check, or a list;
    a check is a callable ``answer -> reason | None``, a check's name (``"final_answer"``,
    ``"agreement"``... :data:`~.answer_checks.CHECK_NAMES`), a verifier (an object with
    ``score(prompts, answers)``, e.g. ``load_verifier(folder)``) or the folder of one
    (``str``/``Path``). An unknown name or a folder without a verifier is a typed error
    here, when the object is built, not at the first call."""
    if value is None or value is False:
        return ()
    if value is True:
        return DEFAULT_CHECKS
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if item is True:
            out.extend(DEFAULT_CHECKS)
        elif item is None or item is False:
            continue
        else:
            check = as_check(item)
            out.extend(check if isinstance(check, tuple) else (check,))
    return tuple(out)
