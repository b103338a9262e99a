"""The life of a routed call, shared by every integration: one turn extraction
(:mod:`.turn`) and one lifecycle (:mod:`.call`) that decides, reserves, prices, settles
and records."""

from .call import Backend, CallLifecycle, CallRecord, CallStatus, RoutedCall, estimate_tokens
from .escalation import (DEFAULT_CHECKS, Answer, EscalationCheckError, ToolCall, empty_or_refusal,
                         invalid_structured_output, invalid_tool_call, low_confidence)
from .turn import Turn, clean_text, normalise_role, turn_of, turn_of_prompt

__all__ = ["Answer", "Backend", "CallLifecycle", "CallRecord", "CallStatus", "DEFAULT_CHECKS", "EscalationCheckError",
           "RoutedCall", "ToolCall", "Turn", "clean_text", "empty_or_refusal", "estimate_tokens",
           "invalid_structured_output", "invalid_tool_call", "low_confidence", "normalise_role", "turn_of",
           "turn_of_prompt"]
