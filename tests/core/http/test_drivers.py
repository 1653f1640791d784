from __future__ import annotations

import httpx
import pytest

from sfoauth_core.exceptions import TransportError
from sfoauth_core.flows._base import (
    MAX_RESPONSE_BYTES,
    Flow,
    HttpRequest,
    HttpResponse,
    Wait,
)
from sfoauth_core.http import _drivers
from sfoauth_core.http._drivers import run_async, run_sync

URL = "https://login.salesforce.com/services/oauth2/token"


def echo_flow() -> Flow[list[object]]:
    seen: list[object] = []
    yield Wait(0.25)
    try:
        response = yield HttpRequest("POST", URL, {"X-Test": "1"}, form={"a": "b"})
        assert isinstance(response, HttpResponse)
        seen.append(
            (response.status_code, response.content, response.headers["x-reply"])
        )
    except TransportError as exc:
        seen.append(str(exc))
    return seen


def handler(request: httpx.Request) -> httpx.Response:
    assert request.headers["x-test"] == "1"
    assert request.content == b"a=b"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return httpx.Response(200, headers={"X-Reply": "yes"}, content=b"ok")


def test_sync_driver_sends_form_and_sleeps(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(_drivers.time, "sleep", slept.append)
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        assert run_sync(echo_flow(), client) == [(200, b"ok", "yes")]
    assert slept == [0.25]


@pytest.mark.anyio
async def test_async_driver(anyio_backend):
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        assert await run_async(echo_flow(), client) == [(200, b"ok", "yes")]


def redirecting(request: httpx.Request) -> httpx.Response:
    return httpx.Response(302, headers={"Location": "https://evil.example/steal"})


def huge(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"x" * (MAX_RESPONSE_BYTES + 1))


def failing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectTimeout("timed out", request=request)


@pytest.mark.parametrize(
    "transport_handler, message",
    [(redirecting, "redirect"), (huge, "exceeds"), (failing, "ConnectTimeout")],
)
def test_sync_failures_are_thrown_into_the_flow(
    monkeypatch, transport_handler, message
):
    monkeypatch.setattr(_drivers.time, "sleep", lambda s: None)
    calls: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return transport_handler(request)

    with httpx.Client(transport=httpx.MockTransport(recording)) as client:
        (result,) = run_sync(echo_flow(), client)
    assert message in str(result)
    assert len(calls) == 1  # the redirect was not followed


@pytest.mark.anyio
@pytest.mark.parametrize(
    "transport_handler, message",
    [(redirecting, "redirect"), (huge, "exceeds"), (failing, "ConnectTimeout")],
)
async def test_async_failures_are_thrown_into_the_flow(
    anyio_backend, transport_handler, message
):
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(transport_handler)
    ) as client:
        (result,) = await run_async(echo_flow(), client)
    assert message in str(result)


def test_uncaught_transport_error_propagates():
    def flow() -> Flow[None]:
        yield HttpRequest("GET", URL)

    with httpx.Client(transport=httpx.MockTransport(failing)) as client:
        with pytest.raises(TransportError):
            run_sync(flow(), client)
