"""Keeping API keys out of everything a caller, a log or a metric can see.

Two layers: every secret the process knows (provider keys, the server's client keys) is
registered with :func:`register_secret` and replaced by ``***`` wherever text is
redacted; and anything shaped like a provider key (``sk-...``, ``sk-ant-...``, a provider's
own partly-masked echo of a key) is masked too, since a provider's error message may
quote the key it was sent.

A provider may also echo a *registered* key masked (``abcd1234...wxyz``,
``sk-...wxyz``, ``gsk_ABCD********wxyz``), whatever its prefix: any token that opens
with the key's first 8 characters, or that holds a run of mask characters (``*``,
``.``, ``…``, ``•``, ``x``/``X`` runs of 3+) and ends with the key's last 4, is masked
whole. No fragment of a key (neither its head nor its tail) is passed on.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

__all__ = ["RedactingFilter", "fingerprint", "redact", "register_secret"]

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
#: (first 8, last 4) of every registered key of 12+ characters, for their masked echoes
_FRAGMENTS: list[tuple[str, str]] = []
#: a token: what a masked echo can be part of (up to a space, a quote or a bracket)
_TOKEN_RX = re.compile(r"""[^\s"'<>()\[\]{},;]+""")
#: characters providers mask a key with (a run of 2+, or one ellipsis); x/X runs of 3+
_MASK_CHARS = "*.\u2026\u2022"
#: key-like tokens: OpenAI/Anthropic style keys, also as providers echo them partly masked
_KEY_RX = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-*.]{6,}|\bsk-ant-[A-Za-z0-9_\-*.]{4,}")
#: Authorization header values that might be quoted in an error body
_BEARER_RX = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.~+/=*]{6,}")


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so :func:`redact` masks it everywhere (short strings are
    ignored: masking them would mangle ordinary text)."""
    if secret and len(secret) >= 6:
        with _LOCK:
            if secret in _SECRETS:
                return
            _SECRETS.add(secret)
            if len(secret) >= 12:  # a shorter key has no masked form that keeps anything back
                _FRAGMENTS.append((secret[:8], secret[-4:]))


def _masked(token: str, tail: str) -> bool:
    """``token`` ends with ``tail`` right after a run of mask characters."""
    rest = token[: -len(tail)]
    run = len(rest) - len(rest.rstrip(_MASK_CHARS))
    return run >= 2 or rest.endswith("\u2026") or len(rest) - len(rest.rstrip("xX")) >= 3


def _mask_echoes(text: str, fragments: list[tuple[str, str]]) -> str:
    """``text`` with every token holding a registered key's head, or ending in a mask run
    and its tail, replaced by ``***``. Linear in ``text``: plain substring tests first, a
    token pass only when a fragment occurs."""
    hits = [(h, t) for h, t in fragments if h in text or t in text]
    if not hits:
        return text

    def mask(m: "re.Match[str]") -> str:
        token = m.group(0)
        end = token.rstrip(".:!?")  # a sentence's end after the echo
        for head, tail in hits:
            if head in token or (end.endswith(tail) and _masked(end, tail)):
                return "***"
        return token

    return _TOKEN_RX.sub(mask, text)


def redact(text: Any) -> str:
    """``text`` as a string with every known secret and key-like token masked."""
    s = text if isinstance(text, str) else str(text)
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
        fragments = list(_FRAGMENTS)
    for secret in secrets:
        if secret in s:
            s = s.replace(secret, "***")
    s = _mask_echoes(s, fragments)
    s = _KEY_RX.sub("***", s)
    return _BEARER_RX.sub(r"\1***", s)


def fingerprint(secret: str) -> str:
    """A short, non-reversible id of a key (for labels and logs): ``key-<8 hex>``."""
    import hashlib

    return "key-" + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]


class RedactingFilter(logging.Filter):
    """A logging filter that redacts a record's message and arguments (install it on the
    handlers that write logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the caller's problem
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = redact(str(exc))
            if text != str(exc):  # the traceback would quote the secret: keep the type and a clean message
                record.msg = f"{record.msg} ({type(exc).__name__}: {text})"
                record.exc_info, record.exc_text = None, None
        return True
