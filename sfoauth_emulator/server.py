"""Serving the emulator on a real port, and its JSON configuration file.

Configuration file (JSON), every key optional::

    {
      "defaults": true,                 // start from the default org, users and apps
      "loopback_kind": "my_domain",     // or "login": what 127.0.0.1 acts as
      "loopback_hosts": {"localhost": "beta"},  // localhost serves org beta instead
      "host_binding": "family",         // or "off": any host serves any token
      "auto_approve": "jane@acme.com",  // scripted user for /services/oauth2/authorize
      "orgs":  [{"name": "beta", "org_id": "00DXX0000002xyz", "my_domain": "beta",
                 "sandbox_name": null, "username_password_blocked": false}],
      "users": [{"username": "bob@beta.com", "password": "pw", "user_id":
      "005XX0000002bob",
                 "org": "beta", "security_token": "TOKEN", "active": true}],
      "apps":  [{"name": "web", "is_refresh_token_rotation_enabled": true},
                {"name": "jwt", "certificate_file": "server.crt"},
                {"name": "mine", "client_id": "3MVG9Mine", "client_secret":
                "s3cr3t1234",
                 "callback_urls": ["http://localhost:8000/cb"], "scopes": ["api"]}]
    }

An entry naming an existing org/user/app updates its fields; a new one is created (orgs
need ``org_id``, users ``password`` and ``user_id``, apps ``client_id``). Field names
are those of :class:`EmulatedOrg`, :class:`EmulatedUser` and :class:`EmulatedApp`; an
app's ``certificate_file`` (relative to the configuration file) or ``certificate_pem``
is the X.509 certificate (or public key) checking its JWT bearer assertions, as
uploaded at Salesforce.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .crypto import check_certificate_pem
from .signals import stop_on_signals

if TYPE_CHECKING:
    from .app import SalesforceEmulator
    from .tls import EmulatorTLS

__all__ = [
    "apply_config",
    "banner",
    "emulator_from_config",
    "run",
    "serve_in_thread",
]


def _update(target: object, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if not hasattr(target, key):
            raise ValueError(f"{type(target).__name__} has no field {key!r}")
        current = getattr(target, key)
        if isinstance(current, set):
            value = set(value)
        elif isinstance(current, tuple):
            value = tuple(value)
        setattr(target, key, value)


def _certificate_entry(name: str, entry: dict[str, Any], base_dir: Path) -> None:
    """Read an app entry's ``certificate_file`` into ``certificate_pem`` and check it;
    a new certificate drops the emulator's copy of the old private key."""
    certificate_file = entry.pop("certificate_file", None)
    if certificate_file is not None:
        path = base_dir / Path(certificate_file).expanduser()
        try:
            entry["certificate_pem"] = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"app {name!r}: cannot read certificate_file {str(path)!r} ({exc})"
            ) from None
    if entry.get("certificate_pem") is not None:
        try:
            check_certificate_pem(entry["certificate_pem"])
        except ValueError as exc:
            raise ValueError(f"app {name!r}: certificate_pem: {exc}") from None
        entry.setdefault("private_key_pem", None)


def apply_config(
    emu: SalesforceEmulator, config: dict[str, Any], base_dir: str | Path = "."
) -> None:
    """Apply a configuration mapping (the file format above) to ``emu``.

    Args:
        emu: the emulator to change.
        config: the mapping.
        base_dir: what a relative ``certificate_file`` is relative to.

    Raises:
        ValueError: an unknown field, a missing required field or an unreadable or
            invalid certificate.
    """
    base_dir = Path(base_dir)
    if "loopback_kind" in config:
        emu.loopback_kind = config["loopback_kind"]
    for raw in config.get("orgs", []):
        entry = dict(raw)
        name = entry.pop("name")
        if name in emu.orgs:
            _update(emu.orgs[name], entry)
        else:
            emu.add_org(name, **entry)
    for raw in config.get("users", []):
        entry = dict(raw)
        username = entry.pop("username")
        existing = emu.state.user(username)
        if existing is not None:
            _update(existing, entry)
        else:
            emu.add_user(username, entry.pop("password"), **entry)
    if "loopback_hosts" in config:
        emu.loopback_hosts = config["loopback_hosts"]
    if "host_binding" in config:
        emu.host_binding = config["host_binding"]
    for raw in config.get("apps", []):
        entry = dict(raw)
        name = entry.pop("name")
        _certificate_entry(name, entry, base_dir)
        if name in emu.apps:
            _update(emu.apps[name], entry)
        else:
            emu.add_app(name, **entry)
    if config.get("auto_approve"):
        emu.auto_approve = config["auto_approve"]


