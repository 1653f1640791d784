"""Every flow end to end against the emulator: sync, async on asyncio and on trio.

Each test receives ``sf``: a factory that builds a client for one emulated app and runs
its methods synchronously (``SalesforceOAuth``) or through ``anyio.run``
(``AsyncSalesforceOAuth``) on the chosen backend, so one test body proves all three.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import jwt as pyjwt
import pytest

from sfoauth_core import AsyncSalesforceOAuth, ConnectedApp, SalesforceOAuth
from sfoauth_core.exceptions import (
    AccessDeniedError,
    ConfigurationError,
    ExpiredTokenError,
    InactiveUserError,
    InsecureFlowWarning,
    InvalidAppAccessError,
    InvalidClientError,
    InvalidClientIdError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidTokenError,
    MalformedResponseError,
    OAuthProtocolError,
    SalesforceUnavailableError,
    SignatureError,
    TransportError,
)
from sfoauth_core.flows.web_server import parse_authorization_response
from sfoauth_core.testing import (
    DEFAULT_ORG_ID,
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USER_ID,
    DEFAULT_USERNAME,
    Fault,
    SalesforceEmulator,
)

MODES = ["sync", "asyncio", "trio"]


class Client:
    """Calls a sync or async client with one synchronous interface."""

    def __init__(self, mode: str, emu: SalesforceEmulator, app: ConnectedApp) -> None:
        self.mode = mode
        self.app = app
        if mode == "sync":
            self.oauth: Any = SalesforceOAuth(
                app,
                http_client=httpx.Client(
                    transport=emu.transport(), timeout=app.timeout
                ),
            )
        else:
            self.oauth = AsyncSalesforceOAuth(
                app,
                http_client=httpx.AsyncClient(
                    transport=emu.async_transport(), timeout=app.timeout
                ),
            )

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.oauth, name)
        if self.mode == "sync" or not inspect.iscoroutinefunction(attribute):
            return attribute

        def run(*args: Any, **kwargs: Any) -> Any:
            return anyio.run(
                functools.partial(attribute, *args, **kwargs), backend=self.mode
            )

        return run


@pytest.fixture
def emu(salesforce_emulator: SalesforceEmulator) -> SalesforceEmulator:
    salesforce_emulator.auto_approve = DEFAULT_USERNAME
    return salesforce_emulator


@pytest.fixture(params=MODES)
def sf(
    request: pytest.FixtureRequest, emu: SalesforceEmulator
) -> Callable[..., Client]:
    def make(name: str = "web", **overrides: Any) -> Client:
        return Client(request.param, emu, emu.connected_app(name, **overrides))

    return make


@pytest.fixture
def browser(emu: SalesforceEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(transport=emu.transport(), follow_redirects=False) as client:
        yield client


def login(browser: httpx.Client, url: str) -> str:
    """Follow the authorize URL as the auto-approving user; return the callback URL."""
    response = browser.get(url)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def web_login(client: Client, browser: httpx.Client, **kwargs: Any) -> Any:
    request = client.authorization_url(**kwargs)
    callback = login(browser, request.url)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    code = parse_authorization_response(callback, expected_state=request.state)
    return client.exchange_code(
        code,
        code_verifier=request.code_verifier,
        state=state,
        expected_state=request.state,
    )


# -- Web server (confidential) and PKCE (public) -------------------------------------------
def test_web_server_flow_with_secret(sf, browser, emu):
    client = sf("web")
    token = web_login(client, browser)
    assert token.org_id == DEFAULT_ORG_ID and token.user_id == DEFAULT_USER_ID
    assert token.instance_url == "https://acme.my.salesforce.com"
    assert token.refresh_token and token.signature and token.id_token
    assert token.expires_at is None  # Salesforce sends no expires_in
    assert token.access_token.startswith(DEFAULT_ORG_ID[:15] + "!")
    assert emu.calls("authorization_code") == 1
    client.verify_signature(token)  # the secret is known: the HMAC checks out
    # The code is single use: a replay fails with invalid_grant.


def test_pkce_public_client_without_secret(sf, browser, emu):
    # Salesforce apps always have a secret; a public client simply never holds it.
    client = sf("public", client_secret=None)
    token = web_login(client, browser)
    assert token.refresh_token
    refreshed = client.refresh(token)
    assert refreshed.access_token != token.access_token
    log = [e for e in emu.request_log if e.grant_type == "authorization_code"]
    assert "client_secret" not in log[-1].params


def test_code_is_single_use(sf, browser):
    client = sf("web")
    request = client.authorization_url()
    callback = login(browser, request.url)
    code = parse_authorization_response(callback, expected_state=request.state)
    client.exchange_code(code, code_verifier=request.code_verifier)
    with pytest.raises(InvalidGrantError):
        client.exchange_code(code, code_verifier=request.code_verifier)


def test_wrong_pkce_verifier_is_invalid_request(sf, browser):
    client = sf("web")
    request = client.authorization_url()
    code = parse_authorization_response(
        login(browser, request.url), expected_state=request.state
    )
    with pytest.raises(InvalidRequestError):
        client.exchange_code(code, code_verifier="w" * 64)


def test_missing_pkce_verifier_is_invalid_grant(sf, browser):
    client = sf("web")
    request = client.authorization_url()
    code = parse_authorization_response(
        login(browser, request.url), expected_state=request.state
    )
    with pytest.raises(InvalidGrantError):
        client.exchange_code(code, code_verifier=None)


def test_wrong_client_secret_is_invalid_client(sf, browser):
    client = sf("web", client_secret="not-the-secret")
    request = client.authorization_url()
    code = parse_authorization_response(
        login(browser, request.url), expected_state=request.state
    )
    with pytest.raises(InvalidClientError) as info:
        client.exchange_code(code, code_verifier=request.code_verifier)
    assert "not-the-secret" not in str(info.value)


def test_unknown_client_id(sf):
    with pytest.raises(InvalidClientIdError):
        sf("web", client_id="3MVG9Unknown").refresh("5AepWhatever")


def test_state_mismatch_makes_no_call(sf, browser, emu):
    from sfoauth_core.exceptions import StateMismatchError

    client = sf("web")
    request = client.authorization_url()
    code = parse_authorization_response(
        login(browser, request.url), expected_state=request.state
    )
    with pytest.raises(StateMismatchError):
        client.exchange_code(
            code,
            code_verifier=request.code_verifier,
            state="forged",
            expected_state="real",
        )
    assert emu.calls("authorization_code") == 0


def test_user_denies_access(sf, browser, emu):
    emu.auto_consent = "deny"
    client = sf("web")
    request = client.authorization_url()
    with pytest.raises(AccessDeniedError):
        parse_authorization_response(
            login(browser, request.url), expected_state=request.state
        )


def test_admin_approved_app_refuses_other_users(sf, browser, emu):
    # Reference 2.7: invalid_app_access comes at the code exchange...
    emu.apps["web"].permitted_users = "admin_approved"
    client = sf("web")
    request = client.authorization_url()
    code = parse_authorization_response(
        login(browser, request.url), expected_state=request.state
    )
    with pytest.raises(InvalidAppAccessError) as info:
        client.exchange_code(code, code_verifier=request.code_verifier)
    assert info.value.hint is not None and "permission set" in info.value.hint


def test_admin_approved_app_refuses_other_users_at_authorize(sf, browser, emu):
    # ...or, when the emulator is told so, at the authorize redirect.
    emu.apps["web"].permitted_users = "admin_approved"
    emu.apps["web"].app_access_stage = "authorize"
    client = sf("web")
    request = client.authorization_url()
    with pytest.raises(InvalidAppAccessError):
        parse_authorization_response(
            login(browser, request.url), expected_state=request.state
        )


# -- User-agent ------------------------------------------------------------------------------
def test_user_agent_flow(sf, browser):
    client = sf("web")
    with pytest.warns(InsecureFlowWarning, match="PKCE"):
        request = client.user_agent_url()
    callback = login(browser, request.url)
    assert "#" in callback and "code=" not in callback
    token = client.parse_user_agent_response(callback, expected_state=request.state)
    assert token.access_token and token.org_id == DEFAULT_ORG_ID
    client.verify_signature(token)


# -- Refresh and rotation ------------------------------------------------------------------
def test_refresh_keeps_refresh_token_without_rotation(sf, browser):
    client = sf("web")
    token = web_login(client, browser)
    refreshed = client.refresh(token)
    assert refreshed.access_token != token.access_token
    assert refreshed.refresh_token == token.refresh_token
    assert refreshed.instance_url == token.instance_url
    assert (refreshed.org_id, refreshed.user_id) == (token.org_id, token.user_id)


def test_refresh_with_rotation_and_reuse_detection(sf, browser, emu):
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    client = sf("web")
    token = web_login(client, browser)
    first = client.refresh(token)
    assert first.refresh_token != token.refresh_token
    second = client.refresh(first)
    # Replaying a rotated-out token kills the whole grant (reference 4.7).
    with pytest.raises(InvalidGrantError) as info:
        client.refresh(token)
    assert info.value.description == "expired access/refresh token"
    assert info.value.hint
    assert emu.reuse_detected == 1
    with pytest.raises(InvalidGrantError):
        client.refresh(second)


def test_refresh_retries_503_then_succeeds(sf, browser, emu):
    client = sf("web")
    token = web_login(client, browser)
    emu.inject_fault(
        Fault(kind="status", status=503, count=2, grant_type="refresh_token")
    )
    refreshed = client.refresh(token)
    assert refreshed.access_token != token.access_token
    assert emu.calls("refresh_token") == 3


def test_refresh_gives_up_after_bounded_retries(sf, browser, emu):
    client = sf("web")
    token = web_login(client, browser)
    emu.inject_fault(
        Fault(kind="status", status=503, count=10, grant_type="refresh_token")
    )
    with pytest.raises(SalesforceUnavailableError):
        client.refresh(token)
    assert emu.calls("refresh_token") == 3


def test_maintenance_page_is_a_typed_error(sf, browser, emu):
    client = sf("web")
    token = web_login(client, browser)
    emu.inject_fault(Fault(kind="html", status=200, grant_type="refresh_token"))
    with pytest.raises(MalformedResponseError, match="HTML"):
        client.refresh(token)


def test_revoked_refresh_token(sf, browser):
    client = sf("web")
    token = web_login(client, browser)
    client.revoke(token)
    with pytest.raises(InvalidGrantError, match="expired access/refresh token"):
        client.refresh(token)


# -- JWT bearer ------------------------------------------------------------------------------
def test_jwt_bearer(sf, emu):
    client = sf("jwt")
    token = client.jwt_bearer()
    assert token.refresh_token is None
    assert token.user_id == DEFAULT_USER_ID
    assert emu.calls("urn:ietf:params:oauth:grant-type:jwt-bearer") == 1


def test_jwt_bearer_user_not_approved(sf, emu):
    emu.apps["jwt"].admin_approved_users.clear()
    with pytest.raises(InvalidGrantError) as info:
        sf("jwt").jwt_bearer()
    assert "pre-authorize" in (info.value.hint or "")


def test_jwt_bearer_wrong_audience(sf):
    with pytest.raises(InvalidGrantError, match="audience"):
        sf("jwt").jwt_bearer(audience="https://test.salesforce.com")


def test_jwt_bearer_uninstalled_app(sf, emu):
    emu.apps["jwt"].installed = False
    with pytest.raises(InvalidGrantError, match="not installed"):
        sf("jwt").jwt_bearer()


# -- Client credentials --------------------------------------------------------------------
def test_client_credentials(sf):
    token = sf("cc").client_credentials()
    assert token.refresh_token is None
    assert token.instance_url == "https://acme.my.salesforce.com"
    assert token.user_id and token.user_id != DEFAULT_USER_ID  # the run-as user


def test_client_credentials_refused_on_login_host_without_a_call(sf, emu):
    with pytest.raises(ConfigurationError, match="My Domain"):
        sf("cc", login_url="https://login.salesforce.com").client_credentials()
    assert emu.calls() == 0


def test_client_credentials_not_enabled(sf, emu):
    emu.apps["cc"].client_credential_user = None
    with pytest.raises(InvalidGrantError, match="no client credentials user enabled"):
        sf("cc").client_credentials()


# -- Username-password -----------------------------------------------------------------------
def test_password_flow_blocked_by_default(sf):
    with pytest.warns(InsecureFlowWarning), pytest.raises(InvalidGrantError):
        sf("web").password(
            DEFAULT_USERNAME, DEFAULT_PASSWORD, security_token=DEFAULT_SECURITY_TOKEN
        )


def test_password_flow_when_allowed(sf, emu):
    emu.org.username_password_blocked = False
    with pytest.warns(InsecureFlowWarning, match="development only"):
        token = sf("web").password(
            DEFAULT_USERNAME, DEFAULT_PASSWORD, security_token=DEFAULT_SECURITY_TOKEN
        )
    assert token.refresh_token is None and token.scopes == ()
    with warnings.catch_warnings(), pytest.raises(InvalidGrantError) as info:
        warnings.simplefilter("ignore", InsecureFlowWarning)
        sf("web").password(DEFAULT_USERNAME, "wrong")
    assert "wrong" not in str(info.value)


def test_password_flow_inactive_user(sf, emu):
    from sfoauth_emulator.constants import (
        INACTIVE_PASSWORD,
        INACTIVE_USERNAME,
    )

    emu.org.username_password_blocked = False
    with warnings.catch_warnings(), pytest.raises(InactiveUserError):
        warnings.simplefilter("ignore", InsecureFlowWarning)
        sf("web").password(INACTIVE_USERNAME, INACTIVE_PASSWORD)


# -- Device ----------------------------------------------------------------------------------
def test_device_flow(sf, emu):
    emu.apps["device"].device_interval = 1
    client = sf("device")
    device = client.start_device_flow()
    assert len(device.user_code) == 8 and device.interval == 1
    assert device.verification_uri.endswith("/setup/connect")
    assert device.device_code not in repr(device)
    emu.approve_device(device.user_code)
    token = client.poll_device_flow(device, timeout=30)
    assert token.refresh_token and token.user_id == DEFAULT_USER_ID


def test_device_flow_denied(sf, emu):
    emu.apps["device"].device_interval = 1
    client = sf("device")
    device = client.start_device_flow()
    emu.deny_device(device.user_code)
    with pytest.raises(AccessDeniedError):
        client.poll_device_flow(device, timeout=30)


def test_device_flow_expired(sf, emu):
    emu.apps["device"].device_interval = 1
    emu.apps["device"].device_code_lifetime = 0
    client = sf("device")
    device = client.start_device_flow()
    with pytest.raises(ExpiredTokenError):
        client.poll_device_flow(device, timeout=30)


# -- Asset token -----------------------------------------------------------------------------
def test_asset_token_request_and_verify(sf, emu):
    body = emu.issue_tokens(app="asset")
    client = sf("asset")
    asset = client.asset_token(
        body["access_token"], device_id="device-42", name="Thermostat 42"
    )
    assert asset.expires_in == 60
    assert asset.issued_token_type == "urn:ietf:params:oauth:token-type:jwt"
    assert pyjwt.get_unverified_header(asset.token)["alg"] == "RS256"
    audience = emu.apps["asset"].asset_token.audiences[0]
    claims = client.verify_asset_token(asset.token, audience=audience)
    assert claims["did"] == "device-42"
    tampered = asset.token[:-4] + (
        "AAAA" if not asset.token.endswith("AAAA") else "BBBB"
    )
    with pytest.raises(SignatureError):
        client.verify_asset_token(tampered, audience=audience)


# -- Token exchange with another identity provider (reference 15.8) -------------------------
def _exchange_app(emu: SalesforceEmulator, **config: Any) -> None:
    from sfoauth_core.testing import TokenExchangeConfig

    config.setdefault("subjects", {"okta-subject-1": DEFAULT_USERNAME})
    emu.apps["web"].token_exchange = TokenExchangeConfig(**config)


def test_token_exchange_maps_an_outside_token_to_a_user(sf, emu):
    _exchange_app(emu)
    client = sf("web")
    token = client.token_exchange(
        "okta-subject-1", "access_token", token_handler="ExternalIdpHandler"
    )
    assert token.user_id == DEFAULT_USER_ID and token.org_id == DEFAULT_ORG_ID
    assert token.refresh_token and token.signature
    assert client.refresh(token).access_token != token.access_token
    log = [e for e in emu.request_log if e.path.endswith("/oauth2/token")]
    assert log[0].grant_type == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert log[0].params["subject_token_type"].endswith(":access_token")


def test_token_exchange_refused_and_never_retried(sf, emu):
    _exchange_app(emu)
    client = sf("web")
    with pytest.raises(InvalidGrantError):
        client.token_exchange("forged-subject", "jwt")
    emu.inject_fault(Fault(kind="status", status=503, count=5))
    with pytest.raises(SalesforceUnavailableError):
        client.token_exchange("okta-subject-1", "id_token")
    assert emu.calls("urn:ietf:params:oauth:grant-type:token-exchange") == 2


def test_token_exchange_checks_before_sending(sf, emu):
    from sfoauth_core.exceptions import FlowError

    _exchange_app(emu)
    client = sf("web")
    with pytest.raises(FlowError, match="10,000"):
        client.token_exchange("x" * 10_001, "jwt")
    with pytest.raises(FlowError, match="subject_token_type"):
        client.token_exchange("okta-subject-1", "password")
    login_host = sf("web", login_url="https://login.salesforce.com")
    with pytest.raises(ConfigurationError, match="My Domain"):
        login_host.token_exchange("okta-subject-1", "jwt")
    assert emu.calls() == 0


def test_token_exchange_app_settings(sf, emu):
    client = sf("web")
    with pytest.raises(OAuthProtocolError, match="unsupported_grant_type"):
        client.token_exchange("okta-subject-1", "jwt")  # not enabled on the app
    _exchange_app(emu, is_secret_required=True)
    with pytest.raises(InvalidRequestError, match="token handler"):
        client.token_exchange("okta-subject-1", "jwt", token_handler="Other")
    public = sf("public", client_secret=None)
    emu.apps["public"].token_exchange = emu.apps["web"].token_exchange
    with pytest.raises(InvalidClientError):
        public.token_exchange("okta-subject-1", "jwt")  # the secret is required
    mapped = sf("web")
    _exchange_app(emu, subjects={}, map_subject=lambda t, kind: DEFAULT_USERNAME)
    assert mapped.token_exchange("anything", "jwt").user_id == DEFAULT_USER_ID


# -- Revoke, introspect, userinfo, identity, discovery ---------------------------------------
def test_introspect_userinfo_identity_and_revoke(sf, browser):
    client = sf("web")
    token = web_login(client, browser)
    info = client.introspect(token)
    assert info.active and info.client_id == client.app.client_id
    assert info.exp and info.iat and info.exp > info.iat
    assert client.introspect(token.refresh_token, hint="refresh_token").active
    claims = client.userinfo(token)
    assert claims["user_id"] == DEFAULT_USER_ID
    assert claims["organization_id"] == DEFAULT_ORG_ID
    identity = client.identity(token)
    assert identity.username == DEFAULT_USERNAME
    assert "{version}" in identity.urls["rest"]
    client.revoke(token)
    assert client.introspect(token).active is False
    with pytest.raises(InvalidTokenError):
        client.identity(token)
    with pytest.raises(InvalidTokenError):
        client.userinfo(token)
    with pytest.raises(InvalidTokenError):
        client.revoke("5AepNeverIssued")


def test_other_apps_tokens_are_not_introspectable(sf, browser, emu):
    token = web_login(sf("web"), browser)
    assert sf("cc").introspect(token).active is False
    emu.apps["cc"].is_introspect_all_tokens = True
    assert sf("cc").introspect(token).active is True


def test_discovery_and_keys(sf):
    client = sf("web")
    config = client.openid_configuration()
    assert config["issuer"] == "https://acme.my.salesforce.com"
    assert "grant_types_supported" not in config
    keys = client.keys()
    assert keys["keys"] and all(k["kty"] == "RSA" for k in keys["keys"])


# -- Transport faults ------------------------------------------------------------------------
def test_hang_past_timeout_is_a_transport_error(sf, emu):
    emu.inject_fault(
        Fault(kind="hang", count=5, path="/.well-known/openid-configuration")
    )
    client = sf("web", timeout=0.3)
    with pytest.raises(TransportError):
        client.openid_configuration()
    hits = [e for e in emu.request_log if e.path == "/.well-known/openid-configuration"]
    assert len(hits) == 3  # bounded retries, then a typed error


# -- Facade extras ---------------------------------------------------------------------------
def test_insecure_flow_warnings_point_at_the_caller(sf, emu):
    emu.org.username_password_blocked = False
    client = sf("web")
    with pytest.warns(InsecureFlowWarning) as record:
        client.user_agent_url()
    assert record[0].filename == __file__
    if client.mode == "sync":  # async warnings surface inside the event loop runner
        with pytest.warns(InsecureFlowWarning) as record:
            client.password(DEFAULT_USERNAME, DEFAULT_PASSWORD + DEFAULT_SECURITY_TOKEN)
        assert record[0].filename == __file__


def test_parse_authorization_response_on_the_client(sf, browser):
    client = sf("web")
    request = client.authorization_url()
    callback = login(browser, request.url)
    code = client.parse_authorization_response(callback, expected_state=request.state)
    assert client.exchange_code(code, code_verifier=request.code_verifier).access_token
    from sfoauth_core.exceptions import FlowError

    with pytest.raises(FlowError, match="iss"):
        client.parse_authorization_response(
            {"code": "c", "state": "s", "iss": "https://evil.example"},
            expected_state="s",
        )


def test_client_credentials_with_basic_auth(sf, emu):
    token = sf("cc").client_credentials(use_basic_auth=True)
    assert token.access_token
    entry = [e for e in emu.request_log if e.grant_type == "client_credentials"][-1]
    assert "client_secret" not in entry.params


def test_identity_with_version(sf, browser):
    client = sf("web")
    token = web_login(client, browser)
    identity = client.identity(token, version="64.0")
    assert "{version}" not in identity.urls["rest"] and "64.0" in identity.urls["rest"]


# -- ID token --------------------------------------------------------------------------------
def test_verify_id_token(sf, browser):
    from sfoauth_core.exceptions import FlowError

    client = sf("web")
    request = client.authorization_url()
    assert request.nonce  # openid is among the app's scopes
    code = client.parse_authorization_response(
        login(browser, request.url), expected_state=request.state
    )
    token = client.exchange_code(code, code_verifier=request.code_verifier)
    claims = client.verify_id_token(token, nonce=request.nonce)
    assert claims["aud"] == client.app.client_id
    assert claims["sub"] == token.id_url
    with pytest.raises(SignatureError, match="nonce"):
        client.verify_id_token(token, nonce="another-login")
    import dataclasses

    forged = dataclasses.replace(token, id_token=token.id_token[:-6] + "AAAAAA")
    with pytest.raises(SignatureError):
        client.verify_id_token(forged)
    with pytest.raises(FlowError, match="openid"):
        client.verify_id_token(dataclasses.replace(token, id_token=None))
