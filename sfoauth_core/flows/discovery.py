"""Discovery documents: OpenID configuration, key set, Salesforce auth configuration.

Specs: OpenID Connect Discovery 1.0 (§4 obtaining the configuration, §4.3 issuer check),
RFC 7517 (JSON Web Key Set).
Salesforce: "OpenID Connect Discovery Endpoint", "Salesforce Keys" and "Authentication
Configuration Endpoint" (Postman collection, Auth folder); reference sections 1.2, 1.3
and 9.

Salesforce specifics: every document lives under the login URL, including an Experience
Cloud site's path
(``https://acme.my.site.com/customers/.well-known/openid-configuration``); My Domain
hosts publish their own issuer. No authentication is sent. The helpers here
(:func:`ensure_trusted_url`, :func:`get_json`) are shared by the other read-only flows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..config import ConnectedApp
from ..exceptions import MalformedResponseError, ResponseError, UntrustedHostError
from ._base import Flow, HttpRequest, RetryPolicy, parse_json_object, send_with_retries
from .endpoints import endpoints_for

__all__ = [
    "DEFAULT_READ_RETRY",
    "auth_configuration",
    "ensure_trusted_url",
    "fetch_keys",
    "get_json",
    "openid_configuration",
    "parse_jwks",
    "parse_openid_configuration",
]

#: Reads are idempotent: 5xx/429/timeouts are retried twice with backoff.
DEFAULT_READ_RETRY = RetryPolicy(attempts=3)


def ensure_trusted_url(app: ConnectedApp, url: str, *, what: str) -> str:
    """Return ``url`` if tokens may be sent there; raise otherwise (SECURITY.md item 9).

    The URL must be https (http only for loopback hosts when the app allows loopback),
    carry no user information, and name a host :meth:`ConnectedApp.trusts_host` accepts.

    Raises:
        UntrustedHostError: naming ``what`` and the host, never a token.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise UntrustedHostError(f"{what} is not a valid URL") from None
    secure = parts.scheme == "https" or (parts.scheme == "http" and app.allow_loopback)
    if not host or not secure or "@" in parts.netloc or not app.trusts_host(host):
        raise UntrustedHostError(
            f"{what} points to an untrusted host {host!r}; a token is never sent there "
            "(list the host in ConnectedApp(extra_hosts=...) if it really is your org)"
        )
    return url


def get_json(
    app: ConnectedApp,
    url: str,
    *,
    what: str,
    params: Mapping[str, str] | None = None,
    retry: RetryPolicy = DEFAULT_READ_RETRY,
) -> Flow[dict[str, Any]]:
    """GET a JSON object from a trusted host (checked before anything is yielded)."""
    ensure_trusted_url(app, url, what=what)
    request = HttpRequest(
        "GET",
        url,
        headers={"Accept": "application/json"},
        params=dict(params) if params else None,
    )
    response = yield from send_with_retries(lambda: request, retry)
    return parse_json_object(response)


def parse_openid_configuration(
    payload: Mapping[str, Any], *, expected_issuer: str
) -> dict[str, Any]:
    """Check a discovery document: ``issuer`` must equal the URL it was fetched under.

    OpenID Connect Discovery §4.3: the issuer "MUST be identical" to the prefix used to
    fetch the document; a different one means a mix-up or an impostor.

    Raises:
        MalformedResponseError: no ``issuer`` string, or an endpoint that is not a
            string.
        ResponseError: the issuer is not the expected one.
    """
    issuer = payload.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise MalformedResponseError("openid-configuration has no 'issuer'")
    if issuer.rstrip("/") != expected_issuer.rstrip("/"):
        raise ResponseError(
            f"openid-configuration issuer {issuer[:200]!r} is not the login URL it was "
            f"fetched from ({expected_issuer!r})"
        )
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ):
        if name in payload and not isinstance(payload[name], str):
            raise MalformedResponseError(
                f"openid-configuration field {name!r} is not a URL"
            )
    return dict(payload)


def parse_jwks(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Check a JWK Set: ``{"keys": [{...}, ...]}`` with objects as keys.

    Raises:
        MalformedResponseError: ``keys`` missing, not a list, or holding a non-object.
    """
    keys = payload.get("keys")
    if not isinstance(keys, list):
        raise MalformedResponseError("key set has no 'keys' list")
    if any(not isinstance(key, dict) for key in keys):
        raise MalformedResponseError("key set has an entry that is not a JSON object")
    return dict(payload)


def openid_configuration(
    app: ConnectedApp, *, retry: RetryPolicy = DEFAULT_READ_RETRY
) -> Flow[dict[str, Any]]:
    """Fetch ``<login_url>/.well-known/openid-configuration``.

    Returns:
        The discovery document (issuer checked against ``app.login_url``).

    Raises:
        ResponseError: the issuer differs from the login URL.
        MalformedResponseError: not a JSON object, or no issuer.
        SalesforceUnavailableError: 5xx/429/timeouts after ``retry.attempts``.
    """
    url = endpoints_for(app.login_url).openid_configuration
    payload = yield from get_json(
        app, url, what="openid-configuration URL", retry=retry
    )
    return parse_openid_configuration(payload, expected_issuer=app.login_url)


def fetch_keys(
    app: ConnectedApp,
    *,
    keys_url: str | None = None,
    retry: RetryPolicy = DEFAULT_READ_RETRY,
) -> Flow[dict[str, Any]]:
    """Fetch the org's JSON Web Key Set at ``<login_url>/id/keys``.

    Args:
        keys_url: another key set URL (must be on a trusted host).

    Raises:
        UntrustedHostError: ``keys_url`` is not a trusted host.
        MalformedResponseError: no ``keys`` list.
    """
    url = keys_url or endpoints_for(app.login_url).keys
    payload = yield from get_json(app, url, what="keys URL", retry=retry)
    return parse_jwks(payload)


def auth_configuration(
    app: ConnectedApp, *, retry: RetryPolicy = DEFAULT_READ_RETRY
) -> Flow[dict[str, Any]]:
    """Fetch ``<login_url>/.well-known/auth-configuration`` (login page setup).

    Returns:
        The document as Salesforce sent it (``OrgId``, ``Url``, ``LoginPage``,
        ``AuthProviders``...).
    """
    url = endpoints_for(app.login_url).auth_configuration
    return (yield from get_json(app, url, what="auth-configuration URL", retry=retry))
