"""Errors of the routed client. Each names the problem; none ever carries an API key."""

from __future__ import annotations

from ..errors import RouteLLMError

__all__ = ["BackendConfigError", "BackendError", "InvalidModelError", "UnsupportedParameterError"]


class InvalidModelError(RouteLLMError, ValueError):
    """A ``model`` that is neither ``router-<router>-<threshold>``,
    ``router-<router>-share<fraction>`` nor a configured route name, or one naming an
    unknown router or a threshold outside [0, 1]."""


class BackendConfigError(RouteLLMError, ValueError):
    """A backend spec that cannot be used: not ``provider:model``, an unknown provider, or
    no API key where the provider needs one."""


class UnsupportedParameterError(RouteLLMError, ValueError):
    """A request parameter the chosen backend cannot honour (e.g. ``n > 1`` on Anthropic)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class BackendError(RouteLLMError):
    """The backend a call was routed to failed: an HTTP error (``status_code`` is the
    provider's status), a connection error or timeout (``status_code`` is None), or a
    stream the provider cut. The message is redacted: no API key appears in it."""

    def __init__(self, message: str, *, status_code: int | None = None, provider: str | None = None,
                 model: str | None = None, route: str | None = None, kind: str = "api_error") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.provider = provider
        self.model = model
        self.route = route
        self.kind = kind  # "api_error", "connection_error", "timeout", "stream_cut"

    def __reduce__(self):  # picklable with its fields (workers, multiprocessing)
        return (_rebuild, (str(self), self.status_code, self.provider, self.model, self.route, self.kind))


def _rebuild(message: str, status_code: int | None, provider: str | None, model: str | None, route: str | None,
             kind: str) -> BackendError:
    return BackendError(message, status_code=status_code, provider=provider, model=model, route=route, kind=kind)
