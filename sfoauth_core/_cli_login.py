"""``sfoauth login``, ``sfoauth token`` and ``sfoauth advise --interactive``.

Get a token the way the Salesforce CLI does (``sf org login web``: a one-shot callback
server on ``http://localhost:1717/OauthRedirect``, PKCE, ``prompt=login``; reference
sections 4.3 and 12), keep it in a local encrypted file, and use it for introspection,
revocation and UserInfo.

The token file (default ``$XDG_CONFIG_HOME/sfoauth/tokens.json.enc``, else
``~/.config/sfoauth/tokens.json.enc``) is one :class:`~sfoauth_core.storage.TokenCipher`
ciphertext (AES-256-GCM) of a JSON document holding every stored connection by alias;
nothing, not even the aliases, is readable without the key. The key comes from
``SFOAUTH_TOKEN_KEY`` (comma-separated keys rotate: the first encrypts, all decrypt) or,
when that is unset, from a key file next to the token file (``<store>.key``), generated
on first use. Both files are created with mode 0600 in a 0700 directory; a key file
that others can read is refused, as ssh does.

Secrets are never echoed: the client secret comes from ``SFOAUTH_CLIENT_SECRET`` or a
``getpass`` prompt (``--client-secret`` works but shows in the process list), passwords
from ``getpass`` or ``--password-stdin``, the JWT key from a file. Tokens are printed
only with ``--print``. Expected failures end with one line on stderr: exit status 2 for
configuration errors, 130 when cancelled, 1 otherwise.
"""

from __future__ import annotations

import argparse
import getpass
import html
import json
import os
import stat
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

from .config import DEFAULT_LOGIN_URL, SANDBOX_LOGIN_URL, ConnectedApp
from .exceptions import (
    ConfigurationError,
    FlowCancelledError,
    FlowError,
    InvalidTokenError,
    SalesforceUnavailableError,
    SFOAuthError,
    StorageError,
)
from .http.client import SalesforceOAuth
from .storage.cipher import TokenCipher
from .tokens import Identity, Token

__all__ = [
    "add_login_parsers",
    "default_store_path",
    "dispatch",
    "run_interactive_advise",
]

#: Opens the authorization URL (``webbrowser.open``); tests replace it.
open_browser: Callable[[str], bool] = webbrowser.open

CALLBACK_PATH = "/OauthRedirect"
DEFAULT_CALLBACK_PORT = 1717
STORE_CONTEXT = "sfoauth-cli-token-store:v1"
STORE_VERSION = 1
#: Seconds between spinner frames while the device flow polls.
SPINNER_TICK = 0.1

_EXIT_CONFIG = 2
_EXIT_CANCELLED = 130
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_SPINNER_ASCII = "|/-\\"


