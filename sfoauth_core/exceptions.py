"""Every error sfoauth raises, in one tree.

```
SFOAuthError
├── ConfigurationError          a setting is missing or unsafe (names the setting, never its value)
│   └── SFOAuthConfigurationError   an adapter's start-up checks: every problem at once, with ids
├── FlowError                   the browser/app side of a flow went wrong
│   ├── StateMismatchError      `state` missing, wrong, expired or replayed
│   ├── PKCEError               verifier missing or malformed
│   ├── RepeatedParameterError  a callback names an OAuth parameter more than once
│   ├── DeviceFlowTimeoutError  the user never approved the device code in time
│   └── FlowCancelledError      the caller cancelled a polling flow
├── TransportError              network failure, timeout, oversized or redirected response
│   └── SalesforceUnavailableError  5xx / 429 / timeouts after bounded retries
├── ResponseError               Salesforce answered something we cannot trust or parse
│   ├── MalformedResponseError  not JSON, wrong types, missing fields
│   ├── UntrustedHostError      a response pointed at a non-Salesforce host
│   └── SignatureError          the `signature` HMAC or a JWT signature did not verify
├── OAuthProtocolError          Salesforce's {"error", "error_description"} on the wire
│   ├── InvalidGrantError ...   one class per wire code (see `ERROR_CLASSES`)
│   ├── ExpiredTokenError       `expired_token`: the device code expired
│   └── ...
├── TokenNotFoundError          nothing is stored under that key
├── ReauthorizationRequired     the grant is dead; the user must log in again
└── StorageError                a token store failed
    └── VersionConflictError    a compare-and-swap write lost to another writer
```

``TokenExpiredError`` is a deprecated alias of :class:`ExpiredTokenError` (the two
near-homonyms were one too many; the wire code's name stays): importing it warns.

Protocol errors carry ``error``, ``description``, ``uri``, ``status_code`` and ``hint``
(what to change, for the well-known ``invalid_grant`` descriptions). Nothing in this module
ever formats a token, secret or password into a message.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

__all__ = [
    "ERROR_CLASSES",
    "AccessDeniedError",
    "AppNotFoundError",
    "AuthorizationPendingError",
    "ConfigurationError",
    "DeviceFlowTimeoutError",
    "ExpiredTokenError",
    "FlowCancelledError",
    "FlowError",
    "InactiveOrgError",
    "InactiveUserError",
    "InsecureFlowWarning",
    "InvalidAppAccessError",
    "InvalidClientError",
    "InvalidClientIdError",
    "InvalidGrantError",
    "InvalidRequestError",
    "InvalidScopeError",
    "InvalidTokenError",
    "MalformedResponseError",
    "OAuthProtocolError",
    "PKCEError",
    "RateLimitExceededError",
    "ReauthorizationRequired",
    "RefreshInProgressError",
    "RepeatedParameterError",
    "ResponseError",
    "SFOAuthConfigurationError",
    "SFOAuthError",
    "SalesforceUnavailableError",
    "SignatureError",
    "SlowDownError",
    "StateMismatchError",
    "StorageError",
    "TokenNotFoundError",
    "TransportError",
    "UnsupportedGrantTypeError",
    "UnsupportedTokenTypeError",
    "UntrustedHostError",
    "VersionConflictError",
    "app_access_hint",
    "hint_for",
    "raise_for_oauth_error",
]


class SFOAuthError(Exception):
    """Root of every sfoauth error."""


class InsecureFlowWarning(UserWarning):
    """A discouraged flow (user-agent, username-password) or setting is in use."""


class ConfigurationError(SFOAuthError):
    """A setting is missing, malformed or unsafe.

    The message names the setting but never repeats its value, which may be a secret.
    """

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class SFOAuthConfigurationError(ConfigurationError):
    """Every error-level problem an adapter's start-up checks found, in one exception.

    Attributes:
        issues: the findings, each with an id (``sfoauth_fastapi.E001``), the setting, what
            is wrong and a hint; ``str()`` of each is one line of the message.
    """

    def __init__(self, issues: Sequence[Any], *, setting: str = "SFOAuth") -> None:
        self.issues = list(issues)
        super().__init__(setting, "; ".join(str(i) for i in self.issues))


class FlowError(SFOAuthError):
    """The client side of a flow failed (state, PKCE, device polling)."""


class StateMismatchError(FlowError):
    """The `state` returned by Salesforce is missing, wrong, expired or replayed."""


class PKCEError(FlowError):
    """The PKCE code verifier is missing or malformed."""


class RepeatedParameterError(FlowError):
    """A callback carries a parameter (``state``, ``code``, ``iss``, ``error``...) twice.

    Which copy a framework keeps differs (first or last wins), so a repeated parameter is a
    spliced or tampered URL and is never resolved silently. ``parameter`` names it; the
    values are never kept.
    """

    def __init__(self, parameter: str) -> None:
        self.parameter = parameter
        super().__init__(f"the callback repeats the parameter {parameter!r}")


class DeviceFlowTimeoutError(FlowError):
    """The device code was not approved before the deadline."""


class FlowCancelledError(FlowError):
    """A polling flow was cancelled by the caller."""


class TransportError(SFOAuthError):
    """The request did not get a usable HTTP answer (network, timeout, redirect, size).

    Attributes:
        request_sent: ``False`` when the request certainly never reached the network
            (no connection could be made); ``True`` when it may have reached Salesforce
            and be processed there still (a timeout, a dropped connection).
    """

    request_sent: bool = True


class SalesforceUnavailableError(TransportError):
    """Salesforce kept answering 5xx/429 or timing out after bounded retries."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class ResponseError(SFOAuthError):
    """Salesforce answered, but the answer cannot be trusted or understood."""


