"""Errors in OpenAI's format: ``{"error": {"message", "type", "param", "code"}}``, every
message redacted."""

from __future__ import annotations

from typing import Any

from ..client.errors import BackendConfigError, BackendError, InvalidModelError, UnsupportedParameterError
from ..client.secrets import redact
from ..errors import BudgetExceeded, InvalidPromptError, InvalidThresholdError, RouteLLMError
from .auth import AuthError

__all__ = ["ApiError", "error_body", "error_for"]

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
        return ApiError(429, str(exc), "insufficient_quota", code="insufficient_quota", headers=NO_RETRY)
    if isinstance(exc, BackendError):
        where = f"the {exc.route} " if exc.route else "the "
        return ApiError(502, f"{where}{exc}", "api_error", code=f"backend_{exc.kind}", headers=NO_RETRY)
    if isinstance(exc, BackendConfigError):
        return ApiError(500, str(exc), "server_error", code="backend_config")
    if isinstance(exc, (RouteLLMError, ValueError)):
        return ApiError(400, str(exc), "invalid_request_error")
    return ApiError(500, f"internal error ({type(exc).__name__})", "server_error")
