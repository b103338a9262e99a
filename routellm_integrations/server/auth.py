"""Client keys: who may call the server, under which label (budget scope, ledger name)
and budget. Keys are compared by SHA-256 digest; the secret is never stored in an
object's ``repr``, a log line or a metric (only its label)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..budgets import Budget
from ..client.secrets import fingerprint, register_secret
from ..errors import RouteLLMError
from .config import KEYS_ENV, ConfigError, ServerConfig

__all__ = ["AuthError", "ClientKey", "KeyRing"]


class AuthError(RouteLLMError, PermissionError):
    """A request without a valid key (the server answers 401)."""


@dataclass(frozen=True)
class ClientKey:
    """An authenticated caller: its label and budget (never its secret)."""

    label: str
    budget: Budget | None = field(default=None, compare=False)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _env_keys(raw: str) -> list[tuple[str, str]]:
    out = []
    for item in (x.strip() for x in raw.split(",")):
        if not item:
            continue
        label, sep, secret = item.partition("=")
        if not sep:
            label, secret = fingerprint(item), item
        label, secret = label.strip(), secret.strip()
        if len(secret) < 8:
            raise ConfigError(f"{KEYS_ENV}: the key labelled {label!r} is shorter than 8 characters")
        out.append((label, secret))
    return out


class KeyRing:
    """The keys of a server. Empty: the server is open (every caller is anonymous)."""

    def __init__(self, keys: list[tuple[str, str, Budget | None]] = ()) -> None:  # type: ignore[assignment]
        self._by_digest: dict[bytes, ClientKey] = {}
        labels: set[str] = set()
        for label, secret, budget in keys:
            if label in labels:
                raise ConfigError(f"client key label {label!r} is used twice")
            labels.add(label)
            register_secret(secret)
            self._by_digest[_digest(secret)] = ClientKey(label, budget)

    @classmethod
    def from_config(cls, config: ServerConfig, environ: Mapping[str, str] | None = None) -> "KeyRing":
        """Keys from the configuration, then from ``ROUTELLM_SERVER_API_KEYS`` (those get
        the configuration's default budget)."""
        env = os.environ if environ is None else environ
        keys = [(k.label, k.secret(), k.budget if k.budget is not None else config.budget) for k in config.keys]
        keys += [(label, secret, config.budget) for label, secret in _env_keys(env.get(KEYS_ENV, ""))]
        return cls(keys)

    @property
    def open(self) -> bool:
        return not self._by_digest

    def __len__(self) -> int:
        return len(self._by_digest)

    def __repr__(self) -> str:
        return f"KeyRing({len(self)} keys)"

    def labels(self) -> list[str]:
        return sorted(k.label for k in self._by_digest.values())

    def authenticate(self, headers: Mapping[str, str]) -> ClientKey | None:
        """The caller of a request with these headers (``Authorization: Bearer <key>`` or
        ``x-api-key``); None on an open server; :class:`AuthError` otherwise."""
        if self.open:
            return None
        token = None
        auth = headers.get("authorization")
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        if token is None:
            token = (headers.get("x-api-key") or "").strip() or None
        if token is None:
            raise AuthError("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.")
        hit = self._by_digest.get(_digest(token))
        if hit is None:
            raise AuthError("Incorrect API key provided.")
        return hit
