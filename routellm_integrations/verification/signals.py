"""Zero-label signals read from the cheap model's *answer*: no model, no labels, no fit.

Why these: a prompt-only router can say which *kind* of prompt needs the strong model,
not which prompt of one kind. The answer can: on maths, an answer whose own arithmetic
does not add up, that states no final answer, that hedges or corrects itself, or that
stops mid-sentence is wrong far more often than one that does none of these. The rules
and their weights below are written a priori (what each failure means), not fitted on a
benchmark; the learned verifier (:mod:`.verifier`) is what fits weights, on the user's
own labels.

Everything here is ``re`` + ``ast`` + numpy: cheap enough to run on every answer.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from fractions import Fraction
from typing import Sequence

import numpy as np

__all__ = ["FLAG_WEIGHTS", "answer_flags", "answers_agree", "final_answer", "is_maths_like", "looks_truncated",
           "arithmetic_slips", "zero_label_score"]

# --------------------------------------------------------------------------- prompts

_MATHS_CUES = re.compile(
    r"\b(how (?:many|much|long|far|old|fast)|calculate|compute|solve|evaluate|simplify|what is the (?:value|sum|"
    r"product|total|difference|area|perimeter|volume|probability|average|mean|remainder|ratio|percentage)|"
    r"find (?:the )?(?:value|number|sum|area|x|y)|percent|per ?cent|equation|integer|divisible|"
    r"average|total|sum of|product of|remainder|fraction|probability)\b", re.IGNORECASE)
_ARITH_IN_PROMPT = re.compile(r"\d\s*[-+*/^×÷]\s*\d|\d\s*=\s*\d|\$\d|\d%|\\frac|\\sqrt|\\times")
_HAS_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|hundred|"
                         r"thousand|half|twice|double|triple|dozen)\b", re.IGNORECASE)


def is_maths_like(prompt: str) -> bool:
    """Whether ``prompt`` asks for a computed (numeric) answer: it names quantities and
    either asks a quantitative question or holds arithmetic. Word problems (GSM8K) and
    explicit sums both count; a question that merely contains a year does not."""
    text = str(prompt or "")
    if _ARITH_IN_PROMPT.search(text):
        return True
    return bool(_HAS_NUMBER.search(text) and _MATHS_CUES.search(text))


# --------------------------------------------------------------------------- final answers

_NUMBER = r"[-−]?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+)?%?|[-−]?\.\d+"
_NUMBER_RE = re.compile(_NUMBER)
_MARKERS = [
    re.compile(r"^\s*#{3,}\s*(.+)$", re.MULTILINE),                                   # GSM8K's "#### 18"
    re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}"),                                # LaTeX \boxed{...}
    re.compile(r"\bfinal answer\s*(?:is|:|=)?\s*(?::|-(?=\s))?\s*(.+)", re.IGNORECASE),
    re.compile(r"\b(?:the )?(?:correct )?answer\s*(?:is|:|=)\s*(?::|-(?=\s))?\s*(.+)", re.IGNORECASE),
    re.compile(r"^\s*\**answer\**\s*[:\-]\s*\**(.+)", re.IGNORECASE | re.MULTILINE),
]
_OUTPUT_MARKER = re.compile(r"\b(?:output|prints?|printed|returns?|result)\s*(?:is|will be|would be|:)\s*:?\s*"
                            r"(?:```[a-z]*\s*\n)?\s*`{0,3}([^\n`]+)", re.IGNORECASE)
_CHOICE = re.compile(r"^\**\(?([A-J])\)?(?:[.):\]]|\**|\s|$)")
_CHOICE_IN_MARKER = re.compile(r"\b(?:option|choice)?\s*\(?([A-J])\)?(?:[.):,]|\s|$)")
_FRAC = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")
_CONCLUDING = re.compile(r"\b(so|therefore|thus|hence|in total|total|altogether|in all|overall|answer|result|"
                         r"which means)\b|=", re.IGNORECASE)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NON_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")
_SHORT_WORDS = 12


def _normalise_number(token: str) -> str | None:
    t = token.replace("−", "-").replace("$", "").replace(",", "").replace("%", "").replace(" ", "")
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            if float(den) == 0:
                return None
            f = Fraction(Fraction(num), Fraction(den))
        else:
            f = Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None
    if f.denominator == 1:
        return str(f.numerator)
    if "/" in t:
        return f"{f.numerator}/{f.denominator}"
    return format(float(f), ".12g")


def _normalise_text(text: str) -> str:
    t = _NON_WORD.sub(" ", text.lower())
    return _SPACES.sub(" ", _ARTICLES.sub(" ", t)).strip()


def _classify(fragment: str) -> str | None:
    """A marker's tail as a choice letter, a number or short normalised text."""
    frag = _FRAC.sub(r"\1/\2", fragment).strip().strip("*").strip()
    if not frag:
        return None
    choice = _CHOICE.match(frag)
    if choice and (len(frag) <= 3 or frag[choice.end() - 1:choice.end()] in ").:]" or frag[:1] == "("):
        return choice.group(1)
    number = _NUMBER_RE.search(frag)
    if number and number.start() <= 12:  # "#### 18", "The answer is $18 per day": the first number
        return _normalise_number(number.group(0))
    words = _normalise_text(frag.split("\n")[0])
    return words[:200] or None


