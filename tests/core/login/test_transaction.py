"""The login transaction, driven by hand: no HTTP, canned Salesforce answers."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from support.flows import drive, json_response

from sfoauth_core import ConnectedApp
from sfoauth_core.exceptions import StorageError
from sfoauth_core.flows._base import HttpRequest, HttpResponse, compute_signature
from sfoauth_core.flows.jwks import JwksCache
from sfoauth_core.login import (
    MAX_LOGIN_HINT,
    KnownConnection,
    LoginError,
    LoginErrorCode,
    LoginOptions,
    PendingLogin,
    begin_login,
    complete_login,
    identity_conflict,
    read_login_options,
    refuse_login,
    safe_next,
)
from sfoauth_core.storage import TokenCipher
from sfoauth_core.tokens import Token

SECRET = "1F2E3D4C5B6A"
ORG = "00DXX0000001abcEAA"
USER = "005XX000001xyzQAA"
MY_DOMAIN = "https://acme.my.salesforce.com"
ID_URL = f"{MY_DOMAIN}/id/{ORG}/{USER}"


def make_app(**kw: Any) -> ConnectedApp:
    defaults: dict[str, Any] = dict(
        client_id="3MVG9Example",
        client_secret=SECRET,
        redirect_uri="https://app.example.com/callback",
        scopes=("api", "refresh_token"),
    )
    defaults.update(kw)
    return ConnectedApp(**defaults)


def token_body(**extra: Any) -> dict[str, Any]:
    body = {
        "access_token": "00DXX0000001abc!AQ0AQExampleAccessToken",
        "refresh_token": "5Aep861ExampleRefreshToken",
        "scope": "refresh_token api openid",
        "instance_url": MY_DOMAIN,
        "id": ID_URL,
        "token_type": "Bearer",
        "issued_at": "1767225600123",
    }
    body["signature"] = compute_signature(SECRET, body["id"], body["issued_at"])
    body.update(extra)
    return body


def started(app: ConnectedApp | None = None, **kw: Any) -> tuple[str, PendingLogin]:
    options = kw.pop("options", LoginOptions(next_url="/reports"))
    return begin_login(app or make_app(), options, user=kw.pop("user", "42"), **kw)


def callback(pending: PendingLogin, **params: str) -> dict[str, str]:
    return {"code": "aPrx.code==", "state": pending.state, **params}


REVOKED = HttpResponse(200)


# -- options --------------------------------------------------------------------------
class TestOptions:
    def test_accepted_options_come_back_checked(self):
        options = read_login_options(
            next="/a?b=1",
            scope="api",
            prompt="login  consent",
            login_hint="jane@acme.com",
            allowed_scopes=("api", "refresh_token"),
        )
        assert options == LoginOptions(
            "/a?b=1", ("api",), "login consent", "jane@acme.com"
        )

    def test_empty_values_are_absent(self):
        assert read_login_options(next="", scope="", prompt="", login_hint="") == (
            LoginOptions()
        )

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"scope": "full"},  # never widens the configured scopes (item 28)
            {"scope": "   "},
            {"prompt": "none"},
            {"prompt": "login evil"},
            {"login_hint": "x" * (MAX_LOGIN_HINT + 1)},
            {"login_hint": "a\nb"},
        ],
    )
    def test_a_refused_option_is_invalid_request(self, kwargs):
        with pytest.raises(LoginError) as caught:
            read_login_options(allowed_scopes=("api",), **kwargs)
        assert caught.value.code is LoginErrorCode.INVALID_REQUEST

    def test_the_longest_username_is_a_valid_hint(self):
        hint = "j" * (MAX_LOGIN_HINT - 9) + "@acme.com"
        assert read_login_options(login_hint=hint).login_hint == hint

    @pytest.mark.parametrize(
        "candidate",
        [
            "https://evil.example.com/",
            "//evil.example.com/",
            "/\\evil.example.com",
            "///evil.example.com",
            "javascript:alert(1)",
            " /whoami/",
            "/\t/evil",
            "/caf\u00e9",
            "whoami/",
            "/" + "a" * 2048,
        ],
    )
    def test_an_unsafe_next_is_dropped_not_refused(self, candidate):
        assert safe_next(candidate) is None
        assert read_login_options(next=candidate).next_url is None


# -- begin ----------------------------------------------------------------------------
class TestBegin:
    def test_the_record_names_where_the_code_will_be_exchanged(self):
        url, pending = started(make_app(login_url=MY_DOMAIN + "/"), now=1000.0)
        query = parse_qs(urlsplit(url).query)
        assert url.startswith(MY_DOMAIN + "/services/oauth2/authorize?")
        assert query["state"] == [pending.state]
        assert pending.issuer == MY_DOMAIN
        assert pending.token_url == MY_DOMAIN + "/services/oauth2/token"
        assert pending.redirect_uri == "https://app.example.com/callback"
        assert pending.next_url == "/reports" and pending.user == "42"
        assert pending.expires_at == 1000.0 + 600
        assert pending.code_verifier not in url

    def test_openid_gets_a_nonce_and_cross_site_gets_consent(self):
        url, pending = started(
            options=LoginOptions(prompt="login"),
            scopes=("api", "openid"),
            force_consent=True,
        )
        query = parse_qs(urlsplit(url).query)
        assert query["nonce"] == [pending.nonce]
        assert query["prompt"] == ["consent login"]
        assert query["scope"] == ["api openid"]

    def test_request_scopes_win_over_the_application_choice(self):
        url, _ = started(options=LoginOptions(scopes=("api",)), scopes=("openid",))
        assert parse_qs(urlsplit(url).query)["scope"] == ["api"]

    def test_an_app_without_redirect_uri_cannot_begin(self):
        with pytest.raises(LoginError) as caught:
            started(make_app(redirect_uri=None))
        assert caught.value.code is LoginErrorCode.INVALID_REQUEST
        assert caught.value.cause is not None

    def test_the_record_survives_the_cipher_under_its_id_only(self):
        _, pending = started()
        cipher = TokenCipher(TokenCipher.generate_key())
        sealed = pending.seal(cipher, "id-1")
        assert pending.state not in sealed and pending.code_verifier not in sealed
        assert PendingLogin.unseal(cipher, "id-1", sealed) == pending
        with pytest.raises(StorageError):
            PendingLogin.unseal(cipher, "id-2", sealed)
        with pytest.raises(StorageError):
            PendingLogin.from_bytes(b'{"state": "s"}')
        assert pending.state not in repr(pending)
        assert pending.code_verifier not in repr(pending)


# -- complete -------------------------------------------------------------------------
def complete(
    pending: PendingLogin,
    params: dict[str, str],
    responses: list[Any],
    *,
    user: str | None = "42",
    app: ConnectedApp | None = None,
    cache: JwksCache | None = None,
    now: float | None = None,
) -> tuple[Any, list[Any]]:
    flow = complete_login(
        app or make_app(),
        pending,
        params,
        user=user,
        jwks_cache=cache if cache is not None else JwksCache(),
        now=now,
    )
    return drive(flow, responses)


def refused(*args: Any, **kw: Any) -> tuple[LoginError, list[Any]]:
    steps: list[Any] = []
    responses = list(args[2])

    flow = complete_login(
        kw.pop("app", None) or make_app(),
        args[0],
        args[1],
        user=kw.pop("user", "42"),
        jwks_cache=kw.pop("cache", None) or JwksCache(),
        now=kw.pop("now", None),
    )
    with pytest.raises(LoginError) as caught:
        step = next(flow)
        while True:
            steps.append(step)
            answer = responses.pop(0) if isinstance(step, HttpRequest) else None
            step = flow.send(answer)
    return caught.value, steps


class TestComplete:
    def test_the_code_is_exchanged_at_the_recorded_token_url(self):
        _, pending = started(make_app(login_url=MY_DOMAIN))
        # The app was since configured for another host: the record decides.
        done, steps = complete(
            pending,
            callback(pending, iss=MY_DOMAIN),
            [json_response(200, token_body())],
            app=make_app(),
        )
        (request,) = steps
        assert request.url == MY_DOMAIN + "/services/oauth2/token"
        assert request.form["code_verifier"] == pending.code_verifier
        assert request.form["redirect_uri"] == pending.redirect_uri
        assert request.form["code"] == "aPrx.code=="
        assert done.token.org_id == ORG and done.next_url == "/reports"

    @pytest.mark.parametrize(
        "change, params, user, code",
        [
            ({"expires_at": 0.0}, {}, "42", LoginErrorCode.INVALID_STATE),
            ({}, {}, "43", LoginErrorCode.INVALID_STATE),
            ({}, {}, None, LoginErrorCode.INVALID_STATE),
            ({}, {"state": "forged"}, "42", LoginErrorCode.INVALID_STATE),
            ({}, {"iss": "https://evil.example.com"}, "42", "invalid_callback"),
            ({}, {"code": ""}, "42", LoginErrorCode.INVALID_CALLBACK),
            ({}, {"code": "c" * 3000}, "42", LoginErrorCode.INVALID_CALLBACK),
            ({}, {"error": "access_denied"}, "42", LoginErrorCode.ACCESS_DENIED),
            ({}, {"error": "server_error"}, "42", "authorization_failed"),
            ({}, {"error": "invalid_client_id"}, "42", "app_misconfigured"),
            ({}, {"error": "invalid_app_access"}, "42", "app_access_denied"),
        ],
        ids=[
            "expired",
            "other-user",
            "signed-out",
            "wrong-state",
            "foreign-iss",
            "no-code",
            "oversized",
            "declined",
            "error",
            "bad-client-id",
            "no-app-access",
        ],
    )
    def test_a_refused_callback_makes_no_request(self, change, params, user, code):
        from dataclasses import replace

        _, pending = started()
        pending = replace(pending, **change)
        failure, steps = refused(pending, callback(pending, **params), [], user=user)
        assert failure.code == code and steps == []
        assert pending.state not in str(failure)

    def test_an_anonymous_login_may_finish_signed_in(self):
        _, pending = started(user=None)
        done, _ = complete(
            pending, callback(pending), [json_response(200, token_body())], user="7"
        )
        assert done.pending.user is None

    @pytest.mark.parametrize(
        "answer, code",
        [
            (json_response(400, {"error": "invalid_grant"}), "exchange_failed"),
            (json_response(400, {"error": "invalid_client"}), "app_misconfigured"),
            (HttpResponse(503, {"content-type": "text/html"}, b"<html>"), None),
            (json_response(200, token_body(signature="bad")), "salesforce_error"),
        ],
        ids=["invalid-grant", "invalid-client", "maintenance", "bad-signature"],
    )
    def test_exchange_failures_have_stable_codes(self, answer, code):
        _, pending = started()
        failure, _ = refused(pending, callback(pending), [answer] * 5)
        assert failure.code == (code or "salesforce_unavailable")
        assert failure.cause is not None

    def test_a_token_without_identity_is_refused(self):
        _, pending = started()
        body = token_body()
        body["id"] = "https://login.salesforce.com/id/"
        body["signature"] = compute_signature(SECRET, body["id"], body["issued_at"])
        failure, _ = refused(
            pending, callback(pending), [json_response(200, body), REVOKED]
        )
        assert failure.code is LoginErrorCode.SALESFORCE_ERROR


# -- ID token -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def keys_of(key: rsa.RSAPrivateKey) -> HttpResponse:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid="210", alg="RS256", use="sig")
    return json_response(200, {"keys": [jwk]})


def id_token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": MY_DOMAIN,
        "sub": ID_URL,
        "aud": "3MVG9Example",
        "iat": now,
        "exp": now + 120,
        "preferred_username": "jane@acme.com",
    }
    payload.update(claims)
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "210"})


class TestIdToken:
    def _login(self) -> PendingLogin:
        _, pending = started(make_app(login_url=MY_DOMAIN), scopes=("api", "openid"))
        assert pending.nonce
        return pending

    def test_the_nonce_of_this_login_is_required(self, rsa_key):
        pending = self._login()
        body = token_body(id_token=id_token(rsa_key, nonce=pending.nonce))
        done, steps = complete(
            pending, callback(pending), [json_response(200, body), keys_of(rsa_key)]
        )
        assert steps[1].url == MY_DOMAIN + "/id/keys"  # the issuer's own key set
        assert done.username == "jane@acme.com"

    @pytest.mark.parametrize(
        "claims",
        [{"nonce": "another-login"}, {}, {"iss": "https://login.salesforce.com"}],
        ids=["other-nonce", "no-nonce", "other-issuer"],
    )
    def test_a_foreign_id_token_is_refused_and_the_grant_revoked(self, rsa_key, claims):
        pending = self._login()
        body = token_body(id_token=id_token(rsa_key, **claims))
        failure, steps = refused(
            pending,
            callback(pending),
            [json_response(200, body), keys_of(rsa_key), REVOKED],
        )
        assert failure.code is LoginErrorCode.ID_TOKEN_REJECTED
        assert failure.is_security_event
        assert steps[-1].url == MY_DOMAIN + "/services/oauth2/revoke"
        assert steps[-1].form["token"] == "5Aep861ExampleRefreshToken"

    def test_keys_unavailable_is_unavailable(self, rsa_key):
        pending = self._login()
        body = token_body(id_token=id_token(rsa_key, nonce=pending.nonce))
        down = HttpResponse(503, {"content-type": "text/html"}, b"<html>")
        failure, _ = refused(
            pending,
            callback(pending),
            [json_response(200, body)] + [down] * 10,
        )
        assert failure.code is LoginErrorCode.SALESFORCE_UNAVAILABLE


# -- identity rule --------------------------------------------------------------------
def _token(org: str = ORG, user: str = USER) -> Token:
    return Token(access_token="x", refresh_token="r", org_id=org, user_id=user)


class TestIdentityRule:
    def test_nothing_known_or_the_same_connection_is_fine(self):
        assert identity_conflict(_token(), []) is None
        assert identity_conflict(_token(), [KnownConnection(ORG, USER, True)]) is None

    def test_someone_elses_salesforce_user_is_already_linked(self):
        known = [KnownConnection(ORG, USER, mine=False)]
        assert identity_conflict(_token(), known) is LoginErrorCode.ALREADY_LINKED

    def test_another_user_of_my_org_never_replaces_mine(self):
        known = [KnownConnection(ORG, "005XX000001otherAA", mine=True)]
        assert identity_conflict(_token(), known) is LoginErrorCode.DIFFERENT_ACCOUNT

    def test_ids_compare_case_sensitively(self):
        known = [KnownConnection(ORG, USER.lower(), mine=True)]
        assert identity_conflict(_token(), known) is LoginErrorCode.DIFFERENT_ACCOUNT

    def test_another_org_is_a_second_connection_unless_one_per_user(self):
        known = [KnownConnection("00DXX0000002xyzEAA", USER, mine=True)]
        assert identity_conflict(_token(), known) is None
        assert (
            identity_conflict(_token(), known, one_per_user=True)
            is LoginErrorCode.DIFFERENT_ACCOUNT
        )

    def test_refusing_gives_the_grant_back(self):
        _, pending = started()
        done, _ = complete(
            pending, callback(pending), [json_response(200, token_body())]
        )
        failure, steps = _refuse(done)
        assert failure.code is LoginErrorCode.ALREADY_LINKED
        (revoke,) = steps
        assert revoke.url == "https://login.salesforce.com/services/oauth2/revoke"

    def test_a_failed_revocation_still_refuses(self):
        _, pending = started()
        done, _ = complete(
            pending, callback(pending), [json_response(200, token_body())]
        )
        flow = refuse_login(make_app(), done, LoginErrorCode.DIFFERENT_ACCOUNT)
        next(flow)
        with pytest.raises(LoginError) as caught:
            flow.send(json_response(400, {"error": "unsupported_token_type"}))
        assert caught.value.code is LoginErrorCode.DIFFERENT_ACCOUNT


def test_a_bare_grant_is_refused_at_its_host_too():
    token = _token()
    flow = refuse_login(make_app(), token, LoginErrorCode.ALREADY_LINKED)
    revoke = next(flow)
    assert revoke.url == "https://login.salesforce.com/services/oauth2/revoke"
    with pytest.raises(LoginError) as caught:
        flow.send(REVOKED)
    assert caught.value.code is LoginErrorCode.ALREADY_LINKED


def _refuse(done: Any) -> tuple[LoginError, list[Any]]:
    flow = refuse_login(make_app(), done, LoginErrorCode.ALREADY_LINKED)
    steps = [next(flow)]
    with pytest.raises(LoginError) as caught:
        flow.send(REVOKED)
    return caught.value, steps
