"""``sfoauth token introspect|revoke|userinfo``: use a token stored by ``sfoauth login``.

Every use goes through :class:`~sfoauth_core.manager.TokenManager` over the token file
(:class:`~sfoauth_core.storage.FileTokenStore`): a refused access token is renewed the
way an app's would be (refreshed, or re-minted for JWT bearer and client credentials),
single-flight with other ``sfoauth`` processes, the refresh token's rotation saved, a
refused grant flagged; revocation removes the local token even when Salesforce cannot
be told.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..events import TokenEvent
from ..exceptions import FlowError, InvalidTokenError, SFOAuthError
from ._app import client_secret, open_store, pick_alias, store_options, stored_manager
from ._console import err, failure_text, guarded, out, utc

__all__ = ["add_token_parser", "run_token"]


def add_token_parser(subparsers: Any) -> None:
    """Add ``token`` (``introspect``, ``revoke``, ``userinfo``) to ``sfoauth``'s
    sub-parsers."""
    token = subparsers.add_parser(
        "token",
        help="introspect, revoke or read UserInfo with a stored token",
        description="Use a token stored by `sfoauth login`.",
    )
    actions = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    token_common = argparse.ArgumentParser(add_help=False)
    token_common.add_argument(
        "--alias", default=None, help="stored connection (default: the only one)"
    )
    store_options(token_common)
    introspect = actions.add_parser(
        "introspect",
        parents=[token_common],
        help="RFC 7662 introspection (needs the consumer secret)",
    )
    introspect.add_argument(
        "--which",
        choices=("access", "refresh"),
        default="access",
        help="which stored token to introspect (default access)",
    )
    actions.add_parser(
        "revoke",
        parents=[token_common],
        help="revoke at Salesforce and remove it from the store",
    )
    actions.add_parser(
        "userinfo",
        parents=[token_common],
        help="OpenID Connect UserInfo (renews once if the token is refused)",
    )


def _introspect(args: argparse.Namespace) -> int:
    store = open_store(args)
    alias = pick_alias(store, args.alias)
    secret = client_secret(args, required=True, purpose="introspection")
    manager, oauth = stored_manager(store, alias, secret=secret)
    with oauth:
        if args.which == "refresh":
            record = manager.record(alias)
            refresh = record.token.refresh_token if record is not None else None
            if not refresh:
                raise FlowError("the stored connection has no refresh token")
            result = oauth.introspect(refresh, hint="refresh_token")
        else:
            result = oauth.introspect(manager.valid_token(alias), hint="access_token")
    fields = {
        "active": result.active,
        "username": result.username,
        "client_id": result.client_id,
        "scopes": list(result.scopes),
        "token_type": result.token_type,
        "exp": result.exp,
        "iat": result.iat,
    }
    if args.json:
        out(json.dumps(fields, indent=2))
        return 0
    out(f"active: {'yes' if result.active else 'no'}")
    lines = [
        ("username", result.username),
        ("client_id", result.client_id),
        ("scopes", " ".join(result.scopes) or None),
        ("token_type", result.token_type),
        ("expires", utc(result.exp)),
        ("issued", utc(result.iat)),
    ]
    for name, value in lines:
        if value is not None:
            out(f"{name}: {value}")
    return 0


class _Reported(logging.Filter):
    """Drops the manager's warning about a failed revocation: the command reports it
    in full itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("revoke of %r at Salesforce failed")


@contextmanager
def _reporting_revocation() -> Iterator[None]:
    manager_log = logging.getLogger("sfoauth.manager")
    reported = _Reported()
    manager_log.addFilter(reported)
    try:
        yield
    finally:
        manager_log.removeFilter(reported)


def _revoke(args: argparse.Namespace) -> int:
    store = open_store(args)
    alias = pick_alias(store, args.alias)
    secret = client_secret(args, required=False, purpose="revocation")
    manager, oauth = stored_manager(store, alias, secret=secret)
    # The manager revokes the refresh token (which takes every access token issued from
    # it along) and removes the local token even when Salesforce cannot be told
    # (SECURITY.md 19); a token Salesforce already considers invalid counts as revoked.
    with oauth, _reporting_revocation():
        confirmed = manager.revoke(alias)
    failure: SFOAuthError | None = None
    if not confirmed and oauth.failures:
        failure = oauth.failures[-1]
    already_invalid = confirmed and any(
        isinstance(exc, InvalidTokenError) for exc in oauth.failures
    )
    if args.json:
        result: dict[str, Any] = {"alias": alias, "revoked": failure is None}
        result["removed"] = True
        if failure is not None:
            result["error"] = type(failure).__name__
        out(json.dumps(result))
    if failure is not None:
        err(
            f"sfoauth: the token of {alias!r} was NOT revoked at Salesforce "
            f"({failure_text(failure)})."
        )
        err(
            f"It was removed from {store.path} anyway, so this machine no longer "
            "holds it. The grant stays valid at Salesforce until it expires or is "
            "revoked there (Setup > Connected Apps OAuth Usage, or the user's "
            "Settings > Connected Apps)."
        )
        return 1
    if not args.json:
        if already_invalid:
            out(
                f"The token of {alias!r} was already invalid at Salesforce; "
                f"removed it from {store.path}"
            )
        else:
            out(f"Revoked the token of {alias!r} and removed it from {store.path}")
    return 0


def _userinfo(args: argparse.Namespace) -> int:
    store = open_store(args)
    alias = pick_alias(store, args.alias)
    secret = client_secret(args, required=False, purpose="refresh")
    manager, oauth = stored_manager(store, alias, secret=secret)
    record = manager.record(alias)
    renewable = record is not None and (record.is_minted or record.token.refresh_token)
    renewing = (
        "minting a new one" if record and record.is_minted else "refreshing it once"
    )

    def refused(exc: SFOAuthError) -> None:
        if renewable and isinstance(exc, InvalidTokenError):
            if not getattr(args, "said_refused", False):
                args.said_refused = True
                err(f"The access token was refused; {renewing} ...")

    def renewed(event: TokenEvent) -> None:
        args.changed_locally = f"The renewed token was saved to {store.path}."

    def flagged(event: TokenEvent) -> None:
        args.changed_locally = (
            f"The connection {alias!r} was marked in {store.path} as needing a new "
            "login: run `sfoauth login` again."
        )

    oauth.on_failure = refused
    manager.events.connect("token_refreshed", renewed)
    manager.events.connect("needs_reauth", flagged)
    with oauth:
        claims = manager.userinfo(alias)
    if args.json:
        out(json.dumps(claims, indent=2))
        return 0
    for label, key in (
        ("username", "preferred_username"),
        ("name", "name"),
        ("email", "email"),
        ("user id", "user_id"),
        ("org id", "organization_id"),
    ):
        if claims.get(key) is not None:
            out(f"{label}: {claims[key]}")
    return 0


_ACTIONS = {"introspect": _introspect, "revoke": _revoke, "userinfo": _userinfo}


def run_token(args: argparse.Namespace) -> int:
    """Run a parsed ``sfoauth token ACTION``.

    Returns:
        0 on success, 1 on a failed call, 2 on bad configuration, 130 when cancelled.
    """
    return guarded(_ACTIONS[args.token_action], args)
