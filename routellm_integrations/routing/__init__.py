"""The life of a routed call, shared by every integration: one turn extraction
(:mod:`.turn`) and one lifecycle (:mod:`.call`) that decides, reserves, prices, settles
and records."""

from .call import Backend, CallLifecycle, CallRecord, CallStatus, RoutedCall, estimate_tokens
from .answer_checks import agreement, answer_flags, final_answer_missing, verifier, zero_label
from .escalation import (DEFAULT_CHECKS, Answer, EscalationCheckError, SampleNeeded, ToolCall, empty_or_refusal,
                         invalid_structured_output, invalid_tool_call, low_confidence)
from .turn import Turn, clean_text, normalise_role, turn_of, turn_of_prompt

__all__ = ["Answer", "Backend", "CallLifecycle", "CallRecord", "CallStatus", "DEFAULT_CHECKS", "EscalationCheckError",
           "RoutedCall", "SampleNeeded", "ToolCall", "Turn", "agreement", "answer_flags", "clean_text",
           "empty_or_refusal", "estimate_tokens", "final_answer_missing", "invalid_structured_output",
           "invalid_tool_call", "low_confidence", "normalise_role", "turn_of", "turn_of_prompt", "verifier",
           "zero_label"]
