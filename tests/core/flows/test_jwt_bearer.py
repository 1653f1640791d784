"""JWT bearer flow (reference 4.5; SECURITY.md items 15 and 24)."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from sfoauth_core import config as config_module
from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    ConfigurationError,
    InvalidClientIdError,
    InvalidGrantError,
    SalesforceUnavailableError,
    TransportError,
)
from sfoauth_core.flows._base import HttpRequest, HttpResponse, RetryPolicy, Wait
from sfoauth_core.flows.jwt_bearer import GRANT_TYPE, create_assertion, jwt_bearer

CLIENT_ID = "3MVG9Example"
USERNAME = "integration@acme.com"
NOW = 1_767_225_600.0
TOKEN_BODY = {
    "access_token": "00DXX0000001abc!AQ0AQExample",
    "scope": "web openid api full",
    "instance_url": "https://acme.my.salesforce.com",
    "id": "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAAA",
    "token_type": "Bearer",
}


def _pem(bits: int) -> tuple[str, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, key.public_key()


@pytest.fixture(scope="session")
def rsa_key() -> tuple[str, rsa.RSAPublicKey]:
    return _pem(2048)


@pytest.fixture(scope="session")
def weak_rsa_key() -> tuple[str, rsa.RSAPublicKey]:
    return _pem(1024)


@pytest.fixture
def make_app(rsa_key):
    def factory(**overrides: Any) -> ConnectedApp:
        values: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "private_key": rsa_key[0],
            "username": USERNAME,
        }
        values.update(overrides)
        return ConnectedApp(**values)

    return factory


def _decode(assertion: str, public_key: rsa.RSAPublicKey) -> dict[str, Any]:
    return jwt.decode(
        assertion,
        public_key,
        algorithms=["RS256"],
        options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
    )


def _json(
    status: int, body: Any, headers: dict[str, str] | None = None
) -> HttpResponse:
    merged = {"content-type": "application/json;charset=UTF-8", **(headers or {})}
    return HttpResponse(status, merged, json.dumps(body).encode())


def _finish(flow: Any, response: HttpResponse) -> Any:
    with pytest.raises(StopIteration) as stop:
        flow.send(response)
    return stop.value.value


# ---------------------------------------------------------------------- the assertion
def test_assertion_claims_and_header(make_app, rsa_key):
    assertion = create_assertion(make_app(), now=NOW)

    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "RS256"
    claims = _decode(assertion, rsa_key[1])
    assert claims["iss"] == CLIENT_ID
    assert claims["sub"] == USERNAME
    assert claims["aud"] == "https://login.salesforce.com"
    assert claims["iat"] == 1_767_225_600
    assert claims["exp"] == 1_767_225_780
    assert type(claims["exp"]) is int
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert "prn" not in claims


def test_assertion_is_verifiable_with_audience_check(make_app, rsa_key):
    assertion = create_assertion(make_app())
    claims = jwt.decode(
        assertion,
        rsa_key[1],
        algorithms=["RS256"],
        audience="https://login.salesforce.com",
        issuer=CLIENT_ID,
    )
    assert claims["sub"] == USERNAME


def test_exp_is_within_three_minutes_of_now(make_app, rsa_key):
    claims = _decode(create_assertion(make_app(), now=NOW + 0.9), rsa_key[1])
    assert claims["exp"] <= NOW + 0.9 + 180
    assert claims["exp"] - claims["iat"] == 180


def test_a_new_jti_on_every_call(make_app, rsa_key):
    app = make_app()
    first = _decode(create_assertion(app, now=NOW), rsa_key[1])
    second = _decode(create_assertion(app, now=NOW), rsa_key[1])
    assert first["jti"] != second["jti"]


def test_explicit_username_wins_over_the_app_username(make_app, rsa_key):
    claims = _decode(
        create_assertion(make_app(), username="other@acme.com"), rsa_key[1]
    )
    assert claims["sub"] == "other@acme.com"


def test_missing_username_is_a_configuration_error(make_app):
    with pytest.raises(ConfigurationError) as excinfo:
        create_assertion(make_app(username=None))
    assert excinfo.value.setting == "username"


def test_missing_private_key_is_a_configuration_error():
    app = ConnectedApp(client_id=CLIENT_ID, username=USERNAME)
    with pytest.raises(ConfigurationError) as excinfo:
        create_assertion(app)
    assert excinfo.value.setting == "private_key"


def test_a_1024_bit_key_is_refused_when_the_app_is_built(weak_rsa_key):
    with pytest.raises(ConfigurationError) as excinfo:
        ConnectedApp(
            client_id=CLIENT_ID, private_key=weak_rsa_key[0], username=USERNAME
        )
    assert excinfo.value.setting == "private_key"
    assert "2048" in str(excinfo.value)
    assert "BEGIN" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("login_url", "expected_aud"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme--dev.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.site.com/customers", "https://acme.my.site.com/customers"),
    ],
)
def test_audience_is_derived_from_the_login_url(
    make_app, rsa_key, login_url, expected_aud
):
    claims = _decode(create_assertion(make_app(login_url=login_url)), rsa_key[1])
    assert claims["aud"] == expected_aud


def test_explicit_audiences(make_app, rsa_key):
    app = make_app(audience="https://test.salesforce.com/")
    assert _decode(create_assertion(app), rsa_key[1])["aud"] == (
        "https://test.salesforce.com"
    )
    per_call = create_assertion(app, audience="https://acme.my.site.com/partners/")
    assert _decode(per_call, rsa_key[1])["aud"] == "https://acme.my.site.com/partners"


def test_a_non_https_audience_is_refused(make_app):
    with pytest.raises(ConfigurationError) as excinfo:
        create_assertion(make_app(), audience="http://login.salesforce.com")
    assert excinfo.value.setting == "audience"


@pytest.mark.parametrize("lifetime", [0, -1, 181, 300])
def test_lifetime_outside_three_minutes_is_refused(make_app, lifetime):
    with pytest.raises(ConfigurationError) as excinfo:
        create_assertion(make_app(), lifetime=lifetime)
    assert excinfo.value.setting == "lifetime"


@settings(max_examples=20, deadline=None)
@given(lifetime=st.integers(min_value=1, max_value=180), now=st.integers(0, 2**32))
def test_any_allowed_lifetime_sets_integer_exp(rsa_key, lifetime, now):
    app = ConnectedApp(client_id=CLIENT_ID, private_key=rsa_key[0], username=USERNAME)
    claims = _decode(create_assertion(app, now=now, lifetime=lifetime), rsa_key[1])
    assert claims["iat"] == now
    assert claims["exp"] == now + lifetime


def test_the_private_key_is_not_reloaded_per_call(make_app, rsa_key, monkeypatch):
    app = make_app()

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the PEM must be parsed once, when the app is built")

    monkeypatch.setattr(config_module, "load_pem_private_key", explode)
    claims = _decode(create_assertion(app), rsa_key[1])
    assert claims["iss"] == CLIENT_ID


# ---------------------------------------------------------------------- the grant
def test_token_request_fields(make_app, rsa_key):
    app = make_app(client_secret="1F2E3D4C5B6A")
    flow = jwt_bearer(app)
    request = next(flow)

    assert isinstance(request, HttpRequest)
    assert request.method == "POST"
    assert request.url == "https://login.salesforce.com/services/oauth2/token"
    assert request.headers["Accept"] == "application/json"
    assert "Authorization" not in request.headers
    assert request.params is None
    assert request.form is not None
    assert set(request.form) == {"grant_type", "assertion"}
    assert request.form["grant_type"] == ("urn:ietf:params:oauth:grant-type:jwt-bearer")
    assert GRANT_TYPE == request.form["grant_type"]
    claims = _decode(request.form["assertion"], rsa_key[1])
    assert claims["iss"] == CLIENT_ID
    assert claims["sub"] == USERNAME
    assert request.form["assertion"] not in repr(request)


def test_success_returns_a_token_without_refresh_token(make_app):
    flow = jwt_bearer(make_app())
    next(flow)
    token = _finish(flow, _json(200, TOKEN_BODY))

    assert token.access_token == "00DXX0000001abc!AQ0AQExample"
    assert token.refresh_token is None
    assert token.instance_url == "https://acme.my.salesforce.com"
    assert token.org_id == "00DXX0000001abcEAA"
    assert token.user_id == "005XX000001xyzQAAA"
    assert token.scopes == ("web", "openid", "api", "full")
    assert token.token_type == "Bearer"


def test_username_and_audience_arguments_reach_the_assertion(make_app, rsa_key):
    flow = jwt_bearer(
        make_app(), username="ops@acme.com", audience="https://test.salesforce.com"
    )
    claims = _decode(next(flow).form["assertion"], rsa_key[1])
    assert claims["sub"] == "ops@acme.com"
    assert claims["aud"] == "https://test.salesforce.com"


@pytest.mark.parametrize(
    ("login_url", "token_url"),
    [
        (
            "https://acme.my.salesforce.com",
            "https://acme.my.salesforce.com/services/oauth2/token",
        ),
        (
            "https://acme.my.site.com/customers",
            "https://acme.my.site.com/customers/services/oauth2/token",
        ),
        (
            "https://test.salesforce.com",
            "https://test.salesforce.com/services/oauth2/token",
        ),
    ],
)
def test_token_endpoint_follows_the_login_url(make_app, login_url, token_url):
    assert next(jwt_bearer(make_app(login_url=login_url))).url == token_url


def test_a_retry_after_503_mints_a_new_assertion(make_app, rsa_key):
    clock_values = iter([NOW, NOW + 2])
    flow = jwt_bearer(make_app(), clock=lambda: next(clock_values))
    first = next(flow)
    wait = flow.send(_json(503, {"message": "unavailable"}))
    assert isinstance(wait, Wait)
    assert wait.seconds > 0
    second = flow.send(None)
    assert isinstance(second, HttpRequest)

    first_claims = _decode(first.form["assertion"], rsa_key[1])
    second_claims = _decode(second.form["assertion"], rsa_key[1])
    assert first_claims["jti"] != second_claims["jti"]
    assert second_claims["iat"] == first_claims["iat"] + 2
    assert second_claims["exp"] == first_claims["exp"] + 2
    token = _finish(flow, _json(200, TOKEN_BODY))
    assert token.org_id == "00DXX0000001abcEAA"


def test_a_retry_after_a_transport_error_mints_a_new_assertion(make_app, rsa_key):
    flow = jwt_bearer(make_app())
    first = next(flow)
    assert isinstance(flow.throw(TransportError("connect timeout")), Wait)
    second = flow.send(None)
    assert (
        _decode(first.form["assertion"], rsa_key[1])["jti"]
        != _decode(second.form["assertion"], rsa_key[1])["jti"]
    )


def test_retries_are_bounded(make_app):
    flow = jwt_bearer(make_app(), retry=RetryPolicy(attempts=2, base_delay=0.1))
    next(flow)
    assert isinstance(flow.send(_json(503, {})), Wait)
    flow.send(None)
    with pytest.raises(SalesforceUnavailableError) as excinfo:
        flow.send(_json(503, {}))
    assert excinfo.value.status_code == 503


@pytest.mark.parametrize(
    ("description", "hint_fragment"),
    [
        ("user hasn't approved this consumer", "pre-authorize"),
        ("Audience validation failed", "test.salesforce.com"),
        ("audience is invalid", "test.salesforce.com"),
        ("External client app is not installed in this org", "install"),
    ],
)
def test_invalid_grant_carries_a_hint(make_app, description, hint_fragment):
    flow = jwt_bearer(make_app())
    request = next(flow)
    with pytest.raises(InvalidGrantError) as excinfo:
        flow.send(
            _json(400, {"error": "invalid_grant", "error_description": description})
        )
    error = excinfo.value
    assert error.error == "invalid_grant"
    assert error.description == description
    assert error.status_code == 400
    assert error.hint is not None and hint_fragment in error.hint
    assert request.form["assertion"] not in str(error)


def test_unknown_consumer_key(make_app):
    flow = jwt_bearer(make_app())
    next(flow)
    with pytest.raises(InvalidClientIdError):
        flow.send(
            _json(
                400,
                {
                    "error": "invalid_client_id",
                    "error_description": "client identifier invalid",
                },
            )
        )


def test_configuration_errors_surface_before_any_request(make_app):
    flow = jwt_bearer(make_app(username=None))
    with pytest.raises(ConfigurationError) as excinfo:
        next(flow)
    assert excinfo.value.setting == "username"
