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

from ..config import ConnectedApp
from ..exceptions import (
    FlowError,
    InvalidGrantError,
    RefreshInProgressError,
    ResponseError,
)
from ..tokens import Token
from ._base import (
    Flow,
    RetryPolicy,
    client_auth_fields,
    parse_token_response,
    prepare_token_request,
    send_with_retries,
)
from .endpoints import endpoints_for

__all__ = ["DEFAULT_REFRESH_RETRY", "REFRESH_IN_PROGRESS", "refresh_token"]

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
) -> Flow[Token]:
    """Trade a refresh token for a new access token (and a rotated refresh token, if any).

    Args:
        token: the current :class:`Token` (ids, instance URL and refresh token are kept), or
            a bare refresh token string.

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
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    form.update(client_auth_fields(app))
    url = token_url or endpoints_for(app.login_url).token
    response = yield from send_with_retries(
        lambda: prepare_token_request(url, form), retry
    )
    try:
        new = parse_token_response(app, response, previous=previous)
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
    return new
