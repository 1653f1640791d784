"""Reference 15.9 in the emulator: an app option issues JWT-format access tokens signed
by the org's access-token key, published at /id/keys."""

from __future__ import annotations

import httpx
import jwt
import pytest
from support.emulator import MY_DOMAIN, TOKEN, query_of, web_params

from sfoauth_core.testing import SalesforceEmulator

pytestmark = pytest.mark.anyio


async def _keys(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    body = (await client.get("/id/keys")).json()
    return {key["kid"]: key for key in body["keys"]}


async def test_jwt_access_tokens_verify_against_id_keys(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    assert "CORE_ATJWT" not in await _keys(client)  # only when an app issues them
    web = emu.apps["web"]
    web.jwt_access_tokens = True
    web.session_timeout = 600
    code = query_of(emu.authorize(scope="api refresh_token"))["code"]
    data = web_params(emu, grant_type="authorization_code", code=code)
    body = (await client.post(TOKEN, data=data)).json()
    access = body["access_token"]
    header = jwt.get_unverified_header(access)
    assert header["alg"] == "RS256" and header["kid"] == "CORE_ATJWT"
    assert header["tty"] == "sfdc-core-token"
    key = jwt.PyJWK((await _keys(client))["CORE_ATJWT"], algorithm="RS256")
    claims = jwt.decode(
        access,
        key,
        algorithms=["RS256"],
        audience=body["instance_url"],
        issuer="https://login.salesforce.com",
    )
    assert claims["exp"] - claims["iat"] == 600
    assert claims["sub"] == "uid:" + body["id"].rsplit("/", 1)[1]
    assert claims["client_id"] == web.client_id
    assert claims["scp"] == "api refresh_token"
    # Usable with the REST API like an opaque token, and refreshable.
    api = await client.get(
        MY_DOMAIN + "/services/data/v62.0/",
        headers={"Authorization": f"Bearer {access}"},
    )
    assert api.status_code == 200
    data = web_params(
        emu, grant_type="refresh_token", refresh_token=body["refresh_token"]
    )
    renewed = (await client.post(TOKEN, data=data)).json()["access_token"]
    assert renewed != access and renewed.count(".") == 2
