"""Client credentials flow (reference 4.8)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    ConfigurationError,
    InvalidClientError,
    InvalidGrantError,
    SalesforceUnavailableError,
    SignatureError,
    TransportError,
)
from sfoauth_core.flows._base import HttpRequest, HttpResponse, Wait
from sfoauth_core.flows.client_credentials import client_credentials

CLIENT_ID = "3MVG9Example"
SECRET = "1F2E3D4C5B6A"
MY_DOMAIN = "https://acme.my.salesforce.com"
ID_URL = "https://acme.my.salesforce.com/id/00DXX0000001abcEAA/005XX0000012runQAA"
ISSUED_AT = "1767225600123"


def _signature(secret: str, id_url: str, issued_at: str) -> str:
    mac = hmac.new(secret.encode(), (id_url + issued_at).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _body(**overrides: Any) -> dict[str, Any]:
    body = {
        "access_token": "00DXX0000001abc!AQ0AQExample",
        "signature": _signature(SECRET, ID_URL, ISSUED_AT),
        "scope": "api",
        "instance_url": "https://acme.my.salesforce.com",
        "id": ID_URL,
        "token_type": "Bearer",
        "issued_at": ISSUED_AT,
        "api_instance_url": "https://api.salesforce.com",
    }
    body.update(overrides)
    return body


def _json(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> HttpResponse:
    merged = {"content-type": "application/json;charset=UTF-8", **(headers or {})}
    return HttpResponse(status, merged, json.dumps(body).encode())


def _finish(flow: Any, response: HttpResponse) -> Any:
    with pytest.raises(StopIteration) as stop:
        flow.send(response)
    return stop.value.value


def _app(**overrides: Any) -> ConnectedApp:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "login_url": MY_DOMAIN,
    }
    values.update(overrides)
    return ConnectedApp(**values)


def test_body_authentication_by_default():
    request = next(client_credentials(_app()))

    assert isinstance(request, HttpRequest)
    assert request.method == "POST"
    assert request.url == "https://acme.my.salesforce.com/services/oauth2/token"
    assert request.params is None
    assert dict(request.form) == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }
    assert "Authorization" not in request.headers
    assert SECRET not in repr(request)


def test_basic_authentication_header_matches_the_postman_sample():
    request = next(client_credentials(_app(), use_basic_auth=True))

    assert request.headers["Authorization"] == (
        "Basic M01WRzlFeGFtcGxlOjFGMkUzRDRDNUI2QQ=="
    )
    assert dict(request.form) == {"grant_type": "client_credentials"}
    assert request.headers["Accept"] == "application/json"


def test_scope_is_sent_only_when_asked_for():
    assert "scope" not in next(client_credentials(_app())).form
    request = next(client_credentials(_app(), scopes=["api", "web"]))
    assert request.form["scope"] == "api web"


@pytest.mark.parametrize(
    "login_url",
    [
        "https://login.salesforce.com",
        "https://test.salesforce.com",
        "https://acme.my.salesforce-setup.com",
    ],
)
def test_refused_on_hosts_that_are_not_a_my_domain(login_url):
    flow = client_credentials(_app(login_url=login_url))
    with pytest.raises(ConfigurationError) as excinfo:
        next(flow)  # zero requests: the very first step raises
    assert excinfo.value.setting == "login_url"
    assert "My Domain" in str(excinfo.value)
    assert SECRET not in str(excinfo.value)
    with pytest.raises(StopIteration):
        next(flow)


@pytest.mark.parametrize(
    ("login_url", "token_url"),
    [
        (
            "https://acme--dev.sandbox.my.salesforce.com",
            "https://acme--dev.sandbox.my.salesforce.com/services/oauth2/token",
        ),
        (
            "https://acme.my.site.com/partners",
            "https://acme.my.site.com/partners/services/oauth2/token",
        ),
    ],
)
def test_sandbox_my_domains_and_sites_are_allowed(login_url, token_url):
    assert next(client_credentials(_app(login_url=login_url))).url == token_url


def test_a_client_secret_is_required():
    flow = client_credentials(_app(client_secret=None))
    with pytest.raises(ConfigurationError) as excinfo:
        next(flow)
    assert excinfo.value.setting == "client_secret"


def test_success_parses_and_verifies_the_signature():
    flow = client_credentials(_app())
    next(flow)
    token = _finish(flow, _json(200, _body()))

    assert token.access_token == "00DXX0000001abc!AQ0AQExample"
    assert token.refresh_token is None
    assert token.instance_url == "https://acme.my.salesforce.com"
    assert token.org_id == "00DXX0000001abcEAA"
    assert token.user_id == "005XX0000012runQAA"
    assert token.scopes == ("api",)
    assert token.issued_at == pytest.approx(1767225600.123)
    assert token.raw["api_instance_url"] == "https://api.salesforce.com"


def test_a_wrong_signature_is_rejected():
    flow = client_credentials(_app())
    next(flow)
    with pytest.raises(SignatureError):
        flow.send(_json(200, _body(signature=_signature("other", ID_URL, ISSUED_AT))))


@pytest.mark.parametrize(
    ("description", "hint_fragment"),
    [
        ("request not supported on this domain", "My Domain"),
        ("no client credentials user enabled", "run-as user"),
    ],
)
def test_invalid_grant_descriptions_map_to_hints(description, hint_fragment):
    flow = client_credentials(_app())
    next(flow)
    with pytest.raises(InvalidGrantError) as excinfo:
        flow.send(
            _json(400, {"error": "invalid_grant", "error_description": description})
        )
    assert excinfo.value.description == description
    assert excinfo.value.hint is not None and hint_fragment in excinfo.value.hint
    assert SECRET not in str(excinfo.value)


def test_wrong_secret_is_an_invalid_client_error():
    flow = client_credentials(_app(), use_basic_auth=True)
    next(flow)
    with pytest.raises(InvalidClientError) as excinfo:
        flow.send(
            _json(
                400,
                {
                    "error": "invalid_client",
                    "error_description": "invalid client credentials",
                },
            )
        )
    assert excinfo.value.hint is not None and "secret" in excinfo.value.hint


def test_5xx_is_retried_with_the_same_request_and_retry_after():
    flow = client_credentials(_app())
    first = next(flow)
    wait = flow.send(_json(503, {}, {"retry-after": "4"}))
    assert isinstance(wait, Wait)
    assert wait.seconds == 4.0
    second = flow.send(None)
    assert dict(second.form) == dict(first.form)
    assert second.url == first.url
    token = _finish(flow, _json(200, _body()))
    assert token.user_id == "005XX0000012runQAA"


def test_transport_errors_are_retried_then_reported():
    flow = client_credentials(_app())
    next(flow)
    for _ in range(2):
        assert isinstance(flow.throw(TransportError("connect timeout")), Wait)
        assert isinstance(flow.send(None), HttpRequest)
    with pytest.raises(SalesforceUnavailableError):
        flow.throw(TransportError("connect timeout"))


def test_basic_auth_header_needs_a_secret():
    from sfoauth_core.flows.client_credentials import basic_auth_header

    assert basic_auth_header(_app()).startswith("Basic ")
    with pytest.raises(ConfigurationError) as excinfo:
        basic_auth_header(_app(client_secret=None))
    assert excinfo.value.setting == "client_secret"
