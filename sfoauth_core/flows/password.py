"""Username-password flow (resource owner password credentials). Development only.

Specs: RFC 6749 §4.3 (resource owner password credentials grant); RFC 9700 §2.4 (MUST
NOT be used). Salesforce: "OAuth 2.0 Username-Password Flow for Special Scenarios" (help
topic ``remoteaccess_oauth_username_password_flow``); reference section 4.9.

Salesforce specifics: ``password`` is the user's password with the security token
appended (unless the caller's IP is trusted); the answer has no ``scope`` and no refresh
token, and the session is not introspectable. Orgs created in Summer '23 or later block
the flow by default and Salesforce is retiring it (reference 15.6), so the first use in a
process warns (:class:`~sfoauth_core.exceptions.InsecureFlowWarning` with the retirement
date and the flows to move to), once, whatever the warnings filters say: a job that logs
in every minute gets one warning, not a log full of them. The request is
never retried (a retry could count as another failed login and lock the user out) and
the password never appears in a message or ``repr``.
"""

from __future__ import annotations

import threading
import warnings

from ..config import ConnectedApp
from ..exceptions import ConfigurationError, InsecureFlowWarning
from ..tokens import Token, masked
from ._base import (
    Flow,
    client_auth_fields,
    parse_token_response,
    prepare_token_request,
)
from .endpoints import endpoints_for

__all__ = ["RETIREMENT", "password_grant", "reset_retirement_warning"]

#: Reference 15.6: the retirement as Salesforce announced it.
RETIREMENT = (
    "Salesforce stops supporting it for connected apps in Winter '27 (enforcement "
    "reported for 2027-02-20; External Client Apps never had it)"
)
_WARNING = (
    "the OAuth username-password flow is for development only and is being retired: "
    f"{RETIREMENT}, and orgs created Summer '23 or later block it by default; move "
    "server-to-server integrations to JWT bearer or client credentials, and people "
    "to the web server flow with PKCE (`sfoauth advise --server-to-server`; "
    "docs/flows/username-password.md, 'Migrating off it'; `sfoauth login jwt "
    "--setup` makes the key pair and certificate for JWT bearer)"
)
# One warning per process (issue 12 item 4): our own registry, not the warnings
# module's per-location one, which an "always" filter or a new call site defeats.
_warned = False
_warned_lock = threading.Lock()


def _warn_once(stacklevel: int) -> None:
    global _warned
    with _warned_lock:
        if _warned:
            return
        _warned = True
    warnings.warn(_WARNING, InsecureFlowWarning, stacklevel=stacklevel + 1)


def reset_retirement_warning() -> None:
    """Forget that the retirement warning was given (tests: warn again next use)."""
    global _warned
    with _warned_lock:
        _warned = False


def password_grant(
    app: ConnectedApp,
    username: str,
    password: str,
    *,
    security_token: str = "",
    stacklevel: int = 2,
) -> Flow[Token]:
    """Log in with a username and password (plus security token). The first call in the
    process warns that the flow is retired (reference 15.6).

    Args:
        app: the connected app (``client_secret`` is sent when known).
        username: the Salesforce username.
        password: the user's password.
        security_token: appended to the password (leave empty when the IP is trusted).

    Returns:
        The flow; it yields one token request and returns the :class:`Token` (no refresh
        token, no scopes).

    Raises:
        ConfigurationError: ``username`` or ``password`` is empty (when the flow runs).
        InvalidGrantError: ``authentication failure`` / ``invalid user credentials``,
            with a ``hint`` about the security token and the org setting.
        UnsupportedGrantTypeError: the flow is blocked for the app or org.
    """
    _warn_once(stacklevel)
    return _password_flow(app, username, password, security_token)


def _password_flow(
    app: ConnectedApp, username: str, password: str, security_token: str
) -> Flow[Token]:
    if not isinstance(username, str) or not username.strip():
        raise ConfigurationError(
            "username", "is required for the username-password flow"
        )
    if not isinstance(password, str) or not password:
        raise ConfigurationError(
            "password", "is required for the username-password flow"
        )
    if not isinstance(security_token, str):
        raise ConfigurationError("security_token", "must be a string")
    form = {"grant_type": "password"}
    form.update(client_auth_fields(app))
    form["username"] = username
    form["password"] = masked(password + security_token)
    password, security_token = masked(password), masked(security_token)
    url = endpoints_for(app.login_url).token
    response = yield prepare_token_request(url, form)
    if response is None:
        raise TypeError("the driver must send an HttpResponse after an HttpRequest")
    return parse_token_response(app, response, grant="password", token_url=url)
