"""Asset token flow: actor tokens, the RFC 8693 exchange, asset token verification."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    ConfigurationError,
    FlowError,
    InvalidGrantError,
    MalformedResponseError,
    SalesforceUnavailableError,
    SignatureError,
    TransportError,
    UnsupportedGrantTypeError,
    UntrustedHostError,
)
from sfoauth_core.flows._base import HttpResponse
from sfoauth_core.flows.asset_token import (
    create_actor_token,
    request_asset_token,
    verify_asset_token,
)
from sfoauth_core.tokens import AssetToken, Token

ACCESS = "00DXX0000001abc!AQ0AQExampleAccessToken"
AUDIENCE = "https://backend.example.com"


@pytest.fixture(scope="session")
def org_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def device_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def app() -> ConnectedApp:
    return ConnectedApp(
        client_id="3MVG9Example",
        client_secret="s3cr3t",
        login_url="https://acme.my.site.com/customers",
    )


def json_response(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(
        status, {"content-type": "application/json"}, json.dumps(body).encode()
    )


def asset_jwt(org_key, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://acme.my.site.com/customers",
        "aud": [AUDIENCE],
        "sub": "005XX000001xyzQAA",
        "did": "device-42",
        "nbf": now,
        "exp": now + 60,
    }
    payload.update(claims)
    return jwt.encode(payload, org_key, algorithm="RS256", headers={"kid": "Assets"})


def finish(flow, response):
    with pytest.raises(StopIteration) as stop:
        flow.send(response)
    return stop.value.value


# --- create_actor_token ---------------------------------------------------------------


def test_unsigned_actor_token_carries_the_device_claims():
    jwk = {"kty": "RSA", "n": "abc", "e": "AQAB"}
    token = create_actor_token(
        device_id="device-42",
        name="Thermostat",
        asset={"Name": "Kitchen", "SerialNumber": "SN-1"},
        device_key=jwk,
    )
    assert jwt.get_unverified_header(token)["alg"] == "none"
    assert token.endswith(".")  # no signature
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {
        "did": "device-42",
        "Name": "Thermostat",
        "Asset": {"Name": "Kitchen", "SerialNumber": "SN-1"},
        "cnf": {"jwk": jwk},
    }


def test_actor_token_with_only_some_claims():
    claims = jwt.decode(
        create_actor_token(device_id="d-1"), options={"verify_signature": False}
    )
    assert claims == {"did": "d-1"}


def test_signed_actor_token_binds_the_device_public_key(device_key):
    token = create_actor_token(device_id="device-42", signing_key=device_key)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, device_key.public_key(), algorithms=["RS256"])
    expected_jwk = RSAAlgorithm.to_jwk(device_key.public_key(), as_dict=True)
    assert claims["cnf"] == {"jwk": expected_jwk}
    assert claims["did"] == "device-42"


def test_signed_actor_token_accepts_a_pem_key_and_an_explicit_device_key(device_key):
    pem = device_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk = {"kty": "RSA", "kid": "dev", "n": "x", "e": "AQAB"}
    token = create_actor_token(name="n", device_key=jwk, signing_key=pem)
    claims = jwt.decode(token, device_key.public_key(), algorithms=["RS256"])
    assert claims["cnf"] == {"jwk": jwk}


def test_extra_claims_never_override_the_device_claims():
    token = create_actor_token(device_id="real", extra_claims={"did": "fake", "x": 1})
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == {"did": "real", "x": 1}


def test_actor_token_needs_a_claim():
    with pytest.raises(ConfigurationError, match="actor_token"):
        create_actor_token()


def test_actor_token_refuses_a_short_key():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ConfigurationError, match="2048"):
        create_actor_token(device_id="d", signing_key=small)


def test_actor_token_refuses_a_non_rsa_key():
    with pytest.raises(ConfigurationError, match="RSA"):
        create_actor_token(
            device_id="d", signing_key=ec.generate_private_key(ec.SECP256R1())
        )


def test_actor_token_refuses_an_unreadable_key():
    with pytest.raises(ConfigurationError, match="signing_key") as info:
        create_actor_token(device_id="d", signing_key="-----BEGIN nonsense")
    assert "nonsense" not in str(info.value)


def test_actor_token_refuses_a_non_mapping_device_key():
    with pytest.raises(ConfigurationError, match="device_key"):
        create_actor_token(device_key="not-a-jwk")  # type: ignore[arg-type]


# --- request_asset_token --------------------------------------------------------------


def test_exchange_request_without_actor_token(app):
    flow = request_asset_token(app, ACCESS)
    req = next(flow)
    assert req.method == "POST"
    assert req.url == "https://acme.my.site.com/customers/services/oauth2/token"
    assert req.headers["Accept"] == "application/json"
    assert "Authorization" not in req.headers
    assert req.params is None
    assert dict(req.form) == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "subject_token": ACCESS,
    }
    assert ACCESS not in req.url and ACCESS not in repr(req)
    assert urlsplit(req.url).query == ""


@pytest.mark.parametrize(
    ("login_url", "expected"),
    [
        (
            "https://login.salesforce.com",
            "https://login.salesforce.com/services/oauth2/token",
        ),
        (
            "https://acme.my.salesforce.com",
            "https://acme.my.salesforce.com/services/oauth2/token",
        ),
        (
            "https://acme--uat.sandbox.my.salesforce.com",
            "https://acme--uat.sandbox.my.salesforce.com/services/oauth2/token",
        ),
    ],
)
def test_exchange_url_per_host(login_url, expected):
    app = ConnectedApp(client_id="3MVG9Example", login_url=login_url)
    assert next(request_asset_token(app, ACCESS)).url == expected


def test_exchange_with_a_token_object_and_a_ready_actor_token(app):
    token = Token(access_token=ACCESS, refresh_token="5Aep861Refresh")
    actor = create_actor_token(device_id="device-42")
    req = next(request_asset_token(app, token, actor_token=actor))
    assert req.form["subject_token"] == ACCESS
    assert req.form["actor_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert req.form["actor_token"] == actor
    assert "5Aep861Refresh" not in json.dumps(dict(req.form))


def test_exchange_builds_the_actor_token_from_device_claims(app):
    jwk = {"kty": "RSA", "n": "abc", "e": "AQAB"}
    req = next(
        request_asset_token(
            app,
            ACCESS,
            device_id="device-42",
            name="Printer",
            asset={"Name": "P1"},
            device_key=jwk,
        )
    )
    assert req.form["actor_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    claims = jwt.decode(req.form["actor_token"], options={"verify_signature": False})
    assert claims == {
        "did": "device-42",
        "Name": "Printer",
        "Asset": {"Name": "P1"},
        "cnf": {"jwk": jwk},
    }


def test_exchange_refuses_actor_token_plus_claims(app):
    with pytest.raises(ConfigurationError, match="not both"):
        next(request_asset_token(app, ACCESS, actor_token="a.b.", device_id="d"))


@pytest.mark.parametrize("token", ["", Token(access_token="")])
def test_exchange_needs_an_access_token(app, token):
    with pytest.raises(FlowError, match="access token"):
        next(request_asset_token(app, token))


def test_exchange_refuses_an_untrusted_token_url(app):
    flow = request_asset_token(app, ACCESS, token_url="https://evil.example/token")
    with pytest.raises(UntrustedHostError):
        next(flow)


ASSET_ANSWER = {
    "issued_token_type": "urn:ietf:params:oauth:token-type:jwt",
    "token_type": "Bearer",
}


def exchange(app, body, keys, cache=None):
    """Run the exchange: the answer, then the org's key set for the signature check."""
    flow = request_asset_token(app, ACCESS, jwks_cache=cache)
    next(flow)
    keys_request = flow.send(json_response(body))
    assert keys_request.method == "GET"
    assert keys_request.url == "https://acme.my.site.com/customers/id/keys"
    return finish(flow, json_response(keys))


