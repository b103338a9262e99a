"""The zero-label answer signals: final-answer extraction, agreement, arithmetic slips,
the other flags, and the score that ranks by them."""

from __future__ import annotations

import numpy as np
import pytest

from routellm_integrations.errors import DataError, RouteLLMError
from routellm_integrations.verification.signals import (FLAG_WEIGHTS, answer_flags, answers_agree, arithmetic_slips,
                                                        final_answer, is_maths_like, looks_truncated,
                                                        zero_label_score)

WORD_PROBLEM = "Janet has 16 eggs and eats 3. How many eggs does she have left?"


@pytest.mark.parametrize("text, expected", [
    ("She has 16 - 3 = 13 eggs left.\n#### 13", "13"),
    ("#### $1,250.50", "1250.5"),
    ("so the answer is \\boxed{\\frac{1}{2}}", "1/2"),
    ("The answer is 2/4", "1/2"),
    ("The final answer is -3.5.", "-3.5"),
    ("The answer is (B).", "B"),
    ("Answer: C) 42", "C"),
    ("B", "B"),
    ("(D)", "D"),
    ("42 apples", "42"),
    ("Paris.", "paris"),
    ("The Eiffel Tower", "eiffel tower"),
    ("Running it prints the list.\nOutput: [1, 2, 3]", "[1, 2, 3]"),
    ("Adding up the three legs of the trip, John covers a total of 180 + 15 + 120 = 315 miles in the whole day.",
     "315"),
])
def test_final_answer_is_extracted_and_normalised(text: str, expected: str) -> None:
    assert final_answer(text) == expected


@pytest.mark.parametrize("text", [
    "",
    "   ",
    "She starts with 16 eggs, then eats 3 of them at breakfast, so she has 16 - 3 = <<16-3=13",
    "Let me think about how many eggs she has. First she has sixteen and then she eats some of them and",
])
def test_no_final_answer_is_none(text: str) -> None:
    assert final_answer(text) is None


def test_a_sentence_starting_with_the_article_a_is_not_choice_a() -> None:
    assert final_answer("A robe takes 2 bolts of blue fiber and 1 of white, so it takes 3 bolts in total.") == "3"


def test_the_last_of_several_markers_is_the_final_one() -> None:
    assert final_answer("#### 12\nOn reflection:\n#### 14") == "14"


@pytest.mark.parametrize("a, b, expected", [
    ("#### 0.5", "The answer is 1/2.", True),
    ("#### 1,000", "So the final answer is $1000.", True),
    ("#### 18", "#### 19", False),
    ("B", "The answer is (B).", True),
    ("The answer is (A).", "The answer is (C).", False),
    ("Paris.", "paris", True),
])
def test_answers_agree_on_the_extracted_answer(a: str, b: str, expected: bool) -> None:
    assert answers_agree(a, b) is expected


def test_answers_agree_is_none_when_either_states_nothing() -> None:
    rambling = "Let me think about how many eggs she has. First she has sixteen and then she eats some of them and"
    assert answers_agree(rambling, "#### 3") is None
    assert answers_agree("#### 3", "") is None


@pytest.mark.parametrize("text, slip", [
    ("So she pays 12 * 7 = 82 dollars.", "12 * 7 = 82"),
    ("He makes 0.40 * 9 * 1040 = $<<0.40*9*1040=3760>>3760 in a week.", "0.40*9*1040 = 3760"),
    ("In total 3 + 4 + 5 = 13 apples.", "3 + 4 + 5 = 13"),
    ("She has 16 \\* 3 = 46 cakes.", "16 * 3 = 46"),
    ("It costs 54 x 2 = 106 dollars.", "54 x 2 = 106"),
    ("The total is 10 + 6 = 16 + 1 = 18 plants.", "16 + 1 = 18"),
])
def test_arithmetic_slips_are_found(text: str, slip: str) -> None:
    found = arithmetic_slips(text)
    assert found and found[0].replace(" ", "") == slip.replace(" ", "")


@pytest.mark.parametrize("text", [
    "She sells 9 * $2 = $<<9*2=18>>18 eggs.",
    "Each gets 10 / 3 = 3.33 cups.",                 # rounded at the stated precision
    "The discount is 8 x $5 x 60% = $24.",           # % as /100
    "So (30/120) * 100 = 25% of the class.",         # % as a plain number
    "Each paid 12 + 43 + 15 + 4 + 22 = $96 ÷ 3 = $32.",  # a running computation
    "We have the equation x * 4 + 8 = 40, so x * 4 = 32.",  # an equation with a variable
    "Production: 50,000 = 8,000 + 4,000 + the third week's.",
    "Toni has 10 + 0.6 \\* 10 = 10 + 6 = 16 plants.",
    "The area is 2^3 = 8 and 1,000 + 24 = 1,024.",
    "He drives 2(3 + 4) = 14 miles.",
    "Write x = 5 in Python; then arr[0] = 5 + 2 sets it.",
])
def test_correct_or_unparseable_arithmetic_is_not_a_slip(text: str) -> None:
    assert arithmetic_slips(text) == []


