"""Issue 13 defects 2, 3, 4 and 6: what a token answer must carry, how hostile bodies are
refused, refresh ID tokens, and the key-set fetch budget.

Every test here failed before the fix it names (stripped signatures and missing fields
were accepted, deep JSON raised ``RecursionError``, a refresh ID token was stored
unverified, and each forged ``kid`` cost one key-set request).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from support.flows import (
    ID_URL,
    drive,
    finish,
    first_request,
    json_response,
    make_app,
    token_body,
)

from sfoauth_core import Token
from sfoauth_core.config import ConnectedApp
from sfoauth_core.exceptions import (
    MalformedResponseError,
    SalesforceUnavailableError,
    SignatureError,
    TransportError,
)
from sfoauth_core.flows._base import (
    MAX_JSON_DEPTH,
    HttpRequest,
    HttpResponse,
    json_depth,
    loads_json,
    parse_json_object,
)
from sfoauth_core.flows.client_credentials import client_credentials
from sfoauth_core.flows.device import poll_device_flow
from sfoauth_core.flows.jwks import JwksCache, verify_jwt
from sfoauth_core.flows.jwt_bearer import jwt_bearer
from sfoauth_core.flows.password import password_grant
from sfoauth_core.flows.refresh import refresh_token
from sfoauth_core.flows.revoke import parse_error_body
from sfoauth_core.flows.user_agent import parse_user_agent_response
from sfoauth_core.flows.web_server import exchange_code
from sfoauth_core.tokens import DeviceAuthorization

SECRET = "1F2E3D4C5B6A"
MY_DOMAIN = "https://acme.my.salesforce.com"
KEYS_URL = "https://login.salesforce.com/id/keys"
VERIFIER = "v" * 64
_PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
)

pytestmark = pytest.mark.filterwarnings(
    "ignore::sfoauth_core.exceptions.InsecureFlowWarning"
)


@pytest.fixture(scope="module")
def org_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def foreign_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def unsigned(**extra: Any) -> dict[str, Any]:
    body = token_body(**extra)
    del body["signature"]
    return body


# ------------------------------------------------------------------ defect 2: signature


def _code(app: ConnectedApp) -> Any:
    return exchange_code(app, "aPrxCode==", code_verifier=VERIFIER)


def _refresh(app: ConnectedApp) -> Any:
    return refresh_token(app, "5Aep861Refresh")


def _client_credentials(app: ConnectedApp) -> Any:
    return client_credentials(app.replace(login_url=MY_DOMAIN))


def _password(app: ConnectedApp) -> Any:
    return password_grant(app, "jane@acme.com", "pw")


def _device(app: ConnectedApp) -> Any:
    device = DeviceAuthorization(
        device_code="dc", user_code="X1D9SEET", verification_uri=MY_DOMAIN, interval=5
    )
    return poll_device_flow(app, device, timeout=60, clock=lambda: 0.0)


def _jwt_bearer(app: ConnectedApp) -> Any:
    return jwt_bearer(app.replace(private_key=_PEM, username="jane@acme.com"))


def run(flow: Any, body: dict[str, Any]) -> Token:
    result, _ = drive(flow, [json_response(200, body)])
    assert isinstance(result, Token)
    return result


ALWAYS_SIGNED = {"code": _code, "refresh": _refresh}
SOMETIMES_SIGNED = {
    "client_credentials": _client_credentials,
    "password": _password,
    "device": _device,
}


@pytest.mark.parametrize("make", list(ALWAYS_SIGNED.values()), ids=list(ALWAYS_SIGNED))
def test_a_stripped_signature_is_refused_where_salesforce_always_signs(make):
    with pytest.raises(SignatureError, match="no signature"):
        run(make(make_app()), unsigned())


def test_a_stripped_signature_is_refused_in_a_user_agent_fragment():
    body = unsigned(state="st")
    fragment = "https://app.example.com/callback#" + urlencode(body)
    with pytest.raises(SignatureError, match="no signature"):
        parse_user_agent_response(make_app(), fragment, expected_state="st")


@pytest.mark.parametrize("make", list(ALWAYS_SIGNED.values()), ids=list(ALWAYS_SIGNED))
def test_public_clients_cannot_check_a_signature_and_do_not_require_one(make):
    app = make_app(client_secret=None)
    assert run(make(app), unsigned()).access_token.startswith("00DXX")


@pytest.mark.parametrize("make", list(ALWAYS_SIGNED.values()), ids=list(ALWAYS_SIGNED))
def test_verify_signature_off_accepts_a_missing_signature(make):
    app = make_app(verify_signature=False)
    assert run(make(app), unsigned()).access_token.startswith("00DXX")


@pytest.mark.parametrize(
    "make", list(SOMETIMES_SIGNED.values()), ids=list(SOMETIMES_SIGNED)
)
def test_where_the_reference_is_unsure_a_missing_signature_is_accepted(make):
    assert run(make(make_app()), unsigned()).access_token.startswith("00DXX")


@pytest.mark.parametrize(
    "make", list(SOMETIMES_SIGNED.values()), ids=list(SOMETIMES_SIGNED)
)
def test_strict_signature_requires_it_there_too(make):
    app = make_app(strict_signature=True)
    assert app.replace().strict_signature is True
    with pytest.raises(SignatureError, match="no signature"):
        run(make(app), unsigned())
    assert run(make(app), token_body()).access_token.startswith("00DXX")


def test_jwt_bearer_never_requires_one_even_strict():
    app = make_app(strict_signature=True)
    assert run(_jwt_bearer(app), unsigned()).access_token.startswith("00DXX")


@pytest.mark.parametrize(
    "make",
    [*ALWAYS_SIGNED.values(), *SOMETIMES_SIGNED.values(), _jwt_bearer],
    ids=[*ALWAYS_SIGNED, *SOMETIMES_SIGNED, "jwt_bearer"],
)
def test_a_present_signature_is_verified_for_every_grant(make):
    with pytest.raises(SignatureError, match="does not match"):
        run(make(make_app()), token_body(secret="wrong-secret"))


@pytest.mark.parametrize("field", ["id", "issued_at"])
def test_a_signature_without_what_it_covers_is_refused(field):
    body = token_body()
    del body[field]
    with pytest.raises(SignatureError):
        run(_client_credentials(make_app()), body)


@pytest.mark.parametrize(
    "make",
    [*ALWAYS_SIGNED.values(), *SOMETIMES_SIGNED.values(), _jwt_bearer],
    ids=[*ALWAYS_SIGNED, *SOMETIMES_SIGNED, "jwt_bearer"],
)
@pytest.mark.parametrize("missing", ["instance_url", "id", "token_type"])
def test_required_fields_are_required_for_every_grant(make, missing):
    app = make_app(verify_signature=False)
    body = token_body()
    del body[missing]
    with pytest.raises(MalformedResponseError, match=missing):
        run(make(app), body)


def test_client_credentials_with_only_an_access_token_returns_nothing():
    # The probe's case: {"access_token": "<garbage>"} came back as a Token.
    with pytest.raises((MalformedResponseError, SignatureError)):
        run(_client_credentials(make_app()), {"access_token": "<garbage>"})


# ------------------------------------------------------------------ defect 3: bodies


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_is_a_typed_error_not_a_recursion_error(opener):
    closer = "]" if opener == "[" else "}"
    depth = 100_000
    body = (opener * depth + "1" + closer * depth).encode()[: 256 * 1024]
    response = HttpResponse(200, {"content-type": "application/json"}, body)
    with pytest.raises(MalformedResponseError, match="nested deeper"):
        parse_json_object(response)
    flow = _refresh(make_app())
    first_request(flow)
    with pytest.raises(MalformedResponseError, match="nested deeper"):
        finish(flow, response)


def test_revoke_error_bodies_are_bounded_too():
    deep = b'{"error":' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert parse_error_body(HttpResponse(400, {}, deep)) is None


def test_depth_limit_edges():
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads_json(ok) is not None
    with pytest.raises(MalformedResponseError):
        loads_json("[" + ok + "]")
    # Brackets inside strings do not nest; escaped quotes do not end a string.
    tricky = '{"a": "[[[[[[\\"{{{{{{{{", "b": [1, {"c": "]]]]"}]}'
    assert json_depth(tricky) == 3
    assert loads_json(tricky)["b"][1]["c"] == "]]]]"


def test_oversized_text_is_refused_before_decoding():
    with pytest.raises(MalformedResponseError, match="too large"):
        loads_json(" " * (256 * 1024 + 1))


@pytest.mark.parametrize("token_type", ["MAC", "N_A", "DPoP"])
def test_token_type_other_than_bearer_is_refused_by_the_flows(token_type):
    with pytest.raises(MalformedResponseError, match="token_type"):
        run(_code(make_app()), token_body(token_type=token_type))


@pytest.mark.parametrize("value", ["00D!AQ AQ", "00D!AQ\u00e9", "00D!AQ\u0085"])
def test_access_tokens_a_header_cannot_carry_are_refused_by_the_flows(value):
    with pytest.raises(MalformedResponseError, match="access_token") as info:
        run(_code(make_app()), token_body(access_token=value))
    assert value not in str(info.value)


# ------------------------------------------------------------------ defect 4: refresh ID token


def jwks_of(key: rsa.RSAPrivateKey, kid: str = "210") -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=kid, alg="RS256", use="sig")
    return {"keys": [jwk]}


def id_token(key: rsa.RSAPrivateKey, kid: str = "210", **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": "https://login.salesforce.com",
        "sub": ID_URL,
        "aud": "3MVG9Example",
        "iat": now,
        "exp": now + 120,
    }
    payload.update(claims)
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def stored() -> Token:
    return Token(
        access_token="00DXX0000001abc!old",
        refresh_token="5Aep861Original",
        instance_url="https://acme.my.salesforce.com",
        id_url=ID_URL,
        org_id="00DXX0000001abcEAA",
        user_id="005XX000001xyzQAA",
    )


def refresh_with(body: dict[str, Any], keys: Any, cache: Any = None) -> Token:
    flow = refresh_token(make_app(), stored(), jwks_cache=cache)
    first_request(flow)
    step = flow.send(json_response(200, body))
    assert isinstance(step, HttpRequest) and step.url == KEYS_URL
    assert "Authorization" not in step.headers
    return finish(flow, keys)


def test_a_valid_refresh_id_token_is_kept(org_key):
    value = id_token(org_key)
    token = refresh_with(
        token_body(id_token=value), json_response(200, jwks_of(org_key))
    )
    assert token.id_token == value


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000009zzzQAA"},
        {"aud": "3MVG9SomeoneElse"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 3600},
    ],
    ids=["other-sub", "other-aud", "other-iss", "expired"],
)
def test_a_refresh_id_token_that_fails_a_check_is_dropped(org_key, claims, caplog):
    caplog.set_level(logging.WARNING, "sfoauth.security")
    value = id_token(org_key, **claims)
    token = refresh_with(
        token_body(id_token=value), json_response(200, jwks_of(org_key))
    )
    assert token.id_token is None
    assert token.access_token == "00DXX0000001abc!AQ0AQExampleAccessToken"
    assert "dropped the ID token" in caplog.text
    assert value not in caplog.text


def test_a_refresh_id_token_signed_by_a_foreign_key_is_dropped(org_key, foreign_key):
    value = id_token(foreign_key)
    token = refresh_with(
        token_body(id_token=value), json_response(200, jwks_of(org_key))
    )
    assert token.id_token is None


def test_a_refresh_id_token_is_dropped_when_the_keys_cannot_be_fetched(org_key):
    flow = refresh_token(make_app(), stored())
    result, _steps = drive(
        flow,
        [json_response(200, token_body(id_token=id_token(org_key)))]
        + [TransportError("down")] * 3,
    )
    assert result.id_token is None
    assert result.refresh_token == "5Aep861ExampleRefreshToken"  # the rotation is kept


def test_refresh_id_tokens_use_the_shared_key_cache(org_key):
    cache = JwksCache()
    refresh_with(
        token_body(id_token=id_token(org_key)),
        json_response(200, jwks_of(org_key)),
        cache,
    )
    flow = refresh_token(make_app(), stored(), jwks_cache=cache)
    first_request(flow)
    token = finish(flow, json_response(200, token_body(id_token=id_token(org_key))))
    assert token.id_token is not None  # no second key request


# ------------------------------------------------------------------ defect 6: key fetches


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verify_counting(
    app: ConnectedApp, token: str, cache: Any, keys: dict[str, Any]
) -> tuple[int, Exception | None]:
    """Verify one token; answer every key request with ``keys``; count the requests."""
    flow = verify_jwt(
        app,
        token,
        audience="3MVG9Example",
        issuer="https://login.salesforce.com",
        jwks_cache=cache,
    )
    fetches = 0
    try:
        step = next(flow)
        while True:
            assert isinstance(step, HttpRequest) and step.url == KEYS_URL
            fetches += 1
            step = flow.send(json_response(200, keys))
    except StopIteration:
        return fetches, None
    except SignatureError as exc:
        return fetches, exc


def test_forged_kids_cost_one_key_set_fetch_per_interval(org_key):
    clock = Clock()
    cache = JwksCache(min_refetch_interval=60, ttl=3600, timer=clock)
    app = make_app()
    keys = jwks_of(org_key)
    total = 0
    for n in range(200):
        fetches, error = verify_counting(
            app, id_token(org_key, kid=f"forged{n}"), cache, keys
        )
        total += fetches
        assert error is not None
    assert total == 1  # before the fix: 200 (one per forged kid)
    # The genuine key still verifies without a fetch.
    assert verify_counting(app, id_token(org_key), cache, keys) == (0, None)
    # After the interval, one more re-fetch is allowed (the org may have rotated).
    clock.now += 61
    fetches, _ = verify_counting(app, id_token(org_key, kid="forged-late"), cache, keys)
    assert fetches == 1
    fetches, _ = verify_counting(
        app, id_token(org_key, kid="forged-later"), cache, keys
    )
    assert fetches == 0


def test_a_rotated_key_is_found_by_the_one_allowed_refetch(org_key, foreign_key):
    clock = Clock()
    cache = JwksCache(min_refetch_interval=60, timer=clock)
    app = make_app()
    assert verify_counting(app, id_token(org_key), cache, jwks_of(org_key)) == (1, None)
    clock.now += 61
    rotated = {
        "keys": jwks_of(org_key)["keys"] + jwks_of(foreign_key, kid="211")["keys"]
    }
    assert verify_counting(app, id_token(foreign_key, kid="211"), cache, rotated) == (
        1,
        None,
    )


def test_key_sets_expire_after_their_ttl(org_key):
    clock = Clock()
    cache = JwksCache(min_refetch_interval=60, ttl=300, timer=clock)
    app = make_app()
    keys = jwks_of(org_key)
    assert verify_counting(app, id_token(org_key), cache, keys)[0] == 1
    clock.now += 299
    assert verify_counting(app, id_token(org_key), cache, keys)[0] == 0
    clock.now += 2
    assert verify_counting(app, id_token(org_key), cache, keys)[0] == 1
    assert len(cache) == 1 and list(cache) == [KEYS_URL]


def test_a_failed_fetch_counts_against_the_interval(org_key):
    clock = Clock()
    cache = JwksCache(min_refetch_interval=60, timer=clock)
    app = make_app()
    flow = verify_jwt(
        app, id_token(org_key), audience="3MVG9Example", issuer=None, jwks_cache=cache
    )
    with pytest.raises(SalesforceUnavailableError):
        drive(flow, [TransportError("down")] * 3)
    fetches, error = verify_counting(app, id_token(org_key), cache, jwks_of(org_key))
    assert fetches == 0 and error is not None and "kid" in str(error)


def test_the_limit_is_per_key_set_url(org_key):
    clock = Clock()
    cache = JwksCache(min_refetch_interval=60, timer=clock)
    cache.note_fetch(KEYS_URL)
    assert not cache.may_fetch(KEYS_URL)
    assert cache.may_fetch("https://acme.my.salesforce.com/id/keys")
    clock.now += 60
    assert cache.may_fetch(KEYS_URL)


def test_the_clients_share_one_rate_limited_cache():
    from sfoauth_core import SalesforceOAuth

    with SalesforceOAuth(make_app()) as oauth:
        assert isinstance(oauth._jwks_cache, JwksCache)
        assert oauth._jwks_cache.min_refetch_interval > 0


# ------------------------------------------------------------------ defect 8: repeats


@pytest.mark.parametrize(
    "query",
    [
        "code=c&state=a&state=b",
        "code=c&code=d&state=a",
        "code=c&state=a&iss=https%3A%2F%2Flogin.salesforce.com&iss=https%3A%2F%2Fevil",
        "error=access_denied&error=server_error&state=a",
        "state=a&code=c&state=a",  # the same value twice is still a splice
    ],
)
def test_a_callback_repeating_a_parameter_is_refused(query):
    from sfoauth_core.exceptions import RepeatedParameterError
    from sfoauth_core.flows.web_server import parse_authorization_response

    with pytest.raises(RepeatedParameterError) as info:
        parse_authorization_response(
            "https://app.example.com/callback?" + query, expected_state="a"
        )
    assert info.value.parameter in ("state", "code", "iss", "error")
    assert "=a" not in str(info.value) and "c" != info.value.parameter


def test_callback_params_keeps_single_parameters():
    from sfoauth_core.exceptions import FlowError
    from sfoauth_core.flows.web_server import callback_params

    pairs = [
        ("code", "aPrx=="),
        ("state", "s"),
        ("iss", "https://login.salesforce.com"),
    ]
    assert callback_params(pairs) == dict(pairs)
    with pytest.raises(FlowError):
        callback_params([*pairs, ("state", "t")])


# ------------------------------------------------------------------ the emulator complies


def test_the_emulator_sends_everything_that_is_now_required():
    """Every grant's answer from the emulator passes the strict checks (issue 13 item 2)."""
    import warnings

    import httpx as _httpx

    from sfoauth_core import SalesforceOAuth
    from sfoauth_core.testing import (
        DEFAULT_PASSWORD,
        DEFAULT_SECURITY_TOKEN,
        DEFAULT_USERNAME,
        SalesforceEmulator,
    )

    emu = SalesforceEmulator()
    emu.auto_approve = DEFAULT_USERNAME
    emu.org.username_password_blocked = False

    def client(name: str) -> SalesforceOAuth:
        app = emu.connected_app(name).replace(strict_signature=True)
        return SalesforceOAuth(
            app, http_client=_httpx.Client(transport=emu.transport())
        )

    web = client("web")
    assert web.app.client_secret is not None
    request = web.authorization_url()
    with _httpx.Client(transport=emu.transport()) as browser:
        callback = browser.get(request.url).headers["location"]
        code = web.parse_authorization_response(callback, expected_state=request.state)
        token = web.exchange_code(code, code_verifier=request.code_verifier)
        assert token.signature and token.token_type == "Bearer"
        refreshed = web.refresh(token)
        assert refreshed.signature and refreshed.id_url == token.id_url
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ua = web.user_agent_url()
            fragment = browser.get(ua.url).headers["location"]
            assert web.parse_user_agent_response(
                fragment, expected_state=ua.state
            ).signature
            assert web.password(
                DEFAULT_USERNAME,
                DEFAULT_PASSWORD,
                security_token=DEFAULT_SECURITY_TOKEN,
            ).signature
    assert client("cc").client_credentials().signature
    assert client("jwt").jwt_bearer().access_token


@pytest.mark.parametrize(
    "body",
    ['"' + '\\"' * 120_000, '"a' * 120_000, '["' * 100_000, "\\" * 250_000],
    ids=["escaped-quotes", "unterminated", "bracket-strings", "backslashes"],
)
def test_the_depth_scan_is_linear_on_hostile_bodies(body):
    # A scan that had to find each string's closing quote took ~6 s for 40 KiB of \".
    started = time.perf_counter()
    with pytest.raises(MalformedResponseError):
        loads_json(body)
    assert time.perf_counter() - started < 1.0