def test_exchange_response_is_parsed(app, org_key):
    asset = asset_jwt(org_key)
    result = exchange(
        app,
        {"access_token": asset, **ASSET_ANSWER, "expires_in": 60},
        org_jwks(org_key),
    )
    assert isinstance(result, AssetToken)
    assert result.token == asset
    assert result.expires_in == 60
    assert result.issued_token_type == "urn:ietf:params:oauth:token-type:jwt"
    assert result.token_type == "Bearer"
    assert result.claims["did"] == "device-42"
    assert result.claims["aud"] == [AUDIENCE]
    assert asset not in repr(result)


def test_exchange_response_with_string_expires_in(app, org_key):
    body = {"access_token": asset_jwt(org_key), **ASSET_ANSWER, "expires_in": "90"}
    assert exchange(app, body, org_jwks(org_key)).expires_in == 90


def test_exchange_response_without_expires_in(app, org_key):
    body = {"access_token": asset_jwt(org_key), **ASSET_ANSWER}
    assert exchange(app, body, org_jwks(org_key)).expires_in is None


# Issue 13 defect 5: both were accepted before (the type defaulted to JWT).
@pytest.mark.parametrize(
    "issued",
    [
        None,
        "urn:ietf:params:oauth:token-type:access_token",
        "urn:ietf:params:oauth:token-type:jwt ",
        "URN:IETF:PARAMS:OAUTH:TOKEN-TYPE:JWT",
        7,
    ],
)
def test_exchange_refuses_a_missing_or_wrong_issued_token_type(app, org_key, issued):
    body = {"access_token": asset_jwt(org_key), "token_type": "Bearer"}
    if issued is not None:
        body["issued_token_type"] = issued
    flow = request_asset_token(app, ACCESS)
    next(flow)
    with pytest.raises(MalformedResponseError, match="issued_token_type"):
        flow.send(json_response(body))


