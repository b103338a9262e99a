"""Keeping API keys out of everything a caller, a log or a metric can see.

Two layers: every secret the process knows (provider keys, the server's client keys) is
registered with :func:`register_secret` and replaced by ``***`` wherever text is
redacted; and anything shaped like a provider key (``sk-...``, ``sk-ant-...``, a provider's
own partly-masked echo of a key) is masked too, since a provider's error message may
quote the key it was sent.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

__all__ = ["RedactingFilter", "fingerprint", "redact", "register_secret"]

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
#: key-like tokens: OpenAI/Anthropic style keys, also as providers echo them partly masked
_KEY_RX = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-*.]{6,}|\bsk-ant-[A-Za-z0-9_\-*.]{4,}")
#: Authorization header values that might be quoted in an error body
_BEARER_RX = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.~+/=*]{6,}")


def register_secret(secret: str | None) -> None:
    """Remember ``secret`` so :func:`redact` masks it everywhere (short strings are
    ignored: masking them would mangle ordinary text)."""
    if secret and len(secret) >= 6:
        with _LOCK:
            _SECRETS.add(secret)


def redact(text: Any) -> str:
    """``text`` as a string with every known secret and key-like token masked."""
    s = text if isinstance(text, str) else str(text)
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        if secret in s:
            s = s.replace(secret, "***")
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
