"""``login_urls`` and ``?domain=``: a sandbox login through an app configured for
production keeps working after its first refresh, and is revoked at the sandbox
(issue 11.2). The emulator, like Salesforce, does not know a sandbox grant at
``login.salesforce.com``."""

from typing import Any

import pytest
from support.fastapi import CALLBACK, SECRET_KEY, authorize, make_api

from sfoauth_core.storage import AsyncInMemoryTokenStore
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_fastapi import SFOAuth, SFOAuthConfigurationError

pytestmark = pytest.mark.anyio

SANDBOX = "https://test.salesforce.com"
SANDBOX_USER = "bob@beta.com.dev"


@pytest.fixture
def sandbox_emu(emu: SalesforceEmulator) -> SalesforceEmulator:
    emu.add_org("beta", org_id="00DXX0000002xyz", sandbox_name="dev")
    emu.add_user(SANDBOX_USER, "pw", user_id="005XX0000002bob", org="beta")
    emu.auto_approve = SANDBOX_USER
    return emu


def make_sandbox_sf(emu: SalesforceEmulator, **kwargs: Any) -> SFOAuth:
    config = emu.connected_app(
        "web", redirect_uri=CALLBACK, login_url="https://login.salesforce.com"
    )
    return SFOAuth(
        config,
        store=AsyncInMemoryTokenStore(),
        secret_key=SECRET_KEY,
        cookie_secure=False,
        transport=emu.async_transport(),
        login_urls={"sandbox": SANDBOX},
        **kwargs,
    )


def hosts_of(emu: SalesforceEmulator, path: str) -> list[str]:
    return [e.host for e in emu.request_log if e.path == path]


async def test_a_sandbox_login_survives_refresh_and_is_revoked_there(
    sandbox_emu: SalesforceEmulator, browser_factory: Any
) -> None:
    emu = sandbox_emu
    sf = make_sandbox_sf(emu)
    browser = browser_factory(make_api(sf))
    login = await browser.post(
        "/salesforce/login", data={"next": "/me", "domain": "sandbox"}
    )
    assert login.headers["location"].startswith(SANDBOX + "/services/oauth2/authorize")
    answer = await browser.get(await authorize(emu, login))
    assert answer.status_code == 303, answer.text
    me = await browser.get("/me")
    assert me.json()["status"] == 200
    assert me.json()["org"] == emu.orgs["beta"].org_id
    [record] = [r async for r in _records(sf)]
    assert record.token.token_url == SANDBOX + "/services/oauth2/token"

    emu.expire_access_tokens()
    me = await browser.get("/me")
    assert me.status_code == 200, me.text
    assert me.json()["status"] == 200
    assert emu.calls("refresh_token") == 1
    assert hosts_of(emu, "/services/oauth2/token") == ["test.salesforce.com"] * 2

    out = await browser.post("/salesforce/disconnect")
    assert out.status_code in (204, 303)
    assert hosts_of(emu, "/services/oauth2/revoke") == ["test.salesforce.com"]
    assert [r.status for r in emu.state.refresh_tokens.values()] == [
        "rotated",
        "revoked",
    ]


async def _records(sf: SFOAuth) -> Any:
    store: Any = sf.store
    for key in list(store._records):
        record = await sf.store.get(key)
        if record is not None:
            yield record


async def test_the_login_page_carries_the_domain_to_its_form(
    sandbox_emu: SalesforceEmulator, browser_factory: Any
) -> None:
    browser = browser_factory(make_api(make_sandbox_sf(sandbox_emu)))
    page = await browser.get("/salesforce/login", params={"domain": "sandbox"})
    assert '<input type="hidden" name="domain" value="sandbox">' in page.text


async def test_an_unknown_domain_is_refused(
    sandbox_emu: SalesforceEmulator, browser_factory: Any
) -> None:
    browser = browser_factory(make_api(make_sandbox_sf(sandbox_emu)))
    answer = await browser.post("/salesforce/login", data={"domain": "elsewhere"})
    assert answer.status_code == 400
    assert sandbox_emu.request_log == []


def test_an_unusable_login_url_is_a_configuration_error(
    sandbox_emu: SalesforceEmulator,
) -> None:
    config = sandbox_emu.connected_app("web", redirect_uri=CALLBACK)
    with pytest.raises(SFOAuthConfigurationError) as caught:
        SFOAuth(
            config,
            store=AsyncInMemoryTokenStore(),
            secret_key=SECRET_KEY,
            login_urls={"evil": "https://evil.example.com"},
        )
    assert "sfoauth_fastapi.E011" in str(caught.value)
    assert "login_urls['evil']" in str(caught.value)
