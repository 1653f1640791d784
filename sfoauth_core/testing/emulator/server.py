"""Serving the emulator on a real port, and its JSON configuration file.

Configuration file (JSON), every key optional::

    {
      "defaults": true,                 // start from the default org, users and apps
      "loopback_kind": "my_domain",     // or "login": what 127.0.0.1 acts as
      "auto_approve": "jane@acme.com",  // scripted user for /services/oauth2/authorize
      "orgs":  [{"name": "beta", "org_id": "00DXX0000002xyz", "my_domain": "beta",
                 "sandbox_name": null, "username_password_blocked": false}],
      "users": [{"username": "bob@beta.com", "password": "pw", "user_id":
      "005XX0000002bob",
                 "org": "beta", "security_token": "TOKEN", "active": true}],
      "apps":  [{"name": "web", "is_refresh_token_rotation_enabled": true},
                {"name": "mine", "client_id": "3MVG9Mine", "client_secret":
                "s3cr3t1234",
                 "callback_urls": ["http://localhost:8000/cb"], "scopes": ["api"]}]
    }

An entry naming an existing org/user/app updates its fields; a new one is created (orgs
need ``org_id``, users ``password`` and ``user_id``, apps ``client_id``). Field names
are those of :class:`EmulatedOrg`, :class:`EmulatedUser` and :class:`EmulatedApp`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import SalesforceEmulator

__all__ = ["apply_config", "emulator_from_config", "run", "serve_in_thread"]


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


def apply_config(emu: SalesforceEmulator, config: dict[str, Any]) -> None:
    """Apply a configuration mapping (the file format above) to ``emu``.

    Raises:
        ValueError: an unknown field or a missing required field.
    """
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
    for raw in config.get("apps", []):
        entry = dict(raw)
        name = entry.pop("name")
        if name in emu.apps:
            _update(emu.apps[name], entry)
        else:
            emu.add_app(name, **entry)
    if config.get("auto_approve"):
        emu.auto_approve = config["auto_approve"]


def emulator_from_config(config_file: str | Path | None = None) -> SalesforceEmulator:
    """A :class:`SalesforceEmulator` built from a JSON configuration file (or
    defaults)."""
    from .app import SalesforceEmulator

    config: dict[str, Any] = {}
    if config_file is not None:
        config = json.loads(Path(config_file).read_text(encoding="utf-8"))
    emu = SalesforceEmulator(defaults=bool(config.get("defaults", True)))
    apply_config(emu, config)
    return emu


def _server(emu: SalesforceEmulator, host: str, port: int) -> Any:
    import uvicorn

    config = uvicorn.Config(
        emu.app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


@contextmanager
def serve_in_thread(
    emu: SalesforceEmulator, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Run uvicorn in a daemon thread on ``host:port`` (0: a free port); yield the base
    URL.

    Raises:
        RuntimeError: the server did not start within 10 seconds.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = _server(emu, host, bound_port)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    emu.state.closing = False
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the emulator server did not start")
        time.sleep(0.01)
    display = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{display}:{bound_port}"
    finally:
        emu.state.closing = True
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        emu.state.closing = False


def run(
    host: str = "127.0.0.1", port: int = 8999, config_file: str | Path | None = None
) -> None:
    """Serve an emulator in the foreground until interrupted (the ``sfoauth emulator``
    CLI).

    Args:
        host: interface to bind (loopback by default).
        port: TCP port.
        config_file: optional JSON configuration (see the module docstring).
    """
    import uvicorn

    from .constants import DEFAULT_PASSWORD, DEFAULT_USERNAME

    emu = emulator_from_config(config_file)
    base = f"http://{host}:{port}"
    emu.base_url = base
    print(
        f"Salesforce emulator on {base} (org {emu.org.name}, My Domain and login host)"
    )
    print(f"  user: {DEFAULT_USERNAME} / {DEFAULT_PASSWORD}")
    for app in emu.apps.values():
        print(f"  app {app.name}: client_id={app.client_id}")
    uvicorn.run(emu.app, host=host, port=port, log_level="info", lifespan="off")
