"""The journeys' FastAPI app, against a separate `sfoauth emulator`; run with
``uvicorn journey_app:api [--workers 2]``.

Read from the environment the journey sets: ``JOURNEY_EMULATOR_URL``,
``JOURNEY_SANDBOX_URL``, ``JOURNEY_APP_URL``, ``JOURNEY_DATABASE_URL`` (SQLAlchemy
async URL; the tables are created by the journey before the workers start),
``JOURNEY_TABLE_PREFIX``, ``JOURNEY_TOKEN_KEY`` and ``JOURNEY_SECRET_KEY``.

The app has its own login (a name in a cookie, enough for a test app) so that
anonymous visitors are sent there (``app_login_url``), an undecorated home page, a
page calling the REST API, an identity page and a disconnect button.
"""

import html
import os
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import create_async_engine

from sfoauth_core import ConnectedApp
from sfoauth_core.storage import TokenCipher
from sfoauth_core.testing import DEFAULT_CLIENT_SECRET, WEB_APP_CLIENT_ID
from sfoauth_fastapi import SalesforceSession, SFOAuth
from sfoauth_fastapi.storage import SQLAlchemyTokenStore, build_tables

EMULATOR_URL = os.environ["JOURNEY_EMULATOR_URL"]
APP_URL = os.environ["JOURNEY_APP_URL"]
USER_COOKIE = "journey_user"
QUERY = {"q": "SELECT Name FROM Account"}

engine = create_async_engine(os.environ["JOURNEY_DATABASE_URL"])
tables = build_tables(prefix=os.environ["JOURNEY_TABLE_PREFIX"])
store = SQLAlchemyTokenStore(
    engine, TokenCipher([os.environ["JOURNEY_TOKEN_KEY"]]), tables=tables
)


def current_user(request: Request) -> str | None:
    """The app's own user (its login page sets the cookie)."""
    return request.cookies.get(USER_COOKIE) or None


sf = SFOAuth(
    ConnectedApp(
        client_id=WEB_APP_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        redirect_uri=APP_URL + "/salesforce/callback",
        login_url=EMULATOR_URL,
        scopes=["api", "refresh_token", "id"],
        allow_loopback=True,
    ),
    store=store,
    secret_key=os.environ["JOURNEY_SECRET_KEY"],
    user_key=current_user,
    app_login_url="/login",
    cookie_secure=False,
    # ?domain=sandbox: the emulator's sandbox (its test.salesforce.com).
    login_urls={"sandbox": os.environ["JOURNEY_SANDBOX_URL"]},
)
api = FastAPI(lifespan=sf.lifespan)
api.include_router(sf.router, prefix="/salesforce")
sf.add_exception_handlers(api)


def page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/api'>Accounts</a> "
        "<a href='/identity'>Identity</a></nav>"
        f"<h1 id='page-title'>{html.escape(title)}</h1>{body}"
        f"<p>process <span id='pid'>{os.getpid()}</span></p></body></html>"
    )


@api.get("/")
async def home(
    session: Annotated[SalesforceSession | None, Depends(sf.optional_session)],
) -> HTMLResponse:
    if session is None:
        return page("Home", "<p id='not-connected'>Not connected to Salesforce.</p>")
    return page(
        "Home",
        f"<p id='instance-url'>{html.escape(session.instance_url)}</p>"
        "<form method='post' action='/salesforce/disconnect?next=/'>"
        "<button id='disconnect-button' type='submit'>Disconnect</button></form>",
    )


@api.get("/login")
async def login_form(next: str = "/") -> HTMLResponse:  # noqa: A002 - the query name
    return page(
        "Log in",
        "<form method='post' action='/login'>"
        f"<input type='hidden' name='next' value='{html.escape(next)}'>"
        "<label>Username <input id='id_username' name='username'></label>"
        "<button id='login-button' type='submit'>Log in</button></form>",
    )


@api.post("/login")
async def login(
    username: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",  # noqa: A002 - the form field's name
) -> RedirectResponse:
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    answer = RedirectResponse(quote(target, safe="/?=&"), status_code=303)
    answer.set_cookie(USER_COOKIE, username, httponly=True, samesite="lax")
    return answer


@api.get("/api")
async def accounts(
    session: Annotated[SalesforceSession, Depends(sf.session)],
) -> HTMLResponse:
    response = await session.client.get("/services/data/v62.0/query", params=QUERY)
    names = []
    if response.status_code == 200:
        names = [r.get("Name") for r in response.json().get("records", [])]
    items = "".join(f"<li class='account'>{html.escape(str(n))}</li>" for n in names)
    return page(
        "Accounts",
        f"<p>API status <span id='api-status'>{response.status_code}</span></p>"
        f"<ul id='accounts'>{items}</ul>",
    )


@api.get("/identity")
async def identity(
    session: Annotated[SalesforceSession, Depends(sf.session)],
) -> HTMLResponse:
    who = await session.identity()
    return page("Identity", f"<p id='username'>{html.escape(who.username)}</p>")


@api.get("/pid")
async def pid() -> dict[str, int]:
    """Which worker answers (no Salesforce): the journey pins a connection to one."""
    return {"pid": os.getpid()}
