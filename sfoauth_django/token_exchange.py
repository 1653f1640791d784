"""Connect a user to Salesforce with a token from another identity provider (reference
15.8), without a Salesforce login page.

Your users sign in to your Django site with Okta, Auth0, Entra ID...; the token that
provider gave you is traded for a Salesforce token for the same person (Salesforce runs
your Apex ``Auth.OauthTokenExchangeHandler``). The result is stored exactly like a
login through ``sfoauth:login``: the user's connection row, the encrypted token, the
``token_obtained`` signal and (given a request) the adapter's ``on_token_obtained`` hook.

Example:
    >>> from sfoauth_django.token_exchange import connect_with_token_exchange
    >>> def after_okta_login(request):
    ...     connect_with_token_exchange(request, request.session["okta_id_token"], "id_token")
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from sfoauth_core.exceptions import SFOAuthError
from sfoauth_core.manager._base import TOKEN_EXCHANGE

from . import _runtime
from ._flows import FlowFailedError, _claim_row, _revoke_quietly
from .adapter import get_adapter
from .models import AbstractSalesforceConnection, user_key

__all__ = ["connect_with_token_exchange"]

logger = logging.getLogger("sfoauth.django")


def connect_with_token_exchange(
    request_or_user: HttpRequest | Any,
    subject_token: str,
    subject_token_type: str,
    *,
    token_handler: str | None = None,
    scopes: tuple[str, ...] | list[str] | None = None,
    login_url: str | None = None,
) -> AbstractSalesforceConnection:
    """Exchange ``subject_token`` and store the Salesforce connection for the user.

    Args:
        request_or_user: the request of a signed-in user (``request.user``), or a user.
        subject_token: the token your identity provider issued (ID token, access
            token, JWT...). Single-use evidence: sent once, never retried.
        subject_token_type: ``access_token``, ``refresh_token``, ``id_token``,
            ``saml2``, ``jwt`` or a full ``urn:ietf:params:oauth:token-type:`` URN.
        token_handler: the name of the Apex token exchange handler.
        scopes: fewer scopes than the app grants.
        login_url: one of ``SFOAUTH["LOGIN_URLS"]``' values (default: ``LOGIN_URL``,
            which must be the org's My Domain or an Experience Cloud site).

    Returns:
        The user's connection row (``connection.key`` names the stored token).

    Raises:
        PermissionDenied: no signed-in user.
        InvalidGrantError: the handler refused the outside token (nothing stored).
        SalesforceUnavailableError: no answer or 5xx (not retried: get a fresh token
            from your provider before trying again).
        FlowError: an empty, oversized (over 10,000 characters) or unknown token.
        ConfigurationError: a login host (token exchange needs My Domain or a site).
        SFOAuthError: the Salesforce user is already connected to another user of this
            site (``reason`` ``already_linked``), or the user already has another
            Salesforce user of this org (``different_account``); the new grant is
            revoked.
    """
    user: Any = getattr(request_or_user, "user", request_or_user)
    if user is None or not getattr(user, "is_authenticated", False):
        raise PermissionDenied("connecting Salesforce needs a signed-in user")
    oauth = _runtime.oauth(login_url=login_url)
    # Sent once: the flow never retries a token exchange.
    token = oauth.token_exchange(
        subject_token, subject_token_type, token_handler=token_handler, scopes=scopes
    )
    if not token.org_id or not token.user_id:
        _revoke_quietly(oauth, token)
        raise SFOAuthError("Salesforce answered a token without an identity URL")
    key = user_key(token.org_id, token.user_id)
    try:
        connection = _claim_row(key, user, token, oauth)
    except FlowFailedError as failure:
        raise _ConnectionRefusedError(failure.error) from None
    username = None
    try:
        username = oauth.identity(token).username
    except SFOAuthError as exc:  # best effort, like a login
        logger.info("identity lookup for the username failed: %s", type(exc).__name__)
    _runtime.manager().save(key, token, grant=TOKEN_EXCHANGE, username=username)
    _runtime.forget_user(user.pk)
    connection.refresh_from_db()
    if isinstance(request_or_user, HttpRequest):  # the adapter's hooks take a request
        get_adapter(request_or_user).on_token_obtained(
            request_or_user, connection, token
        )
    return connection


class _ConnectionRefusedError(SFOAuthError):
    """The exchanged Salesforce user cannot be linked to this user (the grant was
    revoked); ``reason`` is ``already_linked`` or ``different_account``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            {
                "already_linked": "this Salesforce user is connected to another user",
                "different_account": "the user is already connected to another "
                "Salesforce user of this org",
            }.get(reason, reason)
        )
