"""Wire helpers: request parameters, client authentication, and OAuth response encoding.

Reference 2.1 and 2.6: bodies may be urlencoded or multipart; client credentials arrive
in the body or in an HTTP Basic header; responses are JSON by default
(``application/json;charset=UTF-8`` with ``Cache-Control: no-cache, no-store`` and
``Pragma: no-cache``), or urlencoded/XML on ``format=`` or ``Accept``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from typing import Literal
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from .state import EmulatedApp, EmulatorState

__all__ = [
    "JSON_CONTENT_TYPE",
    "NO_CACHE_HEADERS",
    "OAuthError",
    "ResponseFormat",
    "identify_client",
    "mask_params",
    "oauth_error_response",
    "oauth_response",
    "read_params",
    "response_format",
]

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
NO_CACHE_HEADERS = {"Cache-Control": "no-cache, no-store", "Pragma": "no-cache"}
ResponseFormat = Literal["json", "urlencoded", "xml"]

SECRET_PARAMS = frozenset(
    {
        "client_secret",
        "password",
        "refresh_token",
        "access_token",
        "code",
        "code_verifier",
        "assertion",
        "token",
        "subject_token",
        "actor_token",
        "oauth_token",
        "client_assertion",
    }
)


class OAuthError(Exception):
    """An OAuth error answered as ``{"error", "error_description"}``.

    Args:
        error: wire error code, e.g. ``invalid_grant``.
        description: Salesforce's lower-case description.
        status: HTTP status (400 for every token-endpoint error Salesforce was seen to
            send).
    """

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


async def read_params(request: Request) -> dict[str, str]:
    """Form parameters (urlencoded or multipart); the query string for GET requests."""
    if request.method in ("GET", "HEAD"):
        return dict(request.query_params)
    content_type = request.headers.get("content-type", "").lower()
    params: dict[str, str] = {}
    if content_type.startswith(
        ("multipart/form-data", "application/x-www-form-urlencoded")
    ):
        form = await request.form()
        for key, value in form.multi_items():
            if isinstance(value, str) and key not in params:
                params[key] = value
        await form.close()
    else:
        # Some clients omit the Content-Type of an urlencoded body.
        from urllib.parse import parse_qsl

        body = (await request.body()).decode("utf-8", "replace")
        for key, value in parse_qsl(body, keep_blank_values=True):
            params.setdefault(key, value)
    return params


def response_format(
    params: Mapping[str, str], accept: str | None, default: ResponseFormat = "json"
) -> ResponseFormat:
    """``format`` parameter first, then the ``Accept`` header (left to right), else
    ``default`` (``*/*`` states no preference)."""
    fmt = (params.get("format") or "").strip().lower()
    if fmt in ("json", "urlencoded", "xml"):
        return fmt  # type: ignore[return-value]
    for item in (accept or "").split(","):
        media = item.split(";", 1)[0].strip().lower()
        if media == "*/*":
            return default
        if media == "application/json":
            return "json"
        if media == "application/x-www-form-urlencoded":
            return "urlencoded"
        if media in ("application/xml", "text/xml"):
            return "xml"
    return default


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def oauth_response(
    payload: Mapping[str, object], fmt: ResponseFormat = "json", status: int = 200
) -> Response:
    """Encode a token-endpoint payload with Salesforce's headers."""
    if fmt == "urlencoded":
        body = urlencode({k: _as_text(v) for k, v in payload.items()}, quote_via=quote)
        media = "application/x-www-form-urlencoded;charset=UTF-8"
    elif fmt == "xml":
        items = "".join(f"<{k}>{escape(_as_text(v))}</{k}>" for k, v in payload.items())
        body = f'<?xml version="1.0" encoding="UTF-8"?><OAuth>{items}</OAuth>'
        media = "application/xml;charset=UTF-8"
    else:
        body = json.dumps(payload, separators=(",", ":"))
        media = JSON_CONTENT_TYPE
    headers = dict(NO_CACHE_HEADERS)
    headers["Content-Type"] = media
    return Response(body.encode("utf-8"), status_code=status, headers=headers)


def oauth_error_response(exc: OAuthError, fmt: ResponseFormat = "json") -> Response:
    """The error body for ``exc``."""
    payload = {"error": exc.error, "error_description": exc.description}
    return oauth_response(payload, fmt, exc.status)


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode(
            "utf-8"
        )
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "invalid client credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "invalid client credentials")
    return client_id, secret


def identify_client(
    state: EmulatorState,
    params: Mapping[str, str],
    authorization: str | None,
    *,
    client_id: str | None = None,
) -> tuple[EmulatedApp, bool]:
    """Find the calling app and check a secret if one was sent (call with the lock
    held).

    Args:
        state: emulator state.
        params: request parameters.
        authorization: the ``Authorization`` header.
        client_id: client id known from elsewhere (e.g. a JWT ``iss``).

    Returns:
        ``(app, secret_verified)``.

    Raises:
        OAuthError: ``invalid_client_id`` for an unknown client, ``invalid_client`` for
            a wrong secret (a sent secret is always validated, even when optional).
    """
    basic = _basic_credentials(authorization)
    secret: str | None
    if basic is not None:
        client_id, secret = basic
    else:
        client_id = client_id or params.get("client_id")
        secret = params.get("client_secret")
    app = state.app_by_client_id(client_id)
    if app is None:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if secret:
        if not app.client_secret or not hmac.compare_digest(
            secret.encode("utf-8"), app.client_secret.encode("utf-8")
        ):
            raise OAuthError("invalid_client", "invalid client credentials")
        return app, True
    return app, False


def mask_params(params: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``params`` with secrets replaced by ``***``."""
    return {k: ("***" if k in SECRET_PARAMS and v else v) for k, v in params.items()}