def _last_sentence_number(text: str) -> str | None:
    """Fallback for answers without a marker: a concluding last line that ends its
    sentence ("... a total of 180 + 15 + 120 = 315 miles.") states its last number."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    last = lines[-1].rstrip("*").rstrip()
    if not last.endswith((".", "!")) or not _CONCLUDING.search(last):
        return None
    numbers = _NUMBER_RE.findall(last.rstrip(".!"))
    return _normalise_number(numbers[-1]) if numbers else None


def _marked_answers(text: str) -> list[str]:
    found: list[str] = []
    for pattern in _MARKERS:
        for m in pattern.finditer(text):
            value = _classify(m.group(1))
            if value is not None:
                found.append(value)
        if found:  # the strongest marker present decides
            break
    return found


def final_answer(text: str) -> str | None:
    """The answer's stated final answer, normalised, or ``None`` when it states none.

    Read in order: an explicit marker (``#### 18``, ``\\boxed{18}``, "the (final) answer
    is ...", "Answer: B") whose tail is a choice letter (``"B"``), a number (``"42"``,
    ``"-3.5"``, ``"1/2"``: $, thousands commas and % dropped) or short normalised text; a
    stated program output ("Output: ..."); a bare short answer (a letter, a number or up
    to a dozen words); else a concluding last sentence's last number."""
    t = str(text or "").strip()
    if not t:
        return None
    marked = _marked_answers(t)
    if marked:
        return marked[-1]
    output = _OUTPUT_MARKER.search(t)
    if output:
        return _SPACES.sub(" ", output.group(1).strip().strip("`").strip()) or None
    words = t.split()
    if len(words) <= _SHORT_WORDS:
        return _short_answer(t, words)
    return _last_sentence_number(t)


def _short_answer(t: str, words: list[str]) -> str | None:
    """A bare answer: a letter ("B", "(B)", "B. Paris"), a number ("42", "42 apples"), a
    short concluding sentence's number, else the text itself, normalised."""
    choice = _CHOICE.match(t)
    if choice and (len(t) <= 3 or t[:1] == "(" or t[choice.end() - 1:choice.end()] in ").:]"):
        return choice.group(1)
    number = _NUMBER_RE.match(_FRAC.sub(r"\1/\2", t))
    if number and len(words) <= 3:
        return _normalise_number(number.group(0))
    return _last_sentence_number(t) or _normalise_text(t) or None


def _as_number(value: str) -> Fraction | None:
    try:
        if "/" in value:
            num, den = value.split("/", 1)
            return Fraction(Fraction(num), Fraction(den))
        return Fraction(value)
    except (ValueError, ZeroDivisionError):
        return None


def answers_agree(a: str, b: str) -> bool | None:
    """Whether two answers state the same final answer (numbers compared by value,
    letters and text after normalisation); ``None`` when either states none."""
    fa, fb = final_answer(a), final_answer(b)
    if fa is None or fb is None:
        return None
    na, nb = _as_number(fa), _as_number(fb)
    if na is not None and nb is not None:
        return abs(float(na) - float(nb)) <= 1e-9 * max(1.0, abs(float(na)))
    return fa == fb


