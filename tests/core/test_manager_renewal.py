"""The rule for a refused token (issue 10 items 3 and 5; docs/token-lifecycle.md).

A 401 ``INVALID_SESSION_ID`` (or ``Bad_OAuth_Token`` on the identity URL and userinfo)
leads to a renewal and a retry, whatever served the refused token: this manager's
in-process cache, another manager of the same process (sync next to async), or another
worker sharing the store. When the renewal only re-read a token someone else had already
renewed and that one is refused too, the manager renews once more (now at Salesforce)
and retries a last time. Every test counts the token endpoint's calls.
"""

from __future__ import annotations

import anyio
import httpx
import pytest

from sfoauth_core.auth import SalesforceAuth
from sfoauth_core.exceptions import InvalidTokenError
from sfoauth_core.flows._base import RetryPolicy
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import AsyncTokenManager, Renewal, TokenManager
from sfoauth_core.storage import AsyncInMemoryTokenStore, InMemoryTokenStore
from sfoauth_core.testing import DEFAULT_USERNAME, SalesforceEmulator
from sfoauth_core.tokens import Token

REST = "/services/data/v62.0/limits"
FAST = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0, max_retry_after=0.0)


@pytest.fixture
def emu() -> SalesforceEmulator:
    emulator = SalesforceEmulator()
    emulator.apps["web"].is_refresh_token_rotation_enabled = True
    return emulator


def _sync(emu: SalesforceEmulator, store: InMemoryTokenStore) -> TokenManager:
    app = emu.connected_app("web")
    client = httpx.Client(transport=emu.transport(), timeout=app.timeout)
    return TokenManager(SalesforceOAuth(app, http_client=client), store, retry=FAST)


def _async(
    emu: SalesforceEmulator, store: AsyncInMemoryTokenStore
) -> AsyncTokenManager:
    app = emu.connected_app("web")
    client = httpx.AsyncClient(transport=emu.async_transport(), timeout=app.timeout)
    return AsyncTokenManager(
        AsyncSalesforceOAuth(app, http_client=client), store, retry=FAST
    )


def _shared_stores() -> tuple[InMemoryTokenStore, AsyncInMemoryTokenStore]:
    """A sync and an async store over the same records (like two workers sharing a
    database: one set of rows, separate locks and separate in-process caches)."""
    sync_store, async_store = InMemoryTokenStore(), AsyncInMemoryTokenStore()
    async_store._records = sync_store._records
    async_store._guard = sync_store._guard
    return sync_store, async_store


def _refreshes(emu: SalesforceEmulator) -> int:
    return emu.calls("refresh_token")


def _get_sync(manager: TokenManager, emu: SalesforceEmulator) -> int:
    with manager.client("u1", transport=emu.transport()) as sf:
        return sf.get(REST).status_code


async def _get_async(manager: AsyncTokenManager, emu: SalesforceEmulator) -> int:
    async with await manager.client("u1", transport=emu.async_transport()) as sf:
        return (await sf.get(REST)).status_code


# Item 5: a token served by one cache, replaced in the store by another manager ------
def test_sync_cache_stale_after_async_manager_renewed_and_everything_expired(emu):
    # Failed before: the sync manager retried with the async one's token (re-read, no
    # call) which had expired too, and the 401 reached the app.
    sync_store, async_store = _shared_stores()
    sync, other = _sync(emu, sync_store), _async(emu, async_store)
    sync.save("u1", Token.from_response(emu.issue_tokens("web")))  # cached here
    anyio.run(other.refresh, "u1")  # the async manager renews: the store moves on
    emu.expire_access_tokens()  # ... and expires again within the cache lifetime
    before = _refreshes(emu)
    assert _get_sync(sync, emu) == 200
    assert _refreshes(emu) - before == 1
    assert emu.reuse_detected == 0
    assert sync.valid_token("u1") == sync_store._records["u1"].token
    assert _get_sync(sync, emu) == 200  # no more calls once renewed
    assert _refreshes(emu) - before == 1


def test_async_cache_stale_after_sync_manager_renewed_and_everything_expired(emu):
    sync_store, async_store = _shared_stores()
    sync, other = _sync(emu, sync_store), _async(emu, async_store)

    async def scenario() -> None:
        await other.save("u1", Token.from_response(emu.issue_tokens("web")))
        sync.refresh("u1")
        emu.expire_access_tokens()
        before = _refreshes(emu)
        assert await _get_async(other, emu) == 200
        assert _refreshes(emu) - before == 1
        assert emu.reuse_detected == 0

    anyio.run(scenario)


def test_two_workers_sharing_a_store_each_recover_from_a_double_expiry(emu):
    store = InMemoryTokenStore()
    first, second = _sync(emu, store), _sync(emu, store)
    first.save("u1", Token.from_response(emu.issue_tokens("web")))
    assert _get_sync(second, emu) == 200  # the second worker caches the same token
    for _ in range(3):  # expire, renew through one worker, expire again
        emu.expire_access_tokens()
        before = _refreshes(emu)
        assert _get_sync(first, emu) == 200
        emu.expire_access_tokens()
        assert _get_sync(second, emu) == 200
        assert _refreshes(emu) - before == 2  # one renewal per 401'd request
    assert emu.reuse_detected == 0


def test_expiry_again_inside_the_cache_lifetime_renews_every_time(emu):
    manager = _sync(emu, InMemoryTokenStore())
    manager.save("u1", Token.from_response(emu.issue_tokens("web")))
    before = _refreshes(emu)
    for round_ in range(1, 4):
        emu.expire_access_tokens()
        assert _get_sync(manager, emu) == 200
        assert _refreshes(emu) - before == round_


