"""UserInfo: bearer GET only to trusted hosts, typed errors on 401/403."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    FlowError,
    InvalidTokenError,
    MalformedResponseError,
    SalesforceUnavailableError,
    TransportError,
    UntrustedHostError,
)
from sfoauth_core.flows._base import NO_RETRY, HttpRequest, HttpResponse, Wait
from sfoauth_core.flows.userinfo import userinfo
from sfoauth_core.tokens import Token

ACCESS = "00DXX0000001abc!AQ0AQExampleAccessToken"
CLAIMS = {
    "sub": "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAA",
    "user_id": "005XX000001xyzQAA",
    "organization_id": "00DXX0000001abcEAA",
    "preferred_username": "jane@acme.com",
    "email": "jane@acme.com",
    "urls": {"rest": "https://acme.my.salesforce.com/services/data/v{version}/"},
    "utcOffset": -28800000,
}


@pytest.fixture
def app() -> ConnectedApp:
    return ConnectedApp(client_id="3MVG9Example", client_secret="s3cr3t")


def token(instance_url: str | None = "https://acme.my.salesforce.com") -> Token:
    return Token(access_token=ACCESS, instance_url=instance_url)


def json_response(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(
        status, {"content-type": "application/json"}, json.dumps(body).encode()
    )


def test_request_goes_to_the_instance_url(app):
    req = next(userinfo(app, token()))
    assert isinstance(req, HttpRequest)
    assert req.method == "GET"
    assert req.url == "https://acme.my.salesforce.com/services/oauth2/userinfo"
    assert req.headers["Authorization"] == f"Bearer {ACCESS}"
    assert req.headers["Accept"] == "application/json"
    assert req.form is None and req.params is None
    assert ACCESS not in req.url and ACCESS not in repr(req)


@pytest.mark.parametrize(
    ("login_url", "expected"),
    [
        (
            "https://login.salesforce.com",
            "https://login.salesforce.com/services/oauth2/userinfo",
        ),
        (
            "https://acme.my.site.com/customers",
            "https://acme.my.site.com/customers/services/oauth2/userinfo",
        ),
    ],
)
def test_without_instance_url_the_login_url_is_used(login_url, expected):
    app = ConnectedApp(client_id="3MVG9Example", login_url=login_url)
    assert next(userinfo(app, token(None))).url == expected
    assert next(userinfo(app, ACCESS)).url == expected


def test_old_instance_host(app):
    req = next(userinfo(app, token("https://na15.salesforce.com")))
    assert req.url == "https://na15.salesforce.com/services/oauth2/userinfo"


@pytest.mark.parametrize(
    "instance_url",
    [
        "https://evil.example",
        "https://salesforce.com.evil.example",
        "https://evilsalesforce.com",
        "http://acme.my.salesforce.com",
        "https://user@acme.my.salesforce.com",
        "ftp://acme.my.salesforce.com",
    ],
)
def test_untrusted_host_gets_no_token(app, instance_url):
    with pytest.raises(UntrustedHostError) as info:
        next(userinfo(app, token(instance_url)))
    assert ACCESS not in str(info.value)


def test_extra_hosts_are_trusted():
    app = ConnectedApp(client_id="3MVG9Example", extra_hosts=["login.acme.com"])
    req = next(userinfo(app, token("https://login.acme.com")))
    assert req.url == "https://login.acme.com/services/oauth2/userinfo"


def test_claims_are_returned(app):
    flow = userinfo(app, token())
    next(flow)
    with pytest.raises(StopIteration) as stop:
        flow.send(json_response(CLAIMS))
    assert stop.value.value == CLAIMS


def test_empty_token(app):
    with pytest.raises(FlowError):
        next(userinfo(app, Token(access_token="")))


@pytest.mark.parametrize(
    ("status", "content_type", "body", "description"),
    [
        (401, "application/json", b'[{"message":"Session expired or invalid"}]', None),
        (
            401,
            "application/json",
            b'{"error":"invalid_token","error_description":"bad"}',
            "bad",
        ),
        (403, "text/plain", b"Bad_OAuth_Token", "Bad_OAuth_Token"),
        (403, "text/html", b"<html>no</html>", None),
        (401, "text/plain", b"", None),
    ],
)
def test_refused_token_is_invalid_token_error(
    app, status, content_type, body, description
):
    flow = userinfo(app, token())
    next(flow)
    with pytest.raises(InvalidTokenError) as info:
        flow.send(HttpResponse(status, {"content-type": content_type}, body))
    assert info.value.status_code == status
    assert info.value.error == "invalid_token"
    if description:
        assert info.value.description == description
    else:
        assert f"HTTP {status}" in info.value.description
    assert ACCESS not in str(info.value)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", b"<html>maintenance</html>"),
        ("application/json", b"[1,2]"),
        ("", b""),
    ],
)
def test_non_json_is_malformed(app, content_type, body):
    flow = userinfo(app, token())
    next(flow)
    with pytest.raises(MalformedResponseError):
        flow.send(HttpResponse(200, {"content-type": content_type}, body))


def test_5xx_is_retried_with_the_same_request(app):
    flow = userinfo(app, token())
    first = next(flow)
    assert isinstance(flow.send(HttpResponse(502, {}, b"")), Wait)
    second = flow.send(None)
    assert second == first


def test_transport_error_without_retry(app):
    flow = userinfo(app, token(), retry=NO_RETRY)
    next(flow)
    with pytest.raises(SalesforceUnavailableError):
        flow.throw(TransportError("timeout"))
