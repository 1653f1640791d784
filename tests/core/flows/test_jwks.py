"""JWT verification: algorithm pinning, JWKS cache, one re-fetch, exact claim checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cachetools import TTLCache
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm

from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    MalformedResponseError,
    SalesforceUnavailableError,
    SignatureError,
    UntrustedHostError,
)
from sfoauth_core.flows._base import NO_RETRY, HttpRequest, HttpResponse, Wait
from sfoauth_core.flows.jwks import check_jwt_header, verify_jwt

CLIENT_ID = "3MVG9Example"
ISSUER = "https://login.salesforce.com"
KEYS_URL = "https://login.salesforce.com/id/keys"


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"}, **extra)
    return jwk


def jwks_of(*jwks: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(jwks)}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAA",
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 120,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(
    key: rsa.RSAPrivateKey, payload: dict[str, Any], kid: str | None = "252"
) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, key, algorithm="RS256", headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def json_response(body: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(
        status, {"content-type": "application/json"}, json.dumps(body).encode()
    )


def drive(flow, *responses):
    requests = []
    try:
        step = next(flow)
        for response in responses:
            requests.append(step)
            step = flow.send(response)
    except StopIteration as stop:
        return requests, stop.value
    raise AssertionError(f"the flow wants more: {step!r}")


@pytest.fixture
def app() -> ConnectedApp:
    return ConnectedApp(client_id=CLIENT_ID, client_secret="s3cr3t")


@pytest.fixture
def cache() -> TTLCache[str, Any]:
    return TTLCache(maxsize=16, ttl=3600)


def verify(app, token, cache, **kwargs):
    kwargs.setdefault("audience", CLIENT_ID)
    kwargs.setdefault("issuer", ISSUER)
    return verify_jwt(app, token, jwks_cache=cache, **kwargs)


# --- happy path and cache ------------------------------------------------------------


def test_first_verify_fetches_keys_then_returns_claims(app, cache, rsa_key):
    token = sign(rsa_key, claims(nonce="n-1"))
    keys = jwks_of(public_jwk(rsa_key, "252"))
    requests, result = drive(verify(app, token, cache), json_response(keys))
    assert len(requests) == 1
    req = requests[0]
    assert isinstance(req, HttpRequest)
    assert req.method == "GET"
    assert req.url == KEYS_URL
    assert req.headers["Accept"] == "application/json"
    assert "Authorization" not in req.headers
    assert req.form is None
    assert result["aud"] == CLIENT_ID
    assert result["iss"] == ISSUER
    assert result["nonce"] == "n-1"
    assert cache[KEYS_URL] == keys


def test_second_verify_uses_the_cache(app, cache, rsa_key):
    cache[KEYS_URL] = jwks_of(public_jwk(rsa_key, "252"))
    requests, result = drive(verify(app, sign(rsa_key, claims()), cache))
    assert requests == []
    assert result["sub"].endswith("/005XX000001xyzQAA")


def test_two_verifies_make_one_request(app, cache, rsa_key):
    keys = jwks_of(public_jwk(rsa_key, "252"))
    first, _ = drive(verify(app, sign(rsa_key, claims()), cache), json_response(keys))
    second, _ = drive(verify(app, sign(rsa_key, claims(nonce="x")), cache))
    assert len(first) == 1
    assert second == []


def test_site_login_url_keeps_its_path(rsa_key, cache):
    app = ConnectedApp(
        client_id=CLIENT_ID, login_url="https://acme.my.site.com/customers"
    )
    issuer = "https://acme.my.site.com/customers"
    token = sign(rsa_key, claims(iss=issuer))
    requests, result = drive(
        verify(app, token, cache, issuer=issuer),
        json_response(jwks_of(public_jwk(rsa_key, "252"))),
    )
    assert requests[0].url == "https://acme.my.site.com/customers/id/keys"
    assert result["iss"] == issuer
    assert "https://acme.my.site.com/customers/id/keys" in cache


def test_my_domain_keys_url(rsa_key, cache):
    app = ConnectedApp(client_id=CLIENT_ID, login_url="https://acme.my.salesforce.com")
    token = sign(rsa_key, claims(iss="https://acme.my.salesforce.com"))
    requests, _ = drive(
        verify(app, token, cache, issuer="https://acme.my.salesforce.com"),
        json_response(jwks_of(public_jwk(rsa_key, "252"))),
    )
    assert requests[0].url == "https://acme.my.salesforce.com/id/keys"


def test_explicit_trusted_keys_url(app, cache, rsa_key):
    url = "https://acme.my.salesforce.com/id/keys"
    requests, _ = drive(
        verify(app, sign(rsa_key, claims()), cache, keys_url=url),
        json_response(jwks_of(public_jwk(rsa_key, "252"))),
    )
    assert requests[0].url == url
    assert url in cache and KEYS_URL not in cache


def test_untrusted_keys_url_is_refused_before_any_request(app, cache, rsa_key):
    flow = verify(
        app, sign(rsa_key, claims()), cache, keys_url="https://evil.example/k"
    )
    with pytest.raises(UntrustedHostError, match=r"evil\.example"):
        next(flow)


def test_http_keys_url_is_refused(app, cache, rsa_key):
    flow = verify(
        app,
        sign(rsa_key, claims()),
        cache,
        keys_url="http://login.salesforce.com/id/keys",
    )
    with pytest.raises(UntrustedHostError):
        next(flow)


def test_loopback_emulator_keys(rsa_key, cache):
    app = ConnectedApp(
        client_id=CLIENT_ID, login_url="http://127.0.0.1:8765", allow_loopback=True
    )
    token = sign(rsa_key, claims(iss="http://127.0.0.1:8765"))
    requests, _ = drive(
        verify(app, token, cache, issuer="http://127.0.0.1:8765"),
        json_response(jwks_of(public_jwk(rsa_key, "252"))),
    )
    assert requests[0].url == "http://127.0.0.1:8765/id/keys"


# --- kid handling ---------------------------------------------------------------------


def test_unknown_kid_refetches_once_and_finds_the_rotated_key(
    app, cache, rsa_key, other_key
):
    cache[KEYS_URL] = jwks_of(public_jwk(other_key, "190"))
    rotated = jwks_of(public_jwk(other_key, "190"), public_jwk(rsa_key, "252"))
    requests, result = drive(
        verify(app, sign(rsa_key, claims()), cache), json_response(rotated)
    )
    assert [r.url for r in requests] == [KEYS_URL]
    assert result["aud"] == CLIENT_ID
    assert cache[KEYS_URL] == rotated


def test_unknown_kid_after_refetch_fails_without_a_second_refetch(
    app, cache, rsa_key, other_key
):
    cache[KEYS_URL] = jwks_of(public_jwk(other_key, "190"))
    flow = verify(app, sign(rsa_key, claims(), kid="999"), cache)
    assert next(flow).url == KEYS_URL
    with pytest.raises(SignatureError, match="kid '999'"):
        flow.send(json_response(jwks_of(public_jwk(other_key, "190"))))


def test_unknown_kid_on_a_fresh_fetch_is_not_fetched_twice(app, cache, rsa_key):
    flow = verify(app, sign(rsa_key, claims(), kid="999"), cache)
    next(flow)
    with pytest.raises(SignatureError, match="no key"):
        flow.send(json_response(jwks_of(public_jwk(rsa_key, "252"))))


def test_missing_kid_with_a_single_key_is_accepted(app, cache, rsa_key):
    cache[KEYS_URL] = jwks_of(public_jwk(rsa_key, "252"))
    _, result = drive(verify(app, sign(rsa_key, claims(), kid=None), cache))
    assert result["aud"] == CLIENT_ID


def test_missing_kid_with_several_keys_is_refused(app, cache, rsa_key, other_key):
    keys = jwks_of(public_jwk(rsa_key, "252"), public_jwk(other_key, "190"))
    cache[KEYS_URL] = keys
    flow = verify(app, sign(rsa_key, claims(), kid=None), cache)
    next(flow)  # one re-fetch
    with pytest.raises(SignatureError, match="no key"):
        flow.send(json_response(keys))


def test_non_string_kid_is_refused(app, cache, rsa_key):
    header = b64(json.dumps({"alg": "RS256", "kid": 252}).encode())
    token = f"{header}.{b64(json.dumps(claims()).encode())}.{b64(b'sig')}"
    with pytest.raises(SignatureError, match="header"):
        next(verify(app, token, cache))


# --- hostile tokens are refused before keys are fetched or claims read ----------------


def test_alg_none_is_refused_before_any_request(app, cache):
    token = jwt.encode(claims(), "", algorithm="none")
    flow = verify(app, token, cache)
    with pytest.raises(SignatureError, match="only RS256"):
        next(flow)
    assert KEYS_URL not in cache


def test_alg_none_is_refused_even_with_cached_keys(app, cache, rsa_key):
    cache[KEYS_URL] = jwks_of(public_jwk(rsa_key, "252"))
    header = b64(json.dumps({"alg": "none", "kid": "252"}).encode())
    token = f"{header}.{b64(json.dumps(claims()).encode())}."
    with pytest.raises(SignatureError, match="only RS256"):
        next(verify(app, token, cache))


def test_hs256_with_the_public_key_as_secret_is_refused(app, cache, rsa_key):
    cache[KEYS_URL] = jwks_of(public_jwk(rsa_key, "252"))
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "252"}).encode())
        + "."
        + b64(json.dumps(claims()).encode())
    )
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + b64(mac)
    with pytest.raises(SignatureError, match="'HS256'; only RS256"):
        next(verify(app, token, cache))


@pytest.mark.parametrize("alg", ["RS384", "PS256", "ES256", "HS512", "rs256"])
def test_other_algorithms_are_refused(app, cache, alg):
    header = b64(json.dumps({"alg": alg, "kid": "252"}).encode())
    token = f"{header}.{b64(b'{}')}.{b64(b'sig')}"
    with pytest.raises(SignatureError, match="only RS256"):
        next(verify(app, token, cache))


def test_oversized_token_is_refused_before_parsing(app, cache, rsa_key):
    token = sign(rsa_key, claims(padding="x" * 20000))
    with pytest.raises(SignatureError, match="larger than 16384"):
        next(verify(app, token, cache))


def test_max_size_is_configurable(app, cache, rsa_key):
    token = sign(rsa_key, claims())
    with pytest.raises(SignatureError, match="larger than 100"):
        next(verify(app, token, cache, max_size=100))


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c.d", "!!!.???.###", "eyJhbGciOi.e30.x"]
)
def test_garbage_is_refused(app, cache, token):
    with pytest.raises(SignatureError):
        next(verify(app, token, cache))


@given(st.text(max_size=300))
def test_any_string_is_refused_without_a_request(text):
    app = ConnectedApp(client_id=CLIENT_ID)
    cache: dict[str, Any] = {}
    with pytest.raises(SignatureError):
        next(verify_jwt(app, text, audience=CLIENT_ID, issuer=ISSUER, jwks_cache=cache))
    assert cache == {}


def test_check_jwt_header_returns_the_header(rsa_key):
    header = check_jwt_header(sign(rsa_key, claims()))
    assert header["alg"] == "RS256"
    assert header["kid"] == "252"


# --- signature and claims -------------------------------------------------------------


def cached(cache, rsa_key):
    cache[KEYS_URL] = jwks_of(public_jwk(rsa_key, "252"))


def test_signature_by_another_key_is_refused(app, cache, rsa_key, other_key):
    cached(cache, rsa_key)
    token = sign(other_key, claims())
    with pytest.raises(SignatureError, match="signature does not verify") as info:
        drive(verify(app, token, cache))
    assert token not in str(info.value)


def test_tampered_payload_is_refused(app, cache, rsa_key):
    cached(cache, rsa_key)
    header, _, signature = sign(rsa_key, claims()).split(".")
    forged = b64(json.dumps(claims(sub="someone-else")).encode())
    with pytest.raises(SignatureError, match="signature"):
        drive(verify(app, f"{header}.{forged}.{signature}", cache))


def test_expired_token_is_refused(app, cache, rsa_key):
    cached(cache, rsa_key)
    now = int(time.time())
    token = sign(rsa_key, claims(iat=now - 600, exp=now - 120))
    with pytest.raises(SignatureError, match="expired") as info:
        drive(verify(app, token, cache))
    assert token not in str(info.value)


def test_leeway_tolerates_small_clock_skew(app, cache, rsa_key):
    cached(cache, rsa_key)
    now = int(time.time())
    token = sign(rsa_key, claims(iat=now - 300, exp=now - 30))
    _, result = drive(verify(app, token, cache))
    assert result["exp"] == now - 30
    with pytest.raises(SignatureError, match="expired"):
        drive(verify(app, token, cache, leeway=0))


def test_missing_exp_is_refused(app, cache, rsa_key):
    cached(cache, rsa_key)
    payload = claims()
    del payload["exp"]
    with pytest.raises(SignatureError, match="'exp'"):
        drive(verify(app, sign(rsa_key, payload), cache))


def test_non_numeric_iat_is_refused(app, cache, rsa_key):
    cached(cache, rsa_key)
    with pytest.raises(SignatureError, match="invalid"):
        drive(verify(app, sign(rsa_key, claims(iat="yesterday")), cache))


def test_future_nbf_is_refused(app, cache, rsa_key):
    cached(cache, rsa_key)
    token = sign(rsa_key, claims(nbf=int(time.time()) + 600))
    with pytest.raises(SignatureError, match="not valid yet"):
        drive(verify(app, token, cache))


@pytest.mark.parametrize(
    "aud", ["3MVG9Other", "3MVG9Exampl", "3MVG9Example ", ["3MVG9Other"], []]
)
def test_wrong_audience_is_refused(app, cache, rsa_key, aud):
    cached(cache, rsa_key)
    with pytest.raises(SignatureError, match=r"audience|'aud'"):
        drive(verify(app, sign(rsa_key, claims(aud=aud)), cache))


def test_missing_audience_is_refused(app, cache, rsa_key):
    cached(cache, rsa_key)
    payload = claims()
    del payload["aud"]
    with pytest.raises(SignatureError, match="'aud'"):
        drive(verify(app, sign(rsa_key, payload), cache))


def test_audience_list_containing_ours_is_accepted(app, cache, rsa_key):
    cached(cache, rsa_key)
    token = sign(rsa_key, claims(aud=["https://other.example", CLIENT_ID]))
    _, result = drive(verify(app, token, cache))
    assert result["aud"] == ["https://other.example", CLIENT_ID]


def test_several_expected_audiences(app, cache, rsa_key):
    cached(cache, rsa_key)
    token = sign(rsa_key, claims(aud="https://backend.example"))
    _, result = drive(
        verify(app, token, cache, audience=[CLIENT_ID, "https://backend.example"])
    )
    assert result["aud"] == "https://backend.example"


def test_empty_expected_audience_is_refused(app, cache, rsa_key):
    cached(cache, rsa_key)
    with pytest.raises(SignatureError, match="audience is required"):
        drive(verify(app, sign(rsa_key, claims()), cache, audience=[]))


@pytest.mark.parametrize(
    "iss",
    [
        "https://test.salesforce.com",
        "https://login.salesforce.com.evil.example",
        "https://login.salesforce.co",
        "login.salesforce.com",
    ],
)
def test_wrong_issuer_is_refused(app, cache, rsa_key, iss):
    cached(cache, rsa_key)
    with pytest.raises(SignatureError, match="issuer"):
        drive(verify(app, sign(rsa_key, claims(iss=iss)), cache))


def test_issuer_none_skips_the_issuer_check(app, cache, rsa_key):
    cached(cache, rsa_key)
    token = sign(rsa_key, claims(iss="https://acme.my.site.com/customers"))
    _, result = drive(verify(app, token, cache, issuer=None))
    assert result["iss"] == "https://acme.my.site.com/customers"


# --- the key set itself ---------------------------------------------------------------


def test_ec_key_with_the_kid_is_refused(app, cache, rsa_key):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    jwk["kid"] = "252"
    cache[KEYS_URL] = jwks_of(jwk)
    with pytest.raises(SignatureError, match="not an RSA key"):
        drive(verify(app, sign(rsa_key, claims()), cache))


@pytest.mark.parametrize(("field", "value"), [("alg", "HS256"), ("use", "enc")])
def test_key_meant_for_something_else_is_refused(app, cache, rsa_key, field, value):
    cache[KEYS_URL] = jwks_of(public_jwk(rsa_key, "252", **{field: value}))
    with pytest.raises(SignatureError, match=r"not meant for RS256|not a signing key"):
        drive(verify(app, sign(rsa_key, claims()), cache))


def test_unloadable_key_is_refused(app, cache, rsa_key):
    cache[KEYS_URL] = jwks_of({"kty": "RSA", "kid": "252", "n": "!!", "e": "AQAB"})
    with pytest.raises(SignatureError, match="cannot be loaded"):
        drive(verify(app, sign(rsa_key, claims()), cache))


@pytest.mark.parametrize(
    "body", [{"keys": "nope"}, {"nokeys": []}, {"keys": ["string"]}]
)
def test_malformed_key_set_is_refused_and_not_cached(app, cache, rsa_key, body):
    flow = verify(app, sign(rsa_key, claims()), cache)
    next(flow)
    with pytest.raises(MalformedResponseError):
        flow.send(json_response(body))
    assert KEYS_URL not in cache


def test_key_set_html_page_is_malformed(app, cache, rsa_key):
    flow = verify(app, sign(rsa_key, claims()), cache)
    next(flow)
    with pytest.raises(MalformedResponseError, match="HTML"):
        flow.send(HttpResponse(200, {"content-type": "text/html"}, b"<html></html>"))


def test_key_set_5xx_is_retried_with_a_wait(app, cache, rsa_key):
    flow = verify(app, sign(rsa_key, claims()), cache)
    assert next(flow).url == KEYS_URL
    wait = flow.send(HttpResponse(503, {}, b""))
    assert isinstance(wait, Wait)
    again = flow.send(None)
    assert isinstance(again, HttpRequest) and again.url == KEYS_URL
    with pytest.raises(StopIteration) as stop:
        flow.send(json_response(jwks_of(public_jwk(rsa_key, "252"))))
    assert stop.value.value["aud"] == CLIENT_ID


def test_key_set_5xx_without_retries_is_unavailable(app, cache, rsa_key):
    flow = verify(app, sign(rsa_key, claims()), cache, retry=NO_RETRY)
    next(flow)
    with pytest.raises(SalesforceUnavailableError):
        flow.send(HttpResponse(503, {}, b""))
    assert KEYS_URL not in cache