def test_a_renewed_token_that_is_refused_again_reaches_the_app_after_one_call(emu):
    # The bound: a token that Salesforce just issued and that is refused at once (the
    # API keeps answering INVALID_SESSION_ID) costs one renewal, then the 401 is the
    # app's; no loop.
    manager = _sync(emu, InMemoryTokenStore())
    manager.save("u1", Token.from_response(emu.issue_tokens("web")))
    always = httpx.MockTransport(
        lambda request: httpx.Response(
            401, json=[{"errorCode": "INVALID_SESSION_ID", "message": "expired"}]
        )
    )
    before = _refreshes(emu)
    with manager.client("u1", transport=always) as sf:
        assert sf.get(REST).status_code == 401
    assert _refreshes(emu) - before == 1


class _ScriptedManager:
    """valid_token / renew with scripted outcomes; counts what the auth asked."""

    def __init__(self, renewals: list[bool]) -> None:
        self.renewals = list(renewals)
        self.asked: list[str | None] = []
        self.count = 0

    def valid_token(self, key: str) -> Token:
        return Token(access_token="t0", instance_url="https://acme.my.salesforce.com")

    def renew(self, key: str, *, stale: str | None = None) -> Renewal:
        self.asked.append(stale)
        self.count += 1
        token = Token(
            access_token=f"t{self.count}", instance_url="https://acme.my.salesforce.com"
        )
        return Renewal(token, at_salesforce=self.renewals.pop(0))

    def may_receive_token(self, host: str, token: Token) -> bool:
        return True


@pytest.mark.parametrize(
    "renewals, asked, sent",
    [
        ([True], ["t0"], ["t0", "t1"]),  # renewed at Salesforce: one retry only
        ([False, True], ["t0", "t1"], ["t0", "t1", "t2"]),  # re-read, then renewed
        ([False, False], ["t0", "t1"], ["t0", "t1", "t2"]),  # bounded at two
    ],
)
def test_the_rule_for_a_refused_token(renewals, asked, sent):
    manager = _ScriptedManager(renewals)
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"].removeprefix("Bearer "))
        return httpx.Response(401, json=[{"errorCode": "INVALID_SESSION_ID"}])

    with httpx.Client(
        base_url="https://acme.my.salesforce.com",
        auth=SalesforceAuth(manager, "k"),
        transport=httpx.MockTransport(api),
    ) as client:
        assert client.get(REST).status_code == 401
    assert manager.asked == asked
    assert seen == sent


# Item 3: identity and userinfo renew like API requests ------------------------------
def test_identity_after_expiry_renews_once_and_answers(emu):
    manager = _sync(emu, InMemoryTokenStore())
    manager.save("u1", Token.from_response(emu.issue_tokens("web")))
    assert manager.identity("u1").username == DEFAULT_USERNAME
    emu.expire_access_tokens()  # the identity URL now answers 403 Bad_OAuth_Token
    before = _refreshes(emu)
    assert manager.identity("u1").username == DEFAULT_USERNAME
    assert _refreshes(emu) - before == 1
    assert manager.identity("u1", version="62.0").username == DEFAULT_USERNAME
    assert _refreshes(emu) - before == 1


@pytest.mark.parametrize("status", [401, 403])
def test_userinfo_after_expiry_renews_once_and_answers(emu, status):
    emu.state.userinfo_error_status = status
    manager = _sync(emu, InMemoryTokenStore())
    manager.save("u1", Token.from_response(emu.issue_tokens("web")))
    emu.expire_access_tokens()
    before = _refreshes(emu)
    assert manager.userinfo("u1")["preferred_username"] == DEFAULT_USERNAME
    assert _refreshes(emu) - before == 1


def test_async_identity_and_userinfo_renew_after_a_store_replaced_elsewhere(emu):
    sync_store, async_store = _shared_stores()
    sync, manager = _sync(emu, sync_store), _async(emu, async_store)

    async def scenario() -> None:
        await manager.save("u1", Token.from_response(emu.issue_tokens("web")))
        sync.refresh("u1")  # another manager renews; this one still caches the old
        emu.expire_access_tokens()
        before = _refreshes(emu)
        identity = await manager.identity("u1")
        assert identity.username == DEFAULT_USERNAME
        assert _refreshes(emu) - before == 1
        emu.expire_access_tokens()
        info = await manager.userinfo("u1")
        assert info["preferred_username"] == DEFAULT_USERNAME
        assert _refreshes(emu) - before == 2

    anyio.run(scenario)


def test_a_403_that_is_not_bad_oauth_token_is_not_renewed(emu):
    inner = emu.transport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/id/"):
            return httpx.Response(403, text="Insufficient Privileges")
        return inner.handle_request(request)

    app = emu.connected_app("web")
    oauth = SalesforceOAuth(
        app, http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    manager = TokenManager(oauth, InMemoryTokenStore(), retry=FAST)
    manager.save("u1", Token.from_response(emu.issue_tokens("web")))
    before = _refreshes(emu)
    with pytest.raises(InvalidTokenError) as caught:
        manager.identity("u1")
    assert caught.value.status_code == 403
    assert _refreshes(emu) == before


def test_identity_refused_after_a_renewal_raises_the_refusal(emu):
    manager = _sync(emu, InMemoryTokenStore())
    manager.save("u1", Token.from_response(emu.issue_tokens("web")))
    inner = emu.transport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/id/"):
            return httpx.Response(403, text="Bad_OAuth_Token")
        return inner.handle_request(request)

    manager.oauth.http_client = httpx.Client(transport=httpx.MockTransport(handler))
    before = _refreshes(emu)
    with pytest.raises(InvalidTokenError):
        manager.identity("u1")
    assert _refreshes(emu) - before == 1
