"""The FastAPI example app: ``create_app()`` (run with ``uvicorn --factory``).

Pages (HTML):

=====================  ===========================================================
``GET /``              home: connection state, "Connect Salesforce" button
``GET /org``           ``Depends(sf.session)``: org limits and Accounts (SOQL) through
                       ``session.client``, refreshed silently when the token expires
``GET /integration``   ``Depends(sf.connection("integration"))``: the same through a
                       server-to-server JWT bearer connection
``GET /status``        what is stored for the connections (never a token value)
``GET|POST /salesforce/login``, ``GET /salesforce/callback``,
``POST /salesforce/disconnect``
                       sfoauth's router (``GET /salesforce/login`` is the "Connect
                       to Salesforce" page; the home page's button posts to it)
``GET /healthz``       ``ok`` (readiness probe)
=====================  ===========================================================

The visitor is identified by sfoauth's signed identity cookie (``CookieIdentity``), so
the example needs no app login of its own.
"""

# No `from __future__ import annotations`: FastAPI reads the Annotated[...] hints of
# routes that close over `sf` at runtime.

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from typing import Annotated, Any

import anyio
import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from sqlalchemy.ext.asyncio import create_async_engine

from sfoauth_core.exceptions import ReauthorizationRequired
from sfoauth_core.storage import TokenCipher
from sfoauth_fastapi import (
    Connection,
    SalesforceSession,
    SFOAuth,
    SQLAlchemyTokenStore,
)

from . import pages
from .settings import EMULATOR_JWT_USERNAME, ExampleSettings, public_pem

__all__ = ["ACCOUNT_SOQL", "create_app"]

logger = logging.getLogger("fastapi_example")

ACCOUNT_SOQL = "SELECT Id, Name, Industry FROM Account ORDER BY Name LIMIT 10"


