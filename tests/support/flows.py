"""Drive a flow generator by hand (no HTTP): feed canned responses, collect requests."""

from __future__ import annotations

import json
from typing import Any

from sfoauth_core import ConnectedApp
from sfoauth_core.flows._base import (
    Flow,
    HttpRequest,
    HttpResponse,
    Wait,
    compute_signature,
)

JSON_HEADERS = {"content-type": "application/json;charset=UTF-8"}


def json_response(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> HttpResponse:
    merged = dict(JSON_HEADERS)
    merged.update(headers or {})
    return HttpResponse(status, merged, json.dumps(body).encode())


def first_request(flow: Flow[Any]) -> HttpRequest:
    step = next(flow)
    assert isinstance(step, HttpRequest), step
    return step


def finish(flow: Flow[Any], response: HttpResponse) -> Any:
    try:
        step = flow.send(response)
    except StopIteration as stop:
        return stop.value
    raise AssertionError(f"flow did not finish; it yielded {step!r}")


def drive(
    flow: Flow[Any], responses: list[HttpResponse | Exception]
) -> tuple[Any, list[Any]]:
    """Run ``flow`` answering each request with the next canned response (or thrown error).

    Returns the result and the list of yielded steps (requests and waits).
    """
    steps: list[Any] = []
    pending = list(responses)
    try:
        step = next(flow)
        while True:
            steps.append(step)
            if isinstance(step, Wait):
                step = flow.send(None)
                continue
            answer = pending.pop(0)
            step = (
                flow.throw(answer)
                if isinstance(answer, Exception)
                else flow.send(answer)
            )
    except StopIteration as stop:
        return stop.value, steps


# ------------------------------------------------ a Connected App and a token reply

ID_URL = "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAA"


def make_app(**kw):
    defaults = dict(
        client_id="3MVG9Example",
        client_secret="1F2E3D4C5B6A",
        redirect_uri="https://app.example.com/callback",
        scopes=("api", "refresh_token"),
    )
    defaults.update(kw)
    return ConnectedApp(**defaults)


def token_body(secret="1F2E3D4C5B6A", **extra):
    body = {
        "access_token": "00DXX0000001abc!AQ0AQExampleAccessToken",
        "refresh_token": "5Aep861ExampleRefreshToken",
        "scope": "refresh_token api",
        "instance_url": "https://acme.my.salesforce.com",
        "id": ID_URL,
        "token_type": "Bearer",
        "issued_at": "1767225600123",
    }
    body["signature"] = compute_signature(secret, body["id"], body["issued_at"])
    body.update(extra)
    return body
