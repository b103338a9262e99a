"""When a cheap answer fails a check, the call goes to the next model up (a cascade).

A check looks at one :class:`Answer` and returns why it should be escalated (a short
reason) or None. Built in:

- :func:`invalid_structured_output`: the answer to a structured-output call does not
  parse as JSON, or does not validate against the schema;
- :func:`invalid_tool_call`: a tool call names a tool that was not offered, or its
  arguments do not parse or validate against the tool's parameters;
- :func:`empty_or_refusal`: no text and no tool call, or a refusal ("I can't help with
  that");
- :func:`low_confidence`: the mean token logprob (when the backend returns logprobs) is
  below a threshold.

**Bounded validation.** A schema comes from the client (``response_format``, the tools'
``parameters``) and Python's regex engine backtracks: ``pattern: "^(a+)+$"`` against
30 ``a``s and a ``b`` runs for seconds. So a schema is checked before any answer is
validated against it (:func:`check_schema_bounds`), and refused with
:class:`~routellm_integrations.errors.UnsafeSchemaError` if it cannot be validated in
bounded time: deeper than :data:`MAX_SCHEMA_DEPTH`, more than :data:`MAX_SCHEMA_NODES`
values, a pattern longer than :data:`MAX_PATTERN_CHARS`, or a pattern (``pattern``, a
``patternProperties`` key) open to catastrophic backtracking: a repeat over something
of variable length (nested quantifiers, ``(a+)+``) or with alternatives (``(a|aa)*``)
inside a repeat of more than :data:`MAX_INNER_REPEAT` rounds, or a backreference. The
rule is conservative (``((ab)+c)+`` is refused though it is harmless; rewrite it without
the nesting) and static: no thread, no timeout, nothing left running. Refused schemas
are client input errors, raised as they are (not wrapped as a failing check).
:func:`~routellm_integrations.client.answers.check_request_schemas` checks a request's
schemas before its call is made.

Any callable ``check(answer) -> str | None`` is a check too. The framework adapters build
the :class:`Answer` from their message type and call
:meth:`~routellm_integrations.routing.RoutedCall.review`; :data:`DEFAULT_CHECKS` are the
first three (``escalate_if=True``). Checks that read the answer's content (a stated final
answer, arithmetic slips, a second cheap answer's agreement, a learned verifier) are in
:mod:`.answer_checks`, whose :func:`~.answer_checks.escalation_checks` reads ``escalate_if``
(checks, their names, a verifier or its folder).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import RouteLLMError, UnsafeSchemaError

__all__ = ["Answer", "EscalationCheck", "EscalationCheckError", "DEFAULT_CHECKS", "SampleNeeded", "MAX_PATTERN_CHARS",
           "MAX_SCHEMA_DEPTH", "MAX_SCHEMA_NODES", "ToolCall", "UnsafeSchemaError", "check_schema_bounds",
           "empty_or_refusal", "first_failure", "invalid_structured_output", "invalid_tool_call",
           "low_confidence", "response_schema"]

#: the deepest a schema may nest (objects and arrays) to be validated by a check
MAX_SCHEMA_DEPTH = 32
#: the most values (objects, arrays, strings, numbers...) a schema may hold
MAX_SCHEMA_NODES = 10_000
#: the longest regex a schema's ``pattern`` (or ``patternProperties`` key) may be
MAX_PATTERN_CHARS = 1_000
#: a repeat of at most this many rounds may hold a variable-length part or alternatives
#: (``(\d{1,3}\.){3}``): its backtracking is bounded by a small power of the rounds
MAX_INNER_REPEAT = 10
#: keywords whose values are data, not schemas (a ``pattern`` key there is no regex)
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples", "example"})


class EscalationCheckError(RouteLLMError, TypeError):
    """An escalation check raised, or ``escalate_if`` is not a check."""


@dataclass(frozen=True)
class ToolCall:
    """One tool call of an answer: its name and its arguments (a JSON string or a dict)."""

    name: str
    arguments: Any


@dataclass(frozen=True)
class Answer:
    """What a check sees of an answer, whatever framework produced it.

    ``tools``: the tools the call offered, name -> JSON schema of their parameters (None:
    no tools); ``response_schema``: the JSON schema a structured text answer must meet
    (``{}``: any JSON, json_mode; None: free text); ``invalid_tool_calls``: tool calls
    the framework could not parse, as (name, error) pairs; ``logprobs``: the answer's
    token logprobs, when the backend returned them; ``tool_required``: the call forced a
    tool call (``tool_choice`` "required"/"any"/a name: structured output by tools)."""

    text: str = ""
    tool_calls: Sequence[ToolCall] = ()
    invalid_tool_calls: Sequence[tuple[str | None, str]] = ()
    tools: Mapping[str, Mapping[str, Any]] | None = None
    response_schema: Mapping[str, Any] | None = None
    logprobs: Sequence[float] | None = None
    tool_required: bool = False
    route: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: the text the call was routed on (the scored turn: the last user message by default);
    #: filled by :meth:`~routellm_integrations.routing.RoutedCall.review` when the adapter left it empty
    prompt: str = ""
    #: why the backend stopped, as it said (``"stop"``, ``"length"``, ``"max_tokens"``...; None: not said)
    finish_reason: str | None = None
    #: second cheap answers to the same call, by the name of the check that asked for them
    #: (:func:`~routellm_integrations.routing.answer_checks.agreement`); None: that call failed
    samples: Mapping[str, "str | None"] = field(default_factory=dict)

    @property
    def truncated(self) -> bool:
        """The backend stopped at the output bound (``length``/``max_tokens``), not at its end."""
        return (self.finish_reason or "").lower() in _TRUNCATED


#: the finish reasons providers give for an answer cut at the output bound
_TRUNCATED = frozenset({"length", "max_tokens", "max_output_tokens"})


class SampleNeeded(Exception):
    """Raised by a check that needs a second cheap answer it does not have yet
    (:func:`~routellm_integrations.routing.answer_checks.agreement`): the cascade engine
    catches it, makes that one more call through the call lifecycle (admitted by the
    budget, settled and recorded; its answer in ``Answer.samples[key]``) and runs the
    review again. Not an error: code outside the engine never sees it."""

    def __init__(self, key: str, route: str | None = None, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(key)
        #: where the answer goes in ``Answer.samples``
        self.key = key
        #: the route that answers (None: the call's own route, i.e. the same cheap model)
        self.route = route
        #: request parameters the sample call is made with (e.g. ``{"temperature": 0.7}``)
        self.params = dict(params or {})


EscalationCheck = Callable[[Answer], "str | None"]


def _pattern_risk(pattern: str) -> str | None:
    """Why ``pattern`` may backtrack catastrophically (None: it may not, or it does not
    compile, which jsonschema reports as an invalid schema)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"it is {len(pattern)} characters long (at most {MAX_PATTERN_CHARS})"
    try:
        from re import _constants as c, _parser as parser  # type: ignore[attr-defined]
    except ImportError:  # Python < 3.11
        import sre_constants as c  # type: ignore[no-redef]
        import sre_parse as parser  # type: ignore[no-redef]
    try:
        parsed = parser.parse(pattern)
    except Exception:  # noqa: BLE001 - a regex that does not compile: jsonschema names it
        return None
    repeats = {c.MAX_REPEAT, c.MIN_REPEAT} | ({c.POSSESSIVE_REPEAT} if hasattr(c, "POSSESSIVE_REPEAT") else set())

    def walk(items: Any, looping: bool) -> str | None:
        for op, av in items:
            if op in repeats:
                low, high, sub = av
                if looping and low != high:
                    return "it nests quantifiers (a repeat of variable length inside a repeat, as in (a+)+)"
                found = walk(sub, looping or high == c.MAXREPEAT or high > MAX_INNER_REPEAT)
            elif op is c.BRANCH:
                if looping:
                    return "it repeats alternatives (a|b...) of more than one character (as in (a|aa)*)"
                found = next((r for alt in av[1] if (r := walk(alt, looping))), None)
            elif op is c.SUBPATTERN:
                found = walk(av[-1], looping)
            elif op in (c.ASSERT, c.ASSERT_NOT):
                found = walk(av[1], looping)
            elif getattr(c, "ATOMIC_GROUP", None) is not None and op is c.ATOMIC_GROUP:
                found = walk(av, looping)
            elif op in (c.GROUPREF, c.GROUPREF_EXISTS):
                return "it uses a backreference"
            else:
                found = None
            if found:
                return found
        return None

    return walk(parsed.data if hasattr(parsed, "data") else parsed, False)