def test_a_near_miss_of_an_exact_integer_computation_is_a_slip() -> None:
    assert arithmetic_slips("5 * 3 = 16") == ["5 * 3 = 16"]


def test_huge_exponents_are_not_evaluated() -> None:
    assert arithmetic_slips("9 ^ 9999999 = 1 and 10 ** 1000 = 3") == []


@pytest.mark.parametrize("prompt, expected", [
    (WORD_PROBLEM, True),
    ("What is 17 * 23?", True),
    ("Solve for x: 2x + 3 = 7", True),
    ("Write a poem about the sea.", False),
    ("Who won the 1998 World Cup?", False),
])
def test_is_maths_like(prompt: str, expected: bool) -> None:
    assert is_maths_like(prompt) is expected


def test_answer_flags_name_each_reason() -> None:
    flags = answer_flags(WORD_PROBLEM, "She has 16 - 3 = 12 eggs. Wait, actually I'm not sure about this one")
    assert flags[0] == "arithmetic slip: 16 - 3 = 12"
    assert {"no stated final answer", "self-correction", "hedging"} <= set(flags)
    assert "truncated" not in flags


def test_clean_answer_has_no_flags() -> None:
    assert answer_flags(WORD_PROBLEM, "She has 16 - 3 = <<16-3=13>>13 eggs left.\n#### 13") == ()


def test_no_stated_final_answer_only_for_maths_like_prompts() -> None:
    essay = "The sea is vast and old and it has seen many ships come and go over the centuries, " * 2
    assert "no stated final answer" not in answer_flags("Write a poem about the sea.", essay)
    assert "no stated final answer" in answer_flags(WORD_PROBLEM, essay)


def test_truncation_from_the_provider_and_from_the_text() -> None:
    assert "truncated" in answer_flags(WORD_PROBLEM, "#### 13", truncated=True)
    assert looks_truncated("The house is worth 80,000 + 50,000 = $<<80000+50000=130000>>130,00")
    assert looks_truncated("The total is 15 + 2") is False  # ends on a number: the text cannot tell
    assert looks_truncated("The total is 15 +")
    assert looks_truncated("```python\nprint(1)\n")
    assert not looks_truncated("She has 13 eggs.\n#### 13")


def test_conflicting_final_answers_are_flagged() -> None:
    assert "conflicting final answers" in answer_flags(WORD_PROBLEM, "#### 13\nHmm, no.\n#### 14")
    assert "conflicting final answers" not in answer_flags(WORD_PROBLEM, "#### 13\nSo:\n#### 13.0")


def test_empty_answer_is_flagged() -> None:
    assert answer_flags(WORD_PROBLEM, "   ") == ("empty answer",)


def test_every_flag_has_a_weight() -> None:
    bad = "She has 16 - 3 = 12 eggs. Wait, actually I'm not sure, 3 +"
    for flag in answer_flags(WORD_PROBLEM, bad) + answer_flags(WORD_PROBLEM, "#### 1\n#### 2"):
        assert flag.split(":")[0] in FLAG_WEIGHTS


def test_zero_label_score_ranks_flagged_answers_above_clean_ones() -> None:
    clean_long = "She has 16 - 3 = 13 eggs left. " * 30 + "\n#### 13"
    clean_short = "She has 16 - 3 = 13 eggs.\n#### 13"
    slip = "She has 16 - 3 = 12 eggs.\n#### 12"
    slip_and_hedge = "She has 16 - 3 = 12 eggs, I'm not sure.\n#### 12"
    s = zero_label_score([WORD_PROBLEM] * 4, [clean_short, clean_long, slip, slip_and_hedge])
    assert np.all((s >= 0) & (s <= 1))
    assert s[0] < s[1] < s[2] < s[3]  # length breaks the tie between clean answers; flags add up
    assert s[1] < 0.1 < s[2]


def test_zero_label_score_rejects_unpaired_input() -> None:
    with pytest.raises(DataError) as err:
        zero_label_score(["a", "b"], ["x"])
    assert isinstance(err.value, RouteLLMError) and "2 prompts and 1 answers" in str(err.value)


def test_zero_label_score_of_nothing_is_empty() -> None:
    assert zero_label_score([], []).shape == (0,)


def test_ordinary_prose_is_not_self_correction() -> None:
    essay = "Paris is large. However, the city is also old, and however, it is charming."
    assert "self-correction" not in answer_flags("Tell me about Paris.", essay)
    assert "self-correction" in answer_flags(WORD_PROBLEM, "16 - 3 = 13. However, since she also gives 2 away...")


def test_arithmetic_checking_is_bounded_per_answer() -> None:
    """A pathological answer (thousands of equations) is checked for its first 500 links
    only, so its cost stays bounded; a slip among them is still found."""
    steps = "12 * 7 = 84.\n" * 600
    assert arithmetic_slips(steps + "2 + 2 = 5.") == []
    assert arithmetic_slips("2 + 2 = 5.\n" + steps) == ["2 + 2 = 5"]
    assert arithmetic_slips("1" * 100_000 + " + 1 = 3") == []  # operands are read next to "=" only
