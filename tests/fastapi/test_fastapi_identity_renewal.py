"""``await session.identity()`` renews a refused token like ``session.client`` (issue
10 item 3): before, it failed after every expiry until another route refreshed."""

from typing import Annotated, Any

import pytest
from fastapi import Depends
from support.fastapi import browser_login, make_api, make_sf

from sfoauth_fastapi import SalesforceSession

pytestmark = pytest.mark.anyio


async def test_session_identity_after_expiry_renews_once(emu, browser_factory):
    sf = make_sf(emu)
    api = make_api(sf)

    @api.get("/who")
    async def who(session: Annotated[SalesforceSession, Depends(sf.session)]) -> Any:
        return {"username": (await session.identity()).username}

    browser = browser_factory(api)
    await browser_login(emu, browser)
    emu.expire_access_tokens()
    before = emu.calls("refresh_token")
    r = await browser.get("/who")
    assert r.status_code == 200, r.text
    assert r.json() == {"username": "jane@acme.com"}
    assert emu.calls("refresh_token") - before == 1
