"""The emulator against the wire reference, item by item (reference section 13, with the
details of sections 1-10).

Only behaviours that the other emulator tests do not already prove are here. Each test
drives the emulator the way an independent client would: plain httpx requests to the
documented hosts and paths over ``emu.transport()``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from support.emulator import (
    LOGIN,
    MY_DOMAIN,
    TOKEN,
    assert_error,
    fragment_of,
    password_form,
    query_of,
)

from sfoauth_core.testing import (
    DEFAULT_ORG_ID,
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USER_ID,
    DEFAULT_USERNAME,
    SalesforceEmulator,
)

AUTHORIZE = "/services/oauth2/authorize"
REVOKE = "/services/oauth2/revoke"
INTROSPECT = "/services/oauth2/introspect"
USERINFO = "/services/oauth2/userinfo"
SITE = "https://acme.my.site.com/customers"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JSON_TYPE = "application/json;charset=UTF-8"
EXPIRED = "expired access/refresh token"


@pytest.fixture
def http(emu: SalesforceEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=emu.transport(), base_url=LOGIN, follow_redirects=False
    ) as c:
        yield c


# ---------------------------------------------------------------------- helpers
def creds(emu: SalesforceEmulator, name: str = "web") -> dict[str, str]:
    app = emu.apps[name]
    assert app.client_secret
    return {"client_id": app.client_id, "client_secret": app.client_secret}


def authorize_params(
    emu: SalesforceEmulator, name: str = "web", **extra: str
) -> dict[str, str]:
    app = emu.apps[name]
    return {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.callback_urls[0],
        **extra,
    }


def challenge_for(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signature_of(secret: str, body: dict[str, str]) -> str:
    mac = hmac.new(secret.encode(), (body["id"] + body["issued_at"]).encode(), "sha256")
    return base64.b64encode(mac.digest()).decode()


def exchange(
    http: httpx.Client,
    emu: SalesforceEmulator,
    url: str,
    *,
    host: str = LOGIN,
    **extra: str,
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": query_of(url)["code"],
        "redirect_uri": emu.apps["web"].callback_urls[0],
        **creds(emu),
        **extra,
    }
    return http.post(host + TOKEN, data=data)


def refresh_form(
    emu: SalesforceEmulator | None, token: str, **extra: str
) -> dict[str, str]:
    """A refresh grant, with the web app's credentials in the body unless ``emu`` is
    ``None``."""
    data = {"grant_type": "refresh_token", "refresh_token": token}
    if emu is not None:
        data.update(creds(emu))
    data.update(extra)
    return data


def refresh(
    http: httpx.Client, emu: SalesforceEmulator, token: str, **extra: str
) -> httpx.Response:
    return http.post(TOKEN, data=refresh_form(emu, token, **extra))


def verify_id_token(
    http: httpx.Client, token: str, audience: str, host: str = LOGIN
) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    keys = http.get(host + "/id/keys").json()["keys"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == header["kid"])).key
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], audience=audience
    )
    return claims


def start_device(
    http: httpx.Client, emu: SalesforceEmulator, scope: str | None = None
) -> dict[str, Any]:
    data = {"response_type": "device_code", "client_id": emu.apps["device"].client_id}
    if scope:
        data["scope"] = scope
    r = http.post(MY_DOMAIN + TOKEN, data=data)
    assert r.status_code == 200, r.text
    return dict(r.json())


def poll_device(
    http: httpx.Client, emu: SalesforceEmulator, device_code: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "device",
        "client_id": emu.apps["device"].client_id,
        "code": device_code,
        **extra,
    }
    return http.post(MY_DOMAIN + TOKEN, data=data)


def assertion(emu: SalesforceEmulator, **claims: Any) -> str:
    app = emu.apps["jwt"]
    payload: dict[str, Any] = {
        "iss": app.client_id,
        "sub": DEFAULT_USERNAME,
        "aud": LOGIN,
        "exp": int(time.time()) + 180,
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    assert app.private_key_pem
    return jwt.encode(payload, app.private_key_pem, algorithm="RS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ================================================================ hosts and routing
# ref §13.1, §1.1: a sandbox org answers on its sandbox My Domain host.
def test_sandbox_my_domain_host_serves_oauth_endpoints(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.add_org("beta", org_id="00DXX0000002xyz", my_domain="beta", sandbox_name="dev")
    host = "https://beta--dev.sandbox.my.salesforce.com"
    doc = http.get(host + "/.well-known/openid-configuration").json()
    assert doc["issuer"] == host
    assert doc["token_endpoint"] == host + TOKEN


# ref §13.1, §1.1: an Experience Cloud site serves the OAuth endpoints under its path.
def test_site_path_prefix_serves_discovery_and_keys(http: httpx.Client) -> None:
    doc = http.get(SITE + "/.well-known/openid-configuration").json()
    assert doc["issuer"] == SITE
    assert doc["authorization_endpoint"] == SITE + AUTHORIZE
    assert doc["jwks_uri"] == SITE + "/id/keys"
    assert http.get(SITE + "/id/keys").json()["keys"]


# ref §13.1: id and iss come from the host that handled the login (here My Domain);
# instance_url from the org.
def test_id_and_iss_follow_the_my_domain_login_host(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    url = emu.authorize(host=MY_DOMAIN, scope="api openid")
    r = exchange(http, emu, url, host=MY_DOMAIN)
    body = r.json()
    assert body["id"] == f"{MY_DOMAIN}/id/{DEFAULT_ORG_ID}/{DEFAULT_USER_ID}"
    assert body["instance_url"] == MY_DOMAIN
    claims = verify_id_token(
        http, body["id_token"], emu.apps["web"].client_id, MY_DOMAIN
    )
    assert claims["iss"] == MY_DOMAIN and claims["sub"] == body["id"]


# ref §13.1, §1.1: a production user cannot log in through the sandbox login host.
def test_test_host_refuses_production_users(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.org.username_password_blocked = False
    data = password_form(**creds(emu))
    r = http.post("https://test.salesforce.com" + TOKEN, data=data)
    assert_error(r, "invalid_grant", "authentication failure")
    assert http.post(TOKEN, data=data).status_code == 200


# ref §13.1, §1.2: dynamic client registration with an initial access token.
def test_register_endpoint_creates_a_client(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    metadata = {
        "client_name": "Registered",
        "redirect_uris": ["https://registered.example.com/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "application_type": "web",
    }
    denied = http.post(MY_DOMAIN + "/services/oauth2/register", json=metadata)
    assert denied.status_code == 401
    assert denied.json()["error"] == "invalid_token"
    initial = emu.issue_tokens()["access_token"]
    r = http.post(
        MY_DOMAIN + "/services/oauth2/register", json=metadata, headers=bearer(initial)
    )
    assert r.status_code == 201
    body = r.json()
    assert body["client_id"].startswith("3MVG9") and body["client_secret"]
    assert body["redirect_uris"] == metadata["redirect_uris"]
    assert body["client_name"] == "Registered"
    # The new client can start an authorization.
    page = http.get(
        AUTHORIZE,
        params={
            "response_type": "code",
            "client_id": body["client_id"],
            "redirect_uri": "https://registered.example.com/cb",
        },
    )
    assert page.status_code == 200 and "Log In" in page.text


# ref §13.1, §1.2: the Salesforce-hosted callback pages exist.
@pytest.mark.parametrize("path", ["/services/oauth2/success", "/services/oauth2/echo"])
def test_hosted_callback_pages_are_served(http: httpx.Client, path: str) -> None:
    r = http.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")


# ref §13.1, §1.2: legacy SOAP login() on /services/Soap/u/<ver>.
def test_soap_login_returns_a_session_or_a_fault(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    def envelope(password: str) -> str:
        return (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:urn="urn:partner.soap.sforce.com"><env:Body><urn:login>'
            f"<urn:username>{DEFAULT_USERNAME}</urn:username>"
            f"<urn:password>{password}</urn:password>"
            "</urn:login></env:Body></env:Envelope>"
        )

    headers = {"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"}
    bad = http.post("/services/Soap/u/64.0", content=envelope("wrong"), headers=headers)
    assert bad.status_code == 500 and "INVALID_LOGIN" in bad.text
    ok = http.post(
        "/services/Soap/u/64.0",
        content=envelope(DEFAULT_PASSWORD + DEFAULT_SECURITY_TOKEN),
        headers=headers,
    )
    assert ok.status_code == 200
    session = ok.text.split("<sessionId>", 1)[1].split("</sessionId>", 1)[0]
    assert session.startswith(DEFAULT_ORG_ID[:15] + "!")
    assert f"<serverUrl>{MY_DOMAIN}/services/Soap/u/64.0/" in ok.text
    rest = http.get(MY_DOMAIN + "/services/data/v64.0/", headers=bearer(session))
    assert rest.status_code == 200


# ref §13.1: an unknown host is not Salesforce.
def test_unknown_host_answers_404(http: httpx.Client) -> None:
    assert http.get("https://evil.example.com/id/keys").status_code == 404


# ================================================================ discovery and keys
# ref §13.3, §1.3: the discovery document's fixed values.
def test_discovery_document_values(http: httpx.Client) -> None:
    r = http.get(MY_DOMAIN + "/.well-known/openid-configuration")
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        "application/json"
    )
    doc = r.json()
    for name, path in {
        "authorization_endpoint": AUTHORIZE,
        "token_endpoint": TOKEN,
        "revocation_endpoint": REVOKE,
        "userinfo_endpoint": USERINFO,
        "registration_endpoint": "/services/oauth2/register",
        "introspection_endpoint": INTROSPECT,
        "jwks_uri": "/id/keys",
    }.items():
        assert doc[name] == MY_DOMAIN + path
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["display_values_supported"] == ["page", "popup", "touch"]
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_post",
        "client_secret_basic",
        "private_key_jwt",
    ]
    assert len(doc["claims_supported"]) == 24 and "sub" in doc["claims_supported"]
    assert {"api", "refresh_token", "offline_access", "mcp_api"} <= set(
        doc["scopes_supported"]
    )


# ref §13.3, §9: /id/keys has an RS256 signing key with a numeric-string kid.
def test_jwks_has_an_rs256_key_with_numeric_string_kid(http: httpx.Client) -> None:
    keys = http.get("/id/keys").json()["keys"]
    numeric = [k for k in keys if isinstance(k["kid"], str) and k["kid"].isdigit()]
    assert numeric
    key = numeric[0]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["e"] == "AQAB"


# ref §13.3, §9: the auth-configuration document and its headers.
def test_auth_configuration_shape_and_headers(http: httpx.Client) -> None:
    r = http.get(MY_DOMAIN + "/.well-known/auth-configuration")
    assert r.headers["cache-control"] == (
        "no-cache,must-revalidate,max-age=0,no-store,private"
    )
    body = r.json()
    assert body["Url"] == MY_DOMAIN
    assert body["LoginPageType"] == "standard"
    assert body["MobileSDK"]["UseiOSNativeBrowserForAuthentication"] is False
    assert body["SamlProviders"] == [] and body["AuthProviders"] == []


# ================================================================ token endpoint
# ref §13.4, §2.1: jsforce sends code_verifier with every token call, refresh included.
def test_stray_code_verifier_on_refresh_is_ignored(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    tokens = emu.issue_tokens()
    r = refresh(http, emu, tokens["refresh_token"], code_verifier="x" * 171)
    assert r.status_code == 200, r.text


# ref §13.4, §2.1: the Android SDK appends ?device_id=… to the token URL.
def test_device_id_in_token_url_query_is_ignored(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    tokens = emu.issue_tokens()
    data = refresh_form(emu, tokens["refresh_token"], format="json")
    r = http.post(TOKEN, params={"device_id": "android-1"}, data=data)
    assert r.status_code == 200, r.text


# ref §13.4, §2.1: multipart/form-data bodies work for any grant (refresh here).
def test_multipart_refresh(emu: SalesforceEmulator, http: httpx.Client) -> None:
    tokens = emu.issue_tokens()
    fields = refresh_form(emu, tokens["refresh_token"])
    r = http.post(TOKEN, files={k: (None, v) for k, v in fields.items()})
    assert r.status_code == 200, r.text
    assert r.json()["access_token"].startswith(DEFAULT_ORG_ID[:15] + "!")


# ref §13.4, §5: the Android SDK's revoke_reason is ignored.
def test_revoke_reason_is_ignored(emu: SalesforceEmulator, http: httpx.Client) -> None:
    tokens = emu.issue_tokens()
    r = http.post(
        REVOKE,
        data={"token": tokens["refresh_token"], "revoke_reason": "user_logout"},
    )
    assert r.status_code == 200 and r.content == b""


# ref §13.5, §2.1: HTTP Basic client authentication on the refresh grant.
def test_basic_auth_on_refresh(emu: SalesforceEmulator, http: httpx.Client) -> None:
    app = emu.apps["web"]
    assert app.client_secret
    tokens = emu.issue_tokens()
    data = refresh_form(None, tokens["refresh_token"])
    ok = http.post(TOKEN, data=data, auth=(app.client_id, app.client_secret))
    assert ok.status_code == 200
    bad = http.post(TOKEN, data=data, auth=(app.client_id, "wrong"))
    assert_error(bad, "invalid_client", "invalid client credentials")


# ref §13.5: a secret that is sent is validated even when the app makes it optional
# (web server flow of a PKCE app, in the body and in a Basic header).
def test_wrong_optional_secret_is_rejected_on_code_exchange(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    app = emu.apps["public"]
    verifier = secrets.token_urlsafe(64)

    def fresh_code() -> str:
        url = emu.authorize(app="public", code_challenge=challenge_for(verifier))
        return query_of(url)["code"]

    base = {
        "grant_type": "authorization_code",
        "client_id": app.client_id,
        "redirect_uri": app.callback_urls[0],
        "code_verifier": verifier,
    }
    r = http.post(TOKEN, data={**base, "code": fresh_code(), "client_secret": "nope"})
    assert_error(r, "invalid_client", "invalid client credentials")
    basic = {k: v for k, v in base.items() if k != "client_id"}
    r = http.post(
        TOKEN, data={**basic, "code": fresh_code()}, auth=(app.client_id, "nope")
    )
    assert_error(r, "invalid_client", "invalid client credentials")
    assert app.client_secret
    r = http.post(
        TOKEN,
        data={**basic, "code": fresh_code()},
        auth=(app.client_id, app.client_secret),
    )
    assert r.status_code == 200


# ref §13.5: the device poll needs no secret, but a wrong one is rejected.
def test_wrong_secret_on_device_poll_is_rejected(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    start = start_device(http, emu)
    emu.approve_device(start["user_code"])
    bad = poll_device(http, emu, start["device_code"], client_secret="nope")
    assert_error(bad, "invalid_client", "invalid client credentials")
    assert poll_device(http, emu, start["device_code"]).status_code == 200


# ref §13.5, §12 (jsforce adds client_id/client_secret to every grant): JWT bearer
# needs no secret, but one that is sent is checked.
def test_wrong_secret_sent_with_jwt_bearer_is_rejected(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    app = emu.apps["jwt"]
    assert app.client_secret
    data = {"grant_type": JWT_GRANT, "assertion": assertion(emu)}
    r = http.post(
        TOKEN, data={**data, "client_id": app.client_id, "client_secret": "nope"}
    )
    assert_error(r, "invalid_client", "invalid client credentials")
    r = http.post(
        TOKEN,
        data={**data, "client_id": app.client_id, "client_secret": app.client_secret},
    )
    assert r.status_code == 200


# ref §4.9: the password flow needs the secret unless the app makes it optional.
def test_password_flow_secret_optional_app(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.org.username_password_blocked = False
    data = password_form()
    web = {"client_id": emu.apps["web"].client_id}
    assert_error(http.post(TOKEN, data={**data, **web}), "invalid_client")
    public = {"client_id": emu.apps["public"].client_id}
    assert http.post(TOKEN, data={**data, **public}).status_code == 200


# ref §13.6, §2.6: error responses carry Salesforce's JSON and no-cache headers.
def test_error_responses_have_json_and_no_cache_headers(http: httpx.Client) -> None:
    r = http.post(TOKEN, data={"grant_type": "bogus"})
    assert r.status_code == 400
    assert r.headers["content-type"] == JSON_TYPE
    assert r.headers["cache-control"] == "no-cache, no-store"
    assert r.headers["pragma"] == "no-cache"
    assert r.json() == {
        "error": "unsupported_grant_type",
        "error_description": "grant type not supported",
    }


# ref §13.6, §2.1: format=xml.
def test_format_xml_parameter(emu: SalesforceEmulator, http: httpx.Client) -> None:
    r = refresh(http, emu, emu.issue_tokens()["refresh_token"], format="xml")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    assert "<token_type>Bearer</token_type>" in r.text


# ref §13.6, §2.1: Accept: application/x-www-form-urlencoded.
def test_accept_urlencoded_header(emu: SalesforceEmulator, http: httpx.Client) -> None:
    tokens = emu.issue_tokens()
    r = http.post(
        TOKEN,
        data=refresh_form(emu, tokens["refresh_token"]),
        headers={"Accept": "application/x-www-form-urlencoded"},
    )
    assert r.headers["content-type"].startswith("application/x-www-form-urlencoded")
    parsed = {k: v[0] for k, v in parse_qs(r.text).items()}
    assert parsed["token_type"] == "Bearer"
    assert parsed["access_token"].startswith(DEFAULT_ORG_ID[:15] + "!")


# ref §13.6: errors follow the requested format too.
def test_error_in_urlencoded_format(http: httpx.Client) -> None:
    r = http.post(TOKEN, data={"grant_type": "bogus", "format": "urlencoded"})
    assert r.status_code == 400
    assert {k: v[0] for k, v in parse_qs(r.text).items()} == {
        "error": "unsupported_grant_type",
        "error_description": "grant type not supported",
    }


# ref §13.6: JSON is the default (no format, Accept */*).
def test_json_is_the_default_format(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    tokens = emu.issue_tokens()
    data = refresh_form(emu, tokens["refresh_token"])
    r = http.post(TOKEN, data=data, headers={"Accept": "*/*"})
    assert r.headers["content-type"] == JSON_TYPE
    assert r.json()["token_type"] == "Bearer"


# ref §13.7, §0.1, §2.2: no expires_in in any user/app token response.
def test_no_expires_in_in_user_token_responses(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    emu.org.username_password_blocked = False
    bodies: list[dict[str, str]] = []
    fragment = http.get(AUTHORIZE, params=authorize_params(emu, response_type="token"))
    bodies.append(fragment_of(fragment.headers["location"]))
    bodies.append(refresh(http, emu, emu.issue_tokens()["refresh_token"]).json())
    start = start_device(http, emu, "api refresh_token")
    emu.approve_device(start["user_code"])
    bodies.append(poll_device(http, emu, start["device_code"]).json())
    password = password_form(**creds(emu))
    bodies.append(http.post(TOKEN, data=password).json())
    for body in bodies:
        assert "access_token" in body, body
        assert "expires_in" not in body and "refresh_token_expires_in" not in body


# ref §13.8, §2.2-2.3: refresh responses carry a fresh ms issued_at and a signature
# over id + issued_at.
def test_refresh_issued_at_is_epoch_ms_string_and_signature_verifies(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    before = int(time.time() * 1000)
    body = refresh(http, emu, emu.issue_tokens()["refresh_token"]).json()
    after = int(time.time() * 1000)
    assert isinstance(body["issued_at"], str) and body["issued_at"].isdigit()
    assert before - 1000 <= int(body["issued_at"]) <= after + 1000
    secret = emu.apps["web"].client_secret
    assert secret
    assert body["signature"] == signature_of(secret, body)
    assert body["token_type"] == "Bearer"


# ref §13.8, §4.4: the user-agent fragment carries a valid signature and ms issued_at.
def test_user_agent_fragment_signature_verifies(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    r = http.get(AUTHORIZE, params=authorize_params(emu, response_type="token"))
    frag = fragment_of(r.headers["location"])
    assert len(frag["issued_at"]) == 13
    secret = emu.apps["web"].client_secret
    assert secret
    assert frag["signature"] == signature_of(secret, frag)
    assert frag["instance_url"] == MY_DOMAIN
    assert frag["id"] == f"{LOGIN}/id/{DEFAULT_ORG_ID}/{DEFAULT_USER_ID}"
    assert "scope=" in r.headers["location"] and "+" not in r.headers["location"]


# ref §13.9: the Salesforce-specific SAML or unknown URN grants are unsupported.
def test_unknown_urn_grant_is_unsupported(http: httpx.Client) -> None:
    r = http.post(
        TOKEN,
        data={"grant_type": "urn:ietf:params:oauth:grant-type:unknown-thing"},
    )
    assert_error(r, "unsupported_grant_type", "grant type not supported")


# ================================================================ authorize endpoint
# ref §13.11: client_id is validated before redirect_uri.
def test_client_id_checked_before_redirect_uri(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    params = authorize_params(
        emu, client_id="3MVG9Nope", redirect_uri="https://evil.example.com/cb"
    )
    r = http.get(AUTHORIZE, params=params)
    assert "location" not in r.headers
    assert r.headers["content-type"].startswith("text/html")
    assert (
        "error=invalid_client_id&error_description=client%20identifier%20invalid"
        in (r.text)
    )


# ref §13.11: a redirect_uri that only differs by a trailing slash is a mismatch.
def test_redirect_uri_must_match_exactly(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    uri = emu.apps["web"].callback_urls[0] + "/"
    r = http.get(AUTHORIZE, params=authorize_params(emu, redirect_uri=uri))
    assert r.status_code != 302 and "location" not in r.headers
    assert "error=redirect_uri_mismatch" in r.text


# ref §2.7: the out-of-band redirect is refused on a page (nowhere to redirect to).
@pytest.mark.parametrize("uri", ["oob", "urn:ietf:wg:oauth:2.0:oob"])
def test_out_of_band_redirect_is_not_supported(
    emu: SalesforceEmulator, http: httpx.Client, uri: str
) -> None:
    r = http.get(AUTHORIZE, params=authorize_params(emu, redirect_uri=uri))
    assert r.status_code == 400 and "location" not in r.headers
    assert (
        "error=invalid_request&error_description=out-of-band%20not%20supported"
        in r.text
    )


# ref §13.11: any registered callback URL (not just the first) is accepted.
def test_every_registered_callback_url_is_accepted(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    second = emu.apps["web"].callback_urls[1]
    r = http.get(AUTHORIZE, params=authorize_params(emu, redirect_uri=second))
    assert r.status_code == 302
    assert r.headers["location"].startswith(second + "?code=")


# ref §13.11: errors of hybrid_token go to the fragment, with state.
def test_hybrid_token_errors_go_to_fragment(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    params = authorize_params(
        emu, response_type="hybrid_token", scope="not_a_scope", state="h1"
    )
    r = http.get(AUTHORIZE, params=params)
    location = r.headers["location"]
    assert "?" not in location.split("#", 1)[0]
    assert fragment_of(location) == {
        "error": "invalid_scope",
        "error_description": "requested scope is invalid, unknown, or malformed",
        "state": "h1",
    }


# ref §13.12, §2.7: immediate=true without a session, code flow: query error + state.
def test_immediate_without_session_code_flow(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    r = http.get(AUTHORIZE, params=authorize_params(emu, immediate="true", state="i"))
    assert r.status_code == 302
    assert query_of(r.headers["location"]) == {
        "error": "immediate_unsuccessful",
        "error_description": "immediate unsuccessful",
        "state": "i",
    }


# ref §13.12, §2.7: immediate=true with a session but no approval yet.
def test_immediate_without_approval(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    page = http.get(AUTHORIZE, params=authorize_params(emu))
    assert "Log In" in page.text
    login = http.post(
        AUTHORIZE,
        data={
            **authorize_params(emu),
            "username": DEFAULT_USERNAME,
            "password": DEFAULT_PASSWORD,
            "_action": "login",
        },
    )
    assert "Allow Access?" in login.text  # logged in, not yet approved
    r = http.get(AUTHORIZE, params=authorize_params(emu, immediate="true", state="q"))
    assert query_of(r.headers["location"])["error"] == "immediate_unsuccessful"


# ref §13.12, §3: display values are accepted (Mobile SDKs send touch).
@pytest.mark.parametrize("display", ["page", "popup", "touch", "mobile"])
def test_display_values_show_the_login_page(
    emu: SalesforceEmulator, http: httpx.Client, display: str
) -> None:
    r = http.get(AUTHORIZE, params=authorize_params(emu, display=display))
    assert r.status_code == 200 and "Log In" in r.text


# ref §13.12, §4.4: response_type=token id_token returns an id_token with the nonce.
def test_token_id_token_carries_nonce(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    params = authorize_params(
        emu, response_type="token id_token", nonce="awesome", state="s"
    )
    frag = fragment_of(http.get(AUTHORIZE, params=params).headers["location"])
    assert frag["state"] == "s" and frag["access_token"]
    claims = verify_id_token(http, frag["id_token"], emu.apps["web"].client_id)
    assert claims["nonce"] == "awesome"
    assert claims["sub"] == frag["id"]


# ref §13.12, §4.4: hybrid_token returns tokens plus child sessions in the fragment.
def test_hybrid_token_success(emu: SalesforceEmulator, http: httpx.Client) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    emu.apps["web"].scopes.extend(["lightning", "visualforce", "content"])
    params = authorize_params(
        emu,
        response_type="hybrid_token",
        scope="api lightning visualforce content",
        state="hy",
    )
    r = http.get(AUTHORIZE, params=params)
    assert "?" not in r.headers["location"].split("#", 1)[0]
    frag = fragment_of(r.headers["location"])
    assert frag["state"] == "hy" and frag["token_type"] == "Bearer"
    for name in (
        "lightning_domain",
        "lightning_sid",
        "visualforce_domain",
        "visualforce_sid",
        "content_domain",
        "content_sid",
        "csrf_token",
    ):
        assert frag[name], name


# ref §13.12, §2.7: the scripted user denies: access_denied in the fragment for token.
def test_denied_user_agent_goes_to_fragment(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    emu.auto_consent = "deny"
    r = http.get(
        AUTHORIZE, params=authorize_params(emu, response_type="token", state="d")
    )
    frag = fragment_of(r.headers["location"])
    assert frag["error"] == "access_denied" and frag["state"] == "d"


# ref §13.13: a site login through the user-agent flow carries the community fields.
def test_site_user_agent_login_adds_community_fields(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    r = http.get(SITE + AUTHORIZE, params=authorize_params(emu, response_type="token"))
    frag = fragment_of(r.headers["location"])
    assert frag["sfdc_community_url"] == SITE
    assert frag["sfdc_community_id"] == emu.org.site_id
    assert frag["id"].startswith(SITE + "/id/")


# ================================================================ app and org settings
# ref §13.15, §2.4: the ID-token validity is an app setting (exp = iat + validity).
def test_id_token_validity_is_configurable(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.apps["web"].id_token_validity = 600
    body = exchange(http, emu, emu.authorize(scope="openid api")).json()
    claims = verify_id_token(http, body["id_token"], emu.apps["web"].client_id)
    assert claims["exp"] - claims["iat"] == 600


# ref §13.16: blocking the user-agent flow blocks response_type=token, not code.
def test_user_agent_block_blocks_token_not_code(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    emu.org.user_agent_blocked = True
    r = http.get(
        AUTHORIZE, params=authorize_params(emu, response_type="token", state="b")
    )
    frag = fragment_of(r.headers["location"])
    assert "access_token" not in frag and frag["error"] and frag["state"] == "b"
    ok = http.get(AUTHORIZE, params=authorize_params(emu))
    assert "code" in query_of(ok.headers["location"])


# ================================================================ refresh tokens
# ref §13.17: no refresh token unless refresh_token/offline_access was granted.
def test_no_refresh_token_without_refresh_scope(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    body = exchange(http, emu, emu.authorize(scope="api id")).json()
    assert "refresh_token" not in body
    assert body["scope"] == "api id"


# ref §13.17, §10.2: offline_access is a synonym of refresh_token.
def test_offline_access_yields_a_refresh_token(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    body = exchange(http, emu, emu.authorize(scope="api offline_access")).json()
    assert body["refresh_token"].startswith("5Aep")


# ref §13.17, §4.4: user-agent flow with a custom-scheme callback gets a refresh token.
def test_user_agent_refresh_token_for_custom_scheme_callback(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.auto_approve = DEFAULT_USERNAME
    emu.apps["web"].callback_urls.append("myapp://oauth/done")
    params = authorize_params(
        emu,
        response_type="token",
        redirect_uri="myapp://oauth/done",
        scope="api refresh_token",
    )
    r = http.get(AUTHORIZE, params=params)
    assert r.headers["location"].startswith("myapp://oauth/done#")
    assert fragment_of(r.headers["location"])["refresh_token"].startswith("5Aep")
    params["scope"] = "api"
    again = fragment_of(http.get(AUTHORIZE, params=params).headers["location"])
    assert "refresh_token" not in again


# ref §13.17, §4.10: the device flow issues a refresh token only with the scope.
def test_device_flow_without_refresh_scope_has_no_refresh_token(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    start = start_device(http, emu, "api")
    emu.approve_device(start["user_code"])
    body = poll_device(http, emu, start["device_code"]).json()
    assert body["access_token"] and "refresh_token" not in body


# ref §13.18, §4.7: with rotation, the response's refresh token works and the old one
# is dead (a single replay kills the family, checked elsewhere).
def test_rotation_returns_a_working_new_refresh_token(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    first = emu.issue_tokens()
    second = refresh(http, emu, first["refresh_token"]).json()
    assert second["refresh_token"].startswith("5Aep")
    assert second["refresh_token"] != first["refresh_token"]
    third = refresh(http, emu, second["refresh_token"])
    assert third.status_code == 200
    assert third.json()["refresh_token"] not in (
        first["refresh_token"],
        second["refresh_token"],
    )


# ================================================================ resource side
# ref §13.19, §2.5: a revoked access token gets the INVALID_SESSION_ID array.
def test_revoked_access_token_gets_invalid_session_id(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    tokens = emu.issue_tokens()
    assert http.post(REVOKE, data={"token": tokens["access_token"]}).status_code == 200
    r = http.get(
        MY_DOMAIN + "/services/data/v64.0/", headers=bearer(tokens["access_token"])
    )
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


# ================================================================ JWT bearer
# ref §13.20, §4.5: aud may be a list containing the login URL.
def test_jwt_audience_as_a_list(emu: SalesforceEmulator, http: httpx.Client) -> None:
    token = assertion(emu, aud=["https://other.example.com", LOGIN])
    r = http.post(TOKEN, data={"grant_type": JWT_GRANT, "assertion": token})
    assert r.status_code == 200, r.text


# ref §13.20, §4.5: a user who approved the app in another flow needs no
# pre-authorization.
def test_jwt_after_user_approved_through_web_flow(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.apps["jwt"].admin_approved_users.clear()
    data = {"grant_type": JWT_GRANT, "assertion": assertion(emu)}
    assert_error(
        http.post(TOKEN, data=data),
        "invalid_grant",
        "user hasn't approved this consumer",
    )
    emu.authorize(app="jwt", user=DEFAULT_USERNAME)
    data = {"grant_type": JWT_GRANT, "assertion": assertion(emu)}
    assert http.post(TOKEN, data=data).status_code == 200


# ref §13.20: an assertion without exp is refused.
def test_jwt_without_exp_is_refused(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    data = {"grant_type": JWT_GRANT, "assertion": assertion(emu, exp=None)}
    assert_error(http.post(TOKEN, data=data), "invalid_grant")


# ref §13.20, §4.5: the JWT response has no refresh token and its scope.
def test_jwt_response_shape(emu: SalesforceEmulator, http: httpx.Client) -> None:
    r = http.post(TOKEN, data={"grant_type": JWT_GRANT, "assertion": assertion(emu)})
    body = r.json()
    assert r.headers["content-type"] == JSON_TYPE
    assert body["id"] == f"{LOGIN}/id/{DEFAULT_ORG_ID}/{DEFAULT_USER_ID}"
    assert body["instance_url"] == MY_DOMAIN
    assert "refresh_token" not in body and body["scope"]


# ================================================================ device flow
# ref §13.21: device-code expiry is off by default (and configurable).
def test_device_code_does_not_expire_by_default(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    start = start_device(http, emu)
    emu.advance_time(3600)
    assert_error(poll_device(http, emu, start["device_code"]), "authorization_pending")
    emu.apps["device"].device_code_lifetime = 600
    late = start_device(http, emu)
    emu.advance_time(601)
    r = poll_device(http, emu, late["device_code"])
    assert r.status_code == 400 and r.json()["error"] == "expired_token"


# ref §13.21: slow_down is off by default: fast polls stay authorization_pending.
def test_no_slow_down_by_default(emu: SalesforceEmulator, http: httpx.Client) -> None:
    start = start_device(http, emu)
    for _ in range(3):
        assert_error(
            poll_device(http, emu, start["device_code"]), "authorization_pending"
        )


# ref §13.21, §4.10: on the login host, verification_uri is <login host>/setup/connect
# and user_code is 8 upper-case alphanumerics.
def test_device_start_on_login_host(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    r = http.post(
        TOKEN,
        data={
            "response_type": "device_code",
            "client_id": emu.apps["device"].client_id,
            "format": "json",
        },
    )
    body = r.json()
    assert r.headers["content-type"] == JSON_TYPE
    assert body["verification_uri"] == f"{LOGIN}/setup/connect"
    assert body["interval"] == 5 and isinstance(body["interval"], int)
    code = body["user_code"]
    assert len(code) == 8 and code.isalnum() and code == code.upper()


# ref §13.21, §4.10: a used device code cannot be polled again.
def test_device_code_is_single_use(emu: SalesforceEmulator, http: httpx.Client) -> None:
    start = start_device(http, emu, "api refresh_token openid")
    emu.approve_device(start["user_code"])
    body = poll_device(http, emu, start["device_code"]).json()
    assert body["refresh_token"] and body["id_token"]
    assert poll_device(http, emu, start["device_code"]).status_code == 400


# ================================================================ revoke
# ref §13.22, §5: JSONP success answers fn({}).
def test_revoke_jsonp_success(emu: SalesforceEmulator, http: httpx.Client) -> None:
    tokens = emu.issue_tokens()
    r = http.get(REVOKE, params={"token": tokens["access_token"], "callback": "done"})
    assert r.status_code == 200
    assert r.text == "done({});"


# ref §13.22, §5: unsupported_token_type for tokens that cannot be revoked.
def test_revoke_unsupported_token_type(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    id_token = exchange(http, emu, emu.authorize(scope="openid api")).json()["id_token"]
    r = http.post(REVOKE, data={"token": id_token})
    assert_error(r, "unsupported_token_type")
    tokens = emu.issue_tokens()
    r = http.post(
        REVOKE,
        data={"token": tokens["access_token"], "token_type_hint": "id_token"},
    )
    assert_error(r, "unsupported_token_type")


# ref §13.22, §5: revoking a refresh token revokes every access token issued from it.
def test_revoking_refresh_token_kills_all_its_access_tokens(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    first = emu.issue_tokens()
    second = refresh(http, emu, first["refresh_token"]).json()
    r = http.post(MY_DOMAIN + REVOKE, data={"token": first["refresh_token"]})
    assert r.status_code == 200 and r.content == b""
    for token in (first["access_token"], second["access_token"]):
        rest = http.get(MY_DOMAIN + "/services/data/v64.0/", headers=bearer(token))
        assert rest.status_code == 401
    assert_error(refresh(http, emu, first["refresh_token"]), "invalid_grant", EXPIRED)


# ref §13.22, §5: revoking an access token leaves its refresh token alive.
def test_revoke_by_get_on_my_domain(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    tokens = emu.issue_tokens()
    r = http.get(MY_DOMAIN + REVOKE, params={"token": tokens["access_token"]})
    assert r.status_code == 200
    assert_error(http.get(REVOKE, params={"token": "junk"}), "invalid_token")


# ================================================================ introspect
# ref §13.23, §6: Basic client authentication on introspect; a wrong secret fails.
def test_introspect_with_basic_auth(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    app = emu.apps["web"]
    assert app.client_secret
    tokens = emu.issue_tokens()
    r = http.post(
        INTROSPECT,
        data={"token": tokens["access_token"], "token_type_hint": "access_token"},
        auth=(app.client_id, app.client_secret),
    )
    assert r.headers["content-type"] == JSON_TYPE
    body = r.json()
    assert body["active"] is True and body["client_id"] == app.client_id
    assert isinstance(body["exp"], int) and isinstance(body["iat"], int)
    bad = http.post(
        INTROSPECT,
        data={"token": tokens["access_token"]},
        auth=(app.client_id, "wrong"),
    )
    assert_error(bad, "invalid_client", "invalid client credentials")


# ref §13.23, §6: expired and revoked tokens are inactive.
def test_introspect_expired_and_revoked_are_inactive(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    tokens = emu.issue_tokens()
    http.post(REVOKE, data={"token": tokens["refresh_token"]})
    for token in (tokens["refresh_token"], tokens["access_token"]):
        r = http.post(INTROSPECT, data={"token": token, **creds(emu)})
        assert r.json() == {"active": False}
    fresh = emu.issue_tokens()
    emu.expire_access_tokens()
    r = http.post(INTROSPECT, data={"token": fresh["access_token"], **creds(emu)})
    assert r.json() == {"active": False}


# ================================================================ userinfo, identity
# ref §13.24, §8: version=latest resolves to the newest API version.
def test_identity_version_latest(emu: SalesforceEmulator, http: httpx.Client) -> None:
    tokens = emu.issue_tokens()
    r = http.get(
        tokens["id"],
        params={"version": "latest"},
        headers=bearer(tokens["access_token"]),
    )
    rest = r.json()["urls"]["rest"]
    assert "{version}" not in rest
    assert rest.startswith(f"{MY_DOMAIN}/services/data/v")
    assert float(rest.rsplit("/v", 1)[1].rstrip("/")) >= 60.0


# ref §13.24, §8: Accept: application/xml gives XML; format=json wins over Accept.
def test_identity_accept_header_and_format_json(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    tokens = emu.issue_tokens()
    headers = {**bearer(tokens["access_token"]), "Accept": "application/xml"}
    xml = http.get(tokens["id"], headers=headers)
    assert xml.headers["content-type"].startswith("application/xml")
    assert f"<user_id>{DEFAULT_USER_ID}</user_id>" in xml.text
    as_json = http.get(tokens["id"], params={"format": "json"}, headers=headers)
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json()["user_id"] == DEFAULT_USER_ID


# ref §13.24, §8: the identity URL also answers on the instance host, and to a POST
# with oauth_token in the form (the Drupal client).
def test_identity_on_instance_host_and_by_post(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    tokens = emu.issue_tokens()
    path = urlsplit(tokens["id"]).path
    r = http.get(MY_DOMAIN + path, headers=bearer(tokens["access_token"]))
    assert r.status_code == 200 and r.json()["username"] == DEFAULT_USERNAME
    posted = http.post(tokens["id"], data={"oauth_token": tokens["access_token"]})
    assert posted.status_code == 200
    assert posted.json()["organization_id"] == DEFAULT_ORG_ID


# ref §13.24, §8: no token at all: 403 Bad_OAuth_Token.
def test_identity_without_token_is_403(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    tokens = emu.issue_tokens()
    r = http.get(tokens["id"])
    assert r.status_code == 403 and "Bad_OAuth_Token" in r.text


# ref §13.24, §7: userinfo urls keep {version} unless ?version=, and format=xml works.
def test_userinfo_version_and_xml(emu: SalesforceEmulator, http: httpx.Client) -> None:
    token = emu.issue_tokens()["access_token"]
    plain = http.get(USERINFO, headers=bearer(token)).json()
    assert plain["urls"]["rest"] == f"{MY_DOMAIN}/services/data/v{{version}}/"
    assert plain["sub"] == f"{LOGIN}/id/{DEFAULT_ORG_ID}/{DEFAULT_USER_ID}"
    versioned = http.get(USERINFO, params={"version": "62.0"}, headers=bearer(token))
    assert versioned.json()["urls"]["rest"] == f"{MY_DOMAIN}/services/data/v62.0/"
    xml = http.get(USERINFO, params={"format": "xml"}, headers=bearer(token))
    assert xml.headers["content-type"].startswith("application/xml")
    assert f"<preferred_username>{DEFAULT_USERNAME}</preferred_username>" in xml.text


# ================================================================ ID tokens
# ref §13.25, §4.7: refresh with openid returns a fresh, verifiable ID token.
def test_refresh_returns_a_valid_id_token(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    tokens = emu.issue_tokens(scopes="openid api refresh_token")
    body = refresh(http, emu, tokens["refresh_token"]).json()
    client_id = emu.apps["web"].client_id
    claims = verify_id_token(http, body["id_token"], client_id)
    assert claims["iss"] == LOGIN and claims["aud"] == client_id
    assert claims["sub"] == body["id"]
    assert claims["exp"] - claims["iat"] == 120
    assert abs(claims["iat"] - time.time()) < 60
    digest = hashlib.sha256(body["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == "RS256" and header["typ"] == "JWT"


# ref §13.25: a device-flow ID token is signed with a key from /id/keys.
def test_device_flow_id_token_verifies(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    start = start_device(http, emu, "api openid")
    emu.approve_device(start["user_code"])
    body = poll_device(http, emu, start["device_code"]).json()
    claims = verify_id_token(
        http, body["id_token"], emu.apps["device"].client_id, MY_DOMAIN
    )
    assert claims["iss"] == MY_DOMAIN and claims["sub"] == body["id"]


# ref §13.13, §2.8: a client that forgets to URL-decode the code is refused; the
# decoded code works.
def test_code_must_be_url_decoded(emu: SalesforceEmulator, http: httpx.Client) -> None:
    url = emu.authorize(state="enc")
    raw = urlsplit(url).query.split("code=", 1)[1].split("&", 1)[0]
    assert raw.endswith("%3D%3D")
    r = exchange(http, emu, url, code=raw)
    assert_error(r, "invalid_grant")
    assert exchange(http, emu, url).status_code == 200


# ref §13.1, §4.10: a device approved by a sandbox user started on test.salesforce.com
# gets that org's My Domain as instance_url and the test host in id.
def test_device_instance_url_is_the_approving_users_org(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.add_org("beta", org_id="00DXX0000002xyz", my_domain="beta", sandbox_name="dev")
    emu.add_user("bob@beta.com", "pw", user_id="005XX0000002bob", org="beta")
    test_host = "https://test.salesforce.com"
    data = {"response_type": "device_code", "client_id": emu.apps["device"].client_id}
    start = http.post(test_host + TOKEN, data=data).json()
    assert start["verification_uri"] == f"{test_host}/setup/connect"
    emu.approve_device(start["user_code"], user="bob@beta.com")
    poll = {
        "grant_type": "device",
        "client_id": emu.apps["device"].client_id,
        "code": start["device_code"],
    }
    body = http.post(test_host + TOKEN, data=poll).json()
    assert body["instance_url"] == "https://beta--dev.sandbox.my.salesforce.com"
    assert body["id"].startswith(test_host + "/id/")


# ref §13.19, §2.5: the org's session timeout applies when the app sets none; the
# app's own timeout wins; neither is reported to the client.
def test_session_timeout_per_org_and_per_app(
    emu: SalesforceEmulator, http: httpx.Client
) -> None:
    emu.org.session_timeout = 300
    org_bound = emu.issue_tokens()
    emu.apps["web"].session_timeout = 900
    app_bound = emu.issue_tokens()
    assert "expires_in" not in org_bound
    emu.advance_time(301)
    url = MY_DOMAIN + "/services/data/v64.0/"
    assert http.get(url, headers=bearer(org_bound["access_token"])).status_code == 401
    assert http.get(url, headers=bearer(app_bound["access_token"])).status_code == 200
    emu.advance_time(600)
    assert http.get(url, headers=bearer(app_bound["access_token"])).status_code == 401