class MalformedResponseError(ResponseError):
    """The body is not the JSON object we expect (HTML page, wrong types, missing field)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class UntrustedHostError(ResponseError):
    """A URL in a response or configuration points outside Salesforce's domains."""


class SignatureError(ResponseError):
    """A `signature` HMAC or a JWT signature failed verification."""


class OAuthProtocolError(SFOAuthError):
    """Salesforce returned an OAuth error body: ``{"error": ..., "error_description": ...}``.

    Attributes:
        error: the wire code, verbatim (``invalid_grant``).
        description: ``error_description``, verbatim.
        uri: ``error_uri`` when present.
        status_code: the HTTP status.
        hint: what to change, when the description is a well-known one.
    """

    default_error = "oauth_error"

    def __init__(
        self,
        error: str | None = None,
        description: str | None = None,
        *,
        uri: str | None = None,
        status_code: int | None = None,
        response: Mapping[str, Any] | None = None,
    ) -> None:
        self.error = error or self.default_error
        self.description = description or ""
        self.uri = uri
        self.status_code = status_code
        self.response = dict(response) if response is not None else {}
        self.hint = hint_for(self.error, self.description)
        message = self.error
        if self.description:
            message += f": {self.description}"
        if self.hint:
            message += f" ({self.hint})"
        super().__init__(message)


class InvalidRequestError(OAuthProtocolError):
    default_error = "invalid_request"


class InvalidClientIdError(OAuthProtocolError):
    default_error = "invalid_client_id"


class InvalidClientError(OAuthProtocolError):
    """Wrong client secret or unknown client: an app configuration problem."""

    default_error = "invalid_client"


class InvalidGrantError(OAuthProtocolError):
    """The grant (code, refresh token, assertion, credentials) was refused."""

    default_error = "invalid_grant"


class RefreshInProgressError(OAuthProtocolError):
    """Salesforce refused a refresh because another refresh of the same refresh token
    was being processed (reference 15.1: ``invalid_grant`` / ``expired authorization
    code`` on a refresh grant, since Summer '24).

    The grant is alive: someone else (another worker, another client holding the same
    refresh token) is refreshing right now. Wait, re-read the stored token, and try
    again; never treat it as a dead grant. Not an :class:`InvalidGrantError`, so code
    that catches that to send users back through login does not catch this.
    """

    default_error = "invalid_grant"


