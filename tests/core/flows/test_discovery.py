"""Discovery documents: URLs per host, issuer check, key set shape, auth config."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    MalformedResponseError,
    ResponseError,
    SalesforceUnavailableError,
    UntrustedHostError,
)
from sfoauth_core.flows._base import NO_RETRY, HttpRequest, HttpResponse, Wait
from sfoauth_core.flows.discovery import (
    auth_configuration,
    ensure_trusted_url,
    fetch_keys,
    openid_configuration,
)

LOGIN = "https://login.salesforce.com"
KEYS = {
    "keys": [
        {
            "kty": "RSA",
            "n": "abc",
            "e": "AQAB",
            "alg": "RS256",
            "use": "sig",
            "kid": "252",
        }
    ]
}
AUTH_CONFIG = {
    "OrgId": "00DXX0000001abc",
    "Url": "https://acme.my.salesforce.com",
    "LoginPage": None,
    "SamlProviders": [],
    "AuthProviders": [],
    "LoginPageType": "standard",
}


def discovery_doc(issuer: str = LOGIN) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/services/oauth2/authorize",
        "token_endpoint": f"{issuer}/services/oauth2/token",
        "jwks_uri": f"{issuer}/id/keys",
        "response_types_supported": ["code", "token", "token id_token"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


def app_for(login_url: str = LOGIN) -> ConnectedApp:
    return ConnectedApp(
        client_id="3MVG9Example", client_secret="s3cr3t", login_url=login_url
    )


def json_response(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(
        status, {"content-type": "application/json"}, json.dumps(body).encode()
    )


def run(flow, body):
    req = next(flow)
    with pytest.raises(StopIteration) as stop:
        flow.send(json_response(body))
    return req, stop.value.value


HOSTS = [
    LOGIN,
    "https://test.salesforce.com",
    "https://acme.my.salesforce.com",
    "https://acme.my.site.com/customers",
]


@pytest.mark.parametrize("login_url", HOSTS)
def test_openid_configuration(login_url):
    req, doc = run(openid_configuration(app_for(login_url)), discovery_doc(login_url))
    assert isinstance(req, HttpRequest)
    assert req.method == "GET"
    assert req.url == f"{login_url}/.well-known/openid-configuration"
    assert req.headers == {"Accept": "application/json"}
    assert req.form is None and req.params is None
    assert doc == discovery_doc(login_url)


def test_openid_configuration_issuer_with_trailing_slash():
    _, doc = run(openid_configuration(app_for()), discovery_doc(LOGIN + "/"))
    assert doc["issuer"] == LOGIN + "/"


@pytest.mark.parametrize(
    "issuer",
    [
        "https://evil.example",
        "https://test.salesforce.com",
        "https://login.salesforce.com/x",
    ],
)
def test_openid_configuration_wrong_issuer(issuer):
    flow = openid_configuration(app_for())
    next(flow)
    with pytest.raises(ResponseError, match="issuer"):
        flow.send(json_response(discovery_doc(issuer)))


@pytest.mark.parametrize(
    "body", [{}, {"issuer": 5}, {"issuer": ""}, {**discovery_doc(), "jwks_uri": ["x"]}]
)
def test_openid_configuration_malformed(body):
    flow = openid_configuration(app_for())
    next(flow)
    with pytest.raises(MalformedResponseError):
        flow.send(json_response(body))


@pytest.mark.parametrize("login_url", HOSTS)
def test_fetch_keys(login_url):
    req, keys = run(fetch_keys(app_for(login_url)), KEYS)
    assert req.method == "GET"
    assert req.url == f"{login_url}/id/keys"
    assert "Authorization" not in req.headers
    assert keys == KEYS


def test_fetch_keys_explicit_url():
    url = "https://acme.my.salesforce.com/id/keys"
    req, _ = run(fetch_keys(app_for(), keys_url=url), KEYS)
    assert req.url == url


def test_fetch_keys_untrusted_url():
    with pytest.raises(UntrustedHostError):
        next(fetch_keys(app_for(), keys_url="https://evil.example/keys"))


@pytest.mark.parametrize("body", [{}, {"keys": {}}, {"keys": [1]}, {"keys": "a"}])
def test_fetch_keys_malformed(body):
    flow = fetch_keys(app_for())
    next(flow)
    with pytest.raises(MalformedResponseError, match="key"):
        flow.send(json_response(body))


def test_fetch_keys_empty_list_is_valid():
    assert run(fetch_keys(app_for()), {"keys": []})[1] == {"keys": []}


@pytest.mark.parametrize("login_url", HOSTS)
def test_auth_configuration(login_url):
    req, doc = run(auth_configuration(app_for(login_url)), AUTH_CONFIG)
    assert req.method == "GET"
    assert req.url == f"{login_url}/.well-known/auth-configuration"
    assert doc == AUTH_CONFIG


def test_loopback_emulator():
    app = ConnectedApp(
        client_id="3MVG9Example", login_url="http://127.0.0.1:9999", allow_loopback=True
    )
    req, _ = run(openid_configuration(app), discovery_doc("http://127.0.0.1:9999"))
    assert req.url == "http://127.0.0.1:9999/.well-known/openid-configuration"


def test_html_maintenance_page():
    flow = auth_configuration(app_for())
    next(flow)
    with pytest.raises(MalformedResponseError, match="HTML"):
        flow.send(HttpResponse(200, {"content-type": "text/html"}, b"<html/>"))


def test_5xx_retries_then_gives_up():
    flow = fetch_keys(app_for())
    next(flow)
    for _ in range(2):
        assert isinstance(flow.send(HttpResponse(503, {}, b"")), Wait)
        assert isinstance(flow.send(None), HttpRequest)
    with pytest.raises(SalesforceUnavailableError):
        flow.send(HttpResponse(503, {}, b""))


def test_no_retry():
    flow = openid_configuration(app_for(), retry=NO_RETRY)
    next(flow)
    with pytest.raises(SalesforceUnavailableError):
        flow.send(HttpResponse(500, {}, b""))


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/x",
        "http://login.salesforce.com/x",
        "https://a@login.salesforce.com/x",
        "https:///nohost",
        "javascript:alert(1)",
        "http://127.0.0.1:9999/x",
        "https://[::1",
    ],
)
def test_ensure_trusted_url_refuses(url):
    with pytest.raises(UntrustedHostError, match="keys URL"):
        ensure_trusted_url(app_for(), url, what="keys URL")


def test_ensure_trusted_url_accepts():
    url = "https://acme.my.salesforce.com/id/keys"
    assert ensure_trusted_url(app_for(), url, what="keys URL") == url
