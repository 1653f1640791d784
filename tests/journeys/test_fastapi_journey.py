"""The FastAPI journey (issue 10): one person's first hour with sfoauth_fastapi, in real
processes: ``sfoauth emulator``, the app in ``fastapi_site/`` under uvicorn with two
workers on PostgreSQL (and a short run with one worker on SQLite), Chromium.

anonymous → the app's own login (``app_login_url``) → Connect page → login → API on
both workers → expire → API on worker A (one refresh) → expire again inside the cache
lifetime → API on worker B, whose cached token predates both expiries (one refresh) →
worker A (re-read, no refresh) → expire → identity → emulator stopped → 503 page (and
JSON) → emulator back with every grant forgotten → pages still render, reconnect
message → reconnect → Salesforce failing after retries → 503 page → back → disconnect →
no silent reconnect. Each step checks what the person sees and the exact number of
token-endpoint calls (the emulator's control API).
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from support.browser import Browser, free_port
from support.journeys import (
    PYTHON,
    REASON_DISCONNECTED,
    REASON_RENEW,
    SANDBOX_USERNAME,
    Emulator,
    Journey,
    Service,
    Services,
    child_env,
    query_of,
    salesforce_login,
    wait_seconds,
)

from sfoauth_core.storage import TokenCipher
from sfoauth_core.testing import DEFAULT_USERNAME

pytestmark = [pytest.mark.journey, pytest.mark.browser, pytest.mark.loopback]

SITE = Path(__file__).resolve().parent / "fastapi_site"
TABLE_PREFIX = "sfoauth_journey_"
#: New connections tried to reach the other worker.
MAX_CONNECTS = 40


async def _fresh_tables(database_url: str) -> None:
    """The app's tables, empty, created once before the workers start (two workers
    creating them at once would race)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from sfoauth_fastapi.storage import build_tables, create_tables, drop_tables

    engine = create_async_engine(database_url)
    try:
        which = build_tables(prefix=TABLE_PREFIX)
        await drop_tables(engine, which)
        await create_tables(engine, which)
    finally:
        await engine.dispose()


def start_fastapi(
    services: Services, work: Path, database_url: str, workers: int
) -> tuple[Emulator, str]:
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    emulator = Emulator(services, work, [app_url + "/salesforce/callback"])
    emulator.start()
    # Playwright's sync API runs an event loop in this thread: use another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _fresh_tables(database_url)).result(timeout=60)
    env = child_env(
        JOURNEY_EMULATOR_URL=emulator.url,
        JOURNEY_SANDBOX_URL=emulator.sandbox_url,
        JOURNEY_APP_URL=app_url,
        JOURNEY_DATABASE_URL=database_url,
        JOURNEY_TABLE_PREFIX=TABLE_PREFIX,
        JOURNEY_TOKEN_KEY=TokenCipher.generate_key(),
        JOURNEY_SECRET_KEY="journey-tests-only-" + "s" * 40,
    )
    services.add(
        Service(
            f"fastapi-{workers}-workers",
            [
                PYTHON,
                "-m",
                "uvicorn",
                "journey_app:api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--timeout-keep-alive",
                "120",  # the journey's pinned connections stay on their worker
            ],
            cwd=SITE,
            env=env,
            log_dir=services.log_dir,
            ready_url=app_url + "/login",
        )
    ).start()
    return emulator, app_url


def api_page_works(journey: Journey, path: str = "/api") -> None:
    journey.goto(path)
    journey.at(path)
    page = journey.page
    assert journey.text_of("#api-status") == "200", journey.text()[:800]
    assert page.locator("#accounts li.account").count() >= 1


class Worker:
    """An HTTP connection kept open to one uvicorn worker, carrying the browser's
    cookies: the journey decides which worker serves a request."""

    def __init__(self, journey: Journey, avoid: set[str]) -> None:
        cookies = journey.page.context.cookies(journey.app_url)
        headers = {
            "Cookie": "; ".join(f"{c['name']}={c['value']}" for c in cookies),
            "Accept": "text/html",
        }
        for _ in range(MAX_CONNECTS):
            client = httpx.Client(
                base_url=journey.app_url, headers=headers, timeout=30.0
            )
            self.pid = str(client.get("/pid").json()["pid"])
            if self.pid not in avoid:
                self.client = client
                return
            client.close()
        raise AssertionError(f"no worker other than {avoid} answered")

    def api_page_works(self) -> None:
        """The API page, served by this worker, with the Accounts."""
        answer = self.client.get("/api")
        assert answer.status_code == 200, (answer.status_code, answer.text[:500])
        pid = re.search(r"id='pid'>(\d+)<", answer.text)
        assert pid is not None and pid.group(1) == self.pid, "served by another worker"
        status = re.search(r"id='api-status'>(\d+)<", answer.text)
        assert status is not None and status.group(1) == "200", answer.text[:500]
        assert "class='account'" in answer.text

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def postgres_url(postgres_dsn: str) -> str:
    return postgres_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.mark.postgres
