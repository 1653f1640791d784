"""httpx transports that call the emulator in-process.

:class:`EmulatorAsyncTransport` is :class:`httpx.ASGITransport` plus the client's read
timeout (plain ``ASGITransport`` ignores timeouts, so a "hang" fault would hang the
test). :class:`EmulatorTransport` is its synchronous twin: each request runs the ASGI
app on a private event loop (``anyio.run``), so it works from any number of threads at
once, and from a thread that already runs an event loop (it then uses a worker thread).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import anyio
import httpx

__all__ = ["EmulatorAsyncTransport", "EmulatorTransport"]


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout") or {}
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return float(value) if value is not None else None


class EmulatorAsyncTransport(httpx.ASGITransport):
    """``httpx.ASGITransport`` that honours the request's read timeout.

    Raises:
        httpx.ReadTimeout: the app did not answer within the read timeout.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = _read_timeout(request)
        if timeout is None:
            return await super().handle_async_request(request)
        try:
            with anyio.fail_after(timeout):
                return await super().handle_async_request(request)
        except TimeoutError:
            raise httpx.ReadTimeout(
                "the emulator did not answer in time", request=request
            ) from None


class EmulatorTransport(httpx.BaseTransport):
    """A synchronous httpx transport running an ASGI app in-process (thread-safe).

    Args:
        app: the ASGI app (``SalesforceEmulator.app``).
        client: the ``(host, port)`` the app sees as the client address.
    """

    def __init__(
        self, app: Any, client: tuple[str, int] = ("127.0.0.1", 50000)
    ) -> None:
        self._app = app
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        content = request.read()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            transport = EmulatorAsyncTransport(app=self._app, client=self._client)
            inner = httpx.Request(
                request.method,
                request.url,
                headers=request.headers,
                content=content,
                extensions=request.extensions,
            )
            response = await transport.handle_async_request(inner)
            body = await response.aread()
            return response.status_code, list(response.headers.raw), body

        def run() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            return anyio.run(call)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            in_loop = False
        else:
            in_loop = True
        try:
            if in_loop:
                with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                    status, headers, body = pool.submit(run).result()
            else:
                status, headers, body = run()
        except httpx.TimeoutException as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from None
        return httpx.Response(status, headers=headers, content=body)
