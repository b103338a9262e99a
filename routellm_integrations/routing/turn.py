"""One turn extraction for every integration: what a call is routed on, and which user
turn it belongs to.

Each framework hands its messages over as ``[(role, text)]`` (roles normalised to
``system``, ``user``, ``assistant``, ``tool``), so a conversation routes the same way in
LangChain, LlamaIndex and the framework-free client:

- ``route_on="last_user"`` (default; the paper's routers were trained on single prompts)
  scores the last user message. If that message has no text (an image only), the turn's
  text is empty and the caller's ``on_no_text`` decides; it never falls back to an
  earlier message, which would route the wrong question.
- ``route_on="conversation"`` scores the system, user and assistant texts joined by a
  blank line (tool results are data, not the question).
- The routing text is bounded (:data:`MAX_ROUTING_CHARS`): a longer text keeps its head
  and its tail, joined, so scoring a prompt costs at most a fixed amount of CPU whatever
  a client sends; the size fields (``input_chars``/``input_bytes``) still count the whole
  input, for the budget's bound on what the call may cost.
- The turn key is a digest of the conversation up to the last user message; a call after
  which a tool result or the assistant's own message follows continues that turn
  (``followup``), so the steps of one agent turn share a backend.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import InvalidPromptError
from ..validation import scrub_surrogates

Role = Literal["system", "user", "assistant", "tool"]
RouteOn = Literal["last_user", "conversation", "last_human"]

_ROLES: dict[str, Role] = {
    "system": "system", "developer": "system",
    "user": "user", "human": "user",
    "assistant": "assistant", "ai": "assistant", "chatbot": "assistant", "model": "assistant",
    "tool": "tool", "function": "tool",
}
#: the alias LangChain users know
_ROUTE_ON_ALIASES = {"last_human": "last_user"}


def normalise_role(role: str) -> Role:
    """``human``/``ai``/``developer``/... as one of the four roles (unknown roles count as
    ``user``: a custom chat role is someone talking to the model)."""
    return _ROLES.get(str(role).lower(), "user")


#: The most characters of a call's text a router scores. Why: scoring embeds the text
#: (the default ``mf`` router's WordLlama tokenizer costs ~0.5 s per MB of prompt), so an
#: unbounded text lets one request hold a CPU (or the server's event loop) for seconds and
#: the policy's recent-prompts memory grow with what clients send. 32,000 characters score
#: in ~25 ms and are 6x the longest prompt of the benchmark sets (MMLU, 4,868 characters):
#: no benchmark decision changes (``benchmarks/long_prompts.py``). A longer text keeps its
#: first :data:`ROUTING_HEAD_CHARS` and its last characters, joined by a blank line: the
#: instructions usually open a prompt and the question closes it.
MAX_ROUTING_CHARS = 32_000
#: of :data:`MAX_ROUTING_CHARS`, how many come from the head of a longer text
ROUTING_HEAD_CHARS = 24_000
_JOIN = "\n\n"


def bound_text(text: str) -> str:
    """``text`` as a router scores it: whole when it is at most :data:`MAX_ROUTING_CHARS`
    long, else its head and its tail joined by a blank line (exactly that many characters)."""
    if len(text) <= MAX_ROUTING_CHARS:
        return text
    tail = MAX_ROUTING_CHARS - ROUTING_HEAD_CHARS - len(_JOIN)
    return text[:ROUTING_HEAD_CHARS] + _JOIN + text[-tail:]


def clean_text(text: str) -> str:
    """Text a router can embed: lone surrogates become U+FFFD by the same function every
    embedder and ``router.score`` use, so a prompt scores the same through an integration."""
    return scrub_surrogates(text)


def routing_text(text: str) -> str:
    """The routing text of ``text``: bounded (:func:`bound_text`), then cleaned."""
    return clean_text(bound_text(text))


@dataclass(frozen=True)
class Turn:
    """What one call routes on.

    ``text`` is the routing text (``""`` when the message to route on holds no text), at
    most :data:`MAX_ROUTING_CHARS` characters (:func:`bound_text`);
    ``key`` identifies the user turn and ``followup`` says the call continues it;
    ``input_chars`` / ``input_bytes`` / ``messages`` size the whole input (for cost
    bounds before the call), however long the routing text was before its bound."""

    text: str
    key: str | None = None
    followup: bool = False
    input_chars: int = 0
    input_bytes: int = 0
    messages: int = 1

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())


def _sized(texts: Sequence[str]) -> tuple[int, int]:
    chars = sum(len(t) for t in texts)
    nbytes = sum(len(clean_text(t).encode("utf-8")) for t in texts)
    return chars, nbytes


def turn_of_prompt(prompt: str) -> Turn:
    """A completion prompt: the prompt (bounded) is the routing text (no turn)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidPromptError("the prompt is empty: nothing to route or complete")
    chars, nbytes = _sized([prompt])
    return Turn(routing_text(prompt), None, False, chars, nbytes, 1)


def turn_of(messages: Sequence[tuple[str, str]], route_on: RouteOn = "last_user",
            *, text: str | None = None, extra_input: str = "") -> Turn:
    """The :class:`Turn` of a chat call. Raises :class:`InvalidPromptError` for no
    messages or no user message (nothing says what the call is for).

    ``text`` replaces the routing text (an adapter's own ``route_on`` function, or a
    query engine's question); ``extra_input`` is input the provider also bills that is
    not a message (e.g. the tool schemas), counted in the size only."""
    if not messages:
        raise InvalidPromptError("no messages to route: give at least one user message")
    pairs = [(normalise_role(r), t if isinstance(t, str) else "") for r, t in messages]
    last_user = max((i for i, (r, _) in enumerate(pairs) if r == "user"), default=-1)
    if text is not None:
        if not isinstance(text, str):
            raise InvalidPromptError(f"the routing text must be a string, got {type(text).__name__}")
    else:
        mode = _ROUTE_ON_ALIASES.get(route_on, route_on)
        if mode not in ("last_user", "conversation"):
            raise ValueError(f"route_on must be 'last_user' or 'conversation', got {route_on!r}")
        if last_user < 0:
            raise InvalidPromptError("no user message to route on; add one, or force a route "
                                     "('strong' or 'weak')")
        if mode == "conversation":
            text = "\n\n".join(t for r, t in pairs if r != "tool" and t.strip())
        else:
            text = pairs[last_user][1]
    digest = hashlib.sha1()
    for r, t in pairs[: last_user + 1]:
        digest.update(f"{r}\x00{clean_text(t)}\x01".encode())
    chars, nbytes = _sized([t for _, t in pairs] + ([extra_input] if extra_input else []))
    return Turn(routing_text(text), digest.hexdigest(), 0 <= last_user < len(pairs) - 1, chars, nbytes, len(pairs))
