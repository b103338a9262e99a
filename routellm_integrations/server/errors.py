"""Errors in OpenAI's format: ``{"error": {"message", "type", "param", "code"}}``, every
message redacted, each with the status a client can act on:

- 400 the request (``param`` names the field), 401 the key, 413 the body's size;
- 429 ``insufficient_quota`` (``x-should-retry: false``): the budget's scope is exhausted;
  429 ``budget_busy`` (``Retry-After``): only calls in flight hold the money
  (:class:`~routellm_integrations.budgets.Refusal`), it may fit once they settle;
- a provider's failure as the provider answered it (:func:`backend_error`): 429
  ``rate_limit_exceeded`` with its ``Retry-After``, its 400/413/422 as they came, a
  timeout 504, anything else 502;
- 503 ``store_unavailable`` (``Retry-After``): the state store cannot be reached (its
  URL or path is logged, never answered)."""

from __future__ import annotations

import logging
import math
from typing import Any

from ..client.errors import BackendConfigError, BackendError, InvalidModelError, UnsupportedParameterError
from ..client.secrets import redact
from ..errors import BudgetExceeded, InvalidPromptError, InvalidThresholdError, RouteLLMError
from .auth import AuthError

__all__ = ["ApiError", "backend_error", "error_body", "error_for"]

log = logging.getLogger("routellm.server")

#: statuses an OpenAI SDK must not retry: a retry cannot succeed (budget) or was done (backend)
NO_RETRY = {"x-should-retry": "false"}


class ApiError(RouteLLMError):
    """An error answered as OpenAI does (status, OpenAI error type, param, code)."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", *, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, redact(message), type_, param, code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": redact(message), "type": type_, "param": param, "code": code}}


def _provider_exception(exc: BaseException) -> Any:
    """The SDK exception a :class:`BackendError` was made from (its ``__context__``: the
    backends raise it ``from None``), or None."""
    seen = exc.__cause__ or exc.__context__
    for _ in range(4):
        if seen is None:
            return None
        if getattr(seen, "response", None) is not None and isinstance(getattr(seen, "status_code", None), int):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _retry_headers(provider_exc: Any) -> dict[str, str]:
    """The provider's ``retry-after`` (and ``retry-after-ms``), else one second."""
    out: dict[str, str] = {}
    headers = getattr(getattr(provider_exc, "response", None), "headers", None)
    if headers is not None:
        for name in ("retry-after", "retry-after-ms"):
            value = headers.get(name)
            if isinstance(value, str) and value.strip() and len(value) < 64 and value.isprintable():
                out[name] = value.strip()
    if "retry-after" not in out:
        ms = out.get("retry-after-ms")
        try:
            out["retry-after"] = str(max(1, math.ceil(float(ms) / 1000.0))) if ms else "1"
        except ValueError:
            out["retry-after"] = "1"
    return out


def _provider_param(provider_exc: Any) -> str | None:
    body = getattr(provider_exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("param"), str) and len(err["param"]) <= 200:
            return err["param"]
    return None


def backend_error(exc: BackendError) -> ApiError:
    """A provider's failure as a provider would answer it: its 429 a 429 (with its
    ``Retry-After``), its 400/413/422 (the client's own bad parameter) the same status
    and message, a timeout a 504, anything else (5xx, the server's own key refused,
    connection errors, a cut stream) a 502. Every message is redacted."""
    where = f"the {exc.route} " if exc.route else "the "
    message = f"{where}{exc}"
    status = exc.status_code
    if exc.kind == "timeout":
        return ApiError(504, message, "api_error", code="backend_timeout", headers=NO_RETRY)
    if status == 429:
        return ApiError(429, message, "requests", code="rate_limit_exceeded",
                        headers=_retry_headers(_provider_exception(exc)))
    if status in CLIENT_STATUSES:
        return ApiError(status, message, "invalid_request_error", param=_provider_param(_provider_exception(exc)),
                        code="provider_rejected_request", headers=NO_RETRY)
    return ApiError(502, message, "api_error", code=f"backend_{exc.kind}", headers=NO_RETRY)


#: provider statuses that blame the request itself, answered as they came; 401/403/404
#: (the server's own key or model) are the server's problem: a 502
CLIENT_STATUSES = {400, 413, 422}
#: how long a client waits before retrying a budget refusal caused by calls in flight
BUSY_RETRY_AFTER_S = 1
#: how long a client waits before retrying when the state store is unavailable
STORE_RETRY_AFTER_S = 2


def _store_unavailable(exc: BaseException) -> bool:
    """A :class:`~routellm_integrations.errors.StoreUnavailableError` (looked up when
    needed: the store layer defines it)."""
    from .. import errors

    kind = getattr(errors, "StoreUnavailableError", None)
    return kind is not None and isinstance(exc, kind)


def error_for(exc: BaseException) -> ApiError:
    """The HTTP error an exception from a routed call becomes."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, AuthError):
        return ApiError(401, str(exc), "invalid_request_error", code="invalid_api_key")
    if isinstance(exc, InvalidModelError):
        return ApiError(400, str(exc), "invalid_request_error", param="model", code="invalid_model")
    if isinstance(exc, InvalidThresholdError):
        return ApiError(400, str(exc), "invalid_request_error", param="model", code="invalid_threshold")
    if isinstance(exc, InvalidPromptError):
        return ApiError(400, str(exc), "invalid_request_error", param="messages", code="invalid_messages")
    if isinstance(exc, UnsupportedParameterError):
        return ApiError(400, str(exc), "invalid_request_error", param=exc.param, code="unsupported_parameter")
    if isinstance(exc, BudgetExceeded):
        if exc.args and getattr(exc.args[0], "busy", False):  # budgets.Refusal: only calls in flight hold it
            return ApiError(429, str(exc), "requests", code="budget_busy",
                            headers={"retry-after": str(BUSY_RETRY_AFTER_S)})
        return ApiError(429, str(exc), "insufficient_quota", code="insufficient_quota", headers=NO_RETRY)
    if isinstance(exc, BackendError):
        return backend_error(exc)
    if _store_unavailable(exc):
        # the store's own message names it (a path, a host): logged, never answered
        log.error("state store unavailable: %s: %s", type(exc).__name__, redact(str(exc)))
        reset = type(exc).__name__ == "StoreResetError"
        message = ("the routing state store came back empty and waits for an operator to acknowledge it" if reset
                   else "the routing state store is unavailable: retry shortly")
        return ApiError(503, message, "server_error", code="store_unavailable",
                        headers={"retry-after": str(STORE_RETRY_AFTER_S)})
    if isinstance(exc, BackendConfigError):
        return ApiError(500, str(exc), "server_error", code="backend_config")
    if isinstance(exc, RecursionError):
        return ApiError(400, "the request is nested too deeply", "invalid_request_error", code="too_deep")
    if isinstance(exc, (RouteLLMError, ValueError)):
        return ApiError(400, str(exc), "invalid_request_error")
    return ApiError(500, f"internal error ({type(exc).__name__})", "server_error")
