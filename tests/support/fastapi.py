"""Helpers and fixtures for the FastAPI adapter: an emulator, an ``SFOAuth`` factory and a browser.

``browser_login`` walks the whole web server flow through the app (ASGI) and the
emulator (its in-process transport), the way a browser would.
"""

# No `from __future__ import annotations`: routes below are closures over `sf`, and
# FastAPI must evaluate their Annotated[..., Depends(sf.session)] hints at runtime.

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import Depends, FastAPI, Header

from sfoauth_core.storage import AsyncInMemoryTokenStore
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_fastapi import SalesforceSession, SFOAuth

APP_ORIGIN = "http://localhost:8000"
CALLBACK = APP_ORIGIN + "/salesforce/callback"
SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"
REST = "/services/data/v62.0/limits"


@pytest.fixture
def emu() -> SalesforceEmulator:
    emulator = SalesforceEmulator()
    emulator.apps["web"].is_refresh_token_rotation_enabled = True
    emulator.auto_approve = "jane@acme.com"
    return emulator


async def header_user(x_user: Annotated[str | None, Header()] = None) -> str | None:
    """An app's own auth, reduced to a header."""
    return x_user


def make_sf(emu: SalesforceEmulator, store: Any = None, **kwargs: Any) -> SFOAuth:
    config = emu.connected_app("web", redirect_uri=CALLBACK)
    kwargs.setdefault("cookie_secure", False)
    kwargs.setdefault("transport", emu.async_transport())
    return SFOAuth(
        config,
        store=store if store is not None else AsyncInMemoryTokenStore(),
        secret_key=SECRET_KEY,
        **kwargs,
    )


def make_api(sf: SFOAuth) -> FastAPI:
    api = FastAPI()
    api.include_router(sf.router, prefix="/salesforce")
    sf.add_exception_handlers(api)

    @api.get("/me")
    async def me(session: Annotated[SalesforceSession, Depends(sf.session)]) -> Any:
        r = await session.client.get(REST)
        return {"status": r.status_code, "org": session.org_id, "user": session.user_id}

    @api.get("/maybe")
    async def maybe(
        session: Annotated[SalesforceSession | None, Depends(sf.optional_session)],
    ) -> Any:
        return {"connected": session is not None}

    @api.get("/guarded", dependencies=[sf.required])
    async def guarded() -> Any:
        return {"ok": True}

    return api


@pytest.fixture
def sf_factory(emu: SalesforceEmulator) -> Callable[..., SFOAuth]:
    def factory(**kwargs: Any) -> SFOAuth:
        return make_sf(emu, **kwargs)

    return factory


@pytest.fixture
async def browser_factory() -> AsyncIterator[Callable[[FastAPI], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def factory(api: FastAPI, **headers: str) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url=APP_ORIGIN, headers=headers
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def authorize(emu: SalesforceEmulator, login_response: httpx.Response) -> str:
    """Follow the login redirect at the emulator; returns the callback URL."""
    assert login_response.status_code in (302, 303), login_response.text
    async with httpx.AsyncClient(transport=emu.async_transport()) as sf_browser:
        answer = await sf_browser.get(login_response.headers["location"])
    assert answer.status_code == 302, answer.text
    callback = answer.headers["location"]
    assert callback.startswith(CALLBACK)
    return callback


async def browser_login(
    emu: SalesforceEmulator, browser: httpx.AsyncClient, next_url: str = "/me"
) -> httpx.Response:
    """The whole web server flow (the interstitial's button: ``POST /login``);
    returns the callback's response."""
    login = await browser.post("/salesforce/login", data={"next": next_url})
    callback = await authorize(emu, login)
    return await browser.get(callback)