class InvalidAppAccessError(OAuthProtocolError):
    """The user may not use this app in this org (reference 15.7): not admin approved,
    or an uninstalled app the user has no permission to approve
    (``invalid_app_access``, also reported as ``OAUTH_APP_ACCESS_DENIED``). Salesforce
    answers it at the authorize redirect or at the code exchange; the ``hint`` says what
    an administrator must change."""

    default_error = "invalid_app_access"


class AppNotFoundError(OAuthProtocolError):
    """The External Client App is not installed in the org the user logged into
    (reference 15.5: ``app_not_found`` / "External client app is not installed in this
    org", also reported as ``OAUTH_EC_APP_NOT_FOUND``). An administrator must install
    the app in that org; nothing the user does fixes it."""

    default_error = "app_not_found"


class InvalidScopeError(OAuthProtocolError):
    default_error = "invalid_scope"


class UnsupportedGrantTypeError(OAuthProtocolError):
    default_error = "unsupported_grant_type"


class InactiveUserError(OAuthProtocolError):
    default_error = "inactive_user"


class InactiveOrgError(OAuthProtocolError):
    default_error = "inactive_org"


class RateLimitExceededError(OAuthProtocolError):
    default_error = "rate_limit_exceeded"


class InvalidTokenError(OAuthProtocolError):
    default_error = "invalid_token"


class UnsupportedTokenTypeError(OAuthProtocolError):
    default_error = "unsupported_token_type"


class AuthorizationPendingError(OAuthProtocolError):
    default_error = "authorization_pending"


class SlowDownError(OAuthProtocolError):
    default_error = "slow_down"


class AccessDeniedError(OAuthProtocolError):
    default_error = "access_denied"


class ExpiredTokenError(OAuthProtocolError):
    """``expired_token``: the device code expired before the user approved it."""

    default_error = "expired_token"


if TYPE_CHECKING:
    TokenExpiredError = ExpiredTokenError


def __getattr__(name: str) -> type[ExpiredTokenError]:
    # PEP 562: the deprecated alias warns where it is imported or read.
    if name == "TokenExpiredError":
        warnings.warn(
            "sfoauth_core.exceptions.TokenExpiredError is deprecated (it was never "
            "raised); catch ExpiredTokenError, the wire code expired_token",
            DeprecationWarning,
            stacklevel=2,
        )
        return ExpiredTokenError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TokenNotFoundError(SFOAuthError):
    """No token is stored under the requested key."""


