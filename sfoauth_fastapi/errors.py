"""Stable error codes and the one place core exceptions become HTTP errors.

Every error the router or a dependency returns is ``{"detail": "<ErrorCode>"}`` with a
status chosen here. Codes are part of the public API: clients may match on them. The
core's messages are logged (they never carry token or secret values) but never sent to
the client, so an error response cannot leak anything Salesforce or the store said.

Example:
    >>> try:
    ...     token = await sf.manager.valid_token(key)
    ... except SFOAuthError as exc:
    ...     raise http_error(exc) from None
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import Enum
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from sfoauth_core.exceptions import (
    AccessDeniedError,
    ConfigurationError,
    FlowError,
    InvalidClientError,
    InvalidClientIdError,
    MalformedResponseError,
    OAuthProtocolError,
    ReauthorizationRequired,
    ResponseError,
    SalesforceUnavailableError,
    SFOAuthError,
    StateMismatchError,
    StorageError,
    TokenNotFoundError,
    TransportError,
    app_access_hint,
)
from sfoauth_core.login import LoginError, LoginErrorCode

__all__ = [
    "NO_STORE_HEADERS",
    "RETRY_AFTER_SECONDS",
    "ErrorCode",
    "ErrorModel",
    "SFOAuthHTTPException",
    "error_responses",
    "http_error",
    "login_error_code",
    "sfoauth_exception_handler",
]

logger = logging.getLogger("sfoauth.fastapi")

#: Headers of every login, callback and error response (SECURITY.md item 6).
NO_STORE_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
}


#: Seconds a client is asked to wait after a 503 from Salesforce (``Retry-After``).
RETRY_AFTER_SECONDS = 30


class ErrorCode(str, Enum):
    """The ``detail`` of every sfoauth error response."""

    NOT_AUTHENTICATED = "SFOAUTH_NOT_AUTHENTICATED"
    NOT_CONNECTED = "SFOAUTH_NOT_CONNECTED"
    REAUTHORIZATION_REQUIRED = "SFOAUTH_REAUTHORIZATION_REQUIRED"
    INVALID_STATE = "SFOAUTH_INVALID_STATE"
    INVALID_CALLBACK = "SFOAUTH_INVALID_CALLBACK"
    INVALID_REQUEST = "SFOAUTH_INVALID_REQUEST"
    ACCESS_DENIED = "SFOAUTH_ACCESS_DENIED"
    APP_ACCESS_DENIED = "SFOAUTH_APP_ACCESS_DENIED"
    AUTHORIZATION_FAILED = "SFOAUTH_AUTHORIZATION_FAILED"
    CONNECTION_CONFLICT = "SFOAUTH_CONNECTION_CONFLICT"
    CROSS_SITE_REQUEST = "SFOAUTH_CROSS_SITE_REQUEST"
    SALESFORCE_ERROR = "SFOAUTH_SALESFORCE_ERROR"
    SALESFORCE_UNAVAILABLE = "SFOAUTH_SALESFORCE_UNAVAILABLE"
    APP_MISCONFIGURED = "SFOAUTH_APP_MISCONFIGURED"
    STORAGE_UNAVAILABLE = "SFOAUTH_STORAGE_UNAVAILABLE"

    def __str__(self) -> str:
        return self.value


class ErrorModel(BaseModel):
    """The body of an sfoauth error response; ``hint`` (only for
    ``SFOAUTH_APP_ACCESS_DENIED``) says what the user's Salesforce admin must change."""

    detail: ErrorCode
    hint: str | None = None


_SUMMARIES: dict[ErrorCode, str] = {
    ErrorCode.NOT_AUTHENTICATED: "The app did not identify a user (``user_key`` gave nothing).",
    ErrorCode.NOT_CONNECTED: "The user has no Salesforce connection.",
    ErrorCode.REAUTHORIZATION_REQUIRED: "Salesforce refused the stored grant; the user must log in again.",
    ErrorCode.INVALID_STATE: "The callback's state is missing, wrong, expired, replayed or foreign.",
    ErrorCode.INVALID_CALLBACK: "The callback carries no usable code, or an unexpected issuer.",
    ErrorCode.INVALID_REQUEST: "A login option (scope, prompt...) is not acceptable.",
    ErrorCode.ACCESS_DENIED: "The user declined the authorization at Salesforce.",
    ErrorCode.APP_ACCESS_DENIED: "Salesforce does not let this user use the app (not installed in the user's org, no access, IP or login hours); ``hint`` says what the admin must change.",
    ErrorCode.AUTHORIZATION_FAILED: "Salesforce refused the authorization or the code exchange.",
    ErrorCode.CONNECTION_CONFLICT: "Another Salesforce user or org authorized into an existing connection.",
    ErrorCode.CROSS_SITE_REQUEST: "A state-changing request came from another site.",
    ErrorCode.SALESFORCE_ERROR: "Salesforce answered something that cannot be trusted or understood.",
    ErrorCode.SALESFORCE_UNAVAILABLE: "Salesforce kept failing or timing out.",
    ErrorCode.APP_MISCONFIGURED: "Salesforce rejected the app's own credentials, or a setting is wrong.",
    ErrorCode.STORAGE_UNAVAILABLE: "The token store failed.",
}

