"""requests-oauthlib against the served emulator, as its docs show: web flow (with
PKCE) and refresh. Also its documented limits, which hold against Salesforce too:
it refuses plain http unless ``OAUTHLIB_INSECURE_TRANSPORT`` is set, and its automatic
refresh needs an expiry, which Salesforce never sends."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from oauthlib.oauth2 import InsecureTransportError
from requests_oauthlib import OAuth2Session

from sfoauth_core.testing import DEFAULT_USERNAME, EmulatorTLS, SalesforceEmulator

from .conftest import Served

pytestmark = pytest.mark.loopback

SCOPE = ["api", "refresh_token", "openid"]


@pytest.fixture
def insecure_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator on a loopback port speaks http: tell oauthlib so (its docs' way)."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def sessions() -> Iterator[list[OAuth2Session]]:
    made: list[OAuth2Session] = []
    yield made
    for session in made:
        session.close()


def browser(url: str, verify: ssl.SSLContext | bool = True) -> str:
    response = httpx.get(url, follow_redirects=False, verify=verify)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def login(
    served: Served,
    sessions: list[OAuth2Session],
    verify: ssl.SSLContext | bool = True,
    **extra: Any,
) -> OAuth2Session:
    app = served.emu.apps["web"]
    session = OAuth2Session(
        app.client_id,
        redirect_uri=app.callback_urls[0],
        scope=SCOPE,
        pkce="S256",
        **extra,
    )
    sessions.append(session)
    url, _state = session.authorization_url(
        served.base_url + "/services/oauth2/authorize"
    )
    session.fetch_token(
        served.base_url + "/services/oauth2/token",
        client_secret=app.client_secret,
        authorization_response=browser(url, verify),
        include_client_id=True,
    )
    return session


def test_http_is_refused_unless_told(
    served: Served, sessions: list[OAuth2Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    with pytest.raises(InsecureTransportError):
        login(served, sessions)
    assert served.emu.request_log == []  # nothing was sent over http


def test_web_flow_over_https_needs_no_insecure_flag(
    sessions: list[OAuth2Session], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The other way around the http limit: ``sfoauth emulator --tls``."""
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    tls = EmulatorTLS.create(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_file))
    emu = SalesforceEmulator()
    emu.auto_approve = DEFAULT_USERNAME
    with emu.serve(tls=tls) as base_url:
        session = login(Served(emu, base_url), sessions, tls.ssl_context())
        assert session.token["instance_url"] == base_url
        assert base_url.startswith("https://")
        for made in sessions:
            made.close()


@pytest.mark.usefixtures("insecure_transport")
def test_web_flow(served: Served, sessions: list[OAuth2Session]) -> None:
    session = login(served, sessions)
    assert session.token["access_token"] and session.token["refresh_token"]
    assert session.token["instance_url"] == served.base_url
    authorize = served.logged(lambda e: e.path == "/services/oauth2/authorize")
    assert authorize.params["code_challenge"]  # pkce="S256"
    limits = session.get(served.base_url + "/services/data/v62.0/limits")
    assert limits.status_code == 200


@pytest.mark.usefixtures("insecure_transport")
def test_refresh(served: Served, sessions: list[OAuth2Session]) -> None:
    session = login(served, sessions)
    app = served.emu.apps["web"]
    first = session.token["access_token"]
    token = session.refresh_token(
        served.base_url + "/services/oauth2/token",
        client_id=app.client_id,
        client_secret=app.client_secret,
    )
    assert token["access_token"] != first
    # Salesforce answers no refresh_token on refresh; requests-oauthlib keeps the old.
    assert token["refresh_token"] == session.token["refresh_token"]
    assert served.emu.calls("refresh_token") == 1
    assert session.get(served.base_url + "/services/data/v62.0/").status_code == 200


@pytest.mark.usefixtures("insecure_transport")
def test_no_automatic_refresh_without_an_expiry(
    served: Served, sessions: list[OAuth2Session]
) -> None:
    app = served.emu.apps["web"]
    updates: list[dict[str, Any]] = []
    session = login(
        served,
        sessions,
        auto_refresh_url=served.base_url + "/services/oauth2/token",
        auto_refresh_kwargs={
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
        token_updater=updates.append,
    )
    assert "expires_in" not in session.token and "expires_at" not in session.token
    served.emu.expire_access_tokens()
    expired = session.get(served.base_url + "/services/data/v62.0/limits")
    assert expired.status_code == 401 and updates == []
    assert expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    # The documented way: refresh on 401 INVALID_SESSION_ID, then retry.
    session.refresh_token(
        served.base_url + "/services/oauth2/token", **session.auto_refresh_kwargs
    )
    assert (
        session.get(served.base_url + "/services/data/v62.0/limits").status_code == 200
    )
