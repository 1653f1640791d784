"""Issue 13 defect 8: a callback repeating an OAuth parameter is refused (FastAPI).

Before the fix Starlette's ``query_params`` kept one copy silently and the login went
through; now nothing is exchanged or stored.
"""

import httpx
import pytest
from support.fastapi import authorize, make_api, make_sf, query

from sfoauth_fastapi import ErrorCode

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "extra",
    [
        "state={state}X",
        "code={code}",
        "iss=https://login.salesforce.com&iss=https://evil.example",
        "error=access_denied&error=server_error",
    ],
    ids=["state", "code", "iss", "error"],
)
async def test_repeated_oauth_parameter_is_refused(emu, browser_factory, caplog, extra):
    sf = make_sf(emu)
    browser: httpx.AsyncClient = browser_factory(make_api(sf))
    callback = await authorize(
        emu, await browser.post("/salesforce/login", data={"next": "/me"})
    )
    params = query(callback)
    r = await browser.get(callback + "&" + extra.format(**params))
    assert r.status_code == 400
    assert r.json()["detail"] == ErrorCode.INVALID_CALLBACK
    assert emu.calls() == 0 and len(sf.store) == 0
    assert "RepeatedParameterError" in caplog.text
    ours = " ".join(
        r.getMessage() for r in caplog.records if r.name.startswith("sfoauth")
    )
    assert params["code"] not in ours and params["state"] not in ours
