"""The async OAuth client of sfoauth_django never crosses event loops (issue 10 item 2).

Under WSGI (``runserver``, gunicorn) asgiref runs each async view in a new event loop.
The runtime used to build one ``httpx.AsyncClient`` per process and reuse it on every
loop; after a token expiry the refresh failed with ``RuntimeError: Event loop is
closed``. Now the adapter's client factory is called once per loop and each client is
closed when its loop ends (the loopback reproduction is in
``tests/core/http/test_event_loops.py``).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync

from sfoauth_core import ConnectedApp
from sfoauth_django import _runtime


def test_async_oauth_builds_one_client_per_event_loop(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[httpx.AsyncClient] = []
    factory = _runtime.http_client

    def spy(app: ConnectedApp, *, asynchronous: bool) -> Any:
        client = factory(app, asynchronous=asynchronous)
        if asynchronous:
            built.append(client)
        return client

    monkeypatch.setattr(_runtime, "http_client", spy)
    oauth = _runtime.async_oauth()

    async def one_request() -> str:
        return str((await oauth.openid_configuration())["issuer"])

    issuers = {async_to_sync(one_request)() for _ in range(3)}  # three "requests"
    assert len(issuers) == 1
    assert len(built) == 3  # failed before the fix: one client for every loop
    assert all(client.is_closed for client in built)
