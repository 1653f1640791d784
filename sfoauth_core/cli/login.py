"""``sfoauth login``: get a token the way the Salesforce CLI does, and store it.

``sfoauth login web`` works like ``sf org login web``: a one-shot callback server on
``http://localhost:1717/OauthRedirect``, PKCE, ``prompt=login`` (reference sections 4.3
and 12); ``jwt``, ``device``, ``client-credentials`` and ``password`` run the other
flows. The token is stored through the token manager in the encrypted token file
(:class:`~sfoauth_core.storage.FileTokenStore`) under an alias, with the app it was
obtained with, for ``sfoauth token``.

Secrets are never echoed: the client secret comes from ``SFOAUTH_CLIENT_SECRET`` or a
``getpass`` prompt (``--client-secret`` works but shows in the process list), passwords
from ``getpass`` or ``--password-stdin``, the JWT key from a file (whose path, not the
key, is stored to re-mint the token). Tokens are printed only with ``--print``.
"""

from __future__ import annotations

import argparse
import getpass
import html
import json
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..exceptions import (
    ConfigurationError,
    FlowCancelledError,
    FlowError,
    SFOAuthError,
)
from ..http.client import SalesforceOAuth
from ..login import LoginError, begin_login, complete_login, read_login_options
from ..manager import TokenManager
from ..tokens import Identity, Token
from ._app import build_app, client_secret, env, login_url, open_store, store_options
from ._console import Progress, err, guarded, out

__all__ = ["add_login_parsers", "run_login"]

#: Opens the authorization URL (``webbrowser.open``); tests replace it.
open_browser: Callable[[str], bool] = webbrowser.open

CALLBACK_PATH = "/OauthRedirect"
DEFAULT_CALLBACK_PORT = 1717
#: Seconds between spinner frames while the device flow polls.
SPINNER_TICK = 0.1