def test_fastapi_journey_two_workers_postgresql(
    browser: Browser, services: Services, tmp_path: Path, postgres_url: str
) -> None:
    emulator, app_url = start_fastapi(services, tmp_path, postgres_url, workers=2)
    journey = Journey(browser, emulator, app_url, "/salesforce/login")
    page = browser.page
    login_and_connect(journey)

    a = Worker(journey, avoid=set())
    b = Worker(journey, avoid={a.pid})
    try:
        with journey.step("both workers serve the connection, no token call"):
            a.api_page_works()
            b.api_page_works()
            assert emulator.calls() == {"authorization_code": 1}

        with journey.step("expire: worker A refreshes once"):
            emulator.expire()
            a.api_page_works()
            assert journey.new_refreshes() == 1

        with journey.step(
            "expire again inside the cache lifetime: worker B, whose cached token "
            "is the one from before the first expiry, refreshes once"
        ):
            emulator.expire()
            b.api_page_works()
            assert journey.new_refreshes() == 1

        with journey.step(
            "worker A: its cached token was replaced, re-read, no refresh"
        ):
            a.api_page_works()
            b.api_page_works()
            api_page_works(journey)
            assert journey.new_refreshes() == 0
    finally:
        a.close()
        b.close()

    with journey.step("expire, identity page refreshes once"):
        emulator.expire()
        journey.goto("/identity")
        assert journey.text_of("#username") == DEFAULT_USERNAME
        assert journey.new_refreshes() == 1

    with journey.step("emulator stopped: a 503 page, JSON for API clients"):
        emulator.stop()
        journey.expect_unavailable("/api")
        cookies = page.context.cookies(app_url)
        answer = httpx.get(
            app_url + "/api",
            headers={
                "Cookie": "; ".join(f"{c['name']}={c['value']}" for c in cookies),
                "Accept": "application/json",
            },
            timeout=30.0,
        )
        assert answer.status_code == 503, answer.text[:300]
        assert answer.json() == {"detail": "SFOAUTH_SALESFORCE_UNAVAILABLE"}
        journey.goto("/")

    with journey.step("emulator back, every grant unknown: the home page renders"):
        emulator.start()
        journey.goto("/")

    with journey.step("decorated page: the refresh is refused once, reconnect message"):
        journey.goto("/api")
        journey.expect_interstitial("/api", REASON_RENEW)
        assert emulator.calls() == {"refresh_token": 1}  # refused once, not retried

    with journey.step("after the refusal: the optional-session page renders"):
        journey.goto("/")
        assert page.locator("#not-connected").is_visible(), journey.text()
        assert emulator.calls() == {"refresh_token": 1}

    with journey.step("reconnect"):
        journey.goto("/api")
        journey.connect("/api")
        api_page_works(journey)
        assert emulator.calls() == {"refresh_token": 1, "authorization_code": 1}

    with journey.step("Salesforce failing after retries: a 503 page, then back"):
        emulator.expire()
        emulator.fail_token_endpoint()
        journey.expect_unavailable("/api")
        emulator.clear_faults()
        failed = emulator.refreshes()
        api_page_works(journey)
        assert emulator.refreshes() == failed + 1

    disconnect_for_good(journey)
    journey.finish()


def test_fastapi_journey_sqlite_short(
    browser: Browser, services: Services, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'journey.sqlite3'}"
    emulator, app_url = start_fastapi(services, tmp_path, database_url, workers=1)
    journey = Journey(browser, emulator, app_url, "/salesforce/login")
    login_and_connect(journey)

    with journey.step("expire: one refresh"):
        emulator.expire()
        api_page_works(journey)
        api_page_works(journey)
        assert journey.new_refreshes() == 1

    disconnect_for_good(journey)
    journey.finish()


def login_and_connect(journey: Journey) -> None:
    emulator, page = journey.emulator, journey.page
    with journey.step("anonymous: the app's own login, then the Connect page"):
        journey.goto("/api")
        assert urlsplit(page.url).path == "/login", page.url
        assert query_of(page.url) == {"next": ["/api"]}, page.url
        page.locator("#id_username").fill("journey")
        journey.click("#login-button")
        journey.expect_interstitial("/api")
        assert emulator.calls() == {}  # nothing happens without the click

    with journey.step("connect: one click, Salesforce login, back on the page"):
        journey.connect("/api")
        api_page_works(journey)
        assert emulator.calls() == {"authorization_code": 1}


