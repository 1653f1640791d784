"""Salesforce's device flow (reference 4.10; SECURITY.md item 16)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    AccessDeniedError,
    ConfigurationError,
    DeviceFlowTimeoutError,
    ExpiredTokenError,
    FlowCancelledError,
    FlowError,
    InvalidClientIdError,
    MalformedResponseError,
    SalesforceUnavailableError,
    SFOAuthError,
    TransportError,
    UnsupportedGrantTypeError,
    UntrustedHostError,
)
from sfoauth_core.flows._base import HttpRequest, HttpResponse, Wait
from sfoauth_core.flows.device import poll_device_flow, start_device_flow
from sfoauth_core.tokens import DeviceAuthorization

CLIENT_ID = "3MVG9Example"
SECRET = "1F2E3D4C5B6A"
DEVICE_CODE = "M01WRzlFeGFtcGxlOzEwLjEuMi4zOzE3NjcyMjU2MDAxMjM7WDFEOVNFRVQ="
TOKEN_URL = "https://login.salesforce.com/services/oauth2/token"
ID_URL = "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAAA"
ISSUED_AT = "1767225600123"
LEG1 = {
    "device_code": DEVICE_CODE,
    "user_code": "X1D9SEET",
    "verification_uri": "https://login.salesforce.com/setup/connect",
    "interval": 5,
}


def _json(status: int, body: Any) -> HttpResponse:
    return HttpResponse(
        status,
        {"content-type": "application/json;charset=UTF-8"},
        json.dumps(body).encode(),
    )


def _error(code: str, description: str = "") -> HttpResponse:
    return _json(400, {"error": code, "error_description": description})


PENDING = _error("authorization_pending", "authorization pending")
SLOW_DOWN = _error("slow_down", "slow down")


def _token_body() -> dict[str, Any]:
    mac = hmac.new(SECRET.encode(), (ID_URL + ISSUED_AT).encode(), hashlib.sha256)
    return {
        "access_token": "00DXX0000001abc!AQ0AQExample",
        "refresh_token": "5Aep861Example",
        "signature": base64.b64encode(mac.digest()).decode(),
        "scope": "refresh_token api",
        "instance_url": "https://acme.my.salesforce.com",
        "id": ID_URL,
        "token_type": "Bearer",
        "issued_at": ISSUED_AT,
    }


@pytest.fixture
def app() -> ConnectedApp:
    return ConnectedApp(client_id=CLIENT_ID, client_secret=SECRET)


@pytest.fixture
def device() -> DeviceAuthorization:
    return DeviceAuthorization(
        device_code=DEVICE_CODE,
        user_code="X1D9SEET",
        verification_uri="https://login.salesforce.com/setup/connect",
        interval=5,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _start(app: ConnectedApp, **kwargs: Any) -> tuple[Any, HttpRequest]:
    flow = start_device_flow(app, **kwargs)
    return flow, next(flow)


def _leg1(app: ConnectedApp, body: dict[str, Any]) -> DeviceAuthorization:
    flow, _ = _start(app)
    with pytest.raises(StopIteration) as stop:
        flow.send(_json(200, body))
    return stop.value.value


def _poll_step(flow: Any, response: HttpResponse) -> Wait:
    """Answer a poll and return the next Wait."""
    step = flow.send(response)
    assert isinstance(step, Wait)
    return step


# ---------------------------------------------------------------------- leg 1
def test_leg1_request_fields(app):
    _, request = _start(app)
    assert request.method == "POST"
    assert request.url == TOKEN_URL
    assert request.params is None
    assert dict(request.form) == {
        "response_type": "device_code",
        "client_id": CLIENT_ID,
        "scope": "api refresh_token",
    }


def test_leg1_explicit_scopes(app):
    _, request = _start(app, scopes=["refresh_token", "web", "api"])
    assert request.form["scope"] == "refresh_token web api"


def test_leg1_parses_the_sample(app):
    result = _leg1(app, LEG1)
    assert result.device_code == DEVICE_CODE
    assert result.user_code == "X1D9SEET"
    assert result.verification_uri == "https://login.salesforce.com/setup/connect"
    assert result.interval == 5
    assert DEVICE_CODE not in repr(result)
    assert "device_code" not in result.raw


@pytest.mark.parametrize("interval", [None, "soon", 0, -3, True, [5]])
def test_leg1_missing_or_invalid_interval_defaults_to_5(app, interval):
    body = dict(LEG1)
    if interval is None:
        del body["interval"]
    else:
        body["interval"] = interval
    assert _leg1(app, body).interval == 5


def test_leg1_keeps_a_longer_interval(app):
    assert _leg1(app, {**LEG1, "interval": 12}).interval == 12


@pytest.mark.parametrize("field", ["device_code", "user_code", "verification_uri"])
def test_leg1_missing_field_is_malformed(app, field):
    body = {k: v for k, v in LEG1.items() if k != field}
    with pytest.raises(MalformedResponseError) as excinfo:
        _leg1(app, body)
    assert field in str(excinfo.value)


def test_leg1_wrong_type_is_malformed(app):
    with pytest.raises(MalformedResponseError):
        _leg1(app, {**LEG1, "user_code": 12345678})


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example.com/setup/connect",
        "http://login.salesforce.com/setup/connect",
        "https://user@evil.example.com@login.salesforce.com/setup/connect",
        "javascript:alert(1)",
    ],
)
def test_leg1_untrusted_verification_uri(app, uri):
    with pytest.raises(UntrustedHostError):
        _leg1(app, {**LEG1, "verification_uri": uri})


def test_leg1_error_is_typed(app):
    flow, _ = _start(app)
    with pytest.raises(UnsupportedGrantTypeError):
        flow.send(_error("unsupported_grant_type", "grant type not supported"))


def test_leg1_html_page_is_malformed(app):
    flow, _ = _start(app)
    with pytest.raises(MalformedResponseError):
        flow.send(HttpResponse(200, {"content-type": "text/html"}, b"<html>x</html>"))


def test_leg1_5xx_is_salesforce_unavailable(app):
    flow, _ = _start(app)
    with pytest.raises(SalesforceUnavailableError):
        flow.send(HttpResponse(503, {"content-type": "text/html"}, b"<html>x</html>"))


# ---------------------------------------------------------------------- leg 2
def test_pending_pending_slow_down_then_success(app, device):
    clock = FakeClock()
    flow = poll_device_flow(app, device, clock=clock)

    waits = [next(flow).seconds]
    request = flow.send(None)
    assert isinstance(request, HttpRequest)
    assert request.method == "POST"
    assert request.url == TOKEN_URL
    assert dict(request.form) == {
        "grant_type": "device",
        "client_id": CLIENT_ID,
        "code": DEVICE_CODE,
    }
    assert DEVICE_CODE not in repr(request)

    for response in (PENDING, PENDING, SLOW_DOWN, PENDING):
        waits.append(_poll_step(flow, response).seconds)
        assert isinstance(flow.send(None), HttpRequest)
    assert waits == [5, 5, 5, 10, 10]  # slow_down adds 5 s for every later poll

    with pytest.raises(StopIteration) as stop:
        flow.send(_json(200, _token_body()))
    token = stop.value.value
    assert token.access_token == "00DXX0000001abc!AQ0AQExample"
    assert token.refresh_token == "5Aep861Example"
    assert token.user_id == "005XX000001xyzQAAA"


def test_slow_down_accumulates(app, device):
    flow = poll_device_flow(app, device, clock=FakeClock())
    next(flow)
    flow.send(None)
    assert _poll_step(flow, SLOW_DOWN).seconds == 10
    flow.send(None)
    assert _poll_step(flow, SLOW_DOWN).seconds == 15
    flow.send(None)
    assert _poll_step(flow, PENDING).seconds == 15


@pytest.mark.parametrize(
    ("response", "error_type"),
    [
        (_error("access_denied", "end-user denied authorization"), AccessDeniedError),
        (_error("expired_token", "the device code expired"), ExpiredTokenError),
        (
            _error("invalid_client_id", "client identifier invalid"),
            InvalidClientIdError,
        ),
    ],
)
def test_terminal_errors_stop_polling(app, device, response, error_type):
    flow = poll_device_flow(app, device, clock=FakeClock())
    next(flow)
    flow.send(None)
    with pytest.raises(error_type) as excinfo:
        flow.send(response)
    assert DEVICE_CODE not in str(excinfo.value)
    with pytest.raises(StopIteration):
        next(flow)


def test_timeout_with_a_fake_clock(app, device):
    clock = FakeClock()
    flow = poll_device_flow(app, device, timeout=12, clock=clock)
    assert next(flow).seconds == 5
    clock.now += 5
    flow.send(None)
    assert _poll_step(flow, PENDING).seconds == 5
    clock.now += 5
    flow.send(None)
    # 2 s are left: the last wait is cut to the deadline, and then the flow gives up.
    assert _poll_step(flow, PENDING).seconds == 2
    clock.now += 2
    with pytest.raises(DeviceFlowTimeoutError) as excinfo:
        flow.send(None)
    assert DEVICE_CODE not in str(excinfo.value)


def test_timeout_discovered_after_a_slow_answer(app, device):
    clock = FakeClock()
    flow = poll_device_flow(app, device, timeout=10, clock=clock)
    next(flow)
    clock.now += 5
    flow.send(None)
    clock.now += 30  # the answer itself took long
    with pytest.raises(DeviceFlowTimeoutError):
        flow.send(PENDING)


def test_cancel_before_a_poll(app, device):
    cancelled = False
    flow = poll_device_flow(app, device, clock=FakeClock(), cancel=lambda: cancelled)
    next(flow)
    flow.send(None)
    _poll_step(flow, PENDING)
    cancelled = True
    with pytest.raises(FlowCancelledError):
        flow.send(None)


def test_cancel_before_the_first_wait(app, device):
    flow = poll_device_flow(app, device, clock=FakeClock(), cancel=lambda: True)
    with pytest.raises(FlowCancelledError):
        next(flow)


def test_transport_errors_back_off_and_continue(app, device):
    flow = poll_device_flow(app, device, clock=FakeClock())
    next(flow)
    flow.send(None)
    waits = []
    for _ in range(4):
        step = flow.throw(TransportError("read timeout"))
        assert isinstance(step, Wait)
        waits.append(step.seconds)
        assert isinstance(flow.send(None), HttpRequest)
    assert waits == [10, 20, 40, 60]  # doubling, capped at 60 s
    # An answer resets the backoff to the interval.
    assert _poll_step(flow, PENDING).seconds == 5


def test_5xx_backs_off_like_a_network_error(app, device):
    flow = poll_device_flow(app, device, clock=FakeClock())
    next(flow)
    flow.send(None)
    assert _poll_step(flow, _json(503, {"message": "down"})).seconds == 10
    flow.send(None)
    assert _poll_step(flow, PENDING).seconds == 5


def test_missing_interval_defaults_to_5(app):
    device = DeviceAuthorization(
        device_code=DEVICE_CODE,
        user_code="X1D9SEET",
        verification_uri="https://login.salesforce.com/setup/connect",
        interval=0,
    )
    assert next(poll_device_flow(app, device, clock=FakeClock())).seconds == 5


def test_the_client_secret_is_never_sent(app, device):
    flow = poll_device_flow(app, device, clock=FakeClock())
    next(flow)
    assert "client_secret" not in flow.send(None).form


def test_malformed_success_is_an_error(app, device):
    flow = poll_device_flow(app, device, clock=FakeClock())
    next(flow)
    flow.send(None)
    with pytest.raises(SFOAuthError) as excinfo:
        flow.send(HttpResponse(200, {"content-type": "text/html"}, b"<html></html>"))
    assert DEVICE_CODE not in str(excinfo.value)


def test_needs_a_device_code(app):
    empty = DeviceAuthorization(
        device_code="", user_code="X", verification_uri="https://login.salesforce.com"
    )
    with pytest.raises(FlowError):
        next(poll_device_flow(app, empty, clock=FakeClock()))


@pytest.mark.parametrize("timeout", [0, -1])
def test_timeout_must_be_positive(app, device, timeout):
    with pytest.raises(ConfigurationError):
        next(poll_device_flow(app, device, timeout=timeout, clock=FakeClock()))


def test_leg1_without_scopes_sends_no_scope():
    bare = ConnectedApp(client_id=CLIENT_ID, scopes=())
    _, request = _start(bare)
    assert dict(request.form) == {
        "response_type": "device_code",
        "client_id": CLIENT_ID,
    }


def test_leg1_control_characters_are_malformed(app):
    with pytest.raises(MalformedResponseError):
        _leg1(app, {**LEG1, "user_code": "X1D9\x1bSEET"})


def test_an_unexpected_non_error_answer_stops_polling(app, device):
    flow = poll_device_flow(app, device, clock=FakeClock())
    next(flow)
    flow.send(None)
    with pytest.raises(MalformedResponseError) as excinfo:
        flow.send(_json(202, {"status": "accepted"}))
    assert excinfo.value.status_code == 202


def test_the_driver_must_answer_a_request(app, device):
    flow = poll_device_flow(app, device, clock=FakeClock())
    next(flow)
    flow.send(None)
    with pytest.raises(TypeError):
        flow.send(None)