class _CallbackServer:
    """A one-shot HTTP server on a loopback port that waits for the OAuth redirect."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.params: dict[str, str] | None = None
        self.received = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                if parts.path != path:
                    self._page(404, "Not found", "Nothing here.")
                    return
                if not ({"code", "error", "state"} & params.keys()):
                    self._page(400, "Not a login callback", "No code or error.")
                    return
                if server.received.is_set():
                    self._page(409, "Already done", "This login was already handled.")
                    return
                server.params = params
                server.received.set()
                if "error" in params:
                    detail = params.get("error_description") or params["error"]
                    self._page(
                        200,
                        "Login failed",
                        f"Salesforce answered: {detail}. Return to your terminal.",
                    )
                else:
                    self._page(
                        200,
                        "Login received",
                        "You can close this window and return to your terminal.",
                    )

            def _page(self, status: int, title: str, text: str) -> None:
                body = (
                    "<!DOCTYPE html><html><head><meta charset='utf-8'>"
                    f"<title>{html.escape(title)}</title></head><body>"
                    f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
                    "</body></html>"
                ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                # The callback URL carries the code: keep it out of caches/referrers.
                self.send_header("Cache-Control", "no-store")
                self.send_header("Referrer-Policy", "no-referrer")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                # The default logs the request line, which carries the code.
                return

        self.httpd = HTTPServer((host, port), Handler)
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sfoauth-callback",
            daemon=True,
        )

    def __enter__(self) -> _CallbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=2)

    def wait(self, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        # Short waits keep the main thread responsive to Ctrl-C.
        while not self.received.wait(0.1):
            if time.monotonic() >= deadline:
                raise FlowError(f"no login callback arrived within {timeout:g} seconds")
        if self.params is None:  # pragma: no cover - set before `received`
            raise FlowError("the login callback carried no parameters")
        return self.params


def _login_web(args: argparse.Namespace) -> tuple[SalesforceOAuth, Token]:
    secret = client_secret(args, required=False, purpose="the web server flow")
    port = args.port
    try:
        server = _CallbackServer("127.0.0.1", port, CALLBACK_PATH)
    except OSError as exc:
        raise FlowError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pass --port"
        ) from None
    try:
        redirect_uri = f"http://{args.callback_host}:{server.port}{CALLBACK_PATH}"
        app = build_app(args, secret=secret, redirect_uri=redirect_uri)
    except BaseException:
        server.httpd.server_close()
        raise
    oauth = SalesforceOAuth(app)
    try:
        # The same login transaction as the Django and FastAPI adapters: the record
        # stays in this process (the loopback server is the browser binding).
        options = read_login_options(
            prompt=None if args.prompt == "none" else args.prompt
        )
        url, pending = begin_login(app, options, user=None, ttl=args.timeout + 60)
        with server:
            err(f"Log in to Salesforce in your browser:\n  {url}")
            if not args.no_browser and not open_browser(url):
                err("Could not open a browser: open the URL above yourself.")
            err(f"Waiting for the redirect to {redirect_uri} ...")
            params = server.wait(args.timeout)
        try:
            completed = oauth.run(
                complete_login(
                    app, pending, params, user=None, jwks_cache=oauth.jwks_cache
                )
            )
        except LoginError as exc:
            # The typed core error says what happened in the CLI's words.
            raise (exc.cause or exc) from None
    except BaseException:
        oauth.close()
        raise
    return oauth, completed.token


def _jwt_setup(args: argparse.Namespace) -> int:
    """``sfoauth login jwt --setup``: the key pair and certificate for JWT bearer, and
    what to do with them (reference 15.6: the replacement of the password flow)."""
    from ..jwt_setup import generate_jwt_key_pair, jwt_setup_steps, write_jwt_key_pair

    pair = generate_jwt_key_pair(common_name=args.common_name, days=args.days)
    key_path, cert_path = write_jwt_key_pair(
        pair, Path(args.out).expanduser().resolve(), overwrite=args.force
    )
    out(
        jwt_setup_steps(
            pair,
            key_path=key_path,
            cert_path=cert_path,
            client_id=args.client_id or env("SFOAUTH_CLIENT_ID"),
            username=args.username or env("SFOAUTH_USERNAME"),
            login_url=login_url(args),
        )
    )
    return 0


def _login_jwt(args: argparse.Namespace) -> tuple[SalesforceOAuth, Token]:
    username = args.username or env("SFOAUTH_USERNAME")
    if not username:
        raise ConfigurationError("--username", "is required for the JWT bearer flow")
    key_file = args.key_file or env("SFOAUTH_PRIVATE_KEY_FILE")
    if not key_file:
        raise ConfigurationError("--key-file", "is required for the JWT bearer flow")
    path = Path(key_file).expanduser().resolve()
    try:
        key = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ConfigurationError("--key-file", "cannot be read") from None
    args.key_file_used = str(path)
    app = build_app(
        args,
        secret=None,
        private_key=key,
        username=username,
        audience=args.audience,
    )
    oauth = SalesforceOAuth(app)
    try:
        return oauth, oauth.jwt_bearer()
    except BaseException:
        oauth.close()
        raise


def _login_client_credentials(
    args: argparse.Namespace,
) -> tuple[SalesforceOAuth, Token]:
    secret = client_secret(args, required=True, purpose="the client credentials flow")
    app = build_app(args, secret=secret)
    app.validate_for("client_credentials")
    oauth = SalesforceOAuth(app)
    try:
        return oauth, oauth.client_credentials(use_basic_auth=args.basic_auth)
    except BaseException:
        oauth.close()
        raise


def _login_password(args: argparse.Namespace) -> tuple[SalesforceOAuth, Token]:
    err(
        "warning: the username-password flow is for development only; it is blocked "
        "by default in new orgs, Salesforce stops it for connected apps in Winter '27 "
        "and External Client Apps never had it. Prefer `sfoauth login web`, or "
        "`sfoauth login jwt` (`sfoauth login jwt --setup` makes the key and "
        "certificate)."
    )
    username = args.username or env("SFOAUTH_USERNAME")
    if not username:
        raise ConfigurationError("--username", "is required for the password flow")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {username} (not shown): ")
    if not password:
        raise ConfigurationError("password", "is empty")
    secret = client_secret(args, required=False, purpose="the password flow")
    app = build_app(args, secret=secret)
    oauth = SalesforceOAuth(app)
    try:
        return oauth, oauth.password(
            username, password, security_token=env("SFOAUTH_SECURITY_TOKEN") or ""
        )
    except BaseException:
        oauth.close()
        raise


def _join(thread: threading.Thread, seconds: float) -> None:
    thread.join(seconds)


def _login_device(args: argparse.Namespace) -> tuple[SalesforceOAuth, Token]:
    secret = client_secret(args, required=False, purpose="the device flow")
    app = build_app(args, secret=secret)
    oauth = SalesforceOAuth(app)
    try:
        device = oauth.start_device_flow()
        err(
            f"To log in, open {device.verification_uri} on any device and enter "
            f"the code:\n\n    {device.user_code}\n"
        )
        cancelled = threading.Event()
        outcome: dict[str, Any] = {}

        def poll() -> None:
            try:
                outcome["token"] = oauth.poll_device_flow(
                    device, timeout=args.timeout, cancel=cancelled.is_set
                )
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                outcome["error"] = exc

        worker = threading.Thread(target=poll, name="sfoauth-device", daemon=True)
        progress = Progress(
            sys.stderr, "Waiting for approval", dot_every=float(device.interval)
        )
        started = time.monotonic()
        worker.start()
        try:
            while worker.is_alive():
                _join(worker, SPINNER_TICK)
                progress.tick(time.monotonic() - started)
        except KeyboardInterrupt:
            # The poller checks `cancel` before each wait and poll; it is a daemon, so
            # a sleep in progress does not hold the process.
            cancelled.set()
            progress.finish("cancelled")
            worker.join(0.5)
            raise FlowCancelledError("the device login was cancelled") from None
        error = outcome.get("error")
        progress.finish("failed" if error is not None else "approved")
        if error is not None:
            raise error
        token: Token = outcome["token"]
        return oauth, token
    except BaseException:
        oauth.close()
        raise


#: The grant each flow's token is stored with (jwt_bearer and client_credentials
#: tokens are re-minted instead of refreshed).
_GRANTS = {
    "web_server": "authorization_code",
    "jwt_bearer": "jwt_bearer",
    "device": "device",
    "client_credentials": "client_credentials",
    "username_password": "password",
}

_LOGINS: dict[str, tuple[str, Callable[[argparse.Namespace], Any]]] = {
    "web": ("web_server", _login_web),
    "jwt": ("jwt_bearer", _login_jwt),
    "device": ("device", _login_device),
    "client-credentials": ("client_credentials", _login_client_credentials),
    "password": ("username_password", _login_password),
}


def _identity_or_none(oauth: SalesforceOAuth, token: Token) -> Identity | None:
    if not token.id_url:
        return None
    try:
        return oauth.identity(token)
    except SFOAuthError as exc:
        err(f"warning: could not read the identity URL ({exc})")
        return None


def _login(args: argparse.Namespace) -> int:
    flow, login = _LOGINS[args.login_flow]
    oauth, token = login(args)
    with oauth:
        identity = _identity_or_none(oauth, token)
        username = identity.username if identity and identity.username else None
        org_id = identity.organization_id if identity else token.org_id
        user_id = identity.user_id if identity else token.user_id
        summary: dict[str, Any] = {
            "username": username,
            "org_id": org_id,
            "user_id": user_id,
            "instance_url": token.instance_url,
            "flow": flow,
        }
        who = (
            f"Logged in as {username or user_id or 'an unknown user'} "
            f"(org {org_id}) at {token.instance_url}"
        )
        if args.print_token:
            err(
                "warning: the token is printed in clear text; anyone who sees it can "
                "act as this user until it is revoked"
            )
            err(who)
            out(json.dumps(token.to_dict(), indent=2))
            return 0
        alias = args.alias or username or user_id
        if not alias:
            raise ConfigurationError("--alias", "is required (no username is known)")
        store = open_store(args)
        details = {
            **summary,
            "client_id": oauth.app.client_id,
            "login_url": oauth.app.login_url,
            "allow_loopback": oauth.app.allow_loopback,
            "scopes": list(oauth.app.scopes),
        }
        key_file = getattr(args, "key_file_used", None)
        if key_file is not None:
            # The path, never the key: a refused token is re-minted with it later.
            details.update(key_file=key_file, audience=args.audience)
        manager = TokenManager(oauth, store)
        manager.save(
            alias,
            token,
            grant=_GRANTS[flow],
            username=oauth.app.username if flow == "jwt_bearer" else None,
        )
        store.set_details(alias, details)
        summary.update(alias=alias, store=str(store.path))
        if args.json:
            out(json.dumps(summary, indent=2))
        else:
            out(who)
            out(f"Stored as {alias!r} in {store.path}")
    return 0


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of seconds") from None
    if not 0 < number <= 3600:
        raise argparse.ArgumentTypeError("expected seconds in (0, 3600]")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError("expected a port number (0-65535)")
    return number


def _common_login_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--client-id", default=None, help="consumer key (or SFOAUTH_CLIENT_ID)"
    )
    where = common.add_mutually_exclusive_group()
    where.add_argument(
        "--login-url",
        "--instance-url",
        dest="login_url",
        metavar="URL",
        default=None,
        help="login host: a My Domain or Experience Cloud site URL "
        "(default https://login.salesforce.com, or SFOAUTH_LOGIN_URL)",
    )
    where.add_argument(
        "--my-domain",
        metavar="NAME",
        default=None,
        help="log in at https://NAME.my.salesforce.com "
        "(with --sandbox: NAME.sandbox.my.salesforce.com)",
    )
    common.add_argument(
        "--sandbox",
        action="store_true",
        help="log in at https://test.salesforce.com",
    )
    common.add_argument(
        "--scopes", default=None, help="space- or comma-separated scopes to request"
    )
    common.add_argument(
        "--alias",
        default=None,
        help="name to store the token under (default: the username)",
    )
    common.add_argument(
        "--print",
        dest="print_token",
        action="store_true",
        help="print the token JSON to stdout instead of storing it (clear text!)",
    )
    common.add_argument(
        "--allow-loopback",
        action="store_true",
        help="allow an http://127.0.0.1 login URL (the local emulator)",
    )
    store_options(common)
    return common


def add_login_parsers(subparsers: Any) -> None:
    """Add the ``login`` command to ``sfoauth``'s sub-parsers.

    Args:
        subparsers: what ``ArgumentParser.add_subparsers()`` returned.

    Example:
        >>> parser = argparse.ArgumentParser(prog="sfoauth")
        >>> add_login_parsers(parser.add_subparsers(dest="command"))
    """
    common = _common_login_parser()
    login = subparsers.add_parser(
        "login",
        help="get a token (web, jwt, device, client-credentials, password) and store it",
        description="Log in to Salesforce and store the token in an encrypted file.",
    )
    flows = login.add_subparsers(dest="login_flow", required=True, metavar="FLOW")

    web = flows.add_parser(
        "web",
        parents=[common],
        help="browser login (web server flow with PKCE), like `sf org login web`",
    )
    web.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_CALLBACK_PORT,
        help="local callback port (default 1717: http://localhost:1717/OauthRedirect)",
    )
    web.add_argument(
        "--callback-host",
        choices=("localhost", "127.0.0.1"),
        default="localhost",
        help="host name in the redirect URI registered on the app (default localhost)",
    )
    web.add_argument(
        "--no-browser", action="store_true", help="print the URL, do not open it"
    )
    web.add_argument(
        "--prompt",
        choices=("login", "consent", "select_account", "none"),
        default="login",
        help="Salesforce prompt parameter (default login, as the Salesforce CLI)",
    )
    web.add_argument(
        "--timeout",
        type=_positive,
        default=300.0,
        help="seconds to wait for the callback (default 300)",
    )

    jwt = flows.add_parser(
        "jwt", parents=[common], help="JWT bearer flow (server to server)"
    )
    jwt.add_argument("--username", default=None, help="Salesforce username (JWT sub)")
    jwt.add_argument(
        "--key-file",
        metavar="PEM",
        default=None,
        help="RSA private key (PEM) whose certificate is on the app",
    )
    jwt.add_argument(
        "--audience",
        metavar="URL",
        default=None,
        help="JWT aud (default: derived from the login URL)",
    )
    jwt.add_argument(
        "--setup",
        action="store_true",
        help="do not log in: make a key pair and certificate for the app (in --out) "
        "and print the steps to set the flow up",
    )
    jwt.add_argument(
        "--out",
        metavar="DIR",
        default="salesforce-jwt",
        help="with --setup: where the key and certificate go (default ./salesforce-jwt)",
    )
    jwt.add_argument(
        "--common-name",
        default="sfoauth JWT bearer",
        help="with --setup: the certificate's name (shown in the app's settings)",
    )
    jwt.add_argument(
        "--days",
        type=int,
        default=730,
        help="with --setup: days the certificate is valid (default 730)",
    )
    jwt.add_argument(
        "--force",
        action="store_true",
        help="with --setup: replace an existing key and certificate in --out",
    )

    device = flows.add_parser(
        "device", parents=[common], help="device flow: approve a code on another device"
    )
    device.add_argument(
        "--timeout",
        type=_positive,
        default=600.0,
        help="seconds to wait for approval (default 600)",
    )

    cc = flows.add_parser(
        "client-credentials",
        parents=[common],
        help="client credentials flow (My Domain; run-as user set on the app)",
    )
    cc.add_argument(
        "--basic-auth",
        action="store_true",
        help="send the credentials in an Authorization: Basic header",
    )

    password = flows.add_parser(
        "password",
        parents=[common],
        help="username-password flow (development only)",
    )
    password.add_argument("--username", default=None, help="Salesforce username")
    password.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password (with the security token appended) from stdin",
    )


def run_login(args: argparse.Namespace) -> int:
    """Run a parsed ``sfoauth login FLOW``.

    Returns:
        0 when stored (or printed), 1 when the login failed, 2 on bad configuration,
        130 when cancelled.
    """
    if args.login_flow == "jwt" and getattr(args, "setup", False):
        return guarded(_jwt_setup, args)
    return guarded(_login, args)
