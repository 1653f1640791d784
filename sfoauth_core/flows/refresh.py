"""Refresh token flow.

Specs: RFC 6749 §6 (refreshing an access token), RFC 9700 §4.14 (refresh token rotation).
Salesforce: "OAuth 2.0 Refresh Token Flow for Renewed Sessions" (help topic
``remoteaccess_oauth_refresh_token_flow``); reference section 4.7.

Salesforce specifics: the response carries no ``refresh_token`` unless rotation is on, so the
old one is kept; with rotation the presented token dies at once and replaying it revokes the
whole grant, so the caller must persist the returned token before anyone else refreshes
(that is :class:`~sfoauth_core.manager.TokenManager`'s job). ``client_secret``, when sent, is
validated even where the app makes it optional. 5xx/429/timeouts are retried with backoff;
the refresh token is never dropped on an error.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from ..config import ConnectedApp
from ..exceptions import (
    FlowError,
    InvalidGrantError,
    RefreshInProgressError,
    ResponseError,
    SFOAuthError,
)
from ..tokens import Token, masked
from ._base import (
    Flow,
    RetryPolicy,
    authorization_server_of,
    client_auth_fields,
    grant_endpoints,
    parse_token_response,
    prepare_token_request,
    send_with_retries,
)
from .id_token import verify_id_token

__all__ = ["DEFAULT_REFRESH_RETRY", "REFRESH_IN_PROGRESS", "refresh_token"]

security_log = logging.getLogger("sfoauth.security")

DEFAULT_REFRESH_RETRY = RetryPolicy(attempts=3)
#: Reference 15.1: on a refresh grant this description means "another refresh of this
#: refresh token is being processed", not a dead grant (on a code exchange it means
#: what it says).
REFRESH_IN_PROGRESS = "expired authorization code"


def refresh_token(
    app: ConnectedApp,
    token: Token | str,
    *,
    retry: RetryPolicy = DEFAULT_REFRESH_RETRY,
    token_url: str | None = None,
    jwks_cache: MutableMapping[str, Mapping[str, Any]] | None = None,
) -> Flow[Token]:
    """Trade a refresh token for a new access token (and a rotated refresh token, if any).

    Args:
        token: the current :class:`Token` (ids, instance URL, refresh token and
            ``token_url`` are kept; the refresh goes to the authorization server that
            issued it), or a bare refresh token string (sent to the app's
            ``login_url``; the returned token keeps it unless Salesforce rotated it).
        token_url: the token endpoint to use instead (a trusted host).
        jwks_cache: the org's key sets (the client's :class:`~.jwks.JwksCache`), used to
            verify an ``id_token`` in the answer; a throw-away cache when ``None``.

    An ``id_token`` in the answer is verified like the login callback's (signature from
    the login host's keys, ``iss``, ``aud``, ``exp``, ``sub`` = the identity URL; no
    nonce). One that fails, or that cannot be checked because the keys are unreachable,
    is dropped from the returned token and logged on ``sfoauth.security``: the refresh
    itself stands (with rotation on, the old refresh token is already dead), and an
    unverified ID token is never returned to be stored.

    Raises:
        InvalidGrantError: the refresh token is revoked, expired or rotated out.
        RefreshInProgressError: another refresh of the same refresh token was being
            processed at Salesforce (the grant is alive; retry after a re-read).
        SalesforceUnavailableError: 5xx/429/timeouts after ``retry.attempts``.
        ResponseError: the response names a different org or user than the token.
    """
    previous = token if isinstance(token, Token) else None
    refresh = token.refresh_token if isinstance(token, Token) else token
    if not refresh:
        raise FlowError("there is no refresh token to use")
    refresh = masked(refresh)
    token = previous if previous is not None else refresh
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    form.update(client_auth_fields(app))
    # The grant's own authorization server (a sandbox's test.salesforce.com, a My
    # Domain, a site): another host does not know the refresh token.
    url = token_url or grant_endpoints(app, previous).token
    response = yield from send_with_retries(
        lambda: prepare_token_request(url, form), retry
    )
    try:
        new = parse_token_response(
            app, response, grant="refresh_token", previous=previous, token_url=url
        )
    except InvalidGrantError as exc:
        if exc.description.strip().lower() != REFRESH_IN_PROGRESS:
            raise
        raise RefreshInProgressError(
            exc.error,
            exc.description,
            status_code=exc.status_code,
            response=exc.response,
        ) from None
    if previous is not None and (
        (previous.org_id and new.org_id != previous.org_id)
        or (previous.user_id and new.user_id != previous.user_id)
    ):
        # SECURITY.md item 13: a refresh must not switch identities under a stored grant.
        raise ResponseError("the refreshed token belongs to a different org or user")
    if previous is None and not new.refresh_token:
        # A bare refresh token string: Salesforce did not rotate it, so it stays the
        # grant's refresh token (issue 11.7).
        new = dataclasses.replace(new, refresh_token=refresh)
    if new.id_token:
        try:
            yield from verify_id_token(
                app,
                new,
                nonce=None,
                jwks_cache={} if jwks_cache is None else jwks_cache,
                # The host that answered names itself as issuer.
                issuer=authorization_server_of(url),
            )
        except SFOAuthError as exc:
            security_log.warning(
                "dropped the ID token of a refresh answer: %s (%s)",
                type(exc).__name__,
                exc,
            )
            new = dataclasses.replace(new, id_token=None)
    return new
