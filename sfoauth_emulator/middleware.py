"""ASGI middleware: virtual-host routing, the request log, call counters and fault
injection.

It runs before the routes: it resolves the Host header (unknown host → 404), strips an
Experience Cloud site prefix from the path, buffers the body to learn the
``grant_type``, counts token-endpoint calls, applies a scripted :class:`~.state.Fault`,
and logs the request with its secrets masked. Control-API paths (``/__emulator__/…``)
skip logging and faults.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from . import operations
from .constants import CONTROL_PREFIX, TOKEN_PATH
from .state import EmulatorState, Fault, LogEntry
from .wire import mask_params

__all__ = ["EmulatorMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MAINTENANCE_HTML = (
    "<!DOCTYPE html><html><head><title>Salesforce - Maintenance</title></head><body>"
    "<h1>Down for Maintenance</h1><p>Salesforce is currently undergoing maintenance. "
    "Please try again later.</p></body></html>"
)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    return receive


async def _sniff_params(scope: Scope, body: bytes) -> dict[str, str]:
    params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
    if content_type.startswith("multipart/form-data"):
        request = Request(scope, _replay(body))
        try:
            form = await request.form()
        except Exception:  # noqa: BLE001 - malformed multipart: the handler answers
            return params
        for key, value in form.multi_items():
            if isinstance(value, str):
                params.setdefault(key, value)
        await form.close()
    elif body and not content_type.startswith("application/json"):
        for key, value in parse_qsl(
            body.decode("utf-8", "replace"), keep_blank_values=True
        ):
            params.setdefault(key, value)
    return params


def _fault_response(fault: Fault) -> Response:
    status = fault.effective_status()
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        retry = fault.retry_after
        headers["Retry-After"] = str(int(retry) if isinstance(retry, float) else retry)
    if fault.kind == "html":
        return HTMLResponse(_MAINTENANCE_HTML, status_code=status, headers=headers)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return PlainTextResponse(phrase, status_code=status, headers=headers)


class EmulatorMiddleware:
    """Host routing, logging and faults around the emulator's routes.

    Args:
        app: the wrapped ASGI app.
        state: the emulator state.
    """

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        resolved = operations.resolve_request_host(state, dict(scope))
        if resolved is None:
            await PlainTextResponse("Unknown host", status_code=404)(
                scope, receive, send
            )
            return
        ctx, path = resolved
        scope = dict(scope)
        scope["path"] = path
        scope["raw_path"] = path.encode("utf-8")
        scope["state"] = {**dict(scope.get("state") or {}), "ctx": ctx}
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        params = await _sniff_params(scope, body)
        is_token_call = path == TOKEN_PATH and scope.get("method") == "POST"
        grant_type = params.get("grant_type")
        if (
            is_token_call
            and not grant_type
            and params.get("response_type") == "device_code"
        ):
            grant_type = "device_code"
        started, generation, fault = operations.begin_request(
            state, path, grant_type, token_call=is_token_call
        )
        status = [0]
        logged = [False]

        def log() -> None:
            if logged[0]:
                return
            logged[0] = True
            entry = LogEntry(
                method=str(scope.get("method", "GET")),
                host=ctx.host,
                path=path,
                grant_type=grant_type if path == TOKEN_PATH else None,
                status=status[0],
                time=started,
                params=mask_params(params),
            )
            operations.log_request(state, entry)

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get(
                "more_body", False
            ):
                # Logged before the client can have the whole answer, so a test that
                # reads the log right after a response over a real socket finds it.
                log()
            await send(message)

        try:
            await self._dispatch(scope, body, send_logged, fault, generation)
        finally:
            log()

    async def _dispatch(
        self,
        scope: Scope,
        body: bytes,
        send: Send,
        fault: Fault | None,
        generation: int,
    ) -> None:
        receive = _replay(body)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.kind == "latency":
            await anyio.sleep(fault.seconds if fault.seconds is not None else 1.0)
            await self.app(scope, receive, send)
            return
        if fault.kind == "hang":
            await self._hang(
                fault.seconds if fault.seconds is not None else 600.0, generation
            )
            await PlainTextResponse("Gateway Timeout", status_code=504)(
                scope, receive, send
            )
            return
        if fault.kind == "drop_after_rotation":

            async def discard(message: Message) -> None:
                return None

            await self.app(scope, receive, discard)
        await _fault_response(fault)(scope, receive, send)

    async def _hang(self, seconds: float, generation: int) -> None:
        # Sleep in small steps so that reset() or shutdown ends the hang early; a client
        # timeout cancels the task directly.
        with anyio.move_on_after(seconds):
            while self.state.generation == generation and not self.state.closing:
                await anyio.sleep(0.05)