# ---------------------------------------------------------------------- output
def _out(text: str) -> None:
    print(text, file=sys.stdout, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- the store
def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/sfoauth/tokens.json.enc`` (``~/.config`` when unset)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "sfoauth" / "tokens.json.enc"


def _write_private(path: Path, data: bytes) -> None:
    # Write beside the target and rename, so a crash never leaves half a file, and the
    # file is 0600 from its first byte (no window where it is world-readable).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


class TokenFile:
    """The CLI's encrypted token file: ``{alias: connection}`` in one ciphertext.

    Args:
        path: the token file.
        environ: where ``SFOAUTH_TOKEN_KEY`` is read (``os.environ``).
    """

    def __init__(self, path: Path, *, environ: Mapping[str, str] | None = None) -> None:
        self.path = path.expanduser()
        self._env = os.environ if environ is None else environ

    @property
    def key_path(self) -> Path:
        """The key file used when ``SFOAUTH_TOKEN_KEY`` is unset."""
        return self.path.with_name(self.path.name + ".key")

    def _cipher(self, *, create: bool) -> TokenCipher | None:
        keys = [k.strip() for k in self._env.get("SFOAUTH_TOKEN_KEY", "").split(",")]
        keys = [k for k in keys if k]
        if keys:
            return TokenCipher(keys, setting="SFOAUTH_TOKEN_KEY")
        key_path = self.key_path
        try:
            info = key_path.stat()
        except FileNotFoundError:
            if not create:
                return None
            key = TokenCipher.generate_key()
            try:
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another sfoauth process just made it
                return self._cipher(create=False)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(key + "\n")
            return TokenCipher(key, setting=str(key_path))
        if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                str(key_path), "is readable by other users; run chmod 600 on it"
            )
        try:
            key = key_path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            raise StorageError(f"cannot read the key file {key_path}") from None
        return TokenCipher(key, setting=str(key_path))

    def load(self) -> dict[str, dict[str, Any]]:
        """Every stored connection by alias (empty when there is no file yet).

        Raises:
            StorageError: the file cannot be read or decrypted (wrong or missing key).
        """
        try:
            blob = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError):
            raise StorageError(f"cannot read the token file {self.path}") from None
        cipher = self._cipher(create=False)
        if cipher is None:
            raise StorageError(
                f"the token file {self.path} exists but its key file {self.key_path} "
                "does not; set SFOAUTH_TOKEN_KEY to the key it was written with, or "
                "delete the token file to start over"
            )
        plain = cipher.decrypt(blob, context=STORE_CONTEXT)
        try:
            doc = json.loads(plain)
        except ValueError:
            raise StorageError(f"the token file {self.path} is corrupt") from None
        connections = doc.get("connections") if isinstance(doc, dict) else None
        if not isinstance(connections, dict):
            raise StorageError(f"the token file {self.path} is corrupt")
        return connections

    def save_all(self, connections: Mapping[str, Mapping[str, Any]]) -> None:
        """Encrypt and write every connection (atomically, mode 0600).

        Raises:
            StorageError: the directory, key file or token file cannot be written.
        """
        doc = {"version": STORE_VERSION, "connections": dict(connections)}
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            cipher = self._cipher(create=True)
            assert cipher is not None
            blob = cipher.encrypt(
                json.dumps(doc).encode("utf-8"), context=STORE_CONTEXT
            )
            _write_private(self.path, blob.encode("ascii") + b"\n")
        except OSError as exc:
            raise StorageError(
                f"cannot write the token file {self.path}: {exc.strerror or exc}"
            ) from None

    def put(self, alias: str, connection: Mapping[str, Any]) -> None:
        """Store (or replace) one connection."""
        connections = self.load()
        connections[alias] = dict(connection)
        self.save_all(connections)

    def get(self, alias: str | None) -> tuple[str, dict[str, Any]]:
        """One connection; ``alias=None`` picks the only one stored.

        Raises:
            StorageError: nothing stored, or the alias is unknown / ambiguous.
        """
        connections = self.load()
        if not connections:
            raise StorageError(
                f"no token stored in {self.path}; run `sfoauth login` first"
            )
        if alias is None:
            if len(connections) > 1:
                raise StorageError(
                    "several tokens are stored; choose one with --alias: "
                    + ", ".join(sorted(connections))
                )
            alias = next(iter(connections))
        if alias not in connections:
            raise StorageError(
                f"no token stored under alias {alias!r}; stored: "
                + ", ".join(sorted(connections))
            )
        return alias, connections[alias]

    def delete(self, alias: str) -> None:
        """Remove one connection (no error when it is not there)."""
        connections = self.load()
        if connections.pop(alias, None) is not None:
            self.save_all(connections)


# ---------------------------------------------------------------------- configuration
def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def _login_url(args: argparse.Namespace) -> str:
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
    return explicit or _env("SFOAUTH_LOGIN_URL") or DEFAULT_LOGIN_URL


def _client_id(args: argparse.Namespace) -> str:
    client_id = args.client_id or _env("SFOAUTH_CLIENT_ID")
    if not client_id:
        raise ConfigurationError(
            "--client-id", "is required (or set SFOAUTH_CLIENT_ID)"
        )
    return str(client_id)


def _allow_loopback(args: argparse.Namespace) -> bool:
    if getattr(args, "allow_loopback", False):
        return True
    return (_env("SFOAUTH_ALLOW_LOOPBACK") or "").lower() in ("1", "true", "yes", "on")


def _client_secret(
    args: argparse.Namespace, *, required: bool, purpose: str
) -> str | None:
    """``--client-secret``, then ``SFOAUTH_CLIENT_SECRET``, then a prompt on a TTY."""
    if getattr(args, "client_secret", None):
        _err(
            "warning: --client-secret is visible in the process list and shell "
            "history; prefer SFOAUTH_CLIENT_SECRET or the prompt"
        )
        return str(args.client_secret)
    secret = _env("SFOAUTH_CLIENT_SECRET")
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


