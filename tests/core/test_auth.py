"""SalesforceAuth: bearer header, one refresh-and-retry on 401 INVALID_SESSION_ID only,
never a token for a foreign host, never re-sent across a redirect to another origin."""

from __future__ import annotations

import json

import httpx
import pytest

from sfoauth_core.auth import SalesforceAuth, is_invalid_session
from sfoauth_core.exceptions import ReauthorizationRequired, UntrustedHostError
from sfoauth_core.tokens import Token

INSTANCE = "https://acme.my.salesforce.com"
EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
NOT_REST = [
    {
        "message": "This session is not valid for use with the REST API",
        "errorCode": "INVALID_SESSION_ID",
    }
]


def token(n: int) -> Token:
    return Token(access_token=f"00D!access-{n}", instance_url=INSTANCE)


class StubManager:
    """The manager surface SalesforceAuth uses; counts refreshes."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.current = token(1)
        self.refreshes: list[str | None] = []
        self.fail = fail

    def valid_token(self, key: str) -> Token:
        return self.current

    def refresh(self, key: str, *, stale=None) -> Token:
        self.refreshes.append(stale)
        if self.fail:
            raise self.fail
        if stale == self.current.access_token:
            self.current = token(len(self.refreshes) + 1)
        return self.current

    def may_receive_token(self, host: str, tok: Token) -> bool:
        return host.endswith(".salesforce.com")


class AsyncStubManager(StubManager):
    async def valid_token(self, key: str) -> Token:  # type: ignore[override]
        return StubManager.valid_token(self, key)

    async def refresh(self, key: str, *, stale=None) -> Token:  # type: ignore[override]
        return StubManager.refresh(self, key, stale=stale)


def api(valid: set[str], body_401=EXPIRED, seen: list[httpx.Request] | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:  # a snapshot: the auth re-sends the same Request object
            seen.append(
                httpx.Request(
                    request.method,
                    request.url,
                    headers=dict(request.headers),
                    content=request.read(),
                )
            )
        if request.url.host == "evil.example.com":
            return httpx.Response(
                200, json={"stolen": request.headers.get("authorization")}
            )
        if request.url.path == "/redirect":
            return httpx.Response(
                302, headers={"location": "https://evil.example.com/x"}
            )
        bearer = request.headers.get("authorization", "")
        if bearer.removeprefix("Bearer ") in valid:
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(401, json=body_401)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    "status, body, expected",
    [
        (401, json.dumps(EXPIRED).encode(), True),
        (401, json.dumps(EXPIRED[0]).encode(), True),
        (401, json.dumps(NOT_REST).encode(), False),
        (
            401,
            b'[{"message":"Connected app is not attached to Agent",'
            b'"errorCode":"INVALID_SESSION_ID"}]',
            False,
        ),
        (401, b"<html>nope</html>", False),
        (401, b'[{"errorCode":"INVALID_AUTH_HEADER"}]', False),
        (403, json.dumps(EXPIRED).encode(), False),
        (401, b"[1, 2]", False),
    ],
)
def test_is_invalid_session(status, body, expected):
    assert is_invalid_session(status, body) is expected


def test_bearer_header_and_no_refresh_when_valid():
    manager = StubManager()
    seen: list[httpx.Request] = []
    with httpx.Client(
        base_url=INSTANCE,
        auth=SalesforceAuth(manager, "k"),
        transport=api({"00D!access-1"}, seen=seen),
    ) as client:
        assert client.get("/services/data").status_code == 200
    assert seen[0].headers["authorization"] == "Bearer 00D!access-1"
    assert manager.refreshes == []


def test_expired_session_refreshes_once_with_the_stale_token_and_retries_once():
    manager = StubManager()
    seen: list[httpx.Request] = []
    with httpx.Client(
        base_url=INSTANCE,
        auth=SalesforceAuth(manager, "k"),
        transport=api({"00D!access-2"}, seen=seen),
    ) as client:
        response = client.post("/services/data/sobjects/Account", json={"Name": "x"})
    assert response.status_code == 200
    assert manager.refreshes == ["00D!access-1"]
    assert [r.headers["authorization"] for r in seen] == [
        "Bearer 00D!access-1",
        "Bearer 00D!access-2",
    ]
    assert seen[1].content == seen[0].content  # the same request, re-sent


def test_second_401_is_returned_without_a_loop():
    manager = StubManager()
    with httpx.Client(
        base_url=INSTANCE, auth=SalesforceAuth(manager, "k"), transport=api(set())
    ) as client:
        assert client.get("/x").status_code == 401
    assert len(manager.refreshes) == 1


def test_not_valid_for_rest_api_is_not_refreshed():
    manager = StubManager()
    with httpx.Client(
        base_url=INSTANCE,
        auth=SalesforceAuth(manager, "k"),
        transport=api(set(), NOT_REST),
    ) as client:
        assert client.get("/x").status_code == 401
    assert manager.refreshes == []


def test_reauthorization_required_reaches_the_caller():
    manager = StubManager(fail=ReauthorizationRequired("log in again", reason="r"))
    with httpx.Client(
        base_url=INSTANCE, auth=SalesforceAuth(manager, "k"), transport=api(set())
    ) as client:
        with pytest.raises(ReauthorizationRequired):
            client.get("/x")


def test_token_is_never_sent_to_an_untrusted_host():
    seen: list[httpx.Request] = []
    with httpx.Client(
        auth=SalesforceAuth(StubManager(), "k"), transport=api(set(), seen=seen)
    ) as client:
        with pytest.raises(UntrustedHostError, match=r"evil\.example\.com") as info:
            client.get("https://evil.example.com/steal")
    assert seen == []
    assert "access-1" not in str(info.value)


def test_redirect_to_another_host_drops_the_bearer():
    seen: list[httpx.Request] = []
    with httpx.Client(
        base_url=INSTANCE,
        auth=SalesforceAuth(StubManager(), "k"),
        transport=api({"00D!access-1"}, seen=seen),
        follow_redirects=True,
    ) as client:
        response = client.get("/redirect")
    assert response.json() == {"stolen": None}
    assert [r.url.host for r in seen] == ["acme.my.salesforce.com", "evil.example.com"]
    assert "authorization" not in seen[1].headers


@pytest.mark.anyio
async def test_async_flow_refreshes_once(anyio_backend):
    manager = AsyncStubManager()
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(
        base_url=INSTANCE,
        auth=SalesforceAuth(manager, "k"),
        transport=api({"00D!access-2"}, seen=seen),
    ) as client:
        assert (await client.get("/x")).status_code == 200
    assert manager.refreshes == ["00D!access-1"]
    assert len(seen) == 2


@pytest.mark.anyio
async def test_mismatched_client_kinds_are_refused(anyio_backend):
    with httpx.Client(
        auth=SalesforceAuth(AsyncStubManager(), "k"), transport=api(set())
    ) as c:
        with pytest.raises(RuntimeError, match="AsyncClient"):
            c.get(INSTANCE)
    async with httpx.AsyncClient(
        auth=SalesforceAuth(StubManager(), "k"), transport=api(set())
    ) as ac:
        with pytest.raises(RuntimeError, match=r"httpx\.Client"):
            await ac.get(INSTANCE)
    assert "access" not in repr(SalesforceAuth(StubManager(), "k"))