@pytest.mark.parametrize("token_type", [None, "N_A", "MAC"])
def test_exchange_refuses_a_token_type_other_than_bearer(app, org_key, token_type):
    body = {"access_token": asset_jwt(org_key), **ASSET_ANSWER}
    if token_type is None:
        del body["token_type"]
    else:
        body["token_type"] = token_type
    flow = request_asset_token(app, ACCESS)
    next(flow)
    with pytest.raises(MalformedResponseError, match="token_type"):
        flow.send(json_response(body))


def test_exchange_refuses_an_asset_token_signed_by_another_key(app, org_key):
    # Issue 13 defect 5: a token signed by a key that is not the org's was returned.
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = {"access_token": asset_jwt(foreign), **ASSET_ANSWER}
    with pytest.raises(SignatureError, match="signature"):
        exchange(app, body, org_jwks(org_key))


def test_exchange_refuses_an_asset_token_whose_kid_is_not_the_orgs(app, org_key):
    body = {"access_token": asset_jwt(org_key), **ASSET_ANSWER}
    keys = org_jwks(org_key)
    keys["keys"][0]["kid"] = "SomethingElse"
    with pytest.raises(SignatureError, match="kid"):
        exchange(app, body, keys)


def test_exchange_uses_the_shared_key_cache(app, org_key):
    cache = {"https://acme.my.site.com/customers/id/keys": org_jwks(org_key)}
    flow = request_asset_token(app, ACCESS, jwks_cache=cache)
    next(flow)
    body = {"access_token": asset_jwt(org_key), **ASSET_ANSWER}
    assert finish(flow, json_response(body)).claims["did"] == "device-42"


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in": 60},
        {"access_token": "", "expires_in": 60},
        {"access_token": 42},
        {"access_token": "not-a-jwt", "expires_in": 60},
        {"access_token": "JWT", "expires_in": "soon"},
        {"access_token": "JWT", "expires_in": True},
        {"access_token": "JWT", "expires_in": -5},
        {"access_token": "JWT", "token_type": 1},
    ],
)
def test_malformed_exchange_responses(app, org_key, body):
    body = {**ASSET_ANSWER, **body}
    if body.get("access_token") == "JWT":
        body = {**body, "access_token": asset_jwt(org_key)}
    flow = request_asset_token(app, ACCESS)
    next(flow)
    with pytest.raises(MalformedResponseError) as info:
        flow.send(json_response(body))
    assert ACCESS not in str(info.value)


def test_exchange_error_is_typed(app):
    flow = request_asset_token(app, ACCESS)
    next(flow)
    with pytest.raises(InvalidGrantError) as info:
        flow.send(
            json_response(
                {"error": "invalid_grant", "error_description": "invalid token"}, 400
            )
        )
    assert info.value.status_code == 400
    assert ACCESS not in str(info.value)


def test_exchange_unsupported_grant(app):
    flow = request_asset_token(app, ACCESS)
    next(flow)
    with pytest.raises(UnsupportedGrantTypeError):
        flow.send(
            json_response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
                400,
            )
        )


def test_exchange_html_page_is_malformed(app):
    flow = request_asset_token(app, ACCESS)
    next(flow)
    with pytest.raises(MalformedResponseError, match="HTML"):
        flow.send(
            HttpResponse(200, {"content-type": "text/html"}, b"<html>login</html>")
        )


def test_exchange_5xx_is_salesforce_unavailable(app):
    # Issue 10 item 6: a 5xx answer (a maintenance page) is typed as unavailability.
    flow = request_asset_token(app, ACCESS)
    next(flow)
    with pytest.raises(SalesforceUnavailableError) as caught:
        flow.send(
            HttpResponse(503, {"content-type": "text/html"}, b"<html>down</html>")
        )
    assert caught.value.status_code == 503


