"""Identity URL: bearer GET to the token's id, Bad_OAuth_Token, case-sensitive ids."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    FlowError,
    InvalidTokenError,
    MalformedResponseError,
    ResponseError,
    UntrustedHostError,
)
from sfoauth_core.flows._base import HttpRequest, HttpResponse, Wait
from sfoauth_core.flows.identity import identity, parse_identity
from sfoauth_core.ids import to_18
from sfoauth_core.tokens import Identity, Token

ACCESS = "00DXX0000001abc!AQ0AQExampleAccessToken"
ORG = "00DXX0000001abcEAA"
USER = "005XX000001xyzQAA"
ID_URL = f"https://login.salesforce.com/id/{ORG}/{USER}"
BODY: dict[str, Any] = {
    "id": ID_URL,
    "asserted_user": True,
    "user_id": USER,
    "organization_id": ORG,
    "username": "jane@acme.com",
    "nick_name": "jane",
    "display_name": "Jane Doe",
    "email": "jane@acme.com",
    "active": True,
    "user_type": "STANDARD",
    "language": "en_US",
    "urls": {
        "rest": "https://acme.my.salesforce.com/services/data/v{version}/",
        "enterprise": "https://acme.my.salesforce.com/services/Soap/c/{version}/00DXX0000001abc",
    },
    "utcOffset": -28800000,
}


@pytest.fixture
def app() -> ConnectedApp:
    return ConnectedApp(client_id="3MVG9Example", client_secret="s3cr3t")


def token(id_url: str | None = ID_URL) -> Token:
    if id_url is None:  # a token stored without one (no answer lacks it any more)
        return Token(access_token=ACCESS, instance_url="https://acme.my.salesforce.com")
    return Token.from_response(
        {
            "access_token": ACCESS,
            "instance_url": "https://acme.my.salesforce.com",
            "id": id_url,
            "token_type": "Bearer",
        }
    )


def json_response(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(
        status, {"content-type": "application/json"}, json.dumps(body).encode()
    )


def run(app, tok, body, **kwargs):
    flow = identity(app, tok, **kwargs)
    next(flow)
    with pytest.raises(StopIteration) as stop:
        flow.send(json_response(body))
    return stop.value.value


def test_request_fields(app):
    req = next(identity(app, token()))
    assert isinstance(req, HttpRequest)
    assert req.method == "GET"
    assert req.url == ID_URL
    assert req.headers["Authorization"] == f"Bearer {ACCESS}"
    assert req.headers["Accept"] == "application/json"
    assert req.params is None and req.form is None
    assert ACCESS not in req.url


def test_version_parameter(app):
    req = next(identity(app, token(), version="62.0"))
    assert dict(req.params) == {"version": "62.0"}
    assert req.url == ID_URL


@pytest.mark.parametrize(
    "id_url",
    [
        f"https://acme.my.salesforce.com/id/{ORG}/{USER}",
        f"https://acme.my.site.com/customers/id/{ORG}/{USER}",
        f"https://acme--uat.sandbox.my.salesforce.com/id/{ORG}/{USER}",
    ],
)
def test_request_goes_to_the_id_host(app, id_url):
    tok = Token(access_token=ACCESS, id_url=id_url, org_id=ORG, user_id=USER)
    assert next(identity(app, tok)).url == id_url


def test_identity_is_parsed(app):
    result = run(app, token(), BODY)
    assert result == Identity(
        id=ID_URL,
        user_id=USER,
        organization_id=ORG,
        username="jane@acme.com",
        display_name="Jane Doe",
        email="jane@acme.com",
        active=True,
        user_type="STANDARD",
        urls=BODY["urls"],
    )
    assert result.raw == BODY


def test_minimal_identity(app):
    result = run(app, token(), {"id": ID_URL, "user_id": USER, "organization_id": ORG})
    assert result.username is None and result.active is None and result.urls == {}


def test_non_string_urls_are_dropped(app):
    body = {**BODY, "urls": {"rest": "https://x.my.salesforce.com/", "odd": 5}}
    assert run(app, token(), body).urls == {"rest": "https://x.my.salesforce.com/"}


def test_missing_id_url(app):
    with pytest.raises(FlowError, match="identity URL"):
        next(identity(app, token(None)))


def test_untrusted_id_host_gets_no_token(app):
    bad = Token(
        access_token=ACCESS, id_url=f"https://evil.example/id/{ORG}/{USER}", org_id=ORG
    )
    with pytest.raises(UntrustedHostError):
        next(identity(app, bad))


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        (403, "text/plain", b"Bad_OAuth_Token"),
        (403, "", b"Bad_OAuth_Token"),
        (401, "application/json", b'[{"errorCode":"INVALID_SESSION_ID"}]'),
    ],
)
def test_bad_token(app, status, content_type, body):
    flow = identity(app, token())
    next(flow)
    with pytest.raises(InvalidTokenError) as info:
        flow.send(HttpResponse(status, {"content-type": content_type}, body))
    assert info.value.status_code == status
    if body == b"Bad_OAuth_Token":
        assert info.value.description == "Bad_OAuth_Token"
    assert ACCESS not in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_id", "005XX000001XYZQAA"),  # case differs: another user
        ("organization_id", "00DXX0000001ABCEAA"),
        ("user_id", "005XX0000099999AAA"),
    ],
)
def test_ids_are_compared_case_sensitively(app, field, value):
    body = {**BODY, field: value}
    org = body["organization_id"]
    body["id"] = f"https://login.salesforce.com/id/{org}/{body['user_id']}"
    with pytest.raises(ResponseError, match="different org or user"):
        run(app, token(), body)


def test_id_field_must_match_the_ids(app):
    body = {**BODY, "id": f"https://login.salesforce.com/id/{ORG}/005XX0000099999AAA"}
    with pytest.raises(ResponseError, match="another org or user"):
        run(app, token(), body)


def test_fifteen_character_ids_are_compared_in_18_form(app):
    org15, user15 = "00DXX0000001abc", "005XX000001xyzQ"
    body = {
        **BODY,
        "id": f"https://login.salesforce.com/id/{org15}/{user15}",
        "organization_id": org15,
        "user_id": user15,
    }
    tok = Token(
        access_token=ACCESS, id_url=ID_URL, org_id=to_18(org15), user_id=to_18(user15)
    )
    assert run(app, tok, body).organization_id == org15
    other = Token(
        access_token=ACCESS, id_url=ID_URL, org_id=org15 + "AAA", user_id=to_18(user15)
    )
    with pytest.raises(ResponseError):
        run(app, other, body)


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": USER, "organization_id": ORG},
        {"id": ID_URL, "organization_id": ORG},
        {"id": ID_URL, "user_id": USER},
        {"id": ID_URL, "user_id": 5, "organization_id": ORG},
        {"id": ID_URL, "user_id": "not-an-id", "organization_id": ORG},
        {
            "id": "https://login.salesforce.com/services",
            "user_id": USER,
            "organization_id": ORG,
        },
        {**BODY, "active": "yes"},
        {**BODY, "email": ["a"]},
        {**BODY, "urls": ["x"]},
    ],
)
def test_malformed_identity(app, body):
    with pytest.raises(MalformedResponseError):
        run(app, token(), body)


def test_html_page_is_malformed(app):
    flow = identity(app, token())
    next(flow)
    with pytest.raises(MalformedResponseError, match="HTML"):
        flow.send(HttpResponse(200, {"content-type": "text/html"}, b"<html/>"))


def test_5xx_is_retried(app):
    flow = identity(app, token())
    next(flow)
    assert isinstance(flow.send(HttpResponse(500, {}, b"")), Wait)
    assert flow.send(None).url == ID_URL


def test_parse_identity_without_a_token():
    assert parse_identity(BODY).user_id == USER
