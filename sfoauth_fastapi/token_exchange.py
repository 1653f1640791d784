"""Connect a user to Salesforce with a token from another identity provider (reference
15.8), without a Salesforce login page: :meth:`SFOAuth.connect_with_token_exchange`.

Your users sign in to your API with Okta, Auth0, Entra ID...; the token that provider gave
you is traded for a Salesforce token for the same person (Salesforce runs your Apex
``Auth.OauthTokenExchangeHandler``). The connection is stored under the same key as a
login through the router (``user:<user_key>``), with the same conflict rule, the core's
``token_obtained`` event and your ``on_login`` hook.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import Request

from sfoauth_core.exceptions import MalformedResponseError, SFOAuthError
from sfoauth_core.manager._base import TOKEN_EXCHANGE

from .dependencies import call_hook
from .errors import ErrorCode, http_error

if TYPE_CHECKING:
    from .app import SFOAuth
    from .dependencies import SalesforceSession

__all__ = ["connect_with_token_exchange"]

logger = logging.getLogger("sfoauth.fastapi")
security_log = logging.getLogger("sfoauth.security")


async def connect_with_token_exchange(
    sf: SFOAuth,
    user_key: str,
    subject_token: str,
    subject_token_type: str,
    *,
    token_handler: str | None = None,
    scopes: tuple[str, ...] | list[str] | None = None,
    request: Request | None = None,
) -> SalesforceSession:
    """See :meth:`SFOAuth.connect_with_token_exchange`."""
    if not isinstance(user_key, str) or not user_key:
        raise http_error(ErrorCode.NOT_AUTHENTICATED)
    store_key = sf.key_for_user(user_key)
    # Sent once: the flow never retries a token exchange.
    token = await sf.oauth.token_exchange(
        subject_token, subject_token_type, token_handler=token_handler, scopes=scopes
    )
    if not token.org_id or not token.user_id:
        await _revoke_quietly(sf, token.refresh_token or token.access_token)
        raise MalformedResponseError("the token exchange answered no identity URL")
    existing = await sf.manager.record(store_key)
    if existing is not None and (
        existing.token.org_id != token.org_id or existing.token.user_id != token.user_id
    ):
        # Another Salesforce user or org never replaces a connection silently
        # (SECURITY.md item 7): the new grant is given back.
        await _revoke_quietly(sf, token.refresh_token or token.access_token)
        security_log.warning(
            "token exchange refused: different Salesforce user for this user"
        )
        raise http_error(ErrorCode.CONNECTION_CONFLICT)
    await sf.manager.save(store_key, token, grant=TOKEN_EXCHANGE)
    session = sf.session_for(store_key, token)
    if sf.on_login is not None and request is not None:
        await call_hook(sf.on_login, request, session)
    return session


async def _revoke_quietly(sf: SFOAuth, value: str) -> None:
    try:
        await sf.oauth.revoke(value)
    except SFOAuthError as exc:
        logger.warning("could not revoke an unused grant: %s", type(exc).__name__)