def check_schema_bounds(schema: Any, what: str = "schema") -> None:
    """Raise :class:`~routellm_integrations.errors.UnsafeSchemaError` if ``schema`` (a JSON
    schema from a client) cannot be validated in bounded time (see the module's
    *Bounded validation*); the message names the problem and where it is in ``what``."""
    nodes = 0
    stack: list[tuple[Any, str, int, bool]] = [(schema, "", 0, True)]
    while stack:
        node, where, depth, is_schema = stack.pop()
        nodes += 1
        if nodes > MAX_SCHEMA_NODES:
            raise UnsafeSchemaError(f"the {what} is too large to validate answers against: more than "
                                    f"{MAX_SCHEMA_NODES} values")
        if depth > MAX_SCHEMA_DEPTH:
            raise UnsafeSchemaError(f"the {what} is too deep to validate answers against: more than "
                                    f"{MAX_SCHEMA_DEPTH} levels (at {where or '/'})")
        if isinstance(node, Mapping):
            for key, value in node.items():
                path = f"{where}/{key}"
                if is_schema and key == "pattern" and isinstance(value, str):
                    _refuse_pattern(value, path, what)
                if is_schema and key == "patternProperties" and isinstance(value, Mapping):
                    for regex in value:
                        if isinstance(regex, str):
                            _refuse_pattern(regex, f"{path}/{regex}", what)
                data = is_schema and key in _DATA_KEYWORDS
                # a property *named* "pattern" is a schema, not a regex: "properties" maps names to schemas
                stack.append((value, path, depth + 1, is_schema and not data))
        elif isinstance(node, (list, tuple)):
            stack.extend((item, f"{where}/{i}", depth + 1, is_schema) for i, item in enumerate(node))