def disconnect_for_good(journey: Journey) -> None:
    emulator, page = journey.emulator, journey.page
    with journey.step("disconnect"):
        journey.goto("/")
        journey.click("#disconnect-button")
        journey.at("/")
        assert page.locator("#not-connected").is_visible(), journey.text()
        assert "/services/oauth2/revoke" in emulator.paths()
        assert journey.new_refreshes() == 0

    with journey.step("after disconnect: no silent reconnect"):
        before = emulator.calls()
        journey.goto("/api")
        journey.expect_interstitial("/api", REASON_DISCONNECTED)
        wait_seconds(1.0)
        journey.expect_interstitial("/api", REASON_DISCONNECTED)
        assert emulator.calls() == before


def test_fastapi_sandbox_journey(
    browser: Browser, services: Services, tmp_path: Path
) -> None:
    """Issue 11.2: a login at the sandbox (``login_urls`` + ``?domain=sandbox``, the
    emulator's test.salesforce.com on ``localhost``) keeps working after its first
    refresh; refreshes and the disconnect go to the sandbox, which alone knows the
    grant."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'journey.sqlite3'}"
    emulator, app_url = start_fastapi(services, tmp_path, database_url, workers=1)
    journey = Journey(browser, emulator, app_url, "/salesforce/login")
    page = browser.page
    sandbox = f"localhost:{emulator.port}"
    token_path = "/services/oauth2/token"

    with journey.step("app login, then the Connect page for the sandbox"):
        journey.goto(
            "/login?next=" + quote("/salesforce/login?next=/api&domain=sandbox")
        )
        page.locator("#id_username").fill("journey")
        journey.click("#login-button")
        journey.expect_interstitial("/api")
        assert emulator.calls() == {}

    with journey.step("connect at the sandbox, as its user"):
        journey.connect("/api", sandbox=True)
        api_page_works(journey)
        assert emulator.hosts(token_path) == [sandbox]
        journey.goto("/")
        assert journey.text_of("#instance-url") == emulator.sandbox_url

    with journey.step("expire: the refresh goes to the sandbox, the page works"):
        emulator.expire()
        api_page_works(journey)
        assert journey.new_refreshes() == 1
        assert emulator.hosts(token_path, "refresh_token") == [sandbox]

    with journey.step("expire, identity page: the sandbox user, refreshed there"):
        emulator.expire()
        journey.goto("/identity")
        assert journey.text_of("#username") == SANDBOX_USERNAME
        assert emulator.hosts(token_path, "refresh_token") == [sandbox] * 2

    with journey.step("disconnect: revoked at the sandbox"):
        journey.goto("/")
        journey.click("#disconnect-button")
        journey.at("/")
        assert page.locator("#not-connected").is_visible(), journey.text()
        assert emulator.hosts("/services/oauth2/revoke") == [sandbox]
        assert journey.new_refreshes() == 0
    journey.finish()


def test_fastapi_journey_app_access_refused(
    browser: Browser, services: Services, tmp_path: Path
) -> None:
    """Issue 12 item 3: Salesforce refuses the app for this user (admin approval
    missing, answered at the code exchange as the reference says): the person lands on
    a page that says what their Salesforce admin must change, and connects once the
    admin did."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'journey.sqlite3'}"
    emulator, app_url = start_fastapi(services, tmp_path, database_url, workers=1)
    journey = Journey(browser, emulator, app_url, "/salesforce/login")
    page = journey.page
    with journey.step("anonymous: the app's own login, then the Connect page"):
        journey.goto("/api")
        page.locator("#id_username").fill("journey")
        journey.click("#login-button")
        journey.expect_interstitial("/api")

    with journey.step("the app is admin-approved only: a page that says what to fix"):
        emulator.control(
            "PATCH", "apps/web", json={"permitted_users": "admin_approved"}
        )
        page.get_by_role("button", name="Continue to Salesforce", exact=True).click()
        salesforce_login(journey.browser, emulator)
        page.wait_for_load_state()
        assert page.title() == "Salesforce refused access to this app", journey.text()
        hint = journey.text_of("#sfoauth-hint") or ""
        assert "permission set" in hint, journey.text()
        assert "Traceback" not in page.content()
        assert emulator.calls() == {"authorization_code": 1}  # refused there

    with journey.step("the admin approved the user: try again, connected"):
        emulator.control("PATCH", "apps/web", json={"permitted_users": "all"})
        journey.click("#sfoauth-action")
        journey.expect_interstitial("/api")
        # Salesforce still knows the browser and its consent: straight back.
        page.get_by_role("button", name="Continue to Salesforce", exact=True).click()
        page.wait_for_url(app_url + "/api")
        assert "API status 200" in journey.text(), journey.text()
        assert emulator.calls() == {"authorization_code": 2}
    journey.finish()
