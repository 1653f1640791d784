"""SECURITY.md items 1, 2 and 5 in the core flow helpers, over many inputs.

* state: 256 bits from ``secrets`` per request; any other received value is refused
  (constant-time compare) and the message never carries either value;
* PKCE: S256 on every authorization request; turning it off for the code flow or asking
  for ``plain`` is a configuration error;
* mix-up: any ``iss`` other than the recorded issuer is refused.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.security_inputs import near_miss_issuers

from sfoauth_core import ConnectedApp
from sfoauth_core.exceptions import ConfigurationError, FlowError, StateMismatchError
from sfoauth_core.flows import state as state_module
from sfoauth_core.flows.web_server import (
    parse_authorization_response,
    prepare_authorization_url,
)

APP = ConnectedApp(
    client_id="3MVG9Example",
    client_secret="1F2E3D4C5B6A",
    redirect_uri="https://app.example.com/callback",
    scopes=("api", "refresh_token"),
)
ISSUER = "https://login.salesforce.com"


def test_state_is_256_bits_from_secrets(monkeypatch):
    asked: list[int] = []
    real = secrets.token_urlsafe

    def spy(nbytes: int | None = None) -> str:
        asked.append(nbytes or 0)
        return real(nbytes)

    monkeypatch.setattr(state_module.secrets, "token_urlsafe", spy)
    request = prepare_authorization_url(APP)
    assert asked and asked[0] * 8 >= 128
    assert request.state == parse_qs(urlsplit(request.url).query)["state"][0]
    states = {prepare_authorization_url(APP).state for _ in range(200)}
    assert len(states) == 200


@settings(max_examples=200)
@given(received=st.text(max_size=60) | st.none())
def test_any_other_state_is_refused_without_echo(received):
    expected = state_module.create_state()
    params = {"code": "aPrxCode==", **({"state": received} if received else {})}
    if received == expected:  # pragma: no cover - 256 random bits
        return
    with pytest.raises(StateMismatchError) as info:
        parse_authorization_response(params, expected_state=expected)
    # A fixed message: neither value is ever in it.
    assert str(info.value) in {
        "the callback carries no state",
        "the callback's state does not match the pending request",
    }


@settings(max_examples=50)
@given(st.sampled_from([("api",), ("api", "refresh_token"), ("openid", "api")]))
def test_every_authorization_request_has_an_s256_challenge(scopes):
    request = prepare_authorization_url(APP, scopes=scopes)
    query = parse_qs(urlsplit(request.url).query)
    assert request.code_verifier is not None
    digest = hashlib.sha256(request.code_verifier.encode()).digest()
    assert query["code_challenge"] == [
        base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    ]
    assert query.get("code_challenge_method", ["S256"]) == ["S256"]
    assert request.code_verifier not in request.url


def test_pkce_off_or_plain_is_a_configuration_error():
    with pytest.raises(ConfigurationError) as info:
        prepare_authorization_url(APP, pkce=False)
    assert info.value.setting == "pkce"
    for method in ("plain", "PLAIN", "s256", ""):
        with pytest.raises(ConfigurationError) as info:
            prepare_authorization_url(
                APP, extra_params={"code_challenge_method": method}
            )
        assert info.value.setting == "code_challenge_method"
    request = prepare_authorization_url(
        APP, extra_params={"code_challenge_method": "S256"}
    )
    assert parse_qs(urlsplit(request.url).query)["code_challenge_method"] == ["S256"]


@settings(max_examples=200)
@given(iss=near_miss_issuers(ISSUER))
def test_any_other_iss_is_refused(iss):
    params = {"code": "aPrxCode==", "state": "s", "iss": iss}
    if iss == ISSUER:
        assert parse_authorization_response(
            params, expected_state="s", expected_issuer=ISSUER
        )
        return
    with pytest.raises(FlowError):
        parse_authorization_response(params, expected_state="s", expected_issuer=ISSUER)
