"""Exceptions raised by the client. Every API error carries the server's error code
(``{"error": {"code", "message", "details"}}``), the HTTP status and the details."""
from __future__ import annotations

from typing import Any


class TesseraError(Exception):
    """Base class: ``code`` is the API's error code (e.g. ``not_found``), ``status`` the
    HTTP status (0 when no answer came), ``details`` the API's details object."""

    def __init__(self, message: str, *, code: str = "error", status: int = 0,
                 details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details if details is not None else {}

    def __str__(self) -> str:
        where = f"HTTP {self.status} " if self.status else ""
        return f"{where}{self.code}: {self.message}"


class ConfigurationError(TesseraError):
    """No server URL or token could be found (arguments, environment, config file)."""


class ConnectionFailed(TesseraError):
    """The server could not be reached."""


class ApiError(TesseraError):
    """The server answered with an error status."""


class ValidationError(ApiError):
    """400: the request was refused; ``details`` says which field and why."""


class AuthenticationError(ApiError):
    """401 (or 403 with code ``not_authenticated`` / ``authentication_failed``): missing,
    wrong or revoked token / API key."""


class PermissionDenied(ApiError):
    """403: authenticated, but the role does not allow this."""


class NotFound(ApiError):
    """404: no such object, or not visible to this user (non-members see 404)."""


class Conflict(ApiError):
    """409: e.g. a mask revision that is no longer current."""


class RateLimited(ApiError):
    """429 after the retries ran out; ``retry_after`` is the server's advice in seconds."""

    retry_after: float | None = None


class ServiceUnavailable(ApiError):
    """503 after the retries ran out (e.g. no inference worker)."""


class ServerError(ApiError):
    """5xx other than 503."""


class OperationFailed(TesseraError):
    """A background operation (job, training run, deployment, export) ended in failure."""


AUTHENTICATION_CODES = ("not_authenticated", "authentication_failed")

_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError, 401: AuthenticationError, 403: PermissionDenied, 404: NotFound,
    409: Conflict, 429: RateLimited, 503: ServiceUnavailable,
}


def error_for_status(status: int, body: Any, fallback_text: str = "") -> ApiError:
    """Build the matching exception from an error response body."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "error")
        message = str(error.get("message") or "")
        details = error.get("details")
    else:  # not the API's error format (e.g. an upload's 400 report): keep the body
        code, message, details = f"http_{status}", fallback_text[:500], body
    if code in AUTHENTICATION_CODES:  # DRF answers 403 for these when session auth comes first
        cls: type[ApiError] = AuthenticationError
    else:
        cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(message or f"HTTP {status}", code=code, status=status, details=details)
