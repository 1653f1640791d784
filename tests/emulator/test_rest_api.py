"""The REST API under /services/data: versions (served, retired, configurable), the
resource directory with and without its slash, JSON error arrays everywhere, sObject
describe and CRUD for Account and Contact, the SOQL subset, and revoke's error format."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support.emulator import MY_DOMAIN

from sfoauth_core.testing import SalesforceEmulator

pytestmark = pytest.mark.anyio

DATA = MY_DOMAIN + "/services/data"
ACME = "001XX000003DHPhYAO"  # the seeded "Acme Corporation", 18 characters


@pytest.fixture
def auth(emu: SalesforceEmulator) -> dict[str, str]:
    return {"Authorization": "Bearer " + emu.issue_tokens()["access_token"]}


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The single item of a Salesforce REST error array (and the body is JSON)."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list) and len(body) == 1, body
    assert {"message", "errorCode"} <= set(body[0])
    return body[0]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- versions
async def test_every_current_version_is_served_and_listed(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    listed = (await client.get(DATA + "/")).json()
    versions = [v["version"] for v in listed]
    assert versions[0] == "31.0" and versions[-1] == "68.0"
    assert len(versions) == 38
    assert {
        "label": "Winter '27",
        "url": "/services/data/v68.0",
        "version": "68.0",
    } in (listed)
    assert {
        "label": "Summer '14",
        "url": "/services/data/v31.0",
        "version": "31.0",
    } in (listed)
    # jsforce's default (50.0), simple-salesforce's (59.0), the oldest and the newest.
    for version in ("31.0", "50.0", "59.0", "68.0"):
        r = await client.get(f"{DATA}/v{version}/limits", headers=auth)
        assert r.status_code == 200, (version, r.text)
    # Without the trailing slash the list answers too.
    assert (await client.get(DATA)).json() == listed


async def test_retired_versions_answer_410_and_unknown_ones_404(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for version in ("30.0", "21.0", "7.0"):
        r = await client.get(f"{DATA}/v{version}/", headers=auth)
        assert r.status_code == 410, version
        assert error_of(r)["errorCode"] == "GONE"
    for version in ("69.0", "6.0", "latest", "v62"):
        r = await client.get(f"{DATA}/{version}/limits", headers=auth)
        assert r.status_code == 404, version
        assert error_of(r) == {
            "errorCode": "NOT_FOUND",
            "message": "The requested resource does not exist",
        }


async def test_the_version_range_is_configurable_per_org(
    emu: SalesforceEmulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    emu.org.min_api_version = "45.0"
    emu.org.max_api_version = "60.0"
    emu.org.retired_api_version_error = ("API_VERSION_RETIRED", "gone for good")
    versions = [v["version"] for v in (await client.get(DATA + "/")).json()]
    assert versions[0] == "45.0" and versions[-1] == "60.0"
    r = await client.get(DATA + "/v44.0/", headers=auth)
    assert r.status_code == 410
    assert error_of(r) == {
        "errorCode": "API_VERSION_RETIRED",
        "message": "gone for good",
    }
    assert (await client.get(DATA + "/v61.0/", headers=auth)).status_code == 404
    assert (await client.get(DATA + "/v60.0/", headers=auth)).status_code == 200


# ---------------------------------------------------------------------- directory
async def test_directory_with_and_without_slash_advertises_what_is_served(
    emu: SalesforceEmulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    with_slash = await client.get(DATA + "/v50.0/", headers=auth)
    without = await client.get(DATA + "/v50.0", headers=auth)
    assert with_slash.status_code == without.status_code == 200  # no 307
    directory = with_slash.json()
    assert without.json() == directory
    assert directory["identity"].endswith(f"/id/{emu.org.org_id}/{emu.user.user_id}")
    for name, url in directory.items():
        if name == "identity":
            r = await client.get(url, headers=auth)
        else:
            assert url == f"/services/data/v50.0/{name}"
            params = {"q": "SELECT Id FROM Account"} if name == "query" else None
            r = await client.get(MY_DOMAIN + url, headers=auth, params=params)
        assert r.status_code == 200, (name, r.text)


async def test_every_rest_error_is_a_json_array(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for path in (
        "/v62.0/nothing",
        "/v62.0/search/",
        "/v62.0/tooling/query",
        "/v62.0/sobjects/Opportunity/describe",
        "/v62.0/sobjects/Account/describe/extra",
        "/unknown",
    ):
        r = await client.get(DATA + path, headers=auth)
        assert r.status_code == 404, path
        assert error_of(r)["errorCode"] == "NOT_FOUND", path
    r = await client.put(DATA + "/v62.0/sobjects/Account", headers=auth)
    assert r.status_code == 405
    assert error_of(r)["errorCode"] == "METHOD_NOT_ALLOWED"
    r = await client.get(DATA + "/v62.0/nothing")
    assert r.status_code == 401 and error_of(r)["errorCode"] == "INVALID_SESSION_ID"
    apex = await client.post(MY_DOMAIN + "/services/apexrest/orders/1", headers=auth)
    assert apex.status_code == 404
    assert error_of(apex) == {
        "errorCode": "NOT_FOUND",
        "message": "Could not find a match for URL /orders/1",
    }
    apex = await client.get(MY_DOMAIN + "/services/apexrest/orders")
    assert apex.status_code == 401


# ---------------------------------------------------------------------- sObjects
async def test_global_and_object_describe(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    r = await client.get(DATA + "/v59.0/sobjects/", headers=auth)
    names = {s["name"]: s for s in r.json()["sobjects"]}
    assert {"Account", "Contact"} <= set(names)
    assert names["Account"]["keyPrefix"] == "001"
    assert names["Contact"]["urls"]["describe"] == (
        "/services/data/v59.0/sobjects/Contact/describe"
    )
    describe = (
        await client.get(DATA + "/v59.0/sobjects/Account/describe", headers=auth)
    ).json()
    fields = {f["name"]: f for f in describe["fields"]}
    assert describe["name"] == "Account" and describe["createable"] is True
    assert fields["Name"]["nillable"] is False and fields["Name"]["type"] == "string"
    assert fields["Id"]["createable"] is False and fields["Id"]["type"] == "id"
    contact = (
        await client.get(DATA + "/v59.0/sobjects/contact/describe", headers=auth)
    ).json()
    account_id = next(f for f in contact["fields"] if f["name"] == "AccountId")
    assert account_id["referenceTo"] == ["Account"]
    basic = (await client.get(DATA + "/v59.0/sobjects/Account", headers=auth)).json()
    assert basic["objectDescribe"]["name"] == "Account" and basic["recentItems"] == []


async def test_crud_round_trip(
    emu: SalesforceEmulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    base = DATA + "/v62.0/sobjects"
    seeded = (await client.get(f"{base}/Account/{ACME}", headers=auth)).json()
    assert seeded["Name"] == "Acme Corporation"
    assert seeded["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v62.0/sobjects/Account/{ACME}",
    }
    assert seeded["OwnerId"] == emu.user.user_id
    fifteen = await client.get(f"{base}/Account/{ACME[:15]}", headers=auth)
    assert fifteen.json()["Id"] == ACME

    created = await client.post(
        f"{base}/Account",
        headers=auth,
        json={"Name": "Initech", "Industry": "Technology"},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["success"] is True and body["errors"] == []
    new_id = body["id"]
    assert len(new_id) == 18 and new_id.startswith("001")

    contact = await client.post(
        f"{base}/Contact",
        headers=auth,
        json={"FirstName": "Peter", "LastName": "Gibbons", "AccountId": new_id},
    )
    assert contact.status_code == 201
    contact_id = contact.json()["id"]

    patched = await client.patch(
        f"{base}/Account/{new_id}", headers=auth, json={"Phone": "555-0100"}
    )
    assert patched.status_code == 204 and patched.content == b""
    row = (
        await client.get(
            f"{base}/Account/{new_id}", headers=auth, params={"fields": "Name,Phone"}
        )
    ).json()
    assert row == {
        "attributes": {
            "type": "Account",
            "url": f"/services/data/v62.0/sobjects/Account/{new_id}",
        },
        "Name": "Initech",
        "Phone": "555-0100",
    }
    person = (await client.get(f"{base}/Contact/{contact_id}", headers=auth)).json()
    assert person["Name"] == "Peter Gibbons" and person["AccountId"] == new_id

    q = await client.get(
        DATA + "/v62.0/query",
        headers=auth,
        params={"q": f"SELECT Id, Name FROM Contact WHERE AccountId = '{new_id}'"},
    )
    assert [r["Name"] for r in q.json()["records"]] == ["Peter Gibbons"]

    deleted = await client.delete(f"{base}/Account/{new_id}", headers=auth)
    assert deleted.status_code == 204
    gone = await client.get(f"{base}/Account/{new_id}", headers=auth)
    assert gone.status_code == 404 and error_of(gone)["errorCode"] == "NOT_FOUND"
    again = await client.delete(f"{base}/Account/{new_id}", headers=auth)
    assert again.status_code == 404
    assert error_of(again)["errorCode"] == "ENTITY_IS_DELETED"


async def test_records_are_per_org_and_reset_restores_the_seed(
    emu: SalesforceEmulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    base = DATA + "/v62.0/sobjects/Account"
    r = await client.patch(f"{base}/{ACME}", headers=auth, json={"Name": "Changed"})
    assert r.status_code == 204
    emu.add_org("beta", org_id="00DXX0000002xyz")
    emu.add_user("bob@beta.com", "pw", user_id="005XX0000002bob", org="beta")
    beta = emu.issue_tokens(user="bob@beta.com")["access_token"]
    other = await client.get(
        "https://beta.my.salesforce.com/services/data/v62.0/sobjects/Account/" + ACME,
        headers={"Authorization": "Bearer " + beta},
    )
    assert other.json()["Name"] == "Acme Corporation"
    emu.reset()
    fresh = {"Authorization": "Bearer " + emu.issue_tokens()["access_token"]}
    again = (await client.get(f"{base}/{ACME}", headers=fresh)).json()
    assert again["Name"] == "Acme Corporation"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "fields"),
    [
        (
            "POST",
            "Account",
            {"Industry": "Media"},
            400,
            "REQUIRED_FIELD_MISSING",
            ["Name"],
        ),
        (
            "POST",
            "Contact",
            {"FirstName": "A"},
            400,
            "REQUIRED_FIELD_MISSING",
            ["LastName"],
        ),
        ("POST", "Account", {"Name": "X", "Bogus__c": 1}, 400, "INVALID_FIELD", None),
        (
            "POST",
            "Account",
            {"Name": "X", "Id": ACME},
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            ["Id"],
        ),
        ("POST", "Account", {"Name": "x" * 256}, 400, "STRING_TOO_LONG", ["Name"]),
        ("POST", "Account", ["not", "an", "object"], 400, "JSON_PARSER_ERROR", None),
        (
            "POST",
            "Account",
            {"Name": "X", "NumberOfEmployees": "ten"},
            400,
            "JSON_PARSER_ERROR",
            None,
        ),
        (
            "POST",
            "Contact",
            {"LastName": "X", "AccountId": "nope"},
            400,
            "MALFORMED_ID",
            ["AccountId"],
        ),
        (
            "POST",
            "Contact",
            {"LastName": "X", "AccountId": "001XX0000099999"},
            400,
            "INVALID_CROSS_REFERENCE_KEY",
            ["AccountId"],
        ),
        ("POST", "Opportunity", {"Name": "X"}, 404, "NOT_FOUND", None),
        (
            "PATCH",
            f"Account/{ACME}",
            {"Name": None},
            400,
            "REQUIRED_FIELD_MISSING",
            ["Name"],
        ),
        ("PATCH", "Account/not-an-id", {"Name": "X"}, 400, "MALFORMED_ID", ["Id"]),
        ("PATCH", "Account/001XX0000099999", {"Name": "X"}, 404, "NOT_FOUND", None),
        ("DELETE", "Account/003XX000004TmiQ", None, 400, "MALFORMED_ID", ["Id"]),
        ("GET", "Account/003XX000004TmiQ", None, 404, "NOT_FOUND", None),
        ("GET", "Account/notanid", None, 404, "NOT_FOUND", None),
    ],
)
async def test_sobject_errors_have_salesforce_shapes(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    method: str,
    path: str,
    body: object,
    status: int,
    code: str,
    fields: list[str] | None,
) -> None:
    r = await client.request(
        method, f"{DATA}/v62.0/sobjects/{path}", headers=auth, json=body
    )
    assert r.status_code == status, r.text
    error = error_of(r)
    assert error["errorCode"] == code
    assert error.get("fields") == fields


async def test_malformed_json_body(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    url = DATA + "/v62.0/sobjects/Account"
    r = await client.post(
        url, headers={**auth, "Content-Type": "application/json"}, content=b"{nope"
    )
    assert r.status_code == 400 and error_of(r)["errorCode"] == "JSON_PARSER_ERROR"
    # The session is checked first, and an unknown resource is still NOT_FOUND.
    r = await client.post(url, content=b"{nope")
    assert r.status_code == 401 and error_of(r)["errorCode"] == "INVALID_SESSION_ID"
    r = await client.post(DATA + "/v62.0/nothing", headers=auth, content=b"{nope")
    assert r.status_code == 404


async def test_fields_parameter_and_attributes_key(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    base = DATA + "/v62.0/sobjects/Account"
    bad = await client.get(f"{base}/{ACME}", headers=auth, params={"fields": "Nope"})
    assert bad.status_code == 400 and error_of(bad)["errorCode"] == "INVALID_FIELD"
    # A record read back (with its "attributes") can be sent again as it is.
    row = (
        await client.get(f"{base}/{ACME}", headers=auth, params={"fields": "Name"})
    ).json()
    row["Name"] = "Acme Renamed"
    assert (
        await client.patch(f"{base}/{ACME}", headers=auth, json=row)
    ).status_code == 204


async def test_version_range_from_a_configuration_file(
    emu: SalesforceEmulator, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    from sfoauth_emulator.server import apply_config

    apply_config(
        emu,
        {
            "orgs": [
                {
                    "name": "acme",
                    "max_api_version": "62.0",
                    "retired_api_version_error": ["GONE", "retired"],
                    "revoke_error_format": "urlencoded",
                }
            ]
        },
    )
    assert (await client.get(DATA + "/v63.0/", headers=auth)).status_code == 404
    assert emu.org.retired_api_version_error == ("GONE", "retired")
    r = await client.post(MY_DOMAIN + "/services/oauth2/revoke", data={"token": "x"})
    assert r.text.startswith("error=invalid_token")


# ---------------------------------------------------------------------- SOQL subset
async def test_soql_subset(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    async def query(soql: str) -> httpx.Response:
        return await client.get(
            DATA + "/v62.0/query/", headers=auth, params={"q": soql}
        )

    names = (await query("SELECT Name FROM Account ORDER BY Name LIMIT 2")).json()
    assert [r["Name"] for r in names["records"]] == [
        "Acme Corporation",
        "Burlington Textiles",
    ]
    count = (await query("select count() from Contact")).json()
    assert count == {"totalSize": 2, "done": True, "records": []}
    where = (await query("SELECT Id FROM Account WHERE Industry = 'Media'")).json()
    assert where["totalSize"] == 1
    both = await query(
        "SELECT Id FROM Account WHERE Industry != 'Media' AND IsDeleted = false"
        " AND NumberOfEmployees = null AND AnnualRevenue != 1.5 AND Name != 7"
    )
    assert both.json()["totalSize"] == 2
    by_id = await query(f"SELECT Name FROM Account WHERE Id = '{ACME[:15]}'")
    assert [r["Name"] for r in by_id.json()["records"]] == ["Acme Corporation"]
    last = await query("SELECT Name FROM Account ORDER BY Name DESC LIMIT 1")
    assert last.json()["records"][0]["Name"] == "Global Media"
    for soql, code in (
        ("SELECT Id FROM Opportunity", "INVALID_TYPE"),
        ("SELECT Nope FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Nope = 1", "INVALID_FIELD"),
        ("SELECT Id FROM Account ORDER BY Nope", "INVALID_FIELD"),
        ("SELEKT Id FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name LIKE 'A%'", "MALFORMED_QUERY"),
        ("", "MALFORMED_QUERY"),
    ):
        r = await query(soql)
        assert r.status_code == 400, soql
        assert error_of(r)["errorCode"] == code, soql


async def test_limits_count_the_calls(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await client.get(DATA + "/v62.0/limits", headers=auth)
    second = await client.get(DATA + "/v62.0/limits", headers=auth)
    used = [
        int(r.headers["sforce-limit-info"].split("=")[1].split("/")[0])
        for r in (first, second)
    ]
    assert used[1] == used[0] + 1
    assert second.json()["DailyApiRequests"]["Remaining"] == 15000 - used[1]


# ---------------------------------------------------------------------- revoke errors
async def test_revoke_error_format_is_configurable(
    emu: SalesforceEmulator, client: httpx.AsyncClient
) -> None:
    revoke = MY_DOMAIN + "/services/oauth2/revoke"
    r = await client.post(revoke, data={"token": "nope"})
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_token", "error_description": "invalid token"}
    emu.org.revoke_error_format = "urlencoded"
    r = await client.post(revoke, data={"token": "nope"}, headers={"Accept": "*/*"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert r.text == "error=invalid_token&error_description=invalid%20token"
    # An explicit format still wins.
    r = await client.post(revoke, data={"token": "nope", "format": "json"})
    assert r.json()["error"] == "invalid_token"


# ---------------------------------------------------------------------- request log
async def test_a_request_is_logged_before_its_answer_ends(
    emu: SalesforceEmulator,
) -> None:
    """Over a real socket the client may read the log as soon as it has the answer:
    the entry must exist by the time the last body chunk is sent."""
    seen: list[tuple[str, int]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            seen.extend((e.path, e.status) for e in emu.request_log)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/services/data/",
        "raw_path": b"/services/data/",
        "query_string": b"",
        "headers": [(b"host", b"acme.my.salesforce.com")],
        "scheme": "https",
        "server": ("acme.my.salesforce.com", 443),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "http_version": "1.1",
    }
    await emu.app(scope, receive, send)
    assert seen == [("/services/data/", 200)]
    assert len(emu.request_log) == 1  # and only once
