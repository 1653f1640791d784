"""Tests for sfoauth_core.tokens: parsing token responses and keeping tokens secret.

Reference sections 2.2 (response fields), 2.3 (signature), 4.x samples; SECURITY.md
items 11 (malformed responses), 12 (issued_at in milliseconds) and 20 (secrets never
shown).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfoauth_core.exceptions import MalformedResponseError
from sfoauth_core.tokens import (
    AssetToken,
    AuthorizationRequest,
    DeviceAuthorization,
    Identity,
    Introspection,
    Token,
    mask,
    parse_issued_at,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "salesforce"
NOW = 1767225600.0
CLIENT_SECRET = "1F2E3D4C5B6A"  # the reference's sample consumer secret
ORG = "00DXX0000001abcEAA"
USER = "005XX000001xyzQAA"  # verbatim from the reference (17 characters)
ID_URL = f"https://login.salesforce.com/id/{ORG}/{USER}"
INSTANCE = "https://acme.my.salesforce.com"
#: The fields every grant's answer carries besides the access token (reference 2.2).
BASE = {"instance_url": INSTANCE, "id": ID_URL, "token_type": "Bearer"}


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def parse(name: str, **kwargs: Any) -> Token:
    return Token.from_response(load(name), now=NOW, **kwargs)


# ------------------------------------------------------------ canned payloads


def test_web_server_response() -> None:
    payload = load("token_web_server.json")
    token = Token.from_response(payload, now=NOW)
    assert token.access_token == "00DXX0000001abc!AQ0AQExampleAccessToken"
    assert token.refresh_token == "5Aep861ExampleRefreshToken"
    assert token.instance_url == INSTANCE
    assert token.id_url == ID_URL
    assert token.org_id == ORG
    assert token.user_id == USER
    assert token.issued_at == 1767225600.123
    assert isinstance(token.issued_at, float)
    assert token.scopes == ("refresh_token", "openid", "api")
    assert token.token_type == "Bearer"
    assert token.signature == payload["signature"]
    assert token.id_token == payload["id_token"]
    assert token.expires_at is None
    # issued_at is kept verbatim: the signature covers the exact string.
    assert dict(token.raw) == {"issued_at": "1767225600123"}


@pytest.mark.parametrize(
    "name",
    [
        "token_web_server.json",
        "token_refresh.json",
        "token_refresh_rotated.json",
        "token_client_credentials.json",
        "token_password.json",
        "token_device.json",
    ],
)
def test_fixture_signatures_are_the_documented_hmac(name: str) -> None:
    # signature = base64(HMAC-SHA256(client_secret, id + issued_at)), reference 2.3.
    payload = load(name)
    mac = hmac.new(
        CLIENT_SECRET.encode(),
        (payload["id"] + payload["issued_at"]).encode(),
        hashlib.sha256,
    ).digest()
    assert payload["signature"] == base64.b64encode(mac).decode()
    assert len(payload["signature"]) == 44


def test_refresh_response_keeps_the_previous_refresh_token() -> None:
    first = parse("token_web_server.json")
    refreshed = parse("token_refresh.json", previous=first)
    assert refreshed.access_token == "00DXX0000001abc!AQ0AQNewAccessToken"
    assert refreshed.refresh_token == "5Aep861ExampleRefreshToken"
    assert refreshed.issued_at == 1767229200.456
    assert refreshed.org_id == ORG
    assert refreshed.user_id == USER
    assert refreshed.instance_url == INSTANCE


def test_refresh_without_previous_has_no_refresh_token() -> None:
    assert parse("token_refresh.json").refresh_token is None


def test_rotated_refresh_token_replaces_the_old_one() -> None:
    first = parse("token_web_server.json")
    rotated = parse("token_refresh_rotated.json", previous=first)
    assert rotated.refresh_token == "5Aep861RotatedRefreshToken"
    assert rotated.access_token == "00DXX0000001abc!AQ0AQRotatedAccessToken"
    assert first.refresh_token == "5Aep861ExampleRefreshToken"  # untouched


def test_minimal_refresh_response_keeps_ids_instance_and_scopes() -> None:
    first = parse("token_web_server.json")
    refreshed = Token.from_response(
        {**BASE, "access_token": "00DXX0000001abc!New", "issued_at": "1767229200456"},
        previous=first,
    )
    assert refreshed.access_token == "00DXX0000001abc!New"
    assert refreshed.refresh_token == first.refresh_token
    assert refreshed.instance_url == INSTANCE
    assert refreshed.id_url == ID_URL
    assert refreshed.org_id == ORG
    assert refreshed.user_id == USER
    assert refreshed.scopes == first.scopes
    assert refreshed.issued_at == 1767229200.456
    # the signature belongs to the new response only
    assert refreshed.signature is None


def test_refresh_response_values_win_over_previous() -> None:
    first = parse("token_web_server.json")
    refreshed = Token.from_response(
        {
            **BASE,
            "access_token": "x",
            "instance_url": "https://acme2.my.salesforce.com/",
            "scope": "api",
        },
        previous=first,
    )
    assert refreshed.instance_url == "https://acme2.my.salesforce.com"
    assert refreshed.scopes == ("api",)


def test_jwt_bearer_response_has_no_refresh_token_issued_at_or_signature() -> None:
    token = parse("token_jwt_bearer.json")
    assert token.access_token == "00DXX0000001abc!AQ0AQJwtBearerExample"
    assert token.refresh_token is None
    assert token.issued_at is None
    assert token.signature is None
    assert token.scopes == ("web", "openid", "api", "full")
    assert (token.org_id, token.user_id) == (ORG, USER)
    assert token.expires_at is None
    assert dict(token.raw) == {}


def test_client_credentials_response() -> None:
    token = parse("token_client_credentials.json")
    assert token.refresh_token is None
    assert token.id_url == f"{INSTANCE}/id/{ORG}/005XX0000012runQAA"
    assert token.user_id == "005XX0000012runQAA"
    assert token.scopes == ("api",)
    assert token.raw["api_instance_url"] == "https://api.salesforce.com"
    assert token.expires_at is None


def test_password_response_has_no_scope() -> None:
    token = parse("token_password.json")
    assert token.scopes == ()
    assert token.refresh_token is None
    assert token.issued_at == 1767225600.123
    assert (token.org_id, token.user_id) == (ORG, USER)


def test_device_flow_legs() -> None:
    leg1 = load("device_authorization.json")
    assert set(leg1) == {"device_code", "user_code", "verification_uri", "interval"}
    with pytest.raises(MalformedResponseError):
        Token.from_response(leg1)  # not a token response
    token = parse("token_device.json")
    assert token.refresh_token == "5Aep861DeviceRefreshToken"
    assert token.issued_at == 1767225660.321
    assert token.scopes == ("refresh_token", "openid", "api")


def test_asset_token_response_is_not_a_token_response() -> None:
    # An asset-token answer has no instance_url or id: asset_token() parses it.
    with pytest.raises(MalformedResponseError, match="instance_url"):
        Token.from_response(load("token_asset.json"), now=NOW)


def test_expires_in_is_kept_when_sent() -> None:
    payload = {**load("token_asset.json"), **BASE}
    token = Token.from_response(payload, now=NOW)
    assert token.access_token == payload["access_token"]
    assert token.expires_at == NOW + 60
    assert token.raw["issued_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
    assert "expires_in" not in token.raw
    assert token.is_expired(now=NOW + 59) is False
    assert token.is_expired(now=NOW + 60) is True


@pytest.mark.parametrize("expires_in", ["60", 60])
def test_expires_in_string_or_number(expires_in: Any) -> None:
    token = Token.from_response(
        {**BASE, "access_token": "a", "expires_in": expires_in}, now=100.0
    )
    assert token.expires_at == 160.0


def test_no_expires_in_means_unknown_expiry() -> None:
    for name in (
        "token_web_server.json",
        "token_refresh.json",
        "token_jwt_bearer.json",
    ):
        token = parse(name)
        assert token.expires_at is None
        assert token.is_expired(leeway=10**9) is False


def test_user_agent_fragment_values() -> None:
    # The user-agent flow hands over the fragment's values as strings (reference 4.4).
    token = Token.from_response(
        {
            "access_token": "00DXX0000001abc!AQ0AQExample",
            "refresh_token": "5Aep861Example",
            "instance_url": INSTANCE,
            "id": ID_URL,
            "issued_at": "1767225600123",
            "signature": "p3cF0Example=",
            "scope": "refresh_token api",
            "token_type": "Bearer",
            "state": "af0ifjsldkj",
        }
    )
    assert token.user_id == USER
    assert token.raw["state"] == "af0ifjsldkj"


def test_fifteen_character_ids_in_the_identity_url_become_eighteen() -> None:
    token = Token.from_response(
        {
            **BASE,
            "access_token": "a",
            "id": "https://login.salesforce.com/id/00DXX0000001abc/005XX000001xyzQ",
        }
    )
    assert token.org_id == "00DXX0000001abc2AA"
    assert token.user_id == "005XX000001xyzQYAQ"


def test_token_type_is_normalised_to_bearer() -> None:
    assert Token.from_response({**BASE, "access_token": "a"}).token_type == "Bearer"
    payload = {**BASE, "access_token": "a", "token_type": "bearer"}
    assert Token.from_response(payload).token_type == "Bearer"


# Issue 13 defect 2: every grant's answer carries these (reference 2.2); failed before.
@pytest.mark.parametrize("missing", ["instance_url", "id", "token_type"])
def test_required_fields_are_required(missing: str) -> None:
    payload = {**BASE, "access_token": "00DXX0000001abc!AQ0AQ"}
    del payload[missing]
    with pytest.raises(MalformedResponseError, match=missing):
        Token.from_response(payload)
    with pytest.raises(MalformedResponseError, match=missing):
        Token.from_response(payload, previous=parse("token_web_server.json"))


def test_garbage_alone_is_not_a_token() -> None:
    with pytest.raises(MalformedResponseError):
        Token.from_response({"access_token": "<garbage>"})


# Issue 13 defect 3: failed before (any token_type, any printable token was accepted).
@pytest.mark.parametrize("token_type", ["MAC", "DPoP", "Basic", "Bearer ", "N_A", ""])
def test_token_type_other_than_bearer_is_refused(token_type: str) -> None:
    payload = {**BASE, "access_token": "a", "token_type": token_type}
    with pytest.raises(MalformedResponseError, match="token_type"):
        Token.from_response(payload)


@pytest.mark.parametrize(
    "value",
    [
        "00DXX0000001abc!AQ0 AQ",
        "00DXX0000001abc!AQ0\u00e9AQ",
        "00DXX0000001abc!\u2028AQ",
        "00DXX0000001abc!AQ\tx",
        "00DXX0000001abc!AQ\x7f",
        "\u00a0",
        "x" * 8193,
    ],
    ids=["space", "non-ascii", "line-separator", "tab", "del", "nbsp", "too-long"],
)
@pytest.mark.parametrize("field", ["access_token", "refresh_token"])
def test_tokens_a_header_cannot_carry_are_refused(field: str, value: str) -> None:
    payload = {**BASE, "access_token": "00DXX0000001abc!AQ0AQ", field: value}
    with pytest.raises(MalformedResponseError, match=field) as info:
        Token.from_response(payload)
    assert value not in str(info.value)


def test_salesforce_token_characters_are_accepted() -> None:
    value = "00DXX0000001abc!AQ0AQ.x_y-z~+/=="
    token = Token.from_response({**BASE, "access_token": value, "refresh_token": value})
    assert token.access_token == token.refresh_token == value


# ------------------------------------------------------------ issued_at


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1767225600123", 1767225600.123),
        ("1477674717112", 1477674717.112),
        (1767225600123, 1767225600.123),
        ("1767225600", 1767225600.0),
        (1767225600, 1767225600.0),
        (" 1767225600123 ", 1767225600.123),
        (None, None),
        ("", None),
    ],
)
def test_parse_issued_at(value: Any, seconds: float | None) -> None:
    assert parse_issued_at(value) == seconds


@pytest.mark.parametrize(
    "value", ["abc", "-1", "1767225600.123", "17672256001x", True, "1e12"]
)
def test_bad_issued_at(value: Any) -> None:
    with pytest.raises(MalformedResponseError):
        parse_issued_at(value)
    with pytest.raises(MalformedResponseError):
        Token.from_response({**BASE, "access_token": "a", "issued_at": value})


@pytest.mark.parametrize(
    "value",
    ["1767225600123\u00b2", "9" * 5000, "9" * 400],
    ids=["superscript", "5000", "400"],
)
def test_issued_at_odd_digits_are_malformed(value: str) -> None:
    with pytest.raises(MalformedResponseError):
        Token.from_response({**BASE, "access_token": "a", "issued_at": value})


@pytest.mark.parametrize("value", [10**400, "9" * 400])
def test_huge_expires_in_is_malformed(value: Any) -> None:
    with pytest.raises(MalformedResponseError):
        Token.from_response({**BASE, "access_token": "a", "expires_in": value}, now=NOW)


# ------------------------------------------------------------ malformed


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"access_token": None},
        {"access_token": ""},
        {"access_token": 123},
        {"access_token": ["a"]},
        {"access_token": {"a": 1}},
        {"access_token": True},
        {"refresh_token": "r", "instance_url": INSTANCE},
        {"access_token": "a", "refresh_token": 5},
        {"access_token": "a", "instance_url": {"url": INSTANCE}},
        {"access_token": "a", "id": 42},
        {"access_token": "a", "scope": ["api"]},
        {"access_token": "a", "scope": 1},
        {"access_token": "a", "token_type": 1},
        {"access_token": "a", "signature": True},
        {"access_token": "a", "id_token": {}},
        {"access_token": "a\x00b"},
        {"access_token": "a\nb"},
        {"access_token": "a", "refresh_token": "r\r\n"},
        {"access_token": "a", "instance_url": INSTANCE + "\x1b"},
        {"access_token": "a", "signature": "sig\x7f"},
        {"access_token": "a", "id": ID_URL + "\n"},
        {"access_token": "a", "expires_in": "soon"},
        {"access_token": "a", "expires_in": 60.5},
        {"access_token": "a", "issued_at": "not-a-time"},
        # `id` that is not an identity URL
        {"access_token": "a", "id": "not a url"},
        {
            "access_token": "a",
            "id": "https://login.salesforce.com/services/oauth2/userinfo",
        },
        {"access_token": "a", "id": f"https://login.salesforce.com/id/{ORG}"},
        {"access_token": "a", "id": f"https://login.salesforce.com/id/{USER}/{ORG}"},
        {
            "access_token": "a",
            "id": "https://login.salesforce.com/id/001D000000IqhSL/" + USER,
        },
        {"access_token": "a", "id": f"https://login.salesforce.com/id/{ORG}/{USER}/x"},
        {
            "access_token": "a",
            "id": f"https://login.salesforce.com/id/{ORG}/00DXX00000",
        },
    ],
)
def test_malformed_payloads(payload: dict[str, Any]) -> None:
    # On top of valid required fields, so each row fails for its own reason.
    with pytest.raises(MalformedResponseError) as info:
        Token.from_response({**BASE, **payload})
    message = str(info.value)
    for value in payload.values():
        if isinstance(value, str) and len(value) > 1:
            assert value not in message


def test_malformed_message_never_contains_the_token() -> None:
    secret = "00DXX0000001abc!AQ0AQSecretValue\x00"
    with pytest.raises(MalformedResponseError) as info:
        Token.from_response({**BASE, "access_token": secret})
    assert "AQ0AQSecretValue" not in str(info.value)
    assert "access_token" in str(info.value)


# Integers stay within 64 bits here; huge ones have their own test above.
_JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False),
    st.text(),
)
_JSON = st.recursive(
    _JSON_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(), inner, max_size=3)
    ),
    max_leaves=6,
)
_FIELDS = st.sampled_from(
    [
        "access_token",
        "refresh_token",
        "instance_url",
        "id",
        "scope",
        "token_type",
        "signature",
        "id_token",
        "expires_in",
        "other",
    ]
)


@given(payload=st.dictionaries(_FIELDS, _JSON))
def test_any_payload_gives_a_token_or_a_malformed_response_error(
    payload: dict[str, Any],
) -> None:
    # issued_at is covered by its own tests (odd digits included).
    try:
        token = Token.from_response(payload, now=NOW)
    except MalformedResponseError:
        return
    assert isinstance(token.access_token, str) and token.access_token
    assert token.access_token.isascii() and token.access_token.isprintable()
    assert " " not in token.access_token
    assert token.token_type == "Bearer" and token.instance_url and token.id_url


# ------------------------------------------------------------ storage


def test_to_dict_from_dict_round_trip_for_fixtures() -> None:
    for name in (
        "token_web_server.json",
        "token_client_credentials.json",
    ):
        token = parse(name)
        stored = json.loads(json.dumps(token.to_dict()))
        restored = Token.from_dict(stored)
        assert restored == token
        assert dict(restored.raw) == dict(token.raw)


def test_to_dict_shape() -> None:
    data = parse("token_web_server.json").to_dict()
    assert data == {
        "access_token": "00DXX0000001abc!AQ0AQExampleAccessToken",
        "refresh_token": "5Aep861ExampleRefreshToken",
        "instance_url": INSTANCE,
        "id_url": ID_URL,
        "org_id": ORG,
        "user_id": USER,
        "issued_at": 1767225600.123,
        "scopes": ["refresh_token", "openid", "api"],
        "token_type": "Bearer",
        "signature": load("token_web_server.json")["signature"],
        "id_token": load("token_web_server.json")["id_token"],
        "expires_at": None,
        "raw": {"issued_at": "1767225600123"},
        "token_url": None,
    }


def test_token_url_round_trips_and_old_dicts_still_load() -> None:
    """Issue 11.2: the grant's token endpoint is stored with it; a dict stored before
    it was recorded loads with ``token_url=None`` (the app's login URL is used)."""
    url = "https://test.salesforce.com/services/oauth2/token"
    token = Token.from_response(load("token_web_server.json"), token_url=url)
    assert token.token_url == url
    assert Token.from_dict(json.loads(json.dumps(token.to_dict()))).token_url == url
    old = token.to_dict()
    del old["token_url"]
    assert Token.from_dict(old).token_url is None
    assert Token.from_dict({**old, "token_url": ""}).token_url is None
    with pytest.raises(MalformedResponseError):
        Token.from_dict({**old, "token_url": 5})


def test_a_refresh_answer_keeps_the_token_url_of_the_grant() -> None:
    url = "https://acme--dev.sandbox.my.salesforce.com/services/oauth2/token"
    previous = Token.from_response(load("token_web_server.json"), token_url=url)
    payload = dict(load("token_web_server.json"))
    del payload["refresh_token"]
    assert Token.from_response(payload, previous=previous).token_url == url


@pytest.mark.parametrize("data", [{}, {"access_token": None}, {"access_token": 5}])
def test_from_dict_needs_an_access_token(data: dict[str, Any]) -> None:
    with pytest.raises(MalformedResponseError):
        Token.from_dict(data)


_TEXT = st.text(min_size=1)
_OPT_TEXT = st.none() | _TEXT
_OPT_FLOAT = st.none() | st.floats(allow_nan=False, allow_infinity=False)
_TOKENS = st.builds(
    Token,
    access_token=_TEXT,
    refresh_token=_OPT_TEXT,
    instance_url=_OPT_TEXT,
    id_url=_OPT_TEXT,
    org_id=_OPT_TEXT,
    user_id=_OPT_TEXT,
    issued_at=_OPT_FLOAT,
    scopes=st.lists(_TEXT, max_size=4).map(tuple),
    token_type=_TEXT,
    signature=_OPT_TEXT,
    id_token=_OPT_TEXT,
    expires_at=_OPT_FLOAT,
    raw=st.dictionaries(st.text(), _JSON, max_size=4),
    token_url=_OPT_TEXT,
)


@given(_TOKENS)
def test_to_dict_from_dict_round_trip(token: Token) -> None:
    restored = Token.from_dict(json.loads(json.dumps(token.to_dict())))
    assert restored == token
    assert dict(restored.raw) == dict(token.raw)
    assert restored.to_dict() == token.to_dict()


# ------------------------------------------------------------ secrecy


def test_repr_and_str_hide_token_values() -> None:
    token = parse("token_web_server.json")
    payload = load("token_web_server.json")
    for text in (repr(token), str(token), f"{token}", repr([token])):
        assert payload["access_token"] not in text
        assert "AQ0AQExampleAccessToken" not in text
        assert payload["refresh_token"] not in text
        assert payload["signature"] not in text
        assert payload["id_token"] not in text
        assert "**********" in text
    assert ORG in repr(token)  # the harmless parts stay useful


@given(_TOKENS)
def test_repr_does_not_depend_on_secret_values(token: Token) -> None:
    other = dataclasses.replace(
        token,
        access_token="x",
        refresh_token=None if token.refresh_token is None else "y",
        signature=None if token.signature is None else "z",
        id_token=None if token.id_token is None else "w",
    )
    assert repr(token) == repr(other)
    assert str(token) == str(other)


def test_mask() -> None:
    assert mask(None) == "None"
    assert mask("secret") == "'**********'"
    assert "secret" not in mask("secret")


def test_authorization_request_repr_hides_verifier_nonce_and_state_field() -> None:
    request = AuthorizationRequest(
        url="https://login.salesforce.com/services/oauth2/authorize?response_type=code",
        state="StateValue-1234567890",
        code_verifier="VerifierValue-abcdefghijklmnopqrstuvwxyz0123456789",
        nonce="NonceValue-xyz",
    )
    text = repr(request)
    assert "StateValue" not in text
    assert "VerifierValue" not in text
    assert "NonceValue" not in text
    assert "https://login.salesforce.com/services/oauth2/authorize" in text


def test_authorization_request_repr_does_not_leak_state_through_the_url() -> None:
    request = AuthorizationRequest(
        url="https://login.salesforce.com/services/oauth2/authorize?response_type=code"
        "&state=StateValue-1234567890&nonce=NonceValue-xyz",
        state="StateValue-1234567890",
        nonce="NonceValue-xyz",
    )
    assert "StateValue" not in repr(request)
    assert "NonceValue" not in repr(request)


def test_device_authorization_repr_hides_device_code() -> None:
    leg1 = load("device_authorization.json")
    device = DeviceAuthorization(
        device_code=leg1["device_code"],
        user_code=leg1["user_code"],
        verification_uri=leg1["verification_uri"],
        interval=leg1["interval"],
        raw=leg1,
    )
    text = repr(device)
    assert leg1["device_code"] not in text
    assert "M01WRzlF" not in text
    assert "X1D9SEET" in text  # the user code is meant to be shown
    assert device.interval == 5


def test_asset_token_repr_hides_the_token() -> None:
    payload = load("token_asset.json")
    asset = AssetToken(
        token=payload["access_token"],
        expires_in=payload["expires_in"],
        claims={"did": "d"},
    )
    text = repr(asset)
    assert payload["access_token"] not in text
    assert payload["access_token"].split(".")[1] not in text
    assert asset.issued_token_type == "urn:ietf:params:oauth:token-type:jwt"
    assert asset.token_type == "Bearer"


def test_introspection_and_identity_reprs_hide_raw() -> None:
    active = load("introspection_active.json")
    introspection = Introspection(active=True, raw={**active, "token": "SecretTok"})
    assert "SecretTok" not in repr(introspection)
    identity_payload = load("identity.json")
    identity = Identity(
        id=identity_payload["id"],
        user_id=identity_payload["user_id"],
        organization_id=identity_payload["organization_id"],
        raw={**identity_payload, "access_token": "SecretTok"},
    )
    assert "SecretTok" not in repr(identity)


# ------------------------------------------------------------ expiry


@pytest.mark.parametrize(
    ("now", "leeway", "expired"),
    [
        (900.0, 0.0, False),
        (999.9, 0.0, False),
        (1000.0, 0.0, True),
        (1100.0, 0.0, True),
        (989.0, 10.0, False),
        (990.0, 10.0, True),
        (995.0, 10.0, True),
        (700.0, 300.0, True),
        (699.0, 300.0, False),
    ],
)
def test_is_expired_with_leeway(now: float, leeway: float, expired: bool) -> None:
    token = Token(access_token="a", expires_at=1000.0)
    assert token.is_expired(leeway=leeway, now=now) is expired


def test_is_expired_uses_the_clock_by_default() -> None:
    assert Token(access_token="a", expires_at=1.0).is_expired() is True
    assert Token(access_token="a", expires_at=4102444800.0).is_expired() is False


def test_with_expiry_returns_a_copy() -> None:
    token = parse("token_web_server.json")
    later = token.with_expiry(NOW + 7200)
    assert later.expires_at == NOW + 7200
    assert token.expires_at is None
    assert later.access_token == token.access_token
    assert later.refresh_token == token.refresh_token


def test_token_is_frozen() -> None:
    token = parse("token_web_server.json")
    with pytest.raises(dataclasses.FrozenInstanceError):
        token.access_token = "other"  # type: ignore[misc]
