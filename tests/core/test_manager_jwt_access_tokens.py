"""Issue 12 item 6, reference 15.9: a JWT-format access token says when it expires; the
manager verifies it against the org's keys and refreshes *before* the expiry, so no
request ever carries an expired token (no 401 in the emulator's log). A token that does
not verify is not trusted for its expiry (the manager falls back to the opaque-token
behaviour and logs a warning)."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sfoauth_core.flows.access_token import is_jwt_access_token
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.http.client import SalesforceOAuth
from sfoauth_core.manager import AsyncTokenManager, TokenManager
from sfoauth_core.storage import AsyncInMemoryTokenStore, InMemoryTokenStore
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_core.tokens import Token

REST = "/services/data/v62.0/"
LIFETIME = 900.0  # the app's session timeout
LEEWAY = 60.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _emulator(jwt_tokens: bool) -> SalesforceEmulator:
    emu = SalesforceEmulator()
    web = emu.apps["web"]
    web.jwt_access_tokens = jwt_tokens
    web.session_timeout = LIFETIME
    web.is_refresh_token_rotation_enabled = True
    return emu


def _rest_401s(emu: SalesforceEmulator) -> int:
    return sum(
        1
        for entry in emu.request_log
        if entry.path.startswith("/services/data") and entry.status == 401
    )


class _Clock:
    """The manager's clock, moved with the emulator's (never sleeps)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def closing() -> Any:
    opened: list[SalesforceOAuth] = []
    yield opened
    for oauth in opened:
        oauth.close()


def _manager(
    emu: SalesforceEmulator, clock: _Clock, opened: list[SalesforceOAuth]
) -> TokenManager:
    config = emu.connected_app("web")
    oauth = SalesforceOAuth(config, http_client=httpx.Client(transport=emu.transport()))
    opened.append(oauth)
    return TokenManager(oauth, InMemoryTokenStore(), leeway=LEEWAY, clock=clock)


@pytest.mark.parametrize("jwt_tokens", [True, False], ids=["jwt", "opaque"])
def test_refreshes_before_expiry_without_a_401(jwt_tokens: bool, closing: Any) -> None:
    emu = _emulator(jwt_tokens)
    clock = _Clock()
    manager = _manager(emu, clock, closing)
    token = Token.from_response(emu.issue_tokens("web"))
    assert is_jwt_access_token(token.access_token) is jwt_tokens
    manager.save("u1", token, revoke_superseded=False)
    stored = manager.get("u1")
    assert stored is not None
    if jwt_tokens:
        claims = jwt.decode(token.access_token, options={"verify_signature": False})
        assert stored.expires_at == claims["exp"]
    else:
        assert stored.expires_at is None  # opaque: Salesforce does not say
    with manager.client("u1", transport=emu.transport()) as client:
        assert client.get(REST).status_code == 200
        for _ in range(3):  # three session lifetimes later, on both clocks
            emu.advance_time(LIFETIME + 5)
            clock.offset += LIFETIME + 5
            assert client.get(REST).status_code == 200
    refreshes = emu.calls("refresh_token")
    if jwt_tokens:
        assert _rest_401s(emu) == 0  # every refresh came before the expiry
        assert refreshes == 3
        assert manager.get("u1").expires_at > clock()  # type: ignore[union-attr]
    else:
        assert _rest_401s(emu) == 3  # the old way: learn the expiry from a 401
        assert refreshes == 3


@pytest.mark.anyio
async def test_async_manager_refreshes_before_expiry_without_a_401() -> None:
    emu = _emulator(True)
    clock = _Clock()
    oauth = AsyncSalesforceOAuth(
        emu.connected_app("web"),
        http_client=httpx.AsyncClient(transport=emu.async_transport()),
    )
    manager = AsyncTokenManager(
        oauth, AsyncInMemoryTokenStore(), leeway=LEEWAY, clock=clock
    )
    await manager.save(
        "u1", Token.from_response(emu.issue_tokens("web")), revoke_superseded=False
    )
    async with await manager.client("u1", transport=emu.async_transport()) as client:
        for _ in range(2):
            assert (await client.get(REST)).status_code == 200
            emu.advance_time(LIFETIME + 5)
            clock.offset += LIFETIME + 5
        assert (await client.get(REST)).status_code == 200
    await oauth.aclose()
    assert _rest_401s(emu) == 0
    assert emu.calls("refresh_token") == 2


def _resigned(token: Token, key: Any, **changes: Any) -> Token:
    header = jwt.get_unverified_header(token.access_token)
    claims = jwt.decode(token.access_token, options={"verify_signature": False})
    claims.update(changes)
    forged = jwt.encode(claims, key, algorithm="RS256", headers=header)
    return dataclasses.replace(token, access_token=forged)


@pytest.mark.parametrize(
    "how", ["foreign_key", "foreign_issuer", "hs256", "no_exp"], ids=str
)
def test_a_jwt_that_does_not_verify_is_not_trusted_for_expiry(
    how: str, caplog: pytest.LogCaptureFixture, closing: Any
) -> None:
    emu = _emulator(True)
    manager = _manager(emu, _Clock(), closing)
    genuine = Token.from_response(emu.issue_tokens("web"))
    far = int(time.time()) + 10 * 365 * 86400  # what a forger would claim
    if how == "foreign_key":
        foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = _resigned(genuine, foreign, exp=far)
    elif how == "foreign_issuer":
        from sfoauth_emulator.crypto import cached_private_key
        from sfoauth_emulator.jwt_access import ACCESS_TOKEN_KEY

        # Signed with the right key, but naming another issuer than the token's host.
        token = _resigned(
            genuine,
            cached_private_key(ACCESS_TOKEN_KEY),
            iss="https://evil.my.salesforce.com",
            exp=far,
        )
    elif how == "hs256":
        claims = jwt.decode(genuine.access_token, options={"verify_signature": False})
        claims["exp"] = far
        forged = jwt.encode(claims, "x" * 32, algorithm="HS256")
        token = dataclasses.replace(genuine, access_token=forged)
    else:
        from sfoauth_emulator.crypto import cached_private_key
        from sfoauth_emulator.jwt_access import ACCESS_TOKEN_KEY

        claims = jwt.decode(genuine.access_token, options={"verify_signature": False})
        del claims["exp"]
        header = jwt.get_unverified_header(genuine.access_token)
        forged = jwt.encode(
            claims,
            cached_private_key(ACCESS_TOKEN_KEY),
            algorithm="RS256",
            headers=header,
        )
        token = dataclasses.replace(genuine, access_token=forged)
    with caplog.at_level(logging.WARNING, logger="sfoauth.security"):
        manager.save("u1", token, revoke_superseded=False)
    assert manager.get("u1").expires_at is None  # type: ignore[union-attr]
    assert "expiry is not trusted" in caplog.text
    assert token.access_token not in caplog.text


def test_key_set_fetches_are_cached_across_tokens(closing: Any) -> None:
    emu = _emulator(True)
    manager = _manager(emu, _Clock(), closing)
    for key in ("u1", "u2", "u3"):
        manager.save(
            key, Token.from_response(emu.issue_tokens("web")), revoke_superseded=False
        )
        assert manager.get(key).expires_at is not None  # type: ignore[union-attr]
    keys = [e for e in emu.request_log if e.path == "/id/keys"]
    assert len(keys) == 1
