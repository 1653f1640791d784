"""The same protocol checks against the emulator (always) and a real org (opt-in).

Every test runs twice: on the emulator, and on a Salesforce org when you opt in. The
live run is how the emulator's fidelity is checked against the real thing: the same
assertions must hold on both. Nothing here reaches the network unless you set:

- ``SFOAUTH_LIVE=1``
- the ``SFOAUTH_LIVE_*`` variables of ``ConnectedApp.from_env(prefix="SFOAUTH_LIVE_")``
  for a connected app (or External Client App) with the JWT bearer flow enabled and the
  user pre-authorized: ``CLIENT_ID``, ``LOGIN_URL`` (the org's My Domain, or
  ``https://login.salesforce.com`` / ``https://test.salesforce.com``), ``USERNAME``,
  ``PRIVATE_KEY_FILE``; and ``CLIENT_SECRET`` for the introspection checks.

Each live test mints its own token and revokes what it revoked on purpose only; run:
``SFOAUTH_LIVE=1 SFOAUTH_LIVE_CLIENT_ID=... .venv/bin/pytest tests/live -rs``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from sfoauth_core import ConnectedApp, SalesforceOAuth, Token
from sfoauth_core.exceptions import InvalidGrantError, OAuthProtocolError
from sfoauth_core.hosts import is_salesforce_host
from sfoauth_core.testing import DEFAULT_USERNAME, SalesforceEmulator

LIVE_OPT_IN = "SFOAUTH_LIVE"
LIVE_PREFIX = "SFOAUTH_LIVE_"
API_VERSION = "v62.0"
SF_ID = re.compile(r"^[a-zA-Z0-9]{18}$")
TOKEN_PATH = "/services/oauth2/token"


@dataclass
class Target:
    """One authorization server to check: the emulator or a real org."""

    name: str
    app: ConnectedApp
    oauth: SalesforceOAuth
    http: httpx.Client  # raw calls, same transport as ``oauth``

    def mint(self) -> Token:
        return self.oauth.jwt_bearer()


def _emulator_target() -> Iterator[Target]:
    emu = SalesforceEmulator()
    app = emu.connected_app("jwt")
    with httpx.Client(transport=emu.transport()) as http:
        yield Target("emulator", app, SalesforceOAuth(app, http_client=http), http)


def _env_target(name: str, environ: Mapping[str, str]) -> Iterator[Target]:
    # The live code path: configuration from variables, a plain httpx client over TCP.
    app = ConnectedApp.from_env(prefix=LIVE_PREFIX, environ=environ)
    with httpx.Client(timeout=app.timeout, follow_redirects=False) as http:
        yield Target(name, app, SalesforceOAuth(app, http_client=http), http)


def _loopback_target(tmp_path: Path) -> Iterator[Target]:
    # The live path against the emulator served on a loopback port, so that the opt-in
    # run is not a path that never ran.
    emu = SalesforceEmulator()
    key_file = tmp_path / "server.key"
    key_file.write_text(emu.apps["jwt"].private_key_pem or "")
    with emu.serve() as base:
        environ = {
            LIVE_PREFIX + "CLIENT_ID": emu.apps["jwt"].client_id,
            LIVE_PREFIX + "CLIENT_SECRET": emu.apps["jwt"].client_secret or "",
            LIVE_PREFIX + "LOGIN_URL": base,
            LIVE_PREFIX + "USERNAME": DEFAULT_USERNAME,
            LIVE_PREFIX + "PRIVATE_KEY_FILE": str(key_file),
            LIVE_PREFIX + "ALLOW_LOOPBACK": "true",
        }
        yield from _env_target("emulator-over-loopback", environ)


def _live_target() -> Iterator[Target]:
    if os.environ.get(LIVE_OPT_IN) != "1":
        pytest.skip(
            f"live Salesforce checks are opt-in: set {LIVE_OPT_IN}=1 and "
            f"{LIVE_PREFIX}CLIENT_ID, {LIVE_PREFIX}LOGIN_URL, {LIVE_PREFIX}USERNAME, "
            f"{LIVE_PREFIX}PRIVATE_KEY_FILE (see this module's docstring)"
        )
    yield from _env_target("live", os.environ)


@pytest.fixture(params=["emulator", "emulator-over-loopback", "live"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "emulator":
        yield from _emulator_target()
    elif request.param == "emulator-over-loopback":
        yield from _loopback_target(tmp_path)
    else:
        yield from _live_target()


def _login_base(target: Target) -> str:
    return target.app.login_url.rstrip("/")


# -------------------------------------------------------------------- token response
def test_jwt_bearer_token_shape(target: Target) -> None:
    token = target.mint()
    assert token.token_type == "Bearer"
    assert token.refresh_token is None  # never for JWT bearer (ref 4.5)
    assert token.expires_at is None  # Salesforce sends no expires_in (ref 2.2)
    assert token.org_id and SF_ID.match(token.org_id)
    assert token.user_id and SF_ID.match(token.user_id)
    assert token.access_token.startswith(token.org_id[:15] + "!")
    instance = urlsplit(token.instance_url or "")
    if target.name == "emulator-over-loopback":
        assert token.instance_url == _login_base(target)
    else:
        assert instance.scheme == "https"
        assert is_salesforce_host(instance.hostname or "")
    # id is https://<the host that handled the login>/id/<org>/<user> (ref 2.2).
    assert token.id_url == f"{_login_base(target)}/id/{token.org_id}/{token.user_id}"
    # issued_at is epoch milliseconds as a string on the wire (ref 2.2).
    assert re.fullmatch(r"\d{13}", str(token.raw.get("issued_at", "")))


# ------------------------------------------------------------- userinfo and identity
def test_userinfo_describes_the_token_owner(target: Target) -> None:
    token = target.mint()
    info = target.oauth.userinfo(token)
    for field in ("sub", "user_id", "organization_id", "preferred_username", "urls"):
        assert field in info, field
    assert info["user_id"] == token.user_id
    assert info["organization_id"] == token.org_id
    assert info["sub"].endswith(f"/id/{token.org_id}/{token.user_id}")


def test_identity_urls_keep_the_version_placeholder(target: Target) -> None:
    token = target.mint()
    identity = target.oauth.identity(token)
    assert identity.user_id == token.user_id
    assert identity.organization_id == token.org_id
    assert "{version}" in identity.urls["rest"]
    versioned = target.oauth.identity(token, version="62.0")
    assert "{version}" not in versioned.urls["rest"]
    assert "62.0" in versioned.urls["rest"]


# ------------------------------------------------------------------ discovery, keys
def test_discovery_document_and_keys(target: Target) -> None:
    base = _login_base(target)
    doc = target.http.get(base + "/.well-known/openid-configuration")
    assert doc.status_code == 200
    config = doc.json()
    assert config["issuer"].rstrip("/") == base
    assert config["token_endpoint"] == base + TOKEN_PATH
    assert config["jwks_uri"] == base + "/id/keys"
    assert "RS256" in config["id_token_signing_alg_values_supported"]
    keys = target.http.get(config["jwks_uri"]).json()["keys"]
    assert keys and all(k["kty"] == "RSA" and k["alg"] == "RS256" for k in keys)
    # ID tokens are signed by a key with a numeric-string kid (ref 2.4, 9).
    assert any(str(k["kid"]).isdigit() for k in keys)


# --------------------------------------------------------------- resource and revoke
def test_revoked_token_gets_invalid_session_id(target: Target) -> None:
    token = target.mint()
    url = f"{token.instance_url}/services/data/{API_VERSION}/"
    bearer = {"Authorization": f"Bearer {token.access_token}"}
    assert target.http.get(url, headers=bearer).status_code == 200
    target.oauth.revoke(token)
    after = target.http.get(url, headers=bearer)
    assert after.status_code == 401
    body = after.json()
    assert isinstance(body, list) and body[0]["errorCode"] == "INVALID_SESSION_ID"


def test_introspection_active_then_inactive(target: Target) -> None:
    if not target.app.client_secret:
        pytest.skip(f"{LIVE_PREFIX}CLIENT_SECRET is not set: introspection needs it")
    token = target.mint()
    found = target.oauth.introspect(token)
    assert found.active and found.client_id == target.app.client_id
    assert found.exp is not None and found.iat is not None and found.exp > found.iat
    target.oauth.revoke(token)
    assert target.oauth.introspect(token).active is False


# ------------------------------------------------------------------------ errors
def test_unknown_refresh_token_is_invalid_grant(target: Target) -> None:
    with pytest.raises(InvalidGrantError) as caught:
        target.oauth.refresh("5Aep861NotARealRefreshTokenForAnyone")
    assert caught.value.error == "invalid_grant"
    assert caught.value.status_code == 400


def test_token_endpoint_error_bodies(target: Target) -> None:
    url = _login_base(target) + TOKEN_PATH
    unsupported = target.http.post(url, data={"grant_type": "not_a_grant"})
    assert unsupported.status_code == 400
    assert unsupported.headers["content-type"].startswith("application/json")
    assert unsupported.json() == {
        "error": "unsupported_grant_type",
        "error_description": "grant type not supported",
    }
    unknown_client = target.http.post(
        url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": "5Aep861NotARealRefreshTokenForAnyone",
            "client_id": "3MVG9NotARealConsumerKeyForAnyApp",
        },
    )
    assert unknown_client.status_code == 400
    assert unknown_client.json() == {
        "error": "invalid_client_id",
        "error_description": "client identifier invalid",
    }


def test_protocol_errors_carry_the_wire_fields(target: Target) -> None:
    wrong_user = target.app.username or ""
    with pytest.raises(OAuthProtocolError) as caught:
        target.oauth.jwt_bearer(username="no-such-user-" + wrong_user)
    assert caught.value.error == "invalid_grant"
    assert caught.value.description  # Salesforce always says why