# --------------------------------------------------------------------------- arithmetic slips

_CALC = re.compile(r"<<([^<>=]*)=([^<>]*)>>")                 # GSM8K-style calculator annotations
_EXPR_CHARS = r"[\d\s.+\-*/()$%x×÷^·,−]"
_TAIL = re.compile(_EXPR_CHARS + r"*$")
_HEAD = re.compile(r"^" + _EXPR_CHARS + r"*")
_TIMES = re.compile(r"(?<=[\d)])\s*[x×·]\s*(?=[\d($])")
_GROUPING = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_IMPLICIT = re.compile(r"(?<=\d)\s*(?=\()|(?<=\))\s*(?=[\d(])")
_ESCAPED = re.compile(r"\\\*|\\times|\\cdot|⋅")  # markdown-escaped "\\*" and LaTeX products
_FIRST_TERM = re.compile(r"[-−]?\$?\s?\d[\d,]*(?:\.\d+)?%?")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow}
_MAX_MAGNITUDE = 1e15
#: characters either side of an "=" read as its operands (no written step is longer)
_SIDE_CHARS = 300
#: equations checked per answer at most (a worked answer has tens; this bounds the work
#: a pathological megabyte of "a = b" can cause)
_MAX_LINKS = 500


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 12 or abs(left) > 1e6):
            raise ValueError("exponent too large")
        value = _OPS[type(node.op)](left, right)
        if not math.isfinite(value) or abs(value) > _MAX_MAGNITUDE:
            raise ValueError("out of range")
        return float(value)
    raise ValueError("not arithmetic")


def _clean(expr: str, *, percent: bool) -> str | None:
    e = expr.replace("−", "-").replace("÷", "/").replace("$", "")
    e = _GROUPING.sub("", e)
    e = _TIMES.sub("*", e)
    if "," in e:
        return None
    e = _IMPLICIT.sub("*", e)
    e = e.replace("^", "**")
    e = re.sub(r"(\d+(?:\.\d+)?)\s*%", r"(\1/100)" if percent else r"\1", e)
    return e.strip() or None


