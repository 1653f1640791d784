"""Run any sans-IO flow over httpx: one sync driver, one async driver.

A flow yields :class:`HttpRequest` or :class:`Wait`; the driver performs it and the plan
kernel (:mod:`sfoauth_core._plans`) sends the result back. Transport failures are thrown into the flow so flows can decide to retry:
no answer at all (connection refused or reset, DNS, TLS, timeouts) as
``SalesforceUnavailableError``, anything else httpx refuses as ``TransportError``; a flow
that does not retry passes them on, so callers never see a raw ``httpx`` exception. Redirects are never followed and bodies are capped (SECURITY.md items 10-11).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from functools import partial
from typing import TypeVar, cast

import anyio
import httpx

from .._plans import adrive, drive
from ..exceptions import SalesforceUnavailableError, TransportError
from ..flows._base import MAX_RESPONSE_BYTES, Flow, HttpRequest, HttpResponse, Wait
from ..tokens import MaskedBytes

__all__ = ["run_async", "run_sync"]

T = TypeVar("T")


def _build(
    client: httpx.Client | httpx.AsyncClient, step: HttpRequest
) -> httpx.Request:
    return client.build_request(
        step.method,
        step.url,
        headers=dict(step.headers),
        data=dict(step.form) if step.form is not None else None,
        params=dict(step.params) if step.params is not None else None,
    )


def _to_response(response: httpx.Response, content: bytes) -> HttpResponse:
    if response.is_redirect:
        raise TransportError(
            f"unexpected redirect (HTTP {response.status_code}); redirects are not followed"
        )
    return HttpResponse(
        status_code=response.status_code,
        headers=dict(response.headers.items()),  # httpx yields lower-case names
        content=MaskedBytes(content),  # a token body: masked in frame locals
        url=str(response.request.url),
    )


def _fits(raw: httpx.Response) -> bool:
    """True when the body is declared small enough to read at once.

    A declared length over the cap fails before anything is read; the transport
    (h11) stops at the declared length, so the read cannot overrun it.
    """
    declared = raw.headers.get("content-length", "")
    if not declared.isdigit() or "content-encoding" in raw.headers:
        return False  # unknown length, or decoding may expand it: stream and count
    if int(declared) > MAX_RESPONSE_BYTES:
        raise _too_large()
    return True


def _too_large() -> TransportError:
    return TransportError(f"response body exceeds {MAX_RESPONSE_BYTES} bytes")


def _failure(exc: httpx.HTTPError) -> TransportError:
    """The typed error thrown into a flow for an httpx failure."""
    # httpx messages can include the URL (never secrets: credentials are in bodies).
    detail = f"{type(exc).__name__}: {exc}"
    error = (
        SalesforceUnavailableError(f"Salesforce did not answer ({detail})")
        if isinstance(
            exc, httpx.TransportError
        )  # no HTTP answer: network, TLS, timeout
        else TransportError(detail)
    )
    # No connection, so nothing was sent: a refresh presenting a refresh token is not in
    # flight at Salesforce (the token manager may retry it at once).
    error.request_sent = not isinstance(
        exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
    )
    # Not chained to the httpx error: its frames hold the request body (form values
    # with credentials) as locals, and error reports print chained tracebacks.
    error.__suppress_context__ = True
    return error


# The body is read in its own frame, gone once it returns: a later traceback through
# the driver holds the body only as the masked ``HttpResponse.content``.
def _read(raw: httpx.Response) -> bytes:
    if _fits(raw):  # Content-Length known and small: one read
        return raw.read()
    body = bytearray()
    for chunk in raw.iter_bytes():
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise _too_large()
    return bytes(body)


async def _aread(raw: httpx.Response) -> bytes:
    if _fits(raw):
        return await raw.aread()
    body = bytearray()
    # aclosing: stopping early must close the stream at once (trio).
    chunks = cast("AsyncGenerator[bytes, None]", raw.aiter_bytes())
    async with aclosing(chunks):
        async for chunk in chunks:
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                raise _too_large()
    return bytes(body)


def _send(client: httpx.Client, step: HttpRequest | Wait) -> HttpResponse | None:
    """Perform one step of a flow over a synchronous client (the kernel's perform)."""
    if isinstance(step, Wait):
        time.sleep(max(step.seconds, 0.0))
        return None
    try:
        raw = client.send(_build(client, step), stream=True, follow_redirects=False)
        try:
            return _to_response(raw, _read(raw))
        finally:
            raw.close()
    except httpx.HTTPError as exc:
        failure = _failure(exc)
    raise failure  # outside the handler: not even an implicit link to the httpx error


async def _asend(
    client: httpx.AsyncClient, step: HttpRequest | Wait
) -> HttpResponse | None:
    """Async twin of :func:`_send`."""
    if isinstance(step, Wait):
        await anyio.sleep(max(step.seconds, 0.0))
        return None
    try:
        request = _build(client, step)
        raw = await client.send(request, stream=True, follow_redirects=False)
        try:
            return _to_response(raw, await _aread(raw))
        finally:
            await raw.aclose()
    except httpx.HTTPError as exc:
        failure = _failure(exc)
    raise failure


def run_sync(flow: Flow[T], client: httpx.Client) -> T:
    """Drive ``flow`` to completion over a synchronous httpx client."""
    return drive(flow, partial(_send, client), throws=TransportError)


async def run_async(flow: Flow[T], client: httpx.AsyncClient) -> T:
    """Drive ``flow`` to completion over an asynchronous httpx client (asyncio or trio)."""
    return await adrive(flow, partial(_asend, client), throws=TransportError)
