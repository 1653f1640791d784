"""User-agent flow (implicit grant): tokens come back in the redirect URI's fragment.

Specs: RFC 6749 §4.2 (implicit grant), OpenID Connect Core §3.2 (``token id_token``),
RFC 9700 §2.1.2 (the implicit grant SHOULD NOT be used). Salesforce: "OAuth 2.0
User-Agent Flow for Desktop or Mobile App Integration" (help topic
``remoteaccess_oauth_user_agent_flow``); reference sections 3 and 4.4.

Salesforce specifics: the callback is
``<redirect_uri>#access_token=...&instance_url=...&id=...&issued_at=...&signature=...``
``&scope=...&token_type=Bearer&state=...`` with every value URL-encoded (scope
spaces as ``%20``); errors come back in the fragment too
(``#error=access_denied&...``). Salesforce recommends blocking the flow (org setting
``blockOAuthUsrAgtFlow``), so building a URL warns and points at the web server flow
with PKCE. The authorize URL is built by the web server flow's helper, without PKCE
(there is no code to exchange).
"""

from __future__ import annotations

import warnings
from urllib.parse import parse_qsl, urlsplit

from ..config import ConnectedApp
from ..exceptions import (
    ConfigurationError,
    InsecureFlowWarning,
    MalformedResponseError,
    StateMismatchError,
    raise_for_oauth_error,
)
from ..tokens import AuthorizationRequest, Token, masked
from ._base import check_token_hosts, verify_token_signature
from .endpoints import endpoints_for
from .state import check_state, create_nonce
from .web_server import prepare_authorization_url

__all__ = ["RESPONSE_TYPES", "parse_user_agent_response", "prepare_user_agent_url"]

#: ``response_type`` values of the user-agent flow (reference section 3).
RESPONSE_TYPES = frozenset({"token", "token id_token"})

_WARNING = (
    "the OAuth user-agent (implicit) flow is discouraged: tokens travel in the "
    "browser URL and Salesforce recommends blocking it; use the web server flow "
    "with PKCE instead (SalesforceOAuth.authorization_url / exchange_code)"
)


def prepare_user_agent_url(
    app: ConnectedApp,
    *,
    scopes: tuple[str, ...] | list[str] | None = None,
    state: str | None = None,
    prompt: str | None = None,
    login_hint: str | None = None,
    display: str | None = None,
    nonce: str | None = None,
    response_type: str = "token",
    stacklevel: int = 2,
) -> AuthorizationRequest:
    """Build the authorize URL for the user-agent flow (``response_type=token``).

    Always emits :class:`~sfoauth_core.exceptions.InsecureFlowWarning`: the web server
    flow with PKCE is the safer replacement.

    Args:
        app: the connected app (its ``redirect_uri`` receives the fragment).
        scopes: scopes for this request; the app's defaults when ``None``.
        state: the CSRF value to echo back; generated (256 bits) when ``None``.
        prompt: ``login``, ``consent`` and/or ``select_account``.
        login_hint: pre-fills the username on the login page.
        display: ``page``, ``popup``, ``touch`` or ``mobile``.
        nonce: OpenID Connect nonce; generated for ``token id_token`` (and whenever
            ``openid`` is requested) when ``None``.
        response_type: ``"token"`` or ``"token id_token"`` (the ID token also needs the
            ``openid`` scope).

    Returns:
        The URL plus ``state`` and ``nonce`` to keep server-side until the callback
        (``code_verifier`` is ``None``: there is no code exchange).

    Raises:
        ConfigurationError: no ``redirect_uri``, an unknown ``response_type``,
            ``prompt`` or ``display``.
    """
    if response_type not in RESPONSE_TYPES:
        raise ConfigurationError("response_type", "must be 'token' or 'token id_token'")
    warnings.warn(_WARNING, InsecureFlowWarning, stacklevel=stacklevel)
    if nonce is None and "id_token" in response_type.split():
        nonce = create_nonce()
    return prepare_authorization_url(
        app,
        response_type=response_type,
        scopes=scopes,
        state=state,
        prompt=prompt,
        login_hint=login_hint,
        display=display,
        nonce=nonce,
        pkce=False,
    )


def parse_user_agent_response(
    app: ConnectedApp, fragment: str, *, expected_state: str
) -> Token:
    """Turn the user-agent callback fragment into a :class:`Token`.

    Order of checks: ``state`` first (before any other field is looked at), then an
    ``error=...`` fragment, then the ``signature`` HMAC (when the secret is known), then
    the token fields and the hosts they point to.

    Args:
        app: the connected app that started the flow.
        fragment: the full callback URL (``https://...#access_token=...``), the fragment
            with its leading ``#``, or the bare fragment string.
        expected_state: the ``state`` stored server-side when the flow started.

    Returns:
        The token set; ``raw`` keeps ``issued_at`` verbatim and any extra fields.

    Raises:
        StateMismatchError: ``state`` missing, repeated or different.
        OAuthProtocolError: Salesforce sent ``error=...`` (``AccessDeniedError`` when
            the user clicked Deny).
        SignatureError: the ``signature`` does not match ``id + issued_at``.
        MalformedResponseError: no access token, a repeated field, or a malformed value.
        UntrustedHostError: ``instance_url`` or ``id`` points outside Salesforce.
    """
    if isinstance(fragment, str):
        fragment = masked(fragment)  # tokens in the URL: masked in frame locals
    pairs = _fragment_pairs(fragment)
    states = [value for name, value in pairs if name == "state"]
    if len(states) > 1:
        raise StateMismatchError("the callback carries more than one state")
    check_state(states[0] if states else None, expected_state)
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            # One field twice is a tampered or spliced URL; never pick one silently.
            raise MalformedResponseError(f"the callback repeats the field {name!r}")
        params[name] = value
    del params["state"]
    if "error" in params:
        raise_for_oauth_error(params)
    verify_token_signature(app, params, grant="user_agent")
    # The authorize endpoint's host issued it; its token endpoint serves the grant.
    token = Token.from_response(params, token_url=endpoints_for(app.login_url).token)
    check_token_hosts(app, token)
    return token


def _fragment_pairs(fragment: str) -> list[tuple[str, str]]:
    if not isinstance(fragment, str):
        raise TypeError("fragment must be a string")
    text: str = masked(fragment.strip())
    if "#" in text:
        text = masked(text.split("#", 1)[1])
    elif "://" in text:
        # A full callback URL without a fragment carries no user-agent response at all.
        text = masked(urlsplit(text).fragment)
    # Values are URL-encoded once (application/x-www-form-urlencoded, RFC 6749 §4.2.2);
    # decode them exactly once.
    return [(n, masked(v)) for n, v in parse_qsl(text, keep_blank_values=True)]
