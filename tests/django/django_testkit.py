"""Test plumbing: the HTTP client factory that points sfoauth_django at the emulator.

``SFOAUTH["HTTP_CLIENT_FACTORY"] = "django_testkit.http_client"``; a fixture puts the
test's :class:`~sfoauth_core.testing.SalesforceEmulator` in :data:`CURRENT`.
"""

from __future__ import annotations

from typing import Any

import httpx

from sfoauth_core import ConnectedApp

CURRENT: dict[str, Any] = {"emulator": None}


def http_client(
    app: ConnectedApp, *, asynchronous: bool
) -> httpx.Client | httpx.AsyncClient:
    emu = CURRENT["emulator"]
    if emu is None:
        raise RuntimeError("no emulator: use the `emu` fixture")
    if asynchronous:
        return httpx.AsyncClient(transport=emu.async_transport(), timeout=app.timeout)
    return httpx.Client(transport=emu.transport(), timeout=app.timeout)