def test_exchange_is_not_retried_on_transport_errors(app):
    flow = request_asset_token(app, ACCESS)
    next(flow)
    with pytest.raises(TransportError):
        flow.throw(TransportError("connection reset"))


# --- verify_asset_token ---------------------------------------------------------------


def org_jwks(org_key) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(org_key.public_key(), as_dict=True)
    jwk.update(kid="Assets", alg="RS256", use="sig")
    return {"keys": [jwk]}


def test_verify_asset_token_fetches_the_org_keys(app, org_key):
    cache: dict[str, Any] = {}
    flow = verify_asset_token(
        app, asset_jwt(org_key), audience=AUDIENCE, jwks_cache=cache
    )
    req = next(flow)
    assert req.method == "GET"
    assert req.url == "https://acme.my.site.com/customers/id/keys"
    assert "Authorization" not in req.headers
    claims = finish(flow, json_response(org_jwks(org_key)))
    assert claims["did"] == "device-42"
    # Second verification: served from the cache.
    with pytest.raises(StopIteration) as stop:
        next(
            verify_asset_token(
                app, asset_jwt(org_key), audience=AUDIENCE, jwks_cache=cache
            )
        )
    assert stop.value.value["did"] == "device-42"


def test_verify_asset_token_checks_the_audience_exactly(app, org_key):
    cache = {"https://acme.my.site.com/customers/id/keys": org_jwks(org_key)}
    flow = verify_asset_token(
        app, asset_jwt(org_key), audience="https://backend.example", jwks_cache=cache
    )
    with pytest.raises(SignatureError, match="audience"):
        next(flow)


@pytest.mark.parametrize(
    "iss",
    [
        "https://acme.my.site.com/customer",  # prefix
        "https://acme.my.site.com/customers/evil",  # superstring
        "https://acme.my.site.com/customers/",
        "HTTPS://ACME.MY.SITE.COM/customers",
        "https://evil.example",
        None,
    ],
)
def test_verify_asset_token_compares_the_issuer_exactly_by_default(app, org_key, iss):
    # Issue 13 defect 5: without issuer= any iss (or none) was accepted.
    cache = {"https://acme.my.site.com/customers/id/keys": org_jwks(org_key)}
    if iss is None:
        now = int(time.time())
        claims = {"aud": [AUDIENCE], "nbf": now, "exp": now + 60}
        token = jwt.encode(
            claims, org_key, algorithm="RS256", headers={"kid": "Assets"}
        )
    else:
        token = asset_jwt(org_key, iss=iss)
    with pytest.raises(SignatureError, match="iss"):
        next(verify_asset_token(app, token, audience=AUDIENCE, jwks_cache=cache))


def test_verify_asset_token_accepts_several_exact_issuers(app, org_key):
    cache = {"https://acme.my.site.com/customers/id/keys": org_jwks(org_key)}
    token = asset_jwt(org_key, iss="https://acme.my.salesforce.com")
    flow = verify_asset_token(
        app,
        token,
        audience=AUDIENCE,
        jwks_cache=cache,
        issuer=["https://acme.my.site.com/customers", "https://acme.my.salesforce.com"],
    )
    with pytest.raises(StopIteration) as stop:
        next(flow)
    assert stop.value.value["iss"] == "https://acme.my.salesforce.com"


def test_verify_asset_token_checks_the_issuer_when_given(app, org_key):
    cache = {"https://acme.my.site.com/customers/id/keys": org_jwks(org_key)}
    flow = verify_asset_token(
        app,
        asset_jwt(org_key),
        audience=AUDIENCE,
        jwks_cache=cache,
        issuer="https://acme.my.salesforce.com",
    )
    with pytest.raises(SignatureError, match="issuer"):
        next(flow)


def test_verify_asset_token_refuses_an_expired_token(app, org_key):
    cache = {"https://acme.my.site.com/customers/id/keys": org_jwks(org_key)}
    old = int(time.time()) - 3600
    token = asset_jwt(org_key, nbf=old, exp=old + 60)
    with pytest.raises(SignatureError, match="expired"):
        next(verify_asset_token(app, token, audience=AUDIENCE, jwks_cache=cache))


def test_verify_asset_token_refuses_unsigned_tokens(app):
    token = jwt.encode(
        {"aud": AUDIENCE, "exp": int(time.time()) + 60}, "", algorithm="none"
    )
    with pytest.raises(SignatureError, match="only RS256"):
        next(verify_asset_token(app, token, audience=AUDIENCE, jwks_cache={}))