def _value(expr: str, *, percent: bool) -> float | None:
    cleaned = _clean(expr, percent=percent)
    if cleaned is None:
        return None
    try:
        return _eval(ast.parse(cleaned, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError, MemoryError):
        return None


def _trim(expr: str, *, side: str) -> str:
    """The arithmetic part of a fragment next to "=": numbers, operators and balanced
    parentheses, without the words, sentence stops or list commas around them. Empty
    when the arithmetic continues into words on the far side ("x * 4 + 8 = 40",
    "= 40 * Total students"): that is an equation, not a computation to check."""
    e = expr
    if side == "left":  # start at a number, "(" or "$"
        m = re.search(r"[\d($.]", e)
        cut, e = (e[:m.start()], e[m.start():]) if m else (e, "")
        if re.search(r"[-+*/^×÷·−]|\bx\b", cut):
            return ""
        while e and e.count("(") > e.count(")") and "(" in e:
            e = e[e.index("(") + 1:]
    else:
        m = re.search(r"[\d)%]\s*(?=[^\d)%]*$)", e)
        cut, e = (e[m.end():], e[:m.end()]) if m else (e, "")
        if re.search(r"[-+*/^×÷·−(]|\bx\b", cut):
            return ""
        while e and e.count(")") > e.count("("):
            e = e[:e.rindex(")")]
    e = re.sub(r"^[\s,]+|[\s,]+$", "", e)
    if e.startswith("."):  # a sentence stop before the expression, not a decimal point
        e = e[1:].strip() if not re.match(r"\.\d", e) else e
    return e


def _has_op(expr: str) -> bool:
    return bool(re.search(r"[\d)%]\s*(?:[-+*/^×÷·−]|\bx\b)\s*[\d($.]", expr))


def _decimals(expr: str) -> int | None:
    """Decimal places of a single stated number (its precision), else None."""
    m = re.fullmatch(r"\s*[-−]?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\s*%?\s*", expr)
    if not m:
        return None
    return len(m.group(1) or "")


def _consistent(lhs: str, rhs: str) -> bool | None:
    """Whether ``lhs = rhs`` holds; None when either side is not plain arithmetic.

    A stated number may round or truncate a non-integer value at its own precision
    (``10 / 3 = 3.33``); an exact computation must match exactly. A "%" may or may not
    mean /100 ("30/120 * 100 = 25%"), so both readings are tried."""
    if not _has_op(lhs):  # "50,000 = 8,000 + ...": an equation being set up, not a result
        return None
    checked = False
    for pl in (True, False):
        for pr in (True, False):
            a, b = _value(lhs, percent=pl), _value(rhs, percent=pr)
            if a is None or b is None:
                continue
            checked = True
            if abs(a - b) <= 1e-9 * max(1.0, abs(a)):
                return True
            decimals = _decimals(rhs)
            if decimals is not None and abs(a - round(a)) > 1e-9 and abs(a - b) < 10.0 ** (-decimals) + 1e-9:
                return True
            if "%" not in lhs + rhs:
                break
    if checked and _has_op(rhs):  # a running computation: "12 + 84 = $96 ÷ 3 = $32"
        first = _FIRST_TERM.match(rhs.strip())
        if first and _consistent_values(lhs, first.group(0)):
            return True
    return False if checked else None


def _consistent_values(lhs: str, number: str) -> bool:
    a, b = _value(lhs, percent=True), _value(number, percent=True)
    a2 = _value(lhs, percent=False)
    return any(x is not None and b is not None and abs(x - b) <= 1e-9 * max(1.0, abs(x)) for x in (a, a2))


def arithmetic_slips(answer: str) -> list[str]:
    """Each ``expression = value`` in the answer that does not hold, as "12 * 7 = 82".

    Both GSM8K-style calculator notes (``<<12*7=84>>``) and running text ("so 9 * $2 =
    $18") are re-evaluated; a chain ``a = b = c`` is checked link by link (the first
    500 links of an answer)."""
    slips: list[str] = []
    text = _ESCAPED.sub("*", str(answer or ""))
    checked = 0
    for m in _CALC.finditer(text):
        checked += 1
        if checked > _MAX_LINKS:
            return slips
        if _consistent(m.group(1), m.group(2)) is False:
            slips.append(f"{m.group(1).strip()} = {m.group(2).strip()}")
    text = _CALC.sub("", text)
    for line in text.splitlines():
        if "=" not in line:
            continue
        parts = re.split(r"(?<![<>=!])=(?!=)", line)
        for left, right in zip(parts, parts[1:]):
            checked += 1
            if checked > _MAX_LINKS:
                return slips
            # only the text next to "=" can be its operands: bounded, so a megabyte-long
            # line of digits costs linear time, not quadratic
            tail = _TAIL.search(left[-_SIDE_CHARS:])
            head = _HEAD.match(right[:_SIDE_CHARS])
            lhs = _trim(tail.group(0) if tail else "", side="left")
            rhs = _trim(head.group(0) if head else "", side="right")
            if not lhs or not rhs:
                continue
            if _consistent(lhs, rhs) is False:
                slips.append(f"{lhs} = {rhs}")
    return slips


# --------------------------------------------------------------------------- other flags

_HEDGES = re.compile(
    r"\b(i'?m not (?:sure|certain)|i am not (?:sure|certain)|not entirely (?:sure|certain)|it(?:'s| is) unclear|"
    r"unclear (?:whether|if|what)|i (?:can ?not|can't|could not|couldn't) (?:determine|be sure|answer|say)|"
    r"cannot be determined|can't be determined|impossible to (?:determine|say|know)|not enough information|"
    r"insufficient information|(?:does not|doesn't) provide enough|i don'?t know|i do not know|hard to say|"
    r"difficult to (?:say|determine)|i'?m sorry|i apologi[sz]e|as an ai\b|i (?:can ?not|can't) (?:help|provide)|"
    r"it depends|ambiguous|i (?:would )?(?:guess|assume)|my best guess|probably|perhaps)", re.IGNORECASE)
_SELF_CORRECTION = re.compile(
    r"\b(wait[,.!]|actually,?|however, since|however, (?:this|that) (?:is|was) (?:not|wrong|incorrect)|correction|i made (?:a|an) (?:mistake|error)|"
    r"(?:my|the) (?:previous|earlier) (?:answer|calculation)|let me re|let's re|let us re|re-?calculate|"
    r"re-?evaluate|recheck|re-?examine|my mistake|on second thought|that'?s (?:not right|incorrect|wrong)|"
    r"this is (?:not right|incorrect|wrong)|mistake in|error in (?:my|the))", re.IGNORECASE)


def looks_truncated(answer: str) -> bool:
    """The answer stops mid-computation: an unclosed calculator note or code block, a
    dangling operator or comma, or a half-written number ("$130,00")."""
    t = str(answer or "").rstrip()
    if not t:
        return True
    if t.count("<<") > t.count(">>") or t.count("```") % 2 == 1:
        return True
    if t[-1] in "+-*/=(,:×÷[{" or t.endswith("\\"):
        return True
    return bool(re.search(r"\d,\d{1,2}$|\d,$", t))


#: a-priori strength of each flag: the chance it alone should send the answer to the
#: strong model. An answer that contradicts its own arithmetic or stops mid-way is the
#: clearest failure; a missing final answer next; hedging and self-correction are weaker
#: (models also hedge when right). Not fitted on any benchmark.
FLAG_WEIGHTS: dict[str, float] = {
    "arithmetic slip": 0.9,
    "truncated": 0.85,
    "conflicting final answers": 0.7,
    "no stated final answer": 0.7,
    "self-correction": 0.5,
    "hedging": 0.4,
    "empty answer": 0.95,
}


def answer_flags(prompt: str, answer: str, *, truncated: bool = False) -> tuple[str, ...]:
    """Why the answer looks wrong, as human-readable reasons (empty: nothing found).

    ``truncated``: the provider said the answer hit its length limit
    (``finish_reason == "length"``); the text is also checked for a mid-way stop."""
    text = str(answer or "")
    if not text.strip():
        return ("empty answer",)
    flags: list[str] = []
    slips = arithmetic_slips(text)
    if slips:
        flags.append(f"arithmetic slip: {slips[0]}" + (f" (+{len(slips) - 1} more)" if len(slips) > 1 else ""))
    if truncated or looks_truncated(text):
        flags.append("truncated")
    maths = is_maths_like(prompt)
    if maths:
        stated = _marked_answers(text)
        if len({(_as_number(v) if _as_number(v) is not None else v) for v in stated}) > 1:
            flags.append("conflicting final answers")
        if final_answer(text) is None:
            flags.append("no stated final answer")
    if _SELF_CORRECTION.search(text):
        flags.append("self-correction")
    if _HEDGES.search(text):
        flags.append("hedging")
    return tuple(flags)


def _flag_key(flag: str) -> str:
    return flag.split(":", 1)[0]


def zero_label_score(prompts: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """Per answer, in [0, 1]: how likely the strong model's answer is the better one,
    from the flags alone (no labels). Flags combine as independent reasons
    (``1 - prod(1 - weight)``) and fill the top of the scale; unflagged answers share
    the bottom tenth, ranked by answer length (a longer answer is a longer chain of
    steps, each of which can fail)."""
    if len(prompts) != len(answers):
        from ..errors import DataError

        raise DataError(f"got {len(prompts)} prompts and {len(answers)} answers; they must pair one to one")
    out = np.empty(len(answers), dtype=np.float64)
    for i, (p, a) in enumerate(zip(prompts, answers)):
        keep = 1.0
        for flag in answer_flags(str(p or ""), str(a or "")):
            keep *= 1.0 - FLAG_WEIGHTS.get(_flag_key(flag), 0.3)
        length_term = 1.0 - math.exp(-len(str(a or "")) / 1500.0)
        out[i] = 0.1 * length_term + 0.9 * (1.0 - keep)
    return out
