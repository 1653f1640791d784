"""Client credentials flow: the app authenticates as itself and runs as a chosen user.

Specs: RFC 6749 §4.4 (client credentials grant), §2.3.1 (client password in the body or
as HTTP Basic). Salesforce: "OAuth 2.0 Client Credentials Flow for Server-to-Server
Integration" (help topic ``remoteaccess_oauth_client_credentials_flow``); reference
section 4.8.

Salesforce specifics: the call only works on the org's My Domain (or site) host;
``login.salesforce.com``, ``test.salesforce.com`` and ``*.salesforce-setup.com`` answer
``400 invalid_grant "request not supported on this domain"``, so the flow refuses those
hosts before making any request. The app needs a run-as user (otherwise ``invalid_grant
"no client credentials user enabled"``). The secret goes in the body
(``client_secret_post``, the default) or, with ``use_basic_auth``, as ``Authorization:
Basic base64(client_id:client_secret)`` with both omitted from the body. No refresh
token is issued.
"""

from __future__ import annotations

import base64

from ..config import ConnectedApp
from ..exceptions import ConfigurationError
from ..tokens import Token
from ._base import (
    Flow,
    HttpRequest,
    RetryPolicy,
    client_auth_fields,
    parse_token_response,
    prepare_token_request,
    send_with_retries,
)
from .endpoints import endpoints_for

__all__ = [
    "DEFAULT_CLIENT_CREDENTIALS_RETRY",
    "basic_auth_header",
    "client_credentials",
]

DEFAULT_CLIENT_CREDENTIALS_RETRY = RetryPolicy(attempts=3)


def basic_auth_header(app: ConnectedApp) -> str:
    """``Basic base64(client_id:client_secret)``, as Postman's collection sends it.

    Raises:
        ConfigurationError: the app has no client secret.
    """
    if not app.client_secret:
        raise ConfigurationError(
            "client_secret", "is required for HTTP Basic client auth"
        )
    pair = f"{app.client_id}:{app.client_secret.reveal()}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def client_credentials(
    app: ConnectedApp,
    *,
    scopes: tuple[str, ...] | list[str] | None = None,
    use_basic_auth: bool = False,
    retry: RetryPolicy = DEFAULT_CLIENT_CREDENTIALS_RETRY,
) -> Flow[Token]:
    """Get an access token for the app's run-as user.

    Args:
        app: a connected app with ``client_secret`` whose ``login_url`` is the org's My
            Domain (``https://<name>.my.salesforce.com``) or site URL.
        scopes: sent as ``scope`` only when given (the app's configured scopes apply
            otherwise).
        use_basic_auth: send the credentials as an HTTP Basic header, not in the body.
        retry: bounded retries for 5xx/429/transport errors (the grant is idempotent).

    Returns:
        The token (no refresh token).

    Raises:
        ConfigurationError: ``login_url`` is login/test.salesforce.com or a setup
            host, or there is no ``client_secret`` (raised before any request).
        InvalidGrantError: e.g. ``no client credentials user enabled``; ``hint``
            says what to fix.
        InvalidClientError: wrong consumer secret.
        SalesforceUnavailableError: 5xx/429/timeouts after ``retry.attempts``.
    """
    if not app.is_my_domain:
        raise ConfigurationError(
            "login_url",
            "the client credentials flow must use your org's My Domain URL "
            "(https://<name>.my.salesforce.com) or site URL; login.salesforce.com, "
            "test.salesforce.com and *.salesforce-setup.com answer 'request not "
            "supported on this domain'",
        )
    if not app.client_secret:
        raise ConfigurationError(
            "client_secret", "is required for the client credentials flow"
        )
    form: dict[str, str] = {"grant_type": "client_credentials"}
    headers: dict[str, str] = {}
    if use_basic_auth:
        headers["Authorization"] = basic_auth_header(app)
    else:
        form.update(client_auth_fields(app))
    if scopes:
        form["scope"] = " ".join(scopes)
    url = endpoints_for(app.login_url).token

    def make_request() -> HttpRequest:
        return prepare_token_request(url, form, headers=headers)

    response = yield from send_with_retries(make_request, retry)
    return parse_token_response(
        app, response, grant="client_credentials", token_url=url
    )