def emulator_from_config(config_file: str | Path | None = None) -> SalesforceEmulator:
    """A :class:`SalesforceEmulator` built from a JSON configuration file (or
    defaults).

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not a JSON object, or not a valid configuration.
    """
    from .app import SalesforceEmulator

    config: dict[str, Any] = {}
    base_dir = Path(".")
    if config_file is not None:
        try:
            config = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{config_file}: not valid JSON ({exc})") from None
        if not isinstance(config, dict):
            raise ValueError(f"{config_file}: expected a JSON object")
        base_dir = Path(config_file).parent
    emu = SalesforceEmulator(defaults=bool(config.get("defaults", True)))
    apply_config(emu, config, base_dir)
    return emu


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port`` (0: a free port)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "pick another port (0: any free port)"
        ) from None
    return sock


def _origin(scheme: str, host: str, port: int) -> str:
    display = f"[{host}]" if ":" in host else host
    return f"{scheme}://{display}:{port}"


def _server(
    emu: SalesforceEmulator,
    host: str,
    port: int,
    tls: EmulatorTLS | None = None,
    log_level: str = "warning",
) -> Any:
    import uvicorn

    config = uvicorn.Config(
        emu.app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        ssl_certfile=str(tls.cert_file) if tls else None,
        ssl_keyfile=str(tls.key_file) if tls else None,
    )
    return uvicorn.Server(config)


@contextmanager
def serve_in_thread(
    emu: SalesforceEmulator,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: EmulatorTLS | None = None,
    log_level: str = "warning",
) -> Iterator[str]:
    """Run uvicorn in a daemon thread on ``host:port`` (0: a free port); yield the base
    URL (``https://`` with ``tls``: the emulator's server certificate and key).

    Raises:
        OSError: the port cannot be bound.
        RuntimeError: the server did not start within 10 seconds.
    """
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    server = _server(emu, host, bound_port, tls, log_level)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    emu.state.closing = False
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the emulator server did not start")
        time.sleep(0.01)
    try:
        yield _origin("https" if tls else "http", host, bound_port)
    finally:
        emu.state.closing = True
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        emu.state.closing = False


