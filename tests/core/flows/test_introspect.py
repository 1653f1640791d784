"""Introspection: client auth required, hint checked, RFC 7662 parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    ConfigurationError,
    FlowError,
    InvalidClientError,
    MalformedResponseError,
    UntrustedHostError,
)
from sfoauth_core.flows._base import HttpRequest, HttpResponse, Wait
from sfoauth_core.flows.introspect import introspect_token
from sfoauth_core.tokens import Introspection, Token

ACCESS = "00DXX0000001abc!AQ0AQExampleAccessToken"
REFRESH = "5Aep861ExampleRefreshToken"
ACTIVE = {
    "active": True,
    "scope": "api refresh_token",
    "client_id": "3MVG9Example",
    "username": "jane@acme.com",
    "sub": "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAA",
    "token_type": "access_token",
    "exp": 1767229200,
    "iat": 1767225600,
    "nbf": 1767225600,
}


@pytest.fixture
def app() -> ConnectedApp:
    return ConnectedApp(client_id="3MVG9Example", client_secret="1F2E3D4C5B6A")


def json_response(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(
        status, {"content-type": "application/json"}, json.dumps(body).encode()
    )


def run(app, token, body, **kwargs):
    flow = introspect_token(app, token, **kwargs)
    next(flow)
    with pytest.raises(StopIteration) as stop:
        flow.send(json_response(body))
    return stop.value.value


@pytest.mark.parametrize(
    ("login_url", "expected"),
    [
        (
            "https://login.salesforce.com",
            "https://login.salesforce.com/services/oauth2/introspect",
        ),
        (
            "https://acme.my.salesforce.com",
            "https://acme.my.salesforce.com/services/oauth2/introspect",
        ),
        (
            "https://acme.my.site.com/customers",
            "https://acme.my.site.com/customers/services/oauth2/introspect",
        ),
    ],
)
def test_request_per_host(login_url, expected):
    app = ConnectedApp(
        client_id="3MVG9Example", client_secret="1F2E3D4C5B6A", login_url=login_url
    )
    req = next(introspect_token(app, ACCESS))
    assert isinstance(req, HttpRequest)
    assert req.method == "POST"
    assert req.url == expected
    assert req.headers["Accept"] == "application/json"
    assert dict(req.form) == {
        "token": ACCESS,
        "token_type_hint": "access_token",
        "client_id": "3MVG9Example",
        "client_secret": "1F2E3D4C5B6A",
    }
    assert req.params is None
    assert ACCESS not in req.url and "1F2E3D4C5B6A" not in req.url


def test_refresh_hint_sends_the_refresh_token(app):
    token = Token(access_token=ACCESS, refresh_token=REFRESH)
    req = next(introspect_token(app, token, hint="refresh_token"))
    assert req.form["token"] == REFRESH
    assert req.form["token_type_hint"] == "refresh_token"


def test_access_hint_with_a_token_object(app):
    token = Token(access_token=ACCESS, refresh_token=REFRESH)
    assert next(introspect_token(app, token)).form["token"] == ACCESS


def test_refresh_hint_without_a_refresh_token(app):
    with pytest.raises(FlowError, match="refresh token"):
        next(introspect_token(app, Token(access_token=ACCESS), hint="refresh_token"))


@pytest.mark.parametrize("hint", ["Bearer", "id_token", "", "ACCESS_TOKEN"])
def test_unknown_hint_is_a_configuration_error(app, hint):
    with pytest.raises(ConfigurationError, match="hint"):
        next(introspect_token(app, ACCESS, hint=hint))


def test_client_secret_is_required():
    app = ConnectedApp(client_id="3MVG9Example")
    with pytest.raises(ConfigurationError, match="client_secret"):
        next(introspect_token(app, ACCESS))


def test_empty_token(app):
    with pytest.raises(FlowError):
        next(introspect_token(app, ""))


def test_untrusted_introspect_url(app):
    with pytest.raises(UntrustedHostError):
        next(introspect_token(app, ACCESS, introspect_url="https://evil.example/i"))


def test_active_response_is_parsed(app):
    result = run(app, ACCESS, {**ACTIVE, "custom": "x"})
    assert result == Introspection(
        active=True,
        scopes=("api", "refresh_token"),
        client_id="3MVG9Example",
        username="jane@acme.com",
        sub="https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAA",
        token_type="access_token",
        exp=1767229200,
        iat=1767225600,
        nbf=1767225600,
    )
    assert result.raw == {"custom": "x"}


def test_minimal_active_response(app):
    result = run(app, ACCESS, {"active": True})
    assert result.active is True
    assert result.scopes == ()
    assert result.exp is None and result.client_id is None


def test_inactive_response(app):
    result = run(app, ACCESS, {"active": False})
    assert result == Introspection(active=False)
    assert result.scopes == () and result.exp is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1767229200", 1767229200),
        (1767229200.0, 1767229200),
        (1767229200123, 1767229200),
    ],
)
def test_exp_forms(app, value, expected):
    assert run(app, ACCESS, {"active": True, "exp": value}).exp == expected


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"active": "true"},
        {"active": 1},
        {"active": True, "scope": ["api"]},
        {"active": True, "exp": "soon"},
        {"active": True, "exp": True},
        {"active": True, "iat": 1.5},
        {"active": True, "username": 5},
    ],
)
def test_malformed_responses(app, body):
    flow = introspect_token(app, ACCESS)
    next(flow)
    with pytest.raises(MalformedResponseError):
        flow.send(json_response(body))


def test_html_page_is_malformed(app):
    flow = introspect_token(app, ACCESS)
    next(flow)
    with pytest.raises(MalformedResponseError, match="HTML"):
        flow.send(HttpResponse(200, {"content-type": "text/html"}, b"<html/>"))


def test_invalid_client_is_typed(app):
    flow = introspect_token(app, ACCESS)
    next(flow)
    with pytest.raises(InvalidClientError) as info:
        flow.send(
            json_response(
                {
                    "error": "invalid_client",
                    "error_description": "invalid client credentials",
                },
                400,
            )
        )
    assert "1F2E3D4C5B6A" not in str(info.value)
    assert ACCESS not in str(info.value)


def test_5xx_is_retried(app):
    flow = introspect_token(app, ACCESS)
    next(flow)
    assert isinstance(flow.send(HttpResponse(503, {}, b"")), Wait)
    again = flow.send(None)
    assert again.form["token"] == ACCESS
    with pytest.raises(StopIteration) as stop:
        flow.send(json_response({"active": False}))
    assert stop.value.value.active is False