class ReauthorizationRequired(SFOAuthError):  # noqa: N818 - a public name users catch
    """The grant is dead (revoked, rotated out, policy expiry): the user must log in again."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        self.reason = reason
        super().__init__(message)


class StorageError(SFOAuthError):
    """A token store could not read, write or lock."""


class VersionConflictError(StorageError):
    """A compare-and-swap write found a different version than the writer read.

    Attributes:
        key: the connection's key in the store.
        expected: the version the writer read.
        actual: the version in the store (``None`` when the record is gone).
    """

    def __init__(self, key: str, expected: int | None, actual: int | None) -> None:
        self.key = key
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"token record {key!r} changed while it was being updated "
            f"(expected version {expected}, found {actual})"
        )


ERROR_CLASSES: dict[str, type[OAuthProtocolError]] = {
    cls.default_error: cls
    for cls in (
        InvalidRequestError,
        InvalidClientIdError,
        InvalidClientError,
        InvalidGrantError,
        InvalidAppAccessError,
        AppNotFoundError,
        InvalidScopeError,
        UnsupportedGrantTypeError,
        InactiveUserError,
        InactiveOrgError,
        RateLimitExceededError,
        InvalidTokenError,
        UnsupportedTokenTypeError,
        AuthorizationPendingError,
        SlowDownError,
        AccessDeniedError,
        ExpiredTokenError,
    )
}
# `invalid_client_credentials` is documented but rarely seen; it means the same as invalid_client.
ERROR_CLASSES["invalid_client_credentials"] = InvalidClientError
# Reference 15.5 and 15.7: the upper-case variants reported for the same conditions.
ERROR_CLASSES["OAUTH_EC_APP_NOT_FOUND"] = AppNotFoundError
ERROR_CLASSES["OAUTH_APP_ACCESS_DENIED"] = InvalidAppAccessError

#: What to say about the server's own address, for every IP refusal (reference 15.4).
_EGRESS_IP = (
    "for token requests (code exchange, refresh, JWT bearer, client credentials) the "
    "egress IP address of this server (the address Salesforce sees, after any NAT or "
    "proxy) must be in the allowed ranges; at the login page it is the user's own "
    "address. Find the refused address in Setup > Users > the user > Login History "
    "(Source IP), or ask whoever runs this server's network, then add it to the "
    "profile's Login IP Ranges / the app's IP relaxation or refresh-token IP allowlist "
    "(and check the profile's Login Hours)"
)
#: Reference 15.5: ECAs want the My Domain URL as JWT audience (reported).
_AUDIENCE = (
    "set the JWT audience to https://login.salesforce.com (production), "
    "https://test.salesforce.com (sandbox) or the Experience Cloud site URL; an "
    "External Client App may expect the org's My Domain URL instead "
    "(https://<name>.my.salesforce.com, for a sandbox "
    "https://<name>--<sandbox>.sandbox.my.salesforce.com): pass it as audience"
)
_NOT_INSTALLED = (
    "the External Client App is not installed in the org this user logs into: an "
    "administrator of that org must install it (Setup > External Client App Manager), "
    "or log in to the org where it is installed"
)

# What to fix, keyed by (wire code, lower-cased description prefix). Descriptions come from the
# reference's error table (section 2.7); live strings are lower-case but docs capitalise them.
_HINTS: dict[tuple[str, str], str] = {
    (
        "invalid_grant",
        "user hasn't approved this consumer",
    ): "pre-authorize the user on the connected app (admin-approved users: add the user's "
    "profile or a permission set), or have the user approve the app once through the web "
    "server flow",
    (
        "invalid_grant",
        "audience validation failed",
    ): _AUDIENCE,
    (
        "invalid_grant",
        "audience is invalid",
    ): _AUDIENCE,
    (
        "invalid_grant",
        "expired access/refresh token",
    ): "the refresh token was revoked, rotated out or expired by policy: send the user "
    "through the login flow again",
    (
        "invalid_grant",
        "no client credentials user enabled",
    ): "enable the client credentials flow on the app and choose a run-as user "
    "(with the API Only permission)",
    (
        "invalid_grant",
        "request not supported on this domain",
    ): "use your org's My Domain URL (https://<name>.my.salesforce.com) as login_url; "
    "client credentials does not work on login/test.salesforce.com",
    (
        "invalid_grant",
        "external client app is not installed in this org",
    ): _NOT_INSTALLED,
    ("app_not_found", ""): _NOT_INSTALLED,
    (
        "invalid_grant",
        "ip restricted or invalid login hours",
    ): "Salesforce refused the IP address or the time of this login: " + _EGRESS_IP,
    (
        "invalid_grant",
        "ip restricted",
    ): "Salesforce refused the IP address of this request: " + _EGRESS_IP,
    (
        "invalid_grant",
        "authentication failure",
    ): "check the username and password (append the security token unless the IP is trusted), "
    "and that the username-password flow is allowed in the org (External Client Apps "
    "never allow it: use JWT bearer or client credentials)",
    (
        "invalid_grant",
        "invalid user credentials",
    ): "check the username and password (append the security token unless the IP is trusted)",
    (
        "invalid_grant",
        "invalid authorization code",
    ): "authorization codes are single use and short-lived: start the login again",
    (
        "invalid_grant",
        "expired authorization code",
    ): "authorization codes are single use and short-lived: start the login again",
    (
        "invalid_grant",
        "invalid assertion",
    ): "the JWT assertion was refused: check that sub is an existing active username, iss "
    "the consumer key, and that the certificate uploaded to the app matches the key",
    (
        "invalid_grant",
        "code verifier required",
    ): "the authorization request carried a code_challenge: send the matching "
    "code_verifier with the code exchange",
    (
        "invalid_request",
        "invalid code verifier",
    ): "the code_verifier does not match the code_challenge of the authorization "
    "request: keep the verifier of this very login attempt server-side",
    (
        "invalid_client",
        "invalid client credentials",
    ): "the consumer secret does not match the app: copy it again from the app's settings",
    (
        "invalid_client_id",
        "client identifier invalid",
    ): "the consumer key is unknown here: check client_id and login_url (sandbox apps "
    "live on test.salesforce.com); a newly created app (an External Client App above "
    "all) answers this for several minutes until it has propagated: wait up to 10 "
    "minutes and try again",
    (
        "invalid_app_access",
        "user is not admin approved to access this app",
    ): "assign the user's profile or a permission set to the app, or relax its "
    "permitted-users policy; if the app is not installed in the org, install it (or "
    "give the user the 'Approve Uninstalled Connected Apps' permission)",
    (
        "invalid_app_access",
        "",
    ): "the user may not use this app: an administrator must install the app in the org "
    "(or give the user the 'Approve Uninstalled Connected Apps' permission) and assign "
    "the user's profile or a permission set to it",
    (
        "OAUTH_APP_ACCESS_DENIED",
        "",
    ): "the user may not use this app: an administrator must install the app in the org "
    "(or give the user the 'Approve Uninstalled Connected Apps' permission) and assign "
    "the user's profile or a permission set to it",
    ("OAUTH_EC_APP_NOT_FOUND", ""): _NOT_INSTALLED,
    (
        "inactive_user",
        "",
    ): "the Salesforce user is deactivated",
    (
        "inactive_org",
        "",
    ): "the org is locked, closed or suspended",
    (
        "unsupported_grant_type",
        "",
    ): "the flow is not enabled for this app or org (for example username-password or device "
    "flow blocked; External Client Apps have no username-password flow)",
}


def hint_for(error: str, description: str) -> str | None:
    """Return what to fix for a well-known Salesforce error, or ``None``."""
    lowered = description.strip().lower()
    for (code, prefix), hint in _HINTS.items():
        if code == error and lowered.startswith(prefix):
            return hint
    return None


def app_access_hint(exc: BaseException) -> str | None:
    """The hint of an error that a Salesforce admin must fix for *this user* (the app is
    not installed in the user's org, the user may not use the app, the user's network
    address or login hours are refused: reference 15.4-15.7), or ``None``.

    Adapters show it on their error page: unlike a wrong secret (the site's own
    configuration, logged for the operator), the user can pass it on to their admin.
    It only holds fixed texts of this module, never a value from the request.
    """
    if isinstance(exc, (AppNotFoundError, InvalidAppAccessError)):
        return exc.hint
    if isinstance(exc, OAuthProtocolError) and exc.error == "invalid_grant":
        if exc.description.strip().lower().startswith("ip restricted"):
            return exc.hint
        if (
            exc.description.strip()
            .lower()
            .startswith("external client app is not installed")
        ):
            return exc.hint
    return None


def raise_for_oauth_error(
    payload: Mapping[str, Any], *, status_code: int | None = None
) -> None:
    """Raise the typed error for an OAuth error body; do nothing if there is no ``error``.

    Unknown wire codes raise a plain :class:`OAuthProtocolError` that keeps the code verbatim.
    """
    error = payload.get("error")
    if not error:
        return
    description = payload.get("error_description")
    uri = payload.get("error_uri")
    cls = ERROR_CLASSES.get(str(error), OAuthProtocolError)
    raise cls(
        _clean(str(error)),
        _clean(str(description)) if description is not None else None,
        uri=_clean(str(uri)) if uri is not None else None,
        status_code=status_code,
        response=payload,
    )


def _clean(text: str, limit: int = 500) -> str:
    # Error strings end up in logs and pages: drop control characters, cap the length.
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned[:limit]