_STATUS: dict[ErrorCode, int] = {
    ErrorCode.NOT_AUTHENTICATED: status.HTTP_401_UNAUTHORIZED,
    ErrorCode.NOT_CONNECTED: status.HTTP_401_UNAUTHORIZED,
    ErrorCode.REAUTHORIZATION_REQUIRED: status.HTTP_401_UNAUTHORIZED,
    ErrorCode.INVALID_STATE: status.HTTP_400_BAD_REQUEST,
    ErrorCode.INVALID_CALLBACK: status.HTTP_400_BAD_REQUEST,
    ErrorCode.INVALID_REQUEST: status.HTTP_400_BAD_REQUEST,
    ErrorCode.ACCESS_DENIED: status.HTTP_403_FORBIDDEN,
    ErrorCode.APP_ACCESS_DENIED: status.HTTP_403_FORBIDDEN,
    ErrorCode.AUTHORIZATION_FAILED: status.HTTP_400_BAD_REQUEST,
    ErrorCode.CONNECTION_CONFLICT: status.HTTP_409_CONFLICT,
    ErrorCode.CROSS_SITE_REQUEST: status.HTTP_403_FORBIDDEN,
    ErrorCode.SALESFORCE_ERROR: status.HTTP_502_BAD_GATEWAY,
    ErrorCode.SALESFORCE_UNAVAILABLE: status.HTTP_503_SERVICE_UNAVAILABLE,
    ErrorCode.APP_MISCONFIGURED: status.HTTP_502_BAD_GATEWAY,
    ErrorCode.STORAGE_UNAVAILABLE: status.HTTP_503_SERVICE_UNAVAILABLE,
}

_DESCRIPTIONS: dict[int, str] = {
    400: "The login or callback request was refused",
    401: "No usable Salesforce connection",
    403: "Refused",
    409: "Conflict with the existing connection",
    502: "Salesforce answered unexpectedly or rejected the app",
    503: "Salesforce or the token store is unavailable",
}


class SFOAuthHTTPException(HTTPException):
    """The ``HTTPException`` sfoauth raises: ``detail`` is the code's value and
    :attr:`code` the :class:`ErrorCode` (``sf.add_exception_handlers`` renders it as
    an HTML page for browsers)."""

    def __init__(self, code: ErrorCode, headers: Mapping[str, str]) -> None:
        super().__init__(
            status_code=_STATUS[code], detail=code.value, headers=dict(headers)
        )
        self.code = code


def log_failure(exc: SFOAuthError, code: ErrorCode) -> None:
    """Log why a request failed, with the core's message (it names settings, tables
    and Salesforce's error codes, never a token or secret value).

    Failures the operator must fix (storage, the app's own credentials) and Salesforce
    being down are errors; the rest (a user's refused grant...) are warnings.
    """
    level = (
        logging.ERROR
        if code
        in (
            ErrorCode.STORAGE_UNAVAILABLE,
            ErrorCode.APP_MISCONFIGURED,
            ErrorCode.SALESFORCE_UNAVAILABLE,
        )
        else logging.WARNING
    )
    logger.log(
        level,
        "sfoauth request failed: %s (%s: %s)",
        code.value,
        type(exc).__name__,
        exc,
    )


def status_for(code: ErrorCode) -> int:
    """The HTTP status sfoauth uses for ``code``."""
    return _STATUS[code]


#: The FastAPI answer to each refusal of the core's login transaction (the core's code
#: is the same in both adapters; this is how FastAPI spells it).
LOGIN_ERRORS: Mapping[LoginErrorCode, ErrorCode] = {
    LoginErrorCode.INVALID_REQUEST: ErrorCode.INVALID_REQUEST,
    LoginErrorCode.NOT_AUTHENTICATED: ErrorCode.NOT_AUTHENTICATED,
    LoginErrorCode.INVALID_STATE: ErrorCode.INVALID_STATE,
    LoginErrorCode.INVALID_CALLBACK: ErrorCode.INVALID_CALLBACK,
    LoginErrorCode.ACCESS_DENIED: ErrorCode.ACCESS_DENIED,
    LoginErrorCode.AUTHORIZATION_FAILED: ErrorCode.AUTHORIZATION_FAILED,
    LoginErrorCode.EXCHANGE_FAILED: ErrorCode.AUTHORIZATION_FAILED,
    LoginErrorCode.ID_TOKEN_REJECTED: ErrorCode.SALESFORCE_ERROR,
    LoginErrorCode.SALESFORCE_ERROR: ErrorCode.SALESFORCE_ERROR,
    LoginErrorCode.SALESFORCE_UNAVAILABLE: ErrorCode.SALESFORCE_UNAVAILABLE,
    LoginErrorCode.APP_MISCONFIGURED: ErrorCode.APP_MISCONFIGURED,
    LoginErrorCode.APP_ACCESS_DENIED: ErrorCode.APP_ACCESS_DENIED,
    LoginErrorCode.ALREADY_LINKED: ErrorCode.CONNECTION_CONFLICT,
    LoginErrorCode.DIFFERENT_ACCOUNT: ErrorCode.CONNECTION_CONFLICT,
    LoginErrorCode.SIGNUP_CLOSED: ErrorCode.NOT_AUTHENTICATED,
    LoginErrorCode.STORAGE_UNAVAILABLE: ErrorCode.STORAGE_UNAVAILABLE,
}