def _build_app(
    args: argparse.Namespace,
    *,
    secret: str | None,
    redirect_uri: str | None = None,
    private_key: str | None = None,
    username: str | None = None,
    audience: str | None = None,
) -> ConnectedApp:
    kwargs: dict[str, Any] = {
        "client_id": _client_id(args),
        "client_secret": secret,
        "redirect_uri": redirect_uri,
        "login_url": _login_url(args),
        "private_key": private_key,
        "username": username,
        "audience": audience,
        "allow_loopback": _allow_loopback(args),
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


# ---------------------------------------------------------------------- web login
class _CallbackServer:
    """A one-shot HTTP server on a loopback port that waits for the OAuth redirect."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.params: dict[str, str] | None = None
        self.received = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
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
        assert self.params is not None
        return self.params


def _login_web(args: argparse.Namespace) -> tuple[SalesforceOAuth, Token]:
    secret = _client_secret(args, required=False, purpose="the web server flow")
    port = args.port
    try:
        server = _CallbackServer("127.0.0.1", port, CALLBACK_PATH)
    except OSError as exc:
        raise FlowError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pass --port"
        ) from None
    try:
        redirect_uri = f"http://{args.callback_host}:{server.port}{CALLBACK_PATH}"
        app = _build_app(args, secret=secret, redirect_uri=redirect_uri)
    except BaseException:
        server.httpd.server_close()
        raise
    oauth = SalesforceOAuth(app)
    try:
        with server:
            request = oauth.authorization_url(
                prompt=None if args.prompt == "none" else args.prompt
            )
            _err(f"Log in to Salesforce in your browser:\n  {request.url}")
            if not args.no_browser and not open_browser(request.url):
                _err("Could not open a browser: open the URL above yourself.")
            _err(f"Waiting for the redirect to {redirect_uri} ...")
            params = server.wait(args.timeout)
        code = oauth.parse_authorization_response(params, expected_state=request.state)
        token = oauth.exchange_code(code, code_verifier=request.code_verifier)
    except BaseException:
        oauth.close()
        raise
    return oauth, token


# ---------------------------------------------------------------------- other logins
def _login_jwt(args: argparse.Namespace) -> tuple[SalesforceOAuth, Token]:
    username = args.username or _env("SFOAUTH_USERNAME")
    if not username:
        raise ConfigurationError("--username", "is required for the JWT bearer flow")
    key_file = args.key_file or _env("SFOAUTH_PRIVATE_KEY_FILE")
    if not key_file:
        raise ConfigurationError("--key-file", "is required for the JWT bearer flow")
    try:
        key = Path(key_file).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ConfigurationError("--key-file", "cannot be read") from None
    app = _build_app(
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
    secret = _client_secret(args, required=True, purpose="the client credentials flow")
    app = _build_app(args, secret=secret)
    app.validate_for("client_credentials")
    oauth = SalesforceOAuth(app)
    try:
        return oauth, oauth.client_credentials(use_basic_auth=args.basic_auth)
    except BaseException:
        oauth.close()
        raise


def _login_password(args: argparse.Namespace) -> tuple[SalesforceOAuth, Token]:
    _err(
        "warning: the username-password flow is for development only; it is blocked "
        "by default in new orgs and being deprecated. Prefer `sfoauth login web` or "
        "`sfoauth login jwt`."
    )
    username = args.username or _env("SFOAUTH_USERNAME")
    if not username:
        raise ConfigurationError("--username", "is required for the password flow")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {username} (not shown): ")
    if not password:
        raise ConfigurationError("password", "is empty")
    secret = _client_secret(args, required=False, purpose="the password flow")
    app = _build_app(args, secret=secret)
    oauth = SalesforceOAuth(app)
    try:
        return oauth, oauth.password(
            username, password, security_token=_env("SFOAUTH_SECURITY_TOKEN") or ""
        )
    except BaseException:
        oauth.close()
        raise


class _Progress:
    """A spinner on a terminal; dots on anything else (logs, CI)."""

    def __init__(self, stream: IO[str], message: str, *, dot_every: float) -> None:
        self.stream = stream
        self.message = message
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.dot_every = dot_every
        frames = _SPINNER
        try:
            frames.encode(getattr(stream, "encoding", None) or "ascii")
        except (UnicodeEncodeError, LookupError):
            frames = _SPINNER_ASCII
        self.frames = frames
        self._frame = 0
        self._dots = 0
        if not self.tty:
            stream.write(message + " ")
            stream.flush()

    def tick(self, elapsed: float) -> None:
        if self.tty:
            frame = self.frames[self._frame % len(self.frames)]
            self._frame += 1
            self.stream.write(f"\r{frame} {self.message} ({elapsed:.0f}s) ")
        elif elapsed >= (self._dots + 1) * self.dot_every:
            self._dots += 1
            self.stream.write(".")
        else:
            return
        self.stream.flush()

    def finish(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + "\n")
        else:
            self.stream.write(" " + text + "\n")
        self.stream.flush()


def _join(thread: threading.Thread, seconds: float) -> None:
    thread.join(seconds)


def _login_device(args: argparse.Namespace) -> tuple[SalesforceOAuth, Token]:
    secret = _client_secret(args, required=False, purpose="the device flow")
    app = _build_app(args, secret=secret)
    oauth = SalesforceOAuth(app)
    try:
        device = oauth.start_device_flow()
        _err(
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
            except BaseException as exc:  # handed to the main thread
                outcome["error"] = exc

        worker = threading.Thread(target=poll, name="sfoauth-device", daemon=True)
        progress = _Progress(
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
        _err(f"warning: could not read the identity URL ({exc})")
        return None


def _run_login(args: argparse.Namespace) -> int:
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
            _err(
                "warning: the token is printed in clear text; anyone who sees it can "
                "act as this user until it is revoked"
            )
            _err(who)
            _out(json.dumps(token.to_dict(), indent=2))
            return 0
        alias = args.alias or username or user_id
        if not alias:
            raise ConfigurationError("--alias", "is required (no username is known)")
        store = TokenFile(Path(args.store) if args.store else default_store_path())
        store.put(
            alias,
            {
                **summary,
                "client_id": oauth.app.client_id,
                "login_url": oauth.app.login_url,
                "allow_loopback": oauth.app.allow_loopback,
                "scopes": list(oauth.app.scopes),
                "saved_at": time.time(),
                "token": token.to_dict(),
            },
        )
        summary.update(alias=alias, store=str(store.path))
        if args.json:
            _out(json.dumps(summary, indent=2))
        else:
            _out(who)
            _out(f"Stored as {alias!r} in {store.path}")
    return 0


# ---------------------------------------------------------------------- token commands
def _stored_oauth(
    args: argparse.Namespace, connection: Mapping[str, Any], *, secret: str | None
) -> tuple[SalesforceOAuth, Token]:
    try:
        app = ConnectedApp(
            client_id=connection["client_id"],
            client_secret=secret,
            login_url=connection["login_url"],
            scopes=connection.get("scopes") or ("api", "refresh_token"),
            allow_loopback=bool(connection.get("allow_loopback")),
        )
        token = Token.from_dict(connection["token"])
    except (KeyError, TypeError, SFOAuthError):
        raise StorageError(
            "the stored connection is incomplete; log in again"
        ) from None
    return SalesforceOAuth(app), token


def _token_store(args: argparse.Namespace) -> TokenFile:
    return TokenFile(Path(args.store) if args.store else default_store_path())


def _run_introspect(args: argparse.Namespace) -> int:
    store = _token_store(args)
    _, connection = store.get(args.alias)
    secret = _client_secret(args, required=True, purpose="introspection")
    oauth, token = _stored_oauth(args, connection, secret=secret)
    with oauth:
        if args.which == "refresh":
            if not token.refresh_token:
                raise FlowError("the stored connection has no refresh token")
            result = oauth.introspect(token.refresh_token, hint="refresh_token")
        else:
            result = oauth.introspect(token, hint="access_token")
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
        _out(json.dumps(fields, indent=2))
        return 0
    _out(f"active: {'yes' if result.active else 'no'}")
    lines = [
        ("username", result.username),
        ("client_id", result.client_id),
        ("scopes", " ".join(result.scopes) or None),
        ("token_type", result.token_type),
        ("expires", _utc(result.exp)),
        ("issued", _utc(result.iat)),
    ]
    for name, value in lines:
        if value is not None:
            _out(f"{name}: {value}")
    return 0


def _utc(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def _failure_text(exc: SFOAuthError) -> str:
    if isinstance(exc, SalesforceUnavailableError):
        return f"Salesforce is unavailable: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _run_revoke(args: argparse.Namespace) -> int:
    store = _token_store(args)
    alias, connection = store.get(args.alias)
    secret = _client_secret(args, required=False, purpose="revocation")
    oauth, token = _stored_oauth(args, connection, secret=secret)
    failure: SFOAuthError | None = None
    already_invalid = False
    try:
        with oauth:
            # A refresh token takes every access token issued from it along.
            oauth.revoke(token.refresh_token or token.access_token)
    except InvalidTokenError:
        already_invalid = True  # nothing left to revoke: the goal is reached
    except SFOAuthError as exc:
        failure = exc
    finally:
        # Local tokens go even when Salesforce could not be told (SECURITY.md 19).
        store.delete(alias)
    if args.json:
        result: dict[str, Any] = {"alias": alias, "revoked": failure is None}
        result["removed"] = True
        if failure is not None:
            result["error"] = type(failure).__name__
        _out(json.dumps(result))
    if failure is not None:
        _err(
            f"sfoauth: the token of {alias!r} was NOT revoked at Salesforce "
            f"({_failure_text(failure)})."
        )
        _err(
            f"It was removed from {store.path} anyway, so this machine no longer "
            "holds it. The grant stays valid at Salesforce until it expires or is "
            "revoked there (Setup > Connected Apps OAuth Usage, or the user's "
            "Settings > Connected Apps)."
        )
        return 1
    if not args.json:
        if already_invalid:
            _out(
                f"The token of {alias!r} was already invalid at Salesforce; "
                f"removed it from {store.path}"
            )
        else:
            _out(f"Revoked the token of {alias!r} and removed it from {store.path}")
    return 0


def _run_userinfo(args: argparse.Namespace) -> int:
    store = _token_store(args)
    alias, connection = store.get(args.alias)
    secret = _client_secret(args, required=False, purpose="refresh")
    oauth, token = _stored_oauth(args, connection, secret=secret)
    with oauth:
        try:
            claims = oauth.userinfo(token)
        except InvalidTokenError:
            if not token.refresh_token:
                raise
            _err("The access token was refused; refreshing it once ...")
            token = oauth.refresh(token)
            store.put(
                alias, {**connection, "token": token.to_dict(), "saved_at": time.time()}
            )
            args.changed_locally = f"The refreshed token was saved to {store.path}."
            claims = oauth.userinfo(token)
    if args.json:
        _out(json.dumps(claims, indent=2))
        return 0
    for label, key in (
        ("username", "preferred_username"),
        ("name", "name"),
        ("email", "email"),
        ("user id", "user_id"),
        ("org id", "organization_id"),
    ):
        if claims.get(key) is not None:
            _out(f"{label}: {claims[key]}")
    return 0


_TOKEN_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "introspect": _run_introspect,
    "revoke": _run_revoke,
    "userinfo": _run_userinfo,
}


# ---------------------------------------------------------------------- parsers
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


def _store_options(parser: argparse.ArgumentParser) -> None:
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
    _store_options(common)
    return common


def add_login_parsers(subparsers: Any) -> None:
    """Add the ``login`` and ``token`` commands to ``sfoauth``'s sub-parsers.

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
    _store_options(token_common)
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
        help="OpenID Connect UserInfo (refreshes once if the token is refused)",
    )


