"""A stored grant remembers its authorization server (issue 11.2).

The app is configured for production (``login.salesforce.com``); one user logs in to a
sandbox at ``test.salesforce.com`` (Django's ``LOGIN_URLS`` / ``?domain=``, FastAPI's
``login_urls``). Every later call for that grant (refresh, revoke, introspect,
userinfo) must go to the sandbox host: the emulator, like Salesforce, does not know a
sandbox grant at ``login.salesforce.com``.
"""

from __future__ import annotations

import json

import httpx
import pytest

from sfoauth_core.exceptions import UntrustedHostError
from sfoauth_core.flows._base import grant_endpoints
from sfoauth_core.flows.pkce import create_code_verifier, create_s256_challenge
from sfoauth_core.flows.web_server import parse_authorization_response
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import AsyncTokenManager, TokenManager
from sfoauth_core.storage import AsyncInMemoryTokenStore, InMemoryTokenStore
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_core.tokens import Token

PRODUCTION = "https://login.salesforce.com"
SANDBOX = "https://test.salesforce.com"
SANDBOX_TOKEN_URL = SANDBOX + "/services/oauth2/token"
SANDBOX_USER = "bob@beta.com.dev"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emu() -> SalesforceEmulator:
    emulator = SalesforceEmulator()
    emulator.add_org("beta", org_id="00DXX0000002xyz", sandbox_name="dev")
    emulator.add_user(SANDBOX_USER, "pw", user_id="005XX0000002bob", org="beta")
    emulator.apps["web"].is_refresh_token_rotation_enabled = True
    return emulator


def sandbox_login(emu: SalesforceEmulator, oauth: SalesforceOAuth) -> Token:
    """The web server flow at the sandbox host, as the adapters run it: the app with
    the login URL the user picked, for the authorize URL and the code exchange."""
    picked = SalesforceOAuth(
        oauth.app.replace(login_url=SANDBOX), http_client=oauth.http_client
    )
    verifier = create_code_verifier()
    challenge = create_s256_challenge(verifier)
    callback = emu.authorize(
        user=SANDBOX_USER, host=SANDBOX, state="s", code_challenge=challenge
    )
    code = parse_authorization_response(callback, expected_state="s")
    return picked.exchange_code(code, code_verifier=verifier)


def paths_at(emu: SalesforceEmulator, path: str) -> list[str]:
    return [e.host for e in emu.request_log if e.path == path]


def test_the_exchange_records_the_sandbox_token_url(emu: SalesforceEmulator) -> None:
    oauth = SalesforceOAuth(
        emu.connected_app(login_url=PRODUCTION),
        http_client=httpx.Client(transport=emu.transport()),
    )
    token = sandbox_login(emu, oauth)
    assert token.token_url == SANDBOX_TOKEN_URL
    assert Token.from_dict(json.loads(json.dumps(token.to_dict()))) == token


def test_refresh_revoke_introspect_userinfo_go_to_the_sandbox(
    emu: SalesforceEmulator,
) -> None:
    oauth = SalesforceOAuth(
        emu.connected_app(login_url=PRODUCTION),
        http_client=httpx.Client(transport=emu.transport()),
    )
    token = sandbox_login(emu, oauth)
    refreshed = oauth.refresh(token)
    assert refreshed.token_url == SANDBOX_TOKEN_URL
    assert refreshed.refresh_token and refreshed.refresh_token != token.refresh_token
    assert oauth.introspect(refreshed).active
    assert oauth.userinfo(refreshed)["preferred_username"] == SANDBOX_USER
    oauth.revoke(refreshed)
    assert not oauth.introspect(refreshed, hint="refresh_token").active
    hosts = {e.host for e in emu.request_log if e.path.startswith("/services/oauth2")}
    assert hosts == {"test.salesforce.com"}


@pytest.mark.parametrize(
    ("login_url", "user"),
    [
        (SANDBOX, SANDBOX_USER),
        ("https://beta--dev.sandbox.my.salesforce.com", SANDBOX_USER),
        ("https://acme.my.site.com/customers", "jane@acme.com"),
    ],
    ids=["sandbox", "sandbox-my-domain", "site"],
)
def test_every_login_host_keeps_its_grant_after_refresh(
    emu: SalesforceEmulator, login_url: str, user: str
) -> None:
    http = httpx.Client(transport=emu.transport())
    oauth = SalesforceOAuth(emu.connected_app(login_url=PRODUCTION), http_client=http)
    picked = SalesforceOAuth(oauth.app.replace(login_url=login_url), http_client=http)
    verifier = create_code_verifier()
    callback = emu.authorize(
        user=user,
        host=login_url,
        state="s",
        code_challenge=create_s256_challenge(verifier),
    )
    code = parse_authorization_response(callback, expected_state="s")
    token = picked.exchange_code(code, code_verifier=verifier)
    assert token.token_url == login_url + "/services/oauth2/token"
    for _ in range(2):
        token = oauth.refresh(token)
    assert token.token_url == login_url + "/services/oauth2/token"
    assert oauth.introspect(token).active
    oauth.revoke(token)
    assert not oauth.introspect(token, hint="refresh_token").active


