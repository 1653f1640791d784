"""Refresh flow, rotation and reuse detection (reference 4.7, 13 items 17-18)."""

from __future__ import annotations

import httpx
import pytest
from support.emulator import MY_DOMAIN, TOKEN, assert_error, web_params

from sfoauth_core.testing import SalesforceEmulator

pytestmark = pytest.mark.anyio

EXPIRED = "expired access/refresh token"


async def rest_status(client: httpx.AsyncClient, access_token: str) -> int:
    r = await client.get(
        f"{MY_DOMAIN}/services/data/v62.0/",
        headers={"Authorization": f"Bearer {access_token}"},
    )
    return r.status_code


async def test_refresh_without_rotation(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = emu.issue_tokens()
    data = web_params(
        emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    data["redirect_uri"] = "ignored"  # iOS SDK sends it; unknown params are ignored
    r = await client.post(TOKEN, data=data)
    body = r.json()
    assert r.status_code == 200
    assert set(body) == {
        "access_token",
        "signature",
        "scope",
        "id_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    }
    assert body["access_token"] != tokens["access_token"]
    assert (await client.post(TOKEN, data=data)).status_code == 200
    assert emu.calls("refresh_token") == 2


async def test_refresh_secret_rules(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = emu.issue_tokens()
    data = web_params(
        emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    del data["client_secret"]
    assert_error(
        await client.post(TOKEN, data=data),
        "invalid_client",
        "invalid client credentials",
    )
    emu.apps["web"].is_secret_required_for_refresh_token = False
    assert (await client.post(TOKEN, data=data)).status_code == 200
    assert_error(
        await client.post(TOKEN, data={**data, "client_secret": "bad"}),
        "invalid_client",
    )
    assert_error(
        await client.post(TOKEN, data={**data, "refresh_token": "5AepUnknown"}),
        "invalid_grant",
        EXPIRED,
    )


async def test_rotation_and_reuse_detection(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    first = emu.issue_tokens()
    r1 = (
        await client.post(
            TOKEN,
            data=web_params(
                emu, grant_type="refresh_token", refresh_token=first["refresh_token"]
            ),
        )
    ).json()
    assert r1["refresh_token"] != first["refresh_token"]
    r2 = (
        await client.post(
            TOKEN,
            data=web_params(
                emu, grant_type="refresh_token", refresh_token=r1["refresh_token"]
            ),
        )
    ).json()
    assert await rest_status(client, r2["access_token"]) == 200
    # Replaying a rotated-out token kills the whole family.
    replay = web_params(
        emu, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert_error(await client.post(TOKEN, data=replay), "invalid_grant", EXPIRED)
    assert emu.reuse_detected == 1
    current = web_params(
        emu, grant_type="refresh_token", refresh_token=r2["refresh_token"]
    )
    assert_error(await client.post(TOKEN, data=current), "invalid_grant", EXPIRED)
    assert await rest_status(client, r2["access_token"]) == 401


@pytest.mark.parametrize(
    ("policy", "advance", "ok"),
    [
        ("zero", 0, False),
        ("lifetime:3600", 10, True),
        ("lifetime:3600", 3601, False),
        ("specific_lifetime:1:HOURS", 3601, False),
        ("inactivity:100", 50, True),
        ("inactivity:100", 101, False),
        ("infinite", 10**8, True),
    ],
)
async def test_refresh_policies(
    emu: SalesforceEmulator,
    client: httpx.AsyncClient,
    policy: str,
    advance: int,
    ok: bool,
) -> None:
    emu.apps["web"].refresh_token_policy = policy
    tokens = emu.issue_tokens()
    emu.advance_time(advance)
    r = await client.post(
        TOKEN,
        data=web_params(
            emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
        ),
    )
    if ok:
        assert r.status_code == 200
    else:
        assert_error(r, "invalid_grant", EXPIRED)


async def _refresh_with(
    emu: SalesforceEmulator, client: httpx.AsyncClient, refresh_token: str
) -> httpx.Response:
    return await client.post(
        TOKEN,
        data=web_params(emu, grant_type="refresh_token", refresh_token=refresh_token),
    )


@pytest.mark.parametrize("rotation", [False, True])
async def test_inactivity_policy_is_a_sliding_window(
    emu: SalesforceEmulator, client: httpx.AsyncClient, rotation: bool
) -> None:
    # Reference 15.3: each use restarts the idle window, so a token used every 60 s
    # under a 100 s limit lives far past 100 s; one left idle for 101 s dies.
    app = emu.apps["web"]
    app.is_refresh_token_rotation_enabled = rotation
    app.refresh_token_policy = "inactivity:100"
    current = emu.issue_tokens()["refresh_token"]
    for _ in range(4):
        emu.advance_time(60)
        r = await _refresh_with(emu, client, current)
        assert r.status_code == 200, r.text
        current = r.json().get("refresh_token", current)
    emu.advance_time(101)
    assert_error(await _refresh_with(emu, client, current), "invalid_grant", EXPIRED)


async def test_lifetime_policy_counts_from_the_grant_across_rotations(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    app = emu.apps["web"]
    app.is_refresh_token_rotation_enabled = True
    app.refresh_token_policy = "lifetime:100"
    current = emu.issue_tokens()["refresh_token"]
    emu.advance_time(60)
    r = await _refresh_with(emu, client, current)
    assert r.status_code == 200
    emu.advance_time(60)  # 120 s after the grant, 60 s after the rotation
    assert_error(
        await _refresh_with(emu, client, r.json()["refresh_token"]),
        "invalid_grant",
        EXPIRED,
    )


async def test_idle_refresh_token_introspects_inactive(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    web = emu.apps["web"]
    web.refresh_token_policy = "specific_inactivity:1:HOURS"
    tokens = emu.issue_tokens()
    creds = {"client_id": web.client_id, "client_secret": web.client_secret or ""}

    async def active() -> bool:
        r = await client.post(
            "/services/oauth2/introspect",
            data={"token": tokens["refresh_token"], **creds},
        )
        return bool(r.json()["active"])

    emu.advance_time(3500)
    assert await active()
    emu.advance_time(200)
    assert not await active()


@pytest.mark.parametrize(
    "policy", ["forever", "specific_inactivity:3:WEEKS", "inactivity:", "lifetime:x"]
)
async def test_unknown_refresh_policy_is_refused_where_it_is_set(
    emu: SalesforceEmulator, client: httpx.AsyncClient, policy: str
) -> None:
    with pytest.raises(ValueError, match="refresh token policy"):
        emu.apps["web"].refresh_token_policy = policy
    r = await client.patch(
        "/__emulator__/apps/web", json={"refresh_token_policy": policy}
    )
    assert r.status_code == 400
    assert "refresh token policy" in r.json()["error"]
    assert emu.apps["web"].refresh_token_policy == "infinite"
    with pytest.raises(ValueError, match="refresh token policy"):
        emu.add_app("typo", client_id="3MVG9Typo", refresh_token_policy=policy)


async def test_policy_over_the_control_api(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    r = await client.patch(
        "/__emulator__/apps/web",
        json={"refresh_token_policy": "specific_inactivity:30:DAYS"},
    )
    assert r.status_code == 200
    tokens = emu.issue_tokens()
    await client.post("/__emulator__/advance", json={"seconds": 31 * 86400})
    assert_error(
        await _refresh_with(emu, client, tokens["refresh_token"]),
        "invalid_grant",
        EXPIRED,
    )


async def test_inactive_user_cannot_refresh(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = emu.issue_tokens()
    emu.user.active = False
    r = await client.post(
        TOKEN,
        data=web_params(
            emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
        ),
    )
    assert_error(r, "inactive_user", "user is inactive")


async def test_access_token_expiry(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = emu.issue_tokens()
    assert await rest_status(client, tokens["access_token"]) == 200
    emu.expire_access_tokens()
    r = await client.get(
        f"{MY_DOMAIN}/services/data/v62.0/",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert r.status_code == 401
    assert r.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    emu.apps["web"].session_timeout = 60
    fresh = emu.issue_tokens()
    emu.advance_time(61)
    assert await rest_status(client, fresh["access_token"]) == 401


async def test_concurrent_refresh_of_one_token_is_refused_while_processed(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    """Reference 15.1: one refresh per refresh token at a time; the second gets
    invalid_grant / expired authorization code, and the grant stays alive."""
    import anyio

    emu.apps["web"].refresh_processing_seconds = 0.3
    tokens = emu.issue_tokens()
    data = web_params(
        emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    answers: list[httpx.Response] = []

    async def refresh(delay: float) -> None:
        await anyio.sleep(delay)
        answers.append(await client.post(TOKEN, data=data))

    async with anyio.create_task_group() as tg:
        tg.start_soon(refresh, 0.0)
        tg.start_soon(refresh, 0.1)
    first, second = answers[1], answers[0]  # the second one is answered first
    assert first.status_code == 200
    assert_error(second, "invalid_grant", "expired authorization code")
    assert emu.concurrent_refresh_rejections == 1
    assert emu.reuse_detected == 0
    # Once the first is done the token works again (no rotation): nothing was revoked.
    assert (await client.post(TOKEN, data=data)).status_code == 200
    stats = (await client.get("/__emulator__/stats")).json()
    assert stats["concurrent_refresh_rejections"] == 1


async def test_without_a_processing_window_sequential_refreshes_are_not_refused(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    tokens = emu.issue_tokens()
    data = web_params(
        emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    for _ in range(3):
        assert (await client.post(TOKEN, data=data)).status_code == 200
    assert emu.concurrent_refresh_rejections == 0
    assert not emu.state.refreshes_in_flight