# ---------------------------------------------------------------------- dispatch
def dispatch(args: argparse.Namespace) -> int:
    """Run a parsed ``login``/``token`` command (or ``advise --interactive``).

    Expected failures print one line on stderr, never a traceback or a secret.

    Returns:
        0 on success, 1 on a failed login or call, 2 on bad configuration, 130 when
        cancelled (Ctrl-C).
    """
    try:
        if args.command == "login":
            return _run_login(args)
        if args.command == "token":
            return _TOKEN_ACTIONS[args.token_action](args)
        if args.command == "advise" and getattr(args, "interactive", False):
            return run_interactive_advise()
        raise ValueError(f"not a login/token command: {args.command!r}")
    except ConfigurationError as exc:
        _err(f"sfoauth: configuration error: {exc}")
        return _EXIT_CONFIG
    except FlowCancelledError:
        _err("sfoauth: cancelled")
        return _EXIT_CANCELLED
    except KeyboardInterrupt:
        _err("\nsfoauth: cancelled")
        return _EXIT_CANCELLED
    except SFOAuthError as exc:
        _err(f"sfoauth: {_failure_text(exc)}")
        changed = getattr(args, "changed_locally", None)
        if changed is not None:
            _err(changed)
        elif isinstance(exc, SalesforceUnavailableError):
            _err("Nothing was changed locally.")
        return 1