def test_the_manager_renews_and_disconnects_at_the_sandbox(
    emu: SalesforceEmulator,
) -> None:
    oauth = SalesforceOAuth(
        emu.connected_app(login_url=PRODUCTION),
        http_client=httpx.Client(transport=emu.transport()),
    )
    manager = TokenManager(oauth, InMemoryTokenStore())
    token = sandbox_login(emu, oauth)
    manager.save("bob", token)
    emu.expire_access_tokens()
    renewed = manager.refresh("bob", stale=token.access_token)
    assert renewed.access_token != token.access_token
    assert renewed.token_url == SANDBOX_TOKEN_URL
    assert manager.get("bob").token_url == SANDBOX_TOKEN_URL
    assert manager.revoke("bob") is True
    assert paths_at(emu, "/services/oauth2/revoke") == ["test.salesforce.com"]
    assert paths_at(emu, "/services/oauth2/token")[-1] == "test.salesforce.com"


@pytest.mark.anyio
async def test_the_async_manager_renews_at_the_sandbox(
    emu: SalesforceEmulator,
) -> None:
    sync_oauth = SalesforceOAuth(
        emu.connected_app(login_url=PRODUCTION),
        http_client=httpx.Client(transport=emu.transport()),
    )
    token = sandbox_login(emu, sync_oauth)
    async with httpx.AsyncClient(transport=emu.async_transport()) as http:
        oauth = AsyncSalesforceOAuth(sync_oauth.app, http_client=http)
        manager = AsyncTokenManager(oauth, AsyncInMemoryTokenStore())
        await manager.save("bob", token)
        emu.expire_access_tokens()
        renewed = await manager.refresh("bob", stale=token.access_token)
        assert renewed.token_url == SANDBOX_TOKEN_URL
        assert await manager.revoke("bob") is True
    assert paths_at(emu, "/services/oauth2/revoke") == ["test.salesforce.com"]


def test_an_old_token_without_token_url_uses_the_app_login_url(
    emu: SalesforceEmulator,
) -> None:
    oauth = SalesforceOAuth(
        emu.connected_app(login_url=PRODUCTION),
        http_client=httpx.Client(transport=emu.transport()),
    )
    stored = Token.from_response(emu.issue_tokens()).to_dict()
    del stored["token_url"]
    old = Token.from_dict(stored)
    assert old.token_url is None
    refreshed = oauth.refresh(old)
    assert refreshed.token_url == PRODUCTION + "/services/oauth2/token"
    assert paths_at(emu, "/services/oauth2/token") == ["login.salesforce.com"]


@pytest.mark.parametrize(
    "token_url",
    [
        "https://evil.example.com/services/oauth2/token",
        "https://salesforce.com.evil.example/services/oauth2/token",
        "http://test.salesforce.com/services/oauth2/token",
        "https://user@test.salesforce.com/services/oauth2/token",
        "https://test.salesforce.com/services/oauth2/token?x=1",
        "https://test.salesforce.com/somewhere/else",
        "http://127.0.0.1:9/services/oauth2/token",
    ],
)
def test_a_tampered_token_url_never_receives_a_token(
    emu: SalesforceEmulator, token_url: str
) -> None:
    app = emu.connected_app(login_url=PRODUCTION)
    token = Token.from_response(emu.issue_tokens(), token_url=token_url)
    with pytest.raises(UntrustedHostError) as caught:
        grant_endpoints(app, token)
    assert "5Aep" not in str(caught.value)
    oauth = SalesforceOAuth(app, http_client=httpx.Client(transport=emu.transport()))
    for call in (oauth.refresh, oauth.revoke, oauth.introspect, oauth.userinfo):
        with pytest.raises(UntrustedHostError):
            call(token)
    assert emu.request_log == []


def test_loopback_token_url_only_when_the_app_allows_loopback(
    emu: SalesforceEmulator,
) -> None:
    url = "http://127.0.0.1:8999/services/oauth2/token"
    token = Token.from_response(emu.issue_tokens(), token_url=url)
    app = emu.connected_app(login_url="http://127.0.0.1:8999", allow_loopback=True)
    assert grant_endpoints(app, token).revoke == (
        "http://127.0.0.1:8999/services/oauth2/revoke"
    )
    site = "https://acme.my.site.com/customers/services/oauth2/token"
    site_token = Token.from_response(emu.issue_tokens(), token_url=site)
    assert grant_endpoints(app, site_token).introspect == (
        "https://acme.my.site.com/customers/services/oauth2/introspect"
    )
