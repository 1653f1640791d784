"""Token exchange: trade a token from another identity provider for a Salesforce token.

Specs: RFC 8693 (OAuth 2.0 Token Exchange). Salesforce: "OAuth 2.0 Token Exchange Flow"
(Spring '24, API 60); reference section 15.8.

Salesforce specifics: the request goes to the org's My Domain or an Experience Cloud site
(never ``login.salesforce.com``); ``subject_token`` is at most 10,000 characters; the app
names the Apex ``Auth.OauthTokenExchangeHandler`` that validates the outside token and maps
it to a Salesforce user (``token_handler``, recommended); ``client_secret`` is checked only
when the app's "Require Secret for Token Exchange Flow" is on (sent when the app has one).
The answer is an ordinary Salesforce token response, with a refresh token when the app
grants ``refresh_token``.

The subject token is single-use evidence from the other provider: a sent exchange is
never retried automatically (a replay could be refused, or worse, accepted twice).
Asset tokens use the same grant URN with an ``actor_token``
(:mod:`sfoauth_core.flows.asset_token`).
"""

from __future__ import annotations

from ..config import ConnectedApp
from ..exceptions import ConfigurationError, FlowError
from ..tokens import Token
from ._base import (
    NO_RETRY,
    Flow,
    client_auth_fields,
    parse_token_response,
    prepare_token_request,
    send_with_retries,
)
from .asset_token import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT
from .endpoints import endpoints_for

__all__ = [
    "MAX_SUBJECT_TOKEN_LENGTH",
    "SUBJECT_TOKEN_TYPES",
    "TOKEN_EXCHANGE_GRANT",
    "token_exchange",
]

#: Salesforce refuses longer subject tokens (reference 15.8).
MAX_SUBJECT_TOKEN_LENGTH = 10_000
#: The short names accepted for ``subject_token_type`` and the URNs sent for them.
SUBJECT_TOKEN_TYPES = {
    "access_token": ACCESS_TOKEN_TYPE,
    "refresh_token": "urn:ietf:params:oauth:token-type:refresh_token",
    "id_token": "urn:ietf:params:oauth:token-type:id_token",
    "saml2": "urn:ietf:params:oauth:token-type:saml2",
    "jwt": "urn:ietf:params:oauth:token-type:jwt",
}


def _subject_type_urn(subject_token_type: str) -> str:
    value = subject_token_type.strip()
    if value in SUBJECT_TOKEN_TYPES:
        return SUBJECT_TOKEN_TYPES[value]
    if value in SUBJECT_TOKEN_TYPES.values():
        return value
    allowed = ", ".join(SUBJECT_TOKEN_TYPES)
    raise FlowError(
        f"subject_token_type must be one of {allowed} (or its urn:ietf:params:oauth:"
        "token-type: URN)"
    )


def token_exchange(
    app: ConnectedApp,
    subject_token: str,
    subject_token_type: str,
    *,
    token_handler: str | None = None,
    scopes: tuple[str, ...] | list[str] | None = None,
) -> Flow[Token]:
    """Exchange an outside identity provider's token for a Salesforce token.

    Args:
        app: the connected app / external client app with token exchange enabled; its
            ``login_url`` must be the org's My Domain or an Experience Cloud site URL.
        subject_token: the token the other provider issued (Okta, Auth0, Entra ID...).
        subject_token_type: ``access_token``, ``refresh_token``, ``id_token``,
            ``saml2`` or ``jwt`` (or the full ``urn:ietf:params:oauth:token-type:``
            URN).
        token_handler: the API name of the Apex token exchange handler to run.
        scopes: sent as ``scope`` only when given.

    Returns:
        The Salesforce token (with a refresh token when the app grants one).

    Raises:
        ConfigurationError: ``login_url`` is not a My Domain or site URL (before any
            request).
        FlowError: an empty or over-long subject token, or an unknown token type
            (before any request).
        InvalidGrantError: the handler refused the outside token, or mapped no user.
        SalesforceUnavailableError: 5xx/429/timeouts (never retried: the subject token
            is single-use evidence).
    """
    if not app.is_my_domain:
        raise ConfigurationError(
            "login_url",
            "token exchange must use your org's My Domain URL "
            "(https://<name>.my.salesforce.com) or an Experience Cloud site URL, "
            "not login.salesforce.com or test.salesforce.com",
        )
    if not subject_token:
        raise FlowError("the subject token is empty")
    if len(subject_token) > MAX_SUBJECT_TOKEN_LENGTH:
        raise FlowError(
            f"the subject token is {len(subject_token):,} characters long; Salesforce "
            f"accepts at most {MAX_SUBJECT_TOKEN_LENGTH:,}"
        )
    form = {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": subject_token,
        "subject_token_type": _subject_type_urn(subject_token_type),
    }
    form.update(client_auth_fields(app))
    if token_handler:
        form["token_handler"] = token_handler
    if scopes:
        form["scope"] = " ".join(scopes)
    url = endpoints_for(app.login_url).token
    response = yield from send_with_retries(
        lambda: prepare_token_request(url, form), NO_RETRY
    )
    return parse_token_response(app, response, grant="token_exchange", token_url=url)
