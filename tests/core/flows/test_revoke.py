"""Revocation: POST with the token in the body, typed errors, retries."""

from __future__ import annotations

import json

import pytest

from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    FlowError,
    InvalidTokenError,
    MalformedResponseError,
    OAuthProtocolError,
    SalesforceUnavailableError,
    TransportError,
    UnsupportedTokenTypeError,
    UntrustedHostError,
)
from sfoauth_core.flows._base import NO_RETRY, HttpRequest, HttpResponse, Wait
from sfoauth_core.flows.revoke import parse_error_body, revoke_token
from sfoauth_core.tokens import Token

ACCESS = "00DXX0000001abc!AQ0AQExampleAccessToken"
REFRESH = "5Aep861ExampleRefreshToken"


@pytest.fixture
def app() -> ConnectedApp:
    return ConnectedApp(client_id="3MVG9Example", client_secret="s3cr3t")


def finish(flow, response):
    with pytest.raises(StopIteration) as stop:
        flow.send(response)
    return stop.value.value


@pytest.mark.parametrize(
    ("login_url", "expected"),
    [
        (
            "https://login.salesforce.com",
            "https://login.salesforce.com/services/oauth2/revoke",
        ),
        (
            "https://test.salesforce.com",
            "https://test.salesforce.com/services/oauth2/revoke",
        ),
        (
            "https://acme.my.salesforce.com",
            "https://acme.my.salesforce.com/services/oauth2/revoke",
        ),
        (
            "https://acme.my.site.com/customers",
            "https://acme.my.site.com/customers/services/oauth2/revoke",
        ),
    ],
)
def test_revoke_request_per_host(login_url, expected):
    app = ConnectedApp(client_id="3MVG9Example", login_url=login_url)
    req = next(revoke_token(app, ACCESS))
    assert isinstance(req, HttpRequest)
    assert req.method == "POST"
    assert req.url == expected
    assert dict(req.form) == {"token": ACCESS}
    assert req.params is None
    assert ACCESS not in req.url
    assert "Authorization" not in req.headers


def test_token_object_revokes_its_refresh_token(app):
    req = next(revoke_token(app, Token(access_token=ACCESS, refresh_token=REFRESH)))
    assert dict(req.form) == {"token": REFRESH}


def test_token_object_without_refresh_revokes_the_access_token(app):
    req = next(revoke_token(app, Token(access_token=ACCESS)))
    assert dict(req.form) == {"token": ACCESS}


def test_no_client_secret_is_sent(app):
    req = next(revoke_token(app, ACCESS))
    assert "client_secret" not in req.form
    assert "s3cr3t" not in json.dumps(dict(req.headers))


@pytest.mark.parametrize("token", ["", Token(access_token="")])
def test_nothing_to_revoke(app, token):
    with pytest.raises(FlowError, match="no token"):
        next(revoke_token(app, token))


def test_untrusted_revoke_url_is_refused_before_sending(app):
    with pytest.raises(UntrustedHostError):
        next(revoke_token(app, ACCESS, token_url="https://evil.example/revoke"))


def test_explicit_trusted_revoke_url(app):
    url = "https://acme.my.salesforce.com/services/oauth2/revoke"
    assert next(revoke_token(app, ACCESS, token_url=url)).url == url


@pytest.mark.parametrize(
    "response",
    [
        HttpResponse(200, {}, b""),
        HttpResponse(200, {"content-type": "application/json"}, b"{}"),
        HttpResponse(204, {}, b""),
    ],
)
def test_success_returns_none(app, response):
    flow = revoke_token(app, ACCESS)
    next(flow)
    assert finish(flow, response) is None


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"error":"invalid_token","error_description":"bad"}'),
        (
            "application/x-www-form-urlencoded",
            b"error=invalid_token&error_description=bad",
        ),
        ("text/plain", b"error=invalid_token"),
    ],
)
def test_invalid_token_json_or_urlencoded(app, content_type, body):
    flow = revoke_token(app, ACCESS)
    next(flow)
    with pytest.raises(InvalidTokenError) as info:
        flow.send(HttpResponse(400, {"content-type": content_type}, body))
    assert info.value.error == "invalid_token"
    assert info.value.status_code == 400
    assert ACCESS not in str(info.value)


def test_unsupported_token_type(app):
    flow = revoke_token(app, ACCESS)
    next(flow)
    with pytest.raises(UnsupportedTokenTypeError) as info:
        flow.send(HttpResponse(400, {}, b"error=unsupported_token_type"))
    assert info.value.error == "unsupported_token_type"


def test_bare_failure_becomes_http_status_error(app):
    flow = revoke_token(app, ACCESS)
    next(flow)
    with pytest.raises(OAuthProtocolError) as info:
        flow.send(HttpResponse(400, {}, b""))
    assert info.value.error == "http_400"
    assert info.value.status_code == 400


def test_html_failure_is_malformed(app):
    flow = revoke_token(app, ACCESS)
    next(flow)
    with pytest.raises(MalformedResponseError, match="HTML"):
        flow.send(HttpResponse(404, {"content-type": "text/html"}, b"<html/>"))


def test_5xx_is_retried_then_succeeds(app):
    flow = revoke_token(app, ACCESS)
    first = next(flow)
    wait = flow.send(HttpResponse(503, {"retry-after": "2"}, b""))
    assert isinstance(wait, Wait) and wait.seconds == 2.0
    second = flow.send(None)
    assert second.url == first.url and dict(second.form) == {"token": ACCESS}
    assert finish(flow, HttpResponse(200, {}, b"")) is None


def test_transport_error_is_retried(app):
    flow = revoke_token(app, ACCESS)
    next(flow)
    assert isinstance(flow.throw(TransportError("reset")), Wait)
    assert isinstance(flow.send(None), HttpRequest)


def test_5xx_exhausts_retries(app):
    flow = revoke_token(app, ACCESS)
    next(flow)
    for _ in range(2):
        assert isinstance(flow.send(HttpResponse(500, {}, b"")), Wait)
        flow.send(None)
    with pytest.raises(SalesforceUnavailableError) as info:
        flow.send(HttpResponse(500, {}, b""))
    assert info.value.status_code == 500


def test_no_retry_policy(app):
    flow = revoke_token(app, ACCESS, retry=NO_RETRY)
    next(flow)
    with pytest.raises(SalesforceUnavailableError):
        flow.send(HttpResponse(502, {}, b""))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", None),
        (b"{not json", None),
        (b"[1]", None),
        (b'{"message":"x"}', None),
        (b"<html>", None),
        (b"plain words", None),
        (b'{"error":"invalid_token"}', {"error": "invalid_token"}),
        (b"error=x&error_description=y", {"error": "x", "error_description": "y"}),
    ],
)
def test_parse_error_body(body, expected):
    assert parse_error_body(HttpResponse(400, {}, body)) == expected