def login_error_code(failure: LoginError) -> ErrorCode:
    """The FastAPI code of a refused login step."""
    return LOGIN_ERRORS[failure.code]


def code_for(exc: SFOAuthError) -> ErrorCode:
    """The stable code of a core exception (most specific class first)."""
    if isinstance(exc, LoginError):
        return login_error_code(exc)
    if isinstance(exc, StateMismatchError):
        return ErrorCode.INVALID_STATE
    if isinstance(exc, TokenNotFoundError):
        return ErrorCode.NOT_CONNECTED
    if isinstance(exc, ReauthorizationRequired):
        return ErrorCode.REAUTHORIZATION_REQUIRED
    if isinstance(exc, AccessDeniedError):
        return ErrorCode.ACCESS_DENIED
    if app_access_hint(exc) is not None:
        return ErrorCode.APP_ACCESS_DENIED
    if isinstance(exc, (InvalidClientError, InvalidClientIdError, ConfigurationError)):
        return ErrorCode.APP_MISCONFIGURED
    if isinstance(exc, OAuthProtocolError):
        return ErrorCode.AUTHORIZATION_FAILED
    if isinstance(exc, FlowError):
        return ErrorCode.INVALID_CALLBACK
    if isinstance(exc, MalformedResponseError) and (exc.status_code or 0) >= 500:
        return ErrorCode.SALESFORCE_UNAVAILABLE  # an HTML maintenance page, a 503
    if isinstance(exc, (SalesforceUnavailableError, TransportError)):
        return ErrorCode.SALESFORCE_UNAVAILABLE
    if isinstance(exc, ResponseError):
        return ErrorCode.SALESFORCE_ERROR
    if isinstance(exc, StorageError):
        return ErrorCode.STORAGE_UNAVAILABLE
    return ErrorCode.SALESFORCE_ERROR


def http_error(
    exc: SFOAuthError | ErrorCode, *, headers: Mapping[str, str] | None = None
) -> SFOAuthHTTPException:
    """Turn a core exception (or a code) into the ``HTTPException`` to raise.

    The exception's message is logged, never returned: the response body is only the
    code. Login and callback errors carry the no-store headers.

    Args:
        exc: a core exception, or an :class:`ErrorCode` directly.
        headers: extra response headers.

    Returns:
        ``HTTPException(status, detail=code)``.
    """
    if isinstance(exc, ErrorCode):
        code = exc
    else:
        code = code_for(exc)
        log_failure(exc, code)
    merged = dict(NO_STORE_HEADERS)
    if code is ErrorCode.SALESFORCE_UNAVAILABLE:
        merged["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if headers:
        merged.update(headers)
    return SFOAuthHTTPException(code, merged)


def error_responses(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting ``codes``, grouped by status."""
    by_status: dict[int, list[ErrorCode]] = {}
    for code in codes:
        by_status.setdefault(_STATUS[code], []).append(code)
    responses: dict[int | str, dict[str, Any]] = {}
    for status_code, group in sorted(by_status.items()):
        responses[status_code] = {
            "model": ErrorModel,
            "description": _DESCRIPTIONS.get(status_code, "Error"),
            "content": {
                "application/json": {
                    "examples": {
                        code.name: {
                            "summary": _SUMMARIES[code],
                            "value": {"detail": code.value},
                        }
                        for code in group
                    }
                }
            },
        }
    return responses


async def sfoauth_exception_handler(request: Request, exc: Exception) -> Response:
    """FastAPI exception handler for core errors escaping a route (for example a
    ``session.client`` call whose refresh Salesforce refused): the mapped code (and,
    for ``SFOAUTH_APP_ACCESS_DENIED``, the ``hint``)."""
    if not isinstance(exc, SFOAuthError):  # pragma: no cover - registered for it
        raise exc
    error = http_error(exc)
    body: dict[str, Any] = {"detail": error.detail}
    hint = app_access_hint(exc)
    if hint is not None:
        body["hint"] = hint
    return JSONResponse(body, status_code=error.status_code, headers=error.headers)
