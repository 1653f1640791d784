"""Drive the ``sfoauth`` command in-process for the CLI tests: run it, read the token
file it wrote, log in through the web flow (the test's ``browser`` fixture stands in for
the person's browser)."""

from __future__ import annotations

from pathlib import Path

from sfoauth_core.cli import main
from sfoauth_core.storage import FileTokenStore
from sfoauth_core.testing import WEB_APP_CLIENT_ID
from support.browser import free_port

USER = "jane@acme.com"


def run(*argv: str) -> int:
    return main(list(argv))


def stored(path: Path) -> dict[str, dict]:
    """What the token file holds: each alias's details, its token and record."""
    store = FileTokenStore(path)
    connections = {}
    for alias in store.keys():
        record = store.get(alias)
        assert record is not None
        connections[alias] = {
            **(store.details(alias) or {}),
            "token": record.token.to_dict(),
            "grant": record.grant,
            "status": record.status,
        }
    return connections


def common(base_url: str, store: Path, client_id: str) -> list[str]:
    return [
        "--client-id",
        client_id,
        "--instance-url",
        base_url,
        "--allow-loopback",
        "--store",
        str(store),
    ]


def web_login(emu, base_url, store, *extra, app="web", client_id=WEB_APP_CLIENT_ID):
    port = free_port()
    emu.apps[app].callback_urls.append(f"http://localhost:{port}/OauthRedirect")
    return run(
        "login",
        "web",
        *common(base_url, store, client_id),
        "--port",
        str(port),
        "--timeout",
        "5",
        *extra,
    )