def _refuse_pattern(pattern: str, where: str, what: str) -> None:
    risk = _pattern_risk(pattern)
    if risk:
        raise UnsafeSchemaError(f"the {what} cannot be validated in bounded time: the pattern at {where} "
                                f"{pattern[:80]!r}{'...' if len(pattern) > 80 else ''}: {risk}; rewrite it "
                                "without nesting, or drop the pattern")


def _schema_error(value: Any, schema: Mapping[str, Any]) -> str | None:
    if not schema:
        return None
    check_schema_bounds(schema)  # before any validation: a ReDoS pattern never runs
    import jsonschema

    try:
        jsonschema.validate(value, dict(schema))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"{exc.message}" + (f" (at {where})" if where else "")
    except jsonschema.SchemaError as exc:
        return f"the schema itself is invalid: {exc.message}"
    return None


def _strip_fence(text: str) -> str:
    t = text.strip()
    m = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", t, re.S)
    return m.group(1) if m else t


def invalid_structured_output(schema: Mapping[str, Any] | None = None) -> EscalationCheck:
    """A structured text answer that does not parse as JSON or fails ``schema`` (default:
    the call's own response schema; a call without one is not checked)."""

    def check(answer: Answer) -> str | None:
        wanted = schema if schema is not None else answer.response_schema
        if wanted is None or answer.tool_calls:
            return None
        try:
            value = json.loads(_strip_fence(answer.text))
        except ValueError as exc:
            return f"structured output is not valid JSON ({exc.msg})"
        error = _schema_error(value, wanted)
        return f"structured output does not match the schema: {error}" if error else None

    check.__name__ = "invalid_structured_output"
    return check


