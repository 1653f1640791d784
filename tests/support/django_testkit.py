"""Test plumbing: the HTTP client factory that points sfoauth_django at the emulator.

``SFOAUTH["HTTP_CLIENT_FACTORY"] = "support.django_testkit.http_client"``; a fixture puts the
test's :class:`~sfoauth_core.testing.SalesforceEmulator` in :data:`CURRENT`. Setting
``CURRENT["down"] = True`` makes every request fail the way an unreachable Salesforce
does (``httpx.ConnectError``), for the 503 tests; a path (``"/id/keys"``) makes only the
requests to that path fail.
"""

from __future__ import annotations

from typing import Any

import httpx

from sfoauth_core import ConnectedApp

CURRENT: dict[str, Any] = {"emulator": None, "down": False}


def _refused(request: httpx.Request) -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused", request=request)


def _is_down(request: httpx.Request) -> bool:
    down = CURRENT["down"]
    return down is True or (isinstance(down, str) and request.url.path == down)


class _Switch(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if _is_down(request):
            raise _refused(request)
        return self.inner.handle_request(request)


class _AsyncSwitch(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if _is_down(request):
            raise _refused(request)
        return await self.inner.handle_async_request(request)


def http_client(
    app: ConnectedApp, *, asynchronous: bool
) -> httpx.Client | httpx.AsyncClient:
    emu = CURRENT["emulator"]
    if emu is None:
        raise RuntimeError("no emulator: use the `emu` fixture")
    if asynchronous:
        return httpx.AsyncClient(
            transport=_AsyncSwitch(emu.async_transport()), timeout=app.timeout
        )
    return httpx.Client(transport=_Switch(emu.transport()), timeout=app.timeout)
