"""What ``sfoauth login`` and ``sfoauth token`` share: the app from options and
environment variables, secrets that are never echoed, the token file, and the
:class:`~sfoauth_core.manager.TokenManager` every stored token goes through."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..config import DEFAULT_LOGIN_URL, SANDBOX_LOGIN_URL, ConnectedApp
from ..exceptions import ConfigurationError, SFOAuthError, StorageError
from ..flows._base import Flow
from ..http.client import SalesforceOAuth
from ..manager import TokenManager
from ..storage.file import FileTokenStore
from ._console import err

__all__ = [
    "ObservedOAuth",
    "build_app",
    "client_secret",
    "env",
    "login_url",
    "open_store",
    "pick_alias",
    "store_options",
    "stored_manager",
]

T = TypeVar("T")


class ObservedOAuth(SalesforceOAuth):
    """A :class:`SalesforceOAuth` that remembers what Salesforce refused, so that a
    command can say what happened when the token manager only says whether.

    Attributes:
        failures: every library error a call raised, in order.
        on_failure: called with each of them as it happens.
    """

    def __init__(self, app: ConnectedApp) -> None:
        super().__init__(app)
        self.failures: list[SFOAuthError] = []
        self.on_failure: Callable[[SFOAuthError], None] | None = None

    def run(self, flow: Flow[T]) -> T:
        try:
            return super().run(flow)
        except SFOAuthError as exc:
            self.failures.append(exc)
            if self.on_failure is not None:
                self.on_failure(exc)
            raise


def env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def login_url(args: argparse.Namespace) -> str:
    explicit = args.login_url
    if args.my_domain:
        name = args.my_domain.strip().lower()
        if "://" in name or "/" in name:
            raise ConfigurationError(
                "--my-domain", "takes a name (acme); use --instance-url for a URL"
            )
        if "." in name:
            return f"https://{name}"
        suffix = ".sandbox.my.salesforce.com" if args.sandbox else ".my.salesforce.com"
        return f"https://{name}{suffix}"
    if explicit and args.sandbox:
        raise ConfigurationError(
            "--sandbox", "cannot be combined with --login-url/--instance-url"
        )
    if args.sandbox:
        return SANDBOX_LOGIN_URL
    return explicit or env("SFOAUTH_LOGIN_URL") or DEFAULT_LOGIN_URL


def client_id(args: argparse.Namespace) -> str:
    client_id = args.client_id or env("SFOAUTH_CLIENT_ID")
    if not client_id:
        raise ConfigurationError(
            "--client-id", "is required (or set SFOAUTH_CLIENT_ID)"
        )
    return str(client_id)


def allow_loopback(args: argparse.Namespace) -> bool:
    if getattr(args, "allow_loopback", False):
        return True
    return (env("SFOAUTH_ALLOW_LOOPBACK") or "").lower() in ("1", "true", "yes", "on")


def client_secret(
    args: argparse.Namespace, *, required: bool, purpose: str
) -> str | None:
    """``--client-secret``, then ``SFOAUTH_CLIENT_SECRET``, then a prompt on a TTY."""
    if getattr(args, "client_secret", None):
        err(
            "warning: --client-secret is visible in the process list and shell "
            "history; prefer SFOAUTH_CLIENT_SECRET or the prompt"
        )
        return str(args.client_secret)
    secret = env("SFOAUTH_CLIENT_SECRET")
    if secret or not required:
        return secret
    if sys.stdin is not None and sys.stdin.isatty():
        secret = getpass.getpass("Consumer secret (not shown): ")
        if secret:
            return secret
    raise ConfigurationError(
        "client_secret",
        f"{purpose} needs the consumer secret: set SFOAUTH_CLIENT_SECRET "
        "(or run in a terminal to be prompted)",
    )


def build_app(
    args: argparse.Namespace,
    *,
    secret: str | None,
    redirect_uri: str | None = None,
    private_key: str | None = None,
    username: str | None = None,
    audience: str | None = None,
) -> ConnectedApp:
    kwargs: dict[str, Any] = {
        "client_id": client_id(args),
        "client_secret": secret,
        "redirect_uri": redirect_uri,
        "login_url": login_url(args),
        "private_key": private_key,
        "username": username,
        "audience": audience,
        "allow_loopback": allow_loopback(args),
    }
    if args.scopes:
        kwargs["scopes"] = args.scopes.replace(",", " ").split()
    try:
        return ConnectedApp(**kwargs)
    except ConfigurationError as exc:
        if exc.setting == "login_url" and "loopback" in exc.problem:
            raise ConfigurationError(
                "--login-url",
                "is a loopback URL: pass --allow-loopback (emulator only)",
            ) from None
        raise


def store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="PATH",
        default=None,
        help="encrypted token file (default $XDG_CONFIG_HOME/sfoauth/tokens.json.enc; "
        "key from SFOAUTH_TOKEN_KEY or PATH.key, created on first use)",
    )
    parser.add_argument(
        "--client-secret",
        metavar="SECRET",
        default=None,
        help="consumer secret; prefer SFOAUTH_CLIENT_SECRET or the prompt (a flag "
        "shows in the process list)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def open_store(args: argparse.Namespace) -> FileTokenStore:
    """The token file of ``--store`` (default: ``$XDG_CONFIG_HOME/sfoauth/...``)."""
    return FileTokenStore(Path(args.store) if args.store else None)


def pick_alias(store: FileTokenStore, alias: str | None) -> str:
    """``alias``, or the only stored connection when it is ``None``.

    Raises:
        StorageError: nothing stored, or the alias is unknown / ambiguous.
    """
    aliases = store.keys()
    if not aliases:
        raise StorageError(
            f"no token stored in {store.path}; run `sfoauth login` first"
        )
    if alias is None:
        if len(aliases) > 1:
            raise StorageError(
                "several tokens are stored; choose one with --alias: "
                + ", ".join(aliases)
            )
        return aliases[0]
    if alias not in aliases:
        raise StorageError(
            f"no token stored under alias {alias!r}; stored: " + ", ".join(aliases)
        )
    return alias


def _key_of(details: Mapping[str, Any]) -> str | None:
    """The JWT private key named at login (its path is kept, never the key)."""
    key_file = details.get("key_file")
    if not key_file:
        return None
    try:
        return Path(str(key_file)).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # renewing then fails with a configuration error naming the key


def stored_manager(
    store: FileTokenStore, alias: str, *, secret: str | None
) -> tuple[TokenManager, ObservedOAuth]:
    """A token manager for ``alias``'s connection, with the app it logged in with.

    Raises:
        StorageError: the stored connection lacks what the app needs.
    """
    details = store.details(alias) or {}
    try:
        app = ConnectedApp(
            client_id=details["client_id"],
            client_secret=secret,
            login_url=details["login_url"],
            scopes=details.get("scopes") or ("api", "refresh_token"),
            allow_loopback=bool(details.get("allow_loopback")),
            private_key=_key_of(details),
            audience=details.get("audience"),
        )
    except (KeyError, TypeError, SFOAuthError):
        raise StorageError(
            "the stored connection is incomplete; log in again"
        ) from None
    oauth = ObservedOAuth(app)
    return TokenManager(oauth, store), oauth