def banner(
    emu: SalesforceEmulator,
    base_url: str,
    tls_url: str | None = None,
    tls: EmulatorTLS | None = None,
) -> str:
    """What ``sfoauth emulator`` prints: where it listens, the user, every app's client
    id, (fake) secret and callback URLs, the JWT key files and, with TLS, the CA to
    trust."""
    from .constants import (
        DEFAULT_PASSWORD,
        DEFAULT_USERNAME,
        JWT_APP_CERTIFICATE_FILE,
        JWT_APP_CERTIFICATE_PEM,
        JWT_APP_PRIVATE_KEY_FILE,
    )

    lines = [
        "Salesforce emulator: a fake org for development (every secret below is fake)",
        f"  {base_url}  My Domain and login host of org {emu.org.name!r}",
    ]
    if tls_url:
        lines.append(f"  {tls_url}  the same over HTTPS (--tls)")
    lines += [f"  user: {DEFAULT_USERNAME} / {DEFAULT_PASSWORD}", "", "Apps:"]
    shared = [list(app.callback_urls) for app in emu.apps.values()]
    common = shared[0] if shared and all(c == shared[0] for c in shared) else None
    for app in emu.apps.values():
        secret = f"  client_secret={app.client_secret}" if app.client_secret else ""
        lines.append(f"  {app.name:<8} client_id={app.client_id}{secret}")
        if common is None:
            lines += [f"           callback {url}" for url in app.callback_urls]
    if common:
        lines.append("Callback URLs of every app (matched exactly, as at Salesforce):")
        lines += [f"  {url}" for url in common]
    jwt_app = emu.apps.get("jwt")
    if jwt_app is not None:
        lines += ["", "JWT bearer (app 'jwt'):"]
        if jwt_app.certificate_pem == JWT_APP_CERTIFICATE_PEM:
            lines += [
                f"  private key: {JWT_APP_PRIVATE_KEY_FILE}",
                f"  certificate: {JWT_APP_CERTIFICATE_FILE}",
                "  (a published test key: never register it with a real org)",
            ]
        elif jwt_app.certificate_pem:
            lines.append("  your uploaded certificate (sign with its private key)")
        approved = ", ".join(sorted(jwt_app.admin_approved_users)) or "nobody"
        lines += [
            f"  pre-authorized: {approved}",
            "  Use your own certificate (what you upload at Salesforce):",
            '    openssl req -new -x509 -key server.key -out server.crt -days 365 -subj "/CN=jwt"',
            "    sfoauth emulator --jwt-certificate server.crt",
            f"    or, while it runs: PATCH {base_url}/__emulator__/apps/jwt"
            ' {"certificate_pem": "-----BEGIN CERTIFICATE-----..."}',
        ]
    if tls is not None:
        ca = tls.ca_file
        lines += [
            "",
            f"TLS: trust the local CA {ca}",
            f"  Python/requests: export SSL_CERT_FILE={ca} REQUESTS_CA_BUNDLE={ca}",
            "    (they replace the default bundle of that process)",
            f"  Node (jsforce): export NODE_EXTRA_CA_CERTS={ca}",
            f'  httpx: httpx.Client(verify=ssl.create_default_context(cafile="{ca}"))',
        ]
    lines += [
        "",
        f"Control API: {base_url}/__emulator__/ (docs/emulator.md)",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def run(
    host: str = "127.0.0.1",
    port: int = 8999,
    config_file: str | Path | None = None,
    *,
    tls: bool = False,
    tls_port: int = 8443,
    tls_dir: str | Path | None = None,
    jwt_certificate: str | Path | None = None,
    out: TextIO | None = None,
) -> None:
    """Serve an emulator in the foreground until interrupted (the ``sfoauth emulator``
    CLI).

    Args:
        host: interface to bind (loopback by default).
        port: TCP port of the plain HTTP listener (0: a free port).
        config_file: optional JSON configuration (see the module docstring).
        tls: also listen with HTTPS on ``tls_port``.
        tls_port: the HTTPS port (0: a free port).
        tls_dir: where the local CA and the server certificate live (default
            :func:`~.tls.default_tls_dir`).
        jwt_certificate: a certificate (or public key) PEM file for the ``jwt`` app.
        out: where the banner goes (default standard output).

    Raises:
        OSError: a port cannot be bound or a file cannot be read.
        ValueError: an invalid configuration or certificate.
    """
    emu = emulator_from_config(config_file)
    if jwt_certificate is not None:
        emu.upload_certificate(
            "jwt", Path(jwt_certificate).expanduser().read_text(encoding="ascii")
        )
    tls_files: EmulatorTLS | None = None
    if tls:
        from .tls import EmulatorTLS

        hosts = [org.my_domain_host for org in emu.orgs.values()]
        tls_files = EmulatorTLS.create(tls_dir, names=hosts)
    stop = threading.Event()
    with stop_on_signals(stop), ExitStack() as stack:
        # Both listeners run in threads and are up before the banner says so; this
        # thread only waits for Ctrl-C / SIGTERM.
        base = stack.enter_context(serve_in_thread(emu, host, port, log_level="info"))
        emu.base_url = base
        tls_url: str | None = None
        if tls_files is not None:
            tls_url = stack.enter_context(
                serve_in_thread(emu, host, tls_port, tls=tls_files)
            )
        print(banner(emu, base, tls_url, tls_files), file=out or sys.stdout, flush=True)
        while not stop.wait(0.5):
            pass