# ---------------------------------------------------------------------- advise -i
_YES = ("y", "yes", "true", "1")
_NO = ("n", "no", "false", "0")
_UNKNOWN = ("?", "unknown", "u", "dont know", "don't know")


class _Aborted(Exception):
    pass


def run_interactive_advise(
    input_fn: Callable[[str], str] = input,
    print_fn: Callable[..., None] = print,
) -> int:
    """Ask the advisor's questions one by one, then print the recommended flow.

    Empty answers take the default shown in capitals; ``?`` answers "don't know" where
    that is allowed. The equivalent non-interactive command is printed at the end.

    Args:
        input_fn: reads one answer (``input``).
        print_fn: writes one block of text (``print``).

    Returns:
        0 when a recommendation was printed, 1 when the input ended early, 130 on
        Ctrl-C.
    """
    from .advisor import explain, recommend_flow

    def ask(question: str, choices: Mapping[str, Any], default: str) -> Any:
        labels = "/".join(c.upper() if c == default else c for c in choices)
        for _ in range(5):
            try:
                answer = input_fn(f"{question} [{labels}] ").strip().lower()
            except EOFError:
                raise _Aborted from None
            answer = answer or default
            for key, value in choices.items():
                aliases = {"yes": _YES, "no": _NO, "?": _UNKNOWN}.get(key, (key,))
                if answer in aliases or answer == key[:1] and key not in ("?",):
                    return value
            print_fn(f"  Please answer one of: {', '.join(choices)}")
        raise _Aborted

    yes_no = {"yes": True, "no": False}
    try:
        user_present = ask(
            "Does a person log in interactively when the app runs?", yes_no, "yes"
        )
        device = ask(
            "Is the client a device: none, input-constrained (TV, CLI on a headless "
            "box, IoT with no keyboard) or asset-tracking (identified to a backend)?",
            {"none": None, "input": "input_constrained", "asset": "asset_tracking"},
            "none",
        )
        can_keep_secret = ask(
            "Can the client keep a secret (server-side code, not a browser, mobile, "
            "desktop or CLI app)?",
            {"yes": True, "no": False, "?": None},
            "?",
        )
        headless = not user_present
        browser_only = False
        can_hold_private_key = True
        development_only = False
        external_idp = False
        if device is None and user_present:
            external_idp = ask(
                "Do your users already sign in with another identity provider (Okta, "
                "Auth0, Entra ID) whose tokens you can exchange?",
                yes_no,
                "no",
            )
        if device is None and user_present and not external_idp:
            browser_only = ask(
                "Does the app run entirely in the browser (no backend)?", yes_no, "no"
            )
        if device is None and headless:
            can_hold_private_key = ask(
                "Can the integration hold an RSA private key (and its certificate on "
                "the app)?",
                yes_no,
                "yes",
            )
        has_my_domain = ask(
            "Will it log in through the org's My Domain URL "
            "(https://<name>.my.salesforce.com)?",
            yes_no,
            "yes",
        )
        if device != "asset_tracking" and not (
            device == "input_constrained" and user_present
        ):
            development_only = ask(
                "Is this only a quick development script (security trade-offs "
                "accepted)?",
                yes_no,
                "no",
            )
    except _Aborted:
        print_fn("No answer; nothing recommended.")
        return 1
    except KeyboardInterrupt:
        print_fn("\nCancelled.")
        return _EXIT_CANCELLED

    recommendation = recommend_flow(
        can_keep_secret=can_keep_secret,
        user_present=user_present,
        device=device,
        can_hold_private_key=can_hold_private_key,
        has_my_domain=has_my_domain,
        development_only=development_only,
        browser_only=browser_only,
        external_idp=external_idp,
    )
    print_fn("")
    print_fn(explain(recommendation).rstrip("\n"))
    flags = ["sfoauth", "advise"]
    if can_keep_secret is not None:
        flags += ["--can-keep-secret", "yes" if can_keep_secret else "no"]
    if not user_present:
        flags.append("--no-user")
    if device is not None:
        flags += ["--device", device]
    if not can_hold_private_key:
        flags.append("--no-private-key")
    if not has_my_domain:
        flags.append("--no-my-domain")
    if development_only:
        flags.append("--development-only")
    if browser_only:
        flags.append("--browser-only")
    if external_idp:
        flags.append("--external-idp")
    print_fn("")
    print_fn("The same answer without questions: " + " ".join(flags))
    return 0
