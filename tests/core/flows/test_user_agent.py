"""User-agent (implicit) flow (reference 3 and 4.4)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    AccessDeniedError,
    ConfigurationError,
    InsecureFlowWarning,
    MalformedResponseError,
    OAuthProtocolError,
    SignatureError,
    StateMismatchError,
    UntrustedHostError,
)
from sfoauth_core.flows.user_agent import (
    parse_user_agent_response,
    prepare_user_agent_url,
)

CLIENT_ID = "3MVG9Example"
SECRET = "1F2E3D4C5B6A"
REDIRECT = "https://app.example.com/oauth/callback"
STATE = "af0ifjsldkj"
ID_URL = "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAAA"
ISSUED_AT = "1767225600123"


def _signature(secret: str, id_url: str = ID_URL, issued_at: str = ISSUED_AT) -> str:
    mac = hmac.new(secret.encode(), (id_url + issued_at).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _fragment(**overrides: Any) -> str:
    fields: dict[str, Any] = {
        "access_token": "00DXX0000001abc!AQ0AQExample",
        "refresh_token": "5Aep861Example",
        "instance_url": "https://acme.my.salesforce.com",
        "id": ID_URL,
        "issued_at": ISSUED_AT,
        "signature": _signature(SECRET),
        "scope": "refresh_token api",
        "token_type": "Bearer",
        "state": STATE,
    }
    fields.update(overrides)
    fields = {k: v for k, v in fields.items() if v is not None}
    # Salesforce encodes every value and writes spaces as %20 (reference section 3).
    return urlencode(fields, quote_via=quote, safe="")


@pytest.fixture
def app() -> ConnectedApp:
    return ConnectedApp(
        client_id=CLIENT_ID, client_secret=SECRET, redirect_uri=REDIRECT
    )


def _query(url: str) -> dict[str, str]:
    parsed = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in parsed.values())
    return {k: v[0] for k, v in parsed.items()}


# ---------------------------------------------------------------------- the URL
def test_url_warns_and_recommends_pkce(app):
    with pytest.warns(InsecureFlowWarning, match="PKCE") as record:
        prepare_user_agent_url(app)
    assert "web server" in str(record[0].message)


def test_url_parameters(app):
    with pytest.warns(InsecureFlowWarning):
        request = prepare_user_agent_url(
            app,
            state=STATE,
            display="touch",
            login_hint="jane@acme.com",
            nonce="awesome",
            prompt="login",
        )
    parts = urlsplit(request.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://login.salesforce.com/services/oauth2/authorize"
    )
    assert _query(request.url) == {
        "response_type": "token",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "state": STATE,
        "scope": "api refresh_token",
        "display": "touch",
        "login_hint": "jane@acme.com",
        "nonce": "awesome",
        "prompt": "login",
    }
    assert request.state == STATE
    assert request.code_verifier is None
    assert request.nonce == "awesome"


def test_url_without_options_has_a_fresh_state_and_no_pkce(app):
    with pytest.warns(InsecureFlowWarning):
        first = prepare_user_agent_url(app, scopes=["api"])
        second = prepare_user_agent_url(app, scopes=["api"])
    params = _query(first.url)
    assert params["scope"] == "api"
    assert "code_challenge" not in params
    assert "code_challenge_method" not in params
    assert "nonce" not in params
    assert len(first.state) >= 43
    assert first.state == params["state"]
    assert first.state != second.state


def test_token_id_token_generates_a_nonce(app):
    with pytest.warns(InsecureFlowWarning):
        request = prepare_user_agent_url(
            app, response_type="token id_token", scopes=["openid", "api"]
        )
    params = _query(request.url)
    assert params["response_type"] == "token id_token"
    assert request.nonce is not None and len(request.nonce) >= 43
    assert params["nonce"] == request.nonce


def test_token_id_token_keeps_a_given_nonce(app):
    with pytest.warns(InsecureFlowWarning):
        request = prepare_user_agent_url(
            app, response_type="token id_token", nonce="n1"
        )
    assert _query(request.url)["nonce"] == "n1"


@pytest.mark.parametrize("response_type", ["code", "hybrid_token", "id_token", ""])
def test_other_response_types_are_refused(app, response_type):
    with pytest.raises(ConfigurationError) as excinfo:
        prepare_user_agent_url(app, response_type=response_type)
    assert excinfo.value.setting == "response_type"


def test_a_redirect_uri_is_required():
    with pytest.raises(ConfigurationError) as excinfo:
        with pytest.warns(InsecureFlowWarning):
            prepare_user_agent_url(ConnectedApp(client_id=CLIENT_ID))
    assert excinfo.value.setting == "redirect_uri"


def test_per_request_options_do_not_touch_the_app(app):
    with pytest.warns(InsecureFlowWarning):
        prepare_user_agent_url(app, scopes=["web"], state="s")
    assert app.scopes == ("api", "refresh_token")


# ---------------------------------------------------------------------- the fragment
@pytest.mark.parametrize(
    "shape",
    [
        lambda frag: f"{REDIRECT}#{frag}",
        lambda frag: f"#{frag}",
        lambda frag: frag,
    ],
    ids=["full-url", "hash-fragment", "bare-fragment"],
)
def test_parse_the_sample_callback(app, shape):
    token = parse_user_agent_response(app, shape(_fragment()), expected_state=STATE)

    assert token.access_token == "00DXX0000001abc!AQ0AQExample"
    assert token.refresh_token == "5Aep861Example"
    assert token.instance_url == "https://acme.my.salesforce.com"
    assert token.id_url == ID_URL
    assert token.org_id == "00DXX0000001abcEAA"
    assert token.user_id == "005XX000001xyzQAAA"
    assert token.scopes == ("refresh_token", "api")
    assert token.token_type == "Bearer"
    assert token.issued_at == pytest.approx(1767225600.123)
    assert token.raw["issued_at"] == ISSUED_AT
    assert "state" not in token.raw


def test_values_are_decoded_exactly_once(app):
    # %2521 is a literal "%21" after one decode; decoding twice would give "!".
    fragment = _fragment().replace(
        "access_token=00DXX0000001abc%21AQ0AQExample",
        "access_token=00DXX0000001abc%2521AQ0AQExample",
    )
    token = parse_user_agent_response(app, fragment, expected_state=STATE)
    assert token.access_token == "00DXX0000001abc%21AQ0AQExample"


def test_signature_mismatch(app):
    fragment = _fragment(signature=_signature("not-the-secret"))
    with pytest.raises(SignatureError):
        parse_user_agent_response(app, fragment, expected_state=STATE)


def test_signature_covers_the_identity_url(app):
    other_id = "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000009evilAAA"
    with pytest.raises(SignatureError):
        parse_user_agent_response(app, _fragment(id=other_id), expected_state=STATE)


def test_public_clients_cannot_verify_the_signature():
    public = ConnectedApp(client_id=CLIENT_ID, redirect_uri=REDIRECT)
    fragment = _fragment(signature=_signature("whatever"))
    token = parse_user_agent_response(public, fragment, expected_state=STATE)
    assert token.signature == _signature("whatever")


def test_state_mismatch_is_checked_before_anything_else(app):
    # Wrong signature, untrusted host and an error, all at once: state wins.
    fragment = _fragment(
        state="forged",
        signature=_signature("nope"),
        instance_url="https://evil.example.com",
        error="access_denied",
    )
    with pytest.raises(StateMismatchError) as excinfo:
        parse_user_agent_response(app, fragment, expected_state=STATE)
    assert "forged" not in str(excinfo.value)
    assert STATE not in str(excinfo.value)


def test_missing_state(app):
    with pytest.raises(StateMismatchError):
        parse_user_agent_response(app, _fragment(state=None), expected_state=STATE)


def test_repeated_state(app):
    fragment = _fragment() + "&state=" + STATE
    with pytest.raises(StateMismatchError):
        parse_user_agent_response(app, fragment, expected_state=STATE)


def test_repeated_field_is_malformed(app):
    fragment = _fragment() + "&instance_url=https%3A%2F%2Fother.my.salesforce.com"
    with pytest.raises(MalformedResponseError):
        parse_user_agent_response(app, fragment, expected_state=STATE)


@given(received=st.text(min_size=1).filter(lambda s: s != STATE))
def test_any_other_state_is_refused(received):
    app = ConnectedApp(client_id=CLIENT_ID, client_secret=SECRET, redirect_uri=REDIRECT)
    with pytest.raises(StateMismatchError):
        parse_user_agent_response(app, _fragment(state=received), expected_state=STATE)


def test_error_fragment_raises_the_typed_error(app):
    fragment = (
        f"{REDIRECT}#error=access_denied&error_description=end-user%20denied%20"
        f"authorization&state={STATE}"
    )
    with pytest.raises(AccessDeniedError) as excinfo:
        parse_user_agent_response(app, fragment, expected_state=STATE)
    assert excinfo.value.error == "access_denied"
    assert excinfo.value.description == "end-user denied authorization"
    assert "state" not in excinfo.value.response


def test_unknown_error_code_is_kept_verbatim(app):
    fragment = f"error=immediate_unsuccessful&state={STATE}"
    with pytest.raises(OAuthProtocolError) as excinfo:
        parse_user_agent_response(app, fragment, expected_state=STATE)
    assert excinfo.value.error == "immediate_unsuccessful"


def test_error_fragment_with_a_wrong_state_is_a_state_error(app):
    with pytest.raises(StateMismatchError):
        parse_user_agent_response(
            app, "#error=access_denied&state=other", expected_state=STATE
        )


def test_untrusted_instance_url(app):
    fragment = _fragment(instance_url="https://evil.example.com")
    with pytest.raises(UntrustedHostError):
        parse_user_agent_response(app, fragment, expected_state=STATE)


def test_missing_access_token(app):
    with pytest.raises(MalformedResponseError):
        parse_user_agent_response(
            app, _fragment(access_token=None), expected_state=STATE
        )


def test_a_url_without_fragment_has_no_response(app):
    url = f"{REDIRECT}?{_fragment()}"
    with pytest.raises(StateMismatchError):
        parse_user_agent_response(app, url, expected_state=STATE)


def test_fragment_must_be_a_string(app):
    with pytest.raises(TypeError):
        parse_user_agent_response(app, b"#state=x", expected_state=STATE)  # type: ignore[arg-type]
