"""The life of a routed call, shared by every integration: one turn extraction
(:mod:`.turn`) and one lifecycle (:mod:`.call`) that decides, reserves, prices, settles
and records."""

from .call import Backend, CallLifecycle, CallRecord, CallStatus, RoutedCall, estimate_tokens
from .turn import Turn, clean_text, normalise_role, turn_of, turn_of_prompt

__all__ = ["Backend", "CallLifecycle", "CallRecord", "CallStatus", "RoutedCall", "Turn", "clean_text",
           "estimate_tokens", "normalise_role", "turn_of", "turn_of_prompt"]