class _Borrowed(httpx.AsyncBaseTransport):
    """Uses a transport without closing it (it belongs to sfoauth or the tests)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        return None


async def fetch_org_data(client: httpx.AsyncClient, version: str) -> dict[str, Any]:
    """Org limits and a SOQL query of Accounts, through a self-refreshing client.

    Raises:
        httpx.HTTPStatusError: the REST API answered with an error.
    """
    limits = await client.get(f"/services/data/v{version}/limits")
    limits.raise_for_status()
    query = await client.get(
        f"/services/data/v{version}/query", params={"q": ACCOUNT_SOQL}
    )
    query.raise_for_status()
    body = query.json()
    return {
        "limits": limits.json(),
        "accounts": body.get("records", []),
        "total": body.get("totalSize", 0),
    }


def create_app(
    settings: ExampleSettings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """Build the example app.

    Args:
        settings: default ``ExampleSettings.from_env()``.
        transport: an httpx transport for every call to Salesforce (tests pass the
            emulator's in-process transport).
    """
    settings = settings or ExampleSettings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(settings.database_url)
    store = SQLAlchemyTokenStore(
        engine, TokenCipher([settings.token_key]), create_tables=True
    )
    connections: dict[str, Connection] = {}
    if settings.integration is not None:
        connections["integration"] = Connection(
            settings.integration,
            grant="jwt_bearer",
            username=settings.integration_username,
        )
    sf = SFOAuth(
        settings.app,
        store=store,
        secret_key=settings.secret_key,
        connections=connections,
        transport=transport,
        unauthenticated="redirect",
        default_next="/org",
        cookie_secure=settings.cookie_secure,
    )

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        async with sf.lifespan(api):  # creates the tables (create_tables=True)
            yield
        await engine.dispose()

    api = FastAPI(title="sfoauth FastAPI example", lifespan=lifespan)
    api.state.sf = sf
    api.state.settings = settings
    api.include_router(sf.router, prefix="/salesforce")
    sf.add_exception_handlers(api)
    version = settings.api_version

    def html(title: str, body: str, status_code: int = 200) -> HTMLResponse:
        return HTMLResponse(
            pages.layout(title, body),
            status_code=status_code,
            headers={"Cache-Control": "no-store"},
        )

    async def user_record(request: Request) -> Any:
        assert sf.identity is not None
        visitor = sf.identity.key_from(request)
        if visitor is None:
            return None
        return await sf.manager.record(sf.key_for_user(visitor))

    @api.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    @api.get("/", response_class=HTMLResponse)
    async def home(
        session: Annotated[SalesforceSession | None, Depends(sf.optional_session)],
    ) -> HTMLResponse:
        mode = (
            f"the Salesforce emulator at {settings.emulator_url}"
            if settings.emulator_url
            else f"Salesforce at {settings.app.login_url}"
        )
        if session is None:
            state = (
                '<p id="connection-state" data-connected="no">'
                "Salesforce is not connected.</p>" + pages.connect_form("/org")
            )
        else:
            state = (
                '<p id="connection-state" data-connected="yes">Salesforce is '
                f"connected (org <code>{escape(session.org_id or '')}</code>).</p>"
                '<p><a id="org-link" href="/org">See your org</a></p>'
                + pages.disconnect_form("/")
            )
        return html(
            "sfoauth FastAPI example",
            f'<p class="note" id="mode">Talking to {escape(mode)}.</p>{state}',
        )

    @api.get("/org", response_class=HTMLResponse)
    async def org(
        session: Annotated[SalesforceSession, Depends(sf.session)],
    ) -> Any:
        try:
            data = await fetch_org_data(session.client, version)
            identity = await session.identity()
        except ReauthorizationRequired:
            # The login page says the connection needs to be renewed.
            return RedirectResponse("/salesforce/login?next=/org", status_code=303)
        except httpx.HTTPStatusError as exc:
            return html(
                "My org",
                f'<p id="rest-error" class="error">The REST API answered '
                f"{exc.response.status_code}.</p>",
                502,
            )
        body = (
            f'<p id="salesforce-user">Connected as '
            f"<strong>{escape(identity.username or '')}</strong> "
            f"(org <code>{escape(session.org_id or '')}</code>, "
            f"<code>{escape(session.instance_url)}</code>).</p>"
            f'<h2>Accounts (<span id="accounts-total">{data["total"]}</span>)</h2>'
            + pages.accounts_table(data["accounts"], "accounts")
            + "<h2>Org limits</h2>"
            + pages.limits_table(data["limits"], "org-limits")
            + pages.disconnect_form("/")
        )
        return html("My org", body)

    if "integration" in connections:
        integration_connection = sf.connection("integration")
        registered = {"done": not settings.register_jwt_key}
        register_lock = anyio.Lock()

        async def jwt_key_registered() -> None:
            """Emulator mode: give the emulator's JWT app our demo certificate."""
            if registered["done"]:
                return
            async with register_lock:
                if registered["done"]:
                    return
                assert settings.emulator_url and settings.integration is not None
                key = settings.integration.private_key
                assert key is not None
                patch = {
                    "certificate_pem": public_pem(key.reveal()),
                    "admin_approved_users": [
                        "jane@acme.com",
                        settings.integration_username or EMULATOR_JWT_USERNAME,
                    ],
                }
                async with httpx.AsyncClient(
                    transport=_Borrowed(transport) if transport else None
                ) as client:
                    answer = await client.patch(
                        settings.emulator_url + "/__emulator__/apps/jwt", json=patch
                    )
                    answer.raise_for_status()
                registered["done"] = True

        @api.get(
            "/integration",
            response_class=HTMLResponse,
            dependencies=[Depends(jwt_key_registered)],
        )
        async def integration(
            session: Annotated[SalesforceSession, Depends(integration_connection)],
        ) -> Any:
            try:
                data = await fetch_org_data(session.client, version)
            except httpx.HTTPStatusError as exc:
                return html(
                    "Integration (JWT bearer)",
                    f'<p id="rest-error" class="error">The REST API answered '
                    f"{exc.response.status_code}.</p>",
                    502,
                )
            body = (
                '<p id="integration-user">Server-to-server connection '
                "<code>integration</code> (JWT bearer) acting as "
                f"<strong>{escape(settings.integration_username or '')}</strong>, "
                f"org <code>{escape(session.org_id or '')}</code>.</p>"
                f"<h2>Accounts ({data['total']})</h2>"
                + pages.accounts_table(data["accounts"], "integration-accounts")
                + "<h2>Org limits</h2>"
                + pages.limits_table(data["limits"], "integration-limits")
            )
            return html("Integration (JWT bearer)", body)

    else:

        @api.get("/integration", response_class=HTMLResponse)
        async def integration_missing() -> HTMLResponse:
            return html(
                "Integration (JWT bearer)",
                '<p id="integration-not-configured" class="note">No integration '
                "connection: set SFOAUTH_JWT_PRIVATE_KEY_FILE and "
                "SFOAUTH_JWT_USERNAME (see example_projects/README.md).</p>",
            )

    @api.get("/status", response_class=HTMLResponse)
    async def status(request: Request) -> HTMLResponse:
        record = await user_record(request)
        integration_record = (
            await sf.connection("integration").manager.record(
                sf.connection("integration").key
            )
            if "integration" in connections
            else None
        )
        body = (
            '<h2>Your connection</h2><section id="user-connection">'
            + pages.connection_details("user", record)
            + "</section>"
            + (pages.disconnect_form("/status") if record is not None else "")
            + '<h2>Integration connection</h2><section id="integration-connection">'
            + pages.connection_details("integration", integration_record)
            + "</section>"
        )
        return html("Connection status", body)

    return api
