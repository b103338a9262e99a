"""Issue 25: no unbounded CPU work or memory per request.

- the text a router scores is bounded (``routing.turn.MAX_ROUTING_CHARS``) while the size
  fields still count the whole input;
- the policy's recent-prompts memory holds bounded texts only;
- a client's schema that cannot be validated in bounded time (ReDoS pattern, too deep,
  too large) is refused before any validation, with a typed error;
- a provider's model name is made safe for headers, the ledger and metric labels;
- a provider's masked echo of a registered key (any prefix) is redacted.

Behaviour only: no wall-clock assertions (speed is measured in benchmarks/long_prompts.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from routellm_integrations.errors import RouteLLMError, UnsafeSchemaError
from routellm_integrations.policy import INLINE_SCORING_CHARS, RoutingPolicy
from routellm_integrations.routers.base import BaseRouter
from routellm_integrations.routing.escalation import (MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES, Answer, ToolCall,
                                                      check_schema_bounds, first_failure, invalid_structured_output,
                                                      invalid_tool_call)
from routellm_integrations.routing.turn import (MAX_ROUTING_CHARS, ROUTING_HEAD_CHARS, bound_text, turn_of,
                                                turn_of_prompt)

MB = 1_000_000


def _long(n: int, seed: int = 0) -> str:
    """``n`` characters that differ from one call to the next (head, middle and tail)."""
    head, tail = f"HEAD{seed}:", f":TAIL{seed}"
    return head + "x" * (n - len(head) - len(tail)) + tail


# -- 1. bounded routing text -------------------------------------------------------------------
def test_a_long_prompt_routes_on_its_head_and_tail_but_is_sized_whole() -> None:
    prompt = _long(MB) + "é"  # one non-ASCII character: bytes != chars
    turn = turn_of_prompt(prompt)
    assert len(turn.text) == MAX_ROUTING_CHARS
    assert turn.text.startswith("HEAD0:") and turn.text.endswith(":TAIL0é")
    assert turn.text[:ROUTING_HEAD_CHARS] == prompt[:ROUTING_HEAD_CHARS]
    assert turn.input_chars == len(prompt) and turn.input_bytes == len(prompt.encode("utf-8"))


def test_chat_turns_bound_every_routing_text_and_size_the_whole_input() -> None:
    big = _long(2 * MB)
    for mode in ("last_user", "conversation"):
        turn = turn_of([("system", "be brief"), ("user", big)], mode)  # type: ignore[arg-type]
        assert len(turn.text) == MAX_ROUTING_CHARS and turn.text.endswith(":TAIL0")
        assert turn.input_chars == len(big) + len("be brief")
    given = turn_of([("user", "hi")], text=big)  # an adapter's own routing text
    assert len(given.text) == MAX_ROUTING_CHARS and given.input_chars == 2
    tools = turn_of([("user", "hi")], extra_input=big)
    assert tools.text == "hi" and tools.input_chars == 2 + len(big)


def test_texts_within_the_bound_are_kept_whole() -> None:
    exact = "y" * MAX_ROUTING_CHARS
    assert bound_text(exact) is exact and turn_of_prompt(exact).text == exact
    assert turn_of([("user", "What is 2+2?")]).text == "What is 2+2?"
    assert bound_text(exact + "z") != exact + "z" and len(bound_text(exact + "z")) == MAX_ROUTING_CHARS


def test_a_lone_surrogate_cut_by_the_bound_is_still_cleaned() -> None:
    prompt = "a" * (ROUTING_HEAD_CHARS - 1) + "\ud83d\ude00" + "b" * MB  # a surrogate pair across the cut
    text = turn_of_prompt(prompt).text
    text.encode("utf-8")  # no lone surrogate left: every tokenizer accepts it


class _Recording(BaseRouter):
    """Scores 0.5 and remembers how long each text it scored was."""

    name = "recording"
    inline_scoring = True  # type: ignore[assignment]

    def __init__(self) -> None:
        self.lengths: list[int] = []

    def _score(self, prompts: Sequence[str]) -> np.ndarray:
        self.lengths += [len(p) for p in prompts]
        return np.full(len(prompts), 0.5)


def test_the_policy_scores_a_bounded_text_whoever_calls_it() -> None:
    router = _Recording()
    policy = RoutingPolicy(router, threshold=0.3)
    policy.decide(_long(3 * MB))  # straight to the policy, not through a Turn
    assert router.lengths == [MAX_ROUTING_CHARS]


def test_a_long_text_is_scored_off_the_event_loop() -> None:
    policy = RoutingPolicy(_Recording(), threshold=0.3)
    assert policy.scores_inline() and policy.scores_inline("short prompt")
    assert policy.scores_inline("q" * INLINE_SCORING_CHARS)
    assert not policy.scores_inline("q" * (INLINE_SCORING_CHARS + 1))
    assert not policy.scores_inline(turn_of_prompt(_long(MB)).text)


# -- 2. the recent-prompts memory stays bounded -------------------------------------------------
def test_sixty_one_megabyte_prompts_keep_under_five_megabytes() -> None:
    policy = RoutingPolicy("random", threshold=0.5)
    for i in range(60):
        policy.decide(turn_of_prompt(_long(MB, i)).text)
    for i in range(60, 120):  # and straight to the policy, unbounded
        policy.decide(_long(MB, i))
    kept = sum(len(t) for t in policy._recent)
    assert len(policy._recent) == 120 and kept <= 120 * MAX_ROUTING_CHARS < 5 * MB
    assert all(len(t) == MAX_ROUTING_CHARS for t in policy._recent)
    report = policy.swap_router("length")  # re-calibration on the bounded texts works
    assert report is not None


# -- 3. bounded schema validation ----------------------------------------------------------------
REDOS = {"type": "string", "pattern": "^(a+)+$"}
EVIL = json.dumps("a" * 32 + "!")


def _no_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    import jsonschema

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the schema was validated against: the pattern ran")

    monkeypatch.setattr(jsonschema, "validate", refuse)


def test_a_redos_pattern_is_refused_before_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_validation(monkeypatch)
    answer = Answer(text=EVIL, response_schema={"type": "object", "properties": {"name": REDOS}})
    with pytest.raises(UnsafeSchemaError) as info:
        invalid_structured_output()(answer)
    assert isinstance(info.value, RouteLLMError) and isinstance(info.value, ValueError)
    assert "^(a+)+$" in str(info.value) and "nests quantifiers" in str(info.value)
    assert "/properties/name/pattern" in str(info.value)
    with pytest.raises(UnsafeSchemaError):  # as the check lifecycle runs it: not wrapped as a failing check
        first_failure([invalid_structured_output()], Answer(text=EVIL, response_schema=REDOS))


def test_a_redos_pattern_in_tool_parameters_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_validation(monkeypatch)
    params = {"type": "object", "patternProperties": {"^(x|xx)*$": {"type": "string"}}}
    answer = Answer(tool_calls=[ToolCall("f", {"x" * 30 + "!": "v"})], tools={"f": params})
    with pytest.raises(UnsafeSchemaError, match="alternatives"):
        invalid_tool_call()(answer)


@pytest.mark.parametrize("pattern", ["^(a+)+$", "(\\d+)*", "(a|aa)*$", "(a*)*b", "((ab)+c)+", "(a)\\1",
                                     "x" * 1001])
def test_unsafe_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(UnsafeSchemaError):
        check_schema_bounds({"type": "string", "pattern": pattern})


@pytest.mark.parametrize("pattern", ["^[a-z]+$", "^(\\+|-)?\\d+$", "^[A-Z]{2}-\\d{4}$", "^(a|b)*$",
                                     "^(\\d{1,3}\\.){3}\\d{1,3}$", "^\\S+@\\S+$", "^(ab)*c$"])
def test_ordinary_patterns_still_validate(pattern: str) -> None:
    check_schema_bounds({"type": "string", "pattern": pattern})
    check = invalid_structured_output({"type": "string", "pattern": pattern})
    assert check(Answer(text=json.dumps("\u00e9\u00e9 zz"))) is not None


def test_a_pattern_as_data_or_as_a_property_name_is_no_regex() -> None:
    check_schema_bounds({"type": "object", "properties": {"pattern": {"type": "string"}},
                         "const": {"pattern": "^(a+)+$"}, "examples": [{"pattern": "(a|aa)*"}]})


def test_too_deep_or_too_large_schemas_are_refused() -> None:
    deep: dict = {"type": "string"}
    for _ in range(MAX_SCHEMA_DEPTH):
        deep = {"type": "array", "items": deep}
    with pytest.raises(UnsafeSchemaError, match="too deep"):
        check_schema_bounds(deep)
    wide = {"type": "string", "enum": [str(i) for i in range(MAX_SCHEMA_NODES + 1)]}
    with pytest.raises(UnsafeSchemaError, match="too large"):
        check_schema_bounds(wide)
    with pytest.raises(UnsafeSchemaError):
        invalid_structured_output()(Answer(text='"x"', response_schema=wide))


def test_ordinary_schemas_still_escalate_on_a_mismatch() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    check = invalid_structured_output()
    assert check(Answer(text='{"age": 3}', response_schema=schema)) is None
    assert "does not match" in check(Answer(text='{"age": "x"}', response_schema=schema))  # type: ignore[operator]


# -- 4. sanitised model names ----------------------------------------------------------------------
def test_safe_model_name() -> None:
    from routellm_integrations.client.names import MAX_MODEL_NAME_CHARS, safe_model_name

    assert safe_model_name("gpt-4o-2024-08-06") == "gpt-4o-2024-08-06"
    assert safe_model_name("llama3:8b") == "llama3:8b" and safe_model_name("org/model@v1") == "org/model@v1"
    bad = safe_model_name("gpt\r\nX-Evil: 1, \u6a21\u578b\u00e9\x00\x7f")
    assert bad is not None and bad.isascii() and bad.isprintable()
    assert not any(c in bad for c in "\r\n\x00\x7f ,\"\\")
    bad.encode("latin-1")
    assert safe_model_name("mod\u00e8le") == "mod%C3%A8le"
    for long in ("a" * 1000, "\u00e9" * 1000, "a" * 127 + "\u00e9"):
        out = safe_model_name(long)
        assert out is not None and len(out) <= MAX_MODEL_NAME_CHARS and "%" not in out[-2:]
    assert safe_model_name(None) is None and safe_model_name("") is None and safe_model_name(42) is None


# -- 5. masked keys -----------------------------------------------------------------------------------
def test_a_masked_echo_of_a_registered_key_is_redacted_whatever_its_prefix() -> None:
    from routellm_integrations.client.secrets import redact, register_secret

    key = "gsk_Q7fZ2mR9tLx4Vb8NpYc3Hw6Jd1Ke5Ua"
    register_secret(key)
    head, tail = key[:8], key[-4:]
    echoes = [f"Incorrect API key provided: {head}{'*' * 24}{tail}. See the docs.",
              f"key {head}...{tail} is invalid", f"key gsk_...{tail}!", f'"key": "****{tail}"',
              f"({head}\u2026{tail})", f"key {head}***", f"key ending XXXXXXXX{tail}."]
    for text in echoes:
        clean = redact(text)
        assert head not in clean and tail not in clean, (text, clean)
    assert redact("nothing secret... here, e5 Ua") == "nothing secret... here, e5 Ua"


def test_a_requests_schemas_can_be_refused_before_its_call() -> None:
    from routellm_integrations.client.answers import check_request_schemas

    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": REDOS}}
    with pytest.raises(UnsafeSchemaError, match="response_format schema"):
        check_request_schemas({"response_format": fmt})
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string", "pattern": "(\\w+\\s?)*$"}}}}}
    with pytest.raises(UnsafeSchemaError, match="tool 'lookup'"):
        check_request_schemas({"tools": [tool]})
    check_request_schemas({"response_format": {"type": "json_object"}, "tools": [
        {"type": "function", "function": {"name": "ok", "parameters": {"type": "object"}}}]})