def invalid_tool_call() -> EscalationCheck:
    """A tool call to a tool the call did not offer, or with arguments that do not parse
    or do not validate against the tool's parameters; or no tool call at all when the
    call required one."""

    def check(answer: Answer) -> str | None:
        for name, error in answer.invalid_tool_calls:
            return f"tool call {name!r} could not be parsed: {error}"
        if answer.tool_required and not answer.tool_calls:
            return "no tool call, though the call required one"
        if answer.tools is None:
            return None
        for call in answer.tool_calls:
            if call.name not in answer.tools:
                return f"tool call names unknown tool {call.name!r} (offered: {sorted(answer.tools)})"
            args = call.arguments
            if isinstance(args, str):
                try:
                    args = json.loads(args) if args.strip() else {}
                except ValueError as exc:
                    return f"arguments of tool {call.name!r} are not valid JSON ({exc.msg})"
            error = _schema_error(args, answer.tools[call.name] or {})
            if error:
                return f"arguments of tool {call.name!r} do not match its schema: {error}"
        return None

    check.__name__ = "invalid_tool_call"
    return check


_REFUSAL = re.compile(
    r"^\s*(?:i['’]m sorry,? but |sorry,? )?(?:i|we)\s*(?:can(?:no|['’])t|cannot|am unable to|['’]m unable to|"
    r"won['’]t be able to|am not able to)\s+(?:help|assist|provide|comply|do that|answer|fulfil)", re.I)


def empty_or_refusal(pattern: "re.Pattern[str] | str | None" = None) -> EscalationCheck:
    """An answer with no text and no tool call, or one that opens with a refusal
    (``pattern``: your own regex, matched at the start of the answer)."""
    regex = re.compile(pattern, re.I) if isinstance(pattern, str) else (pattern or _REFUSAL)

    def check(answer: Answer) -> str | None:
        if answer.tool_calls or answer.invalid_tool_calls:
            return None
        if not answer.text.strip():
            return "empty answer"
        if regex.match(answer.text):
            return "refusal"
        return None

    check.__name__ = "empty_or_refusal"
    return check


def low_confidence(min_mean_logprob: float = -0.5) -> EscalationCheck:
    """The answer's mean token logprob is below ``min_mean_logprob`` (only when the backend
    returned logprobs: ask for them, e.g. ``ChatOpenAI(logprobs=True)``)."""

    def check(answer: Answer) -> str | None:
        if not answer.logprobs:
            return None
        mean = sum(answer.logprobs) / len(answer.logprobs)
        return f"mean token logprob {mean:.3f} < {min_mean_logprob}" if mean < min_mean_logprob else None

    check.__name__ = "low_confidence"
    return check


DEFAULT_CHECKS: tuple[EscalationCheck, ...] = (invalid_structured_output(), invalid_tool_call(), empty_or_refusal())


def response_schema(request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema an OpenAI-format request's ``response_format`` asks the text answer
    to meet (``{}``: any JSON, ``json_object``; None: free text). The routed client and
    ``RoutedChat`` read a call's ``response_format`` with it."""
    fmt = request.get("response_format")
    if not isinstance(fmt, Mapping):
        return None
    if fmt.get("type") == "json_object":
        return {}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return dict(schema) if isinstance(schema, Mapping) else {}
    return None


def first_failure(checks: Sequence[EscalationCheck], answer: Answer) -> str | None:
    """The reason of the first check that fails (None: the answer passes them all). A check
    that raises, or returns something other than a string or None, is an
    :class:`EscalationCheckError` naming it."""
    for check in checks:
        name = getattr(check, "__name__", type(check).__name__)
        try:
            reason = check(answer)
        except (UnsafeSchemaError, SampleNeeded):  # the client's schema is at fault / the engine samples
            raise
        except Exception as exc:  # noqa: BLE001 - a user's check; named in the error
            raise EscalationCheckError(f"escalation check {name!r} raised {type(exc).__name__}: {exc}") from exc
        if reason is None or reason is False:
            continue
        if reason is True:
            return name
        if not isinstance(reason, str):
            raise EscalationCheckError(f"escalation check {name!r} returned {type(reason).__name__}; return a reason "
                                       "(str) to escalate, or None")
        return reason or name
    return None
