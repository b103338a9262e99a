"""Client keys: who may call the server, under which label (budget scope, ledger name)
and budget, and whether it is an admin key (``admin: true`` in the config's ``keys``: it
sees every key's usage; keys from ``ROUTELLM_SERVER_API_KEYS`` never are). Keys are compared by SHA-256 digest; the secret is never stored in an
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
    admin: bool = field(default=False, compare=False)


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

    def __init__(self, keys: list[tuple] = (), metrics_key: str | None = None) -> None:  # type: ignore[assignment]
        """``keys``: ``(label, secret, budget)`` or ``(label, secret, budget, admin)``;
        ``metrics_key``: the key ``GET /metrics`` then needs (an admin key does too)."""
        self._by_digest: dict[bytes, ClientKey] = {}
        labels: set[str] = set()
        for label, secret, budget, *rest in keys:
            if label in labels:
                raise ConfigError(f"client key label {label!r} is used twice")
            labels.add(label)
            register_secret(secret)
            self._by_digest[_digest(secret)] = ClientKey(label, budget, bool(rest and rest[0]))
        self._metrics: bytes | None = None
        if metrics_key:
            register_secret(metrics_key)
            self._metrics = _digest(metrics_key)

    @classmethod
    def from_config(cls, config: ServerConfig, environ: Mapping[str, str] | None = None) -> "KeyRing":
        """Keys from the configuration, then from ``ROUTELLM_SERVER_API_KEYS`` (those get
        the configuration's default budget)."""
        env = os.environ if environ is None else environ
        keys = [(k.label, k.secret(), k.budget if k.budget is not None else config.budget, k.admin)
                for k in config.keys]
        keys += [(label, secret, config.budget, False) for label, secret in _env_keys(env.get(KEYS_ENV, ""))]
        metrics = config.metrics_key.get_secret_value() if config.metrics_key is not None else None
        return cls(keys, metrics_key=metrics)

    @property
    def open(self) -> bool:
        return not self._by_digest

    def __len__(self) -> int:
        return len(self._by_digest)

    def __repr__(self) -> str:
        return f"KeyRing({len(self)} keys)"

    def labels(self) -> list[str]:
        return sorted(k.label for k in self._by_digest.values())

    @property
    def metrics_locked(self) -> bool:
        return self._metrics is not None

    def authenticate_metrics(self, headers: Mapping[str, str]) -> None:
        """Passes when ``/metrics`` is open (no ``metrics_key``), or the request sends the
        metrics key or an admin key; :class:`AuthError` otherwise."""
        if self._metrics is None:
            return
        token = _token(headers)
        if token is None:
            raise AuthError("/metrics needs a key: send the metrics key as 'Authorization: Bearer <key>'.")
        digest = _digest(token)
        if digest == self._metrics:
            return
        hit = self._by_digest.get(digest)
        if hit is None or not hit.admin:
            raise AuthError("Incorrect API key provided for /metrics (the metrics key or an admin key).")

    def authenticate(self, headers: Mapping[str, str]) -> ClientKey | None:
        """The caller of a request with these headers (``Authorization: Bearer <key>`` or
        ``x-api-key``); None on an open server; :class:`AuthError` otherwise."""
        if self.open:
            return None
        token = _token(headers)
        if token is None:
            raise AuthError("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.")
        hit = self._by_digest.get(_digest(token))
        if hit is None:
            raise AuthError("Incorrect API key provided.")
        return hit


def _token(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return (headers.get("x-api-key") or "").strip() or None
