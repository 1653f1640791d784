"""Reference 15.1 as a FastAPI user meets it: while another client (not sfoauth, not
sharing the store) refreshes the same refresh token, Salesforce refuses ours with
``invalid_grant`` / ``expired authorization code``. The route answers 503 "try again"
(HTML or JSON), the connection stays active, and the next request after the other
refresh is done works, with one refresh call of ours."""

# No `from __future__ import annotations`: routes are closures (support.fastapi).

import pytest
from support.fastapi import browser_login, make_api, make_sf

from sfoauth_core.storage import AsyncInMemoryTokenStore

pytestmark = pytest.mark.anyio


async def test_an_outside_refresh_in_flight_answers_503_and_keeps_the_connection(
    emu, browser_factory
):
    # The outside client does not rotate our token away (rotation off): its refresh is
    # merely in progress at Salesforce while ours arrives.
    emu.apps["web"].is_refresh_token_rotation_enabled = False
    store = AsyncInMemoryTokenStore()
    api = make_api(make_sf(emu, store=store))
    browser = browser_factory(api)
    await browser_login(emu, browser)
    (key,) = list(store._records)  # the browser's one connection (cookie-bound key)
    record = await store.get(key)
    assert record is not None and record.token.refresh_token
    emu.state.refreshes_in_flight.add(record.token.refresh_token)
    emu.expire_access_tokens()

    r = await browser.get("/me", headers={"accept": "application/json"})
    assert r.status_code == 503, r.text
    assert r.json() == {"detail": "SFOAUTH_SALESFORCE_UNAVAILABLE"}
    assert r.headers["retry-after"].isdigit()
    assert emu.concurrent_refresh_rejections >= 1
    after = await store.get(key)
    assert after is not None and not after.needs_reauth  # never "reconnect" for this
    assert after.token.refresh_token == record.token.refresh_token

    emu.state.refreshes_in_flight.clear()  # the outside refresh is done
    before = emu.calls("refresh_token")
    r = await browser.get("/me", headers={"accept": "application/json"})
    assert r.status_code == 200 and r.json()["status"] == 200
    assert emu.calls("refresh_token") - before == 1
