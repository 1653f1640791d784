"""Tokens are bound to their org and the host family that issued them (issue 11.2).

Production and sandboxes are separate services at Salesforce: a sandbox grant is
unknown to login.salesforce.com, a production grant to test.salesforce.com, and a site
login's grant lives on its site. The emulator answers a token sent to a host outside
its family as that host would answer an unknown token, and nothing happens to the
grant. ``host_binding = "off"`` serves every token everywhere.
"""

from __future__ import annotations

import httpx
import pytest
from support.emulator import LOGIN, MY_DOMAIN, TOKEN, assert_error, web_params

from sfoauth_core.testing import SalesforceEmulator

pytestmark = pytest.mark.anyio

SANDBOX_LOGIN = "https://test.salesforce.com"
SANDBOX_MY_DOMAIN = "https://beta--dev.sandbox.my.salesforce.com"
SANDBOX_USER = "bob@beta.com.dev"
EXPIRED = "expired access/refresh token"


@pytest.fixture
def sandbox(emu: SalesforceEmulator) -> SalesforceEmulator:
    emu.add_org("beta", org_id="00DXX0000002xyz", sandbox_name="dev")
    emu.add_user(SANDBOX_USER, "pw", user_id="005XX0000002bob", org="beta")
    return emu


def _refresh(emu: SalesforceEmulator, refresh_token: str) -> dict[str, str]:
    return web_params(emu, grant_type="refresh_token", refresh_token=refresh_token)


async def test_a_sandbox_grant_refreshes_on_its_hosts_only(
    sandbox: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = sandbox.issue_tokens(user=SANDBOX_USER, issuer=SANDBOX_LOGIN)
    form = _refresh(sandbox, tokens["refresh_token"])
    for wrong in (LOGIN, MY_DOMAIN):
        assert_error(
            await client.post(wrong + TOKEN, data=form), "invalid_grant", EXPIRED
        )
    for right in (SANDBOX_LOGIN, SANDBOX_MY_DOMAIN):
        answer = await client.post(right + TOKEN, data=form)
        assert answer.status_code == 200, answer.text
        assert answer.json()["instance_url"] == SANDBOX_MY_DOMAIN


async def test_a_production_grant_is_unknown_to_the_sandbox_hosts(
    sandbox: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = sandbox.issue_tokens()
    form = _refresh(sandbox, tokens["refresh_token"])
    for wrong in (SANDBOX_LOGIN, SANDBOX_MY_DOMAIN):
        assert_error(
            await client.post(wrong + TOKEN, data=form), "invalid_grant", EXPIRED
        )
    for right in (LOGIN, MY_DOMAIN):
        assert (await client.post(right + TOKEN, data=form)).status_code == 200


async def test_a_wrong_host_neither_revokes_nor_detects_reuse(
    sandbox: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    sandbox.apps["web"].is_refresh_token_rotation_enabled = True
    tokens = sandbox.issue_tokens(user=SANDBOX_USER, issuer=SANDBOX_LOGIN)
    form = _refresh(sandbox, tokens["refresh_token"])
    rotated = (await client.post(SANDBOX_LOGIN + TOKEN, data=form)).json()
    # The rotated-out token replayed at production: unknown there, no reuse detection.
    assert_error(await client.post(LOGIN + TOKEN, data=form), "invalid_grant")
    assert sandbox.reuse_detected == 0
    again = _refresh(sandbox, rotated["refresh_token"])
    assert (await client.post(SANDBOX_LOGIN + TOKEN, data=again)).status_code == 200


async def test_revoke_introspect_and_userinfo_of_another_environment(
    sandbox: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = sandbox.issue_tokens(user=SANDBOX_USER, issuer=SANDBOX_LOGIN)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    introspection = web_params(sandbox, token=tokens["refresh_token"])

    answer = await client.post(
        LOGIN + "/services/oauth2/introspect", data=introspection
    )
    assert answer.json() == {"active": False}
    answer = await client.get(LOGIN + "/services/oauth2/userinfo", headers=bearer)
    assert answer.status_code == 401
    answer = await client.post(
        LOGIN + "/services/oauth2/revoke", data={"token": tokens["refresh_token"]}
    )
    assert_error(answer, "invalid_token")

    # Still alive on its own hosts.
    answer = await client.post(
        SANDBOX_LOGIN + "/services/oauth2/introspect", data=introspection
    )
    assert answer.json()["active"] is True
    answer = await client.get(
        SANDBOX_MY_DOMAIN + "/services/oauth2/userinfo", headers=bearer
    )
    assert answer.status_code == 200
    answer = await client.post(
        SANDBOX_LOGIN + "/services/oauth2/revoke",
        data={"token": tokens["refresh_token"]},
    )
    assert answer.status_code == 200


async def test_a_site_grant_lives_on_its_site(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    site = emu.org.site_url
    tokens = emu.issue_tokens(issuer=site)
    form = _refresh(emu, tokens["refresh_token"])
    for wrong in (LOGIN, MY_DOMAIN):
        assert_error(await client.post(wrong + TOKEN, data=form), "invalid_grant")
    answer = await client.post(site + TOKEN, data=form)
    assert answer.status_code == 200, answer.text


async def test_host_binding_off_serves_every_token_everywhere(
    sandbox: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    sandbox.host_binding = "off"
    tokens = sandbox.issue_tokens(user=SANDBOX_USER, issuer=SANDBOX_LOGIN)
    form = _refresh(sandbox, tokens["refresh_token"])
    assert (await client.post(LOGIN + TOKEN, data=form)).status_code == 200
    with pytest.raises(ValueError):
        sandbox.host_binding = "loose"  # type: ignore[assignment]


def test_a_loopback_name_can_serve_a_sandbox(sandbox: SalesforceEmulator) -> None:
    """``loopback_hosts``: over a real port, ``localhost`` is the sandbox's login host
    and My Domain while ``127.0.0.1`` stays the production org's."""
    sandbox.loopback_hosts = {"localhost": "beta"}
    with pytest.raises(ValueError):
        sandbox.loopback_hosts = {"localhost": "nope"}
    with sandbox.serve() as base_url:
        port = base_url.rsplit(":", 1)[1]
        sandbox_url = f"http://localhost:{port}"
        tokens = sandbox.issue_tokens(user=SANDBOX_USER, issuer=sandbox_url)
        form = _refresh(sandbox, tokens["refresh_token"])
        with httpx.Client() as http:
            assert_error(http.post(base_url + TOKEN, data=form), "invalid_grant")
            answer = http.post(sandbox_url + TOKEN, data=form)
            assert answer.status_code == 200, answer.text
