"""The idle limit and the keep-alive (issue 12.2, reference 15.3), in real processes:
``sfoauth emulator`` with refresh-token rotation and a one-hour idle limit on its clock,
the Django project under ``runserver``, ``manage.py sfoauth_keepalive`` and
``sfoauth_status`` as the operator runs them, Chromium.

connect → the connection left idle past the limit dies (the person is asked to
reconnect) → reconnect → the keep-alive command, run after 0.6 of the limit, refreshes
it → 1.2 limits after the login (0.6 after the keep-alive) the pages still work, with no
reuse detected.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.browser import Browser
from support.journeys import (
    APP_USER,
    CONNECT_BUTTON,
    REASON_RENEW,
    Journey,
    Services,
    api_page_works,
    manage,
    site_env,
    start_django,
    wait_seconds,
)

from sfoauth_core.storage import TokenCipher

pytestmark = [pytest.mark.journey, pytest.mark.browser, pytest.mark.loopback]

LIMIT = 3600  # the app's idle limit, emulator seconds


def test_keepalive_journey(
    browser: Browser, services: Services, tmp_path: Path
) -> None:
    key = TokenCipher.generate_key()
    emulator, app_url = start_django(services, tmp_path, "wsgi", token_key=key)
    env = site_env(emulator, app_url, tmp_path, key)
    emulator.control(
        "PATCH",
        "apps/web",
        json={
            "refresh_token_policy": f"inactivity:{LIMIT}",
            "is_refresh_token_rotation_enabled": True,
        },
    )
    journey = Journey(browser, emulator, app_url, "/salesforce/login/")
    page = browser.page
    sync = "/api/sync/"

    def advance(seconds: float) -> None:
        emulator.control("POST", "advance", json={"seconds": seconds})

    with journey.step("log in to the app and connect Salesforce"):
        journey.goto(sync)
        page.locator("#id_username").fill(APP_USER[0])
        page.locator("#id_password").fill(APP_USER[1])
        journey.click("#login-button")
        journey.expect_interstitial(sync)
        journey.connect(sync)
        api_page_works(journey, sync)

    with journey.step("idle past the limit, no keep-alive: asked to reconnect"):
        advance(LIMIT + 60)
        emulator.expire()
        journey.goto(sync)
        journey.expect_interstitial(sync, REASON_RENEW)
        assert journey.new_refreshes() == 1  # refused once: the grant is dead

    with journey.step("reconnect: one click, Salesforce still knows the person"):
        page.get_by_role("button", name=CONNECT_BUTTON, exact=True).click()
        page.wait_for_url(app_url + sync)  # no login page: straight back
        api_page_works(journey, sync)

    with journey.step("0.6 of the limit later the operator's keep-alive refreshes it"):
        advance(LIMIT * 0.6)
        wait_seconds(1.2)  # the stored token must be older than --idle-for
        done = manage(env, "sfoauth_keepalive", "--idle-for", "1s")
        assert done.returncode == 0, done.stdout + done.stderr
        assert ": kept alive" in done.stdout, done.stdout
        assert "kept alive 1, needs a new login 0, failed 0" in done.stdout
        assert journey.new_refreshes() == 1

    with journey.step("1.2 limits after the login, 0.6 after the keep-alive: works"):
        advance(LIMIT * 0.6)
        emulator.expire()
        api_page_works(journey, sync)
        assert journey.new_refreshes() == 1
        assert emulator.control("GET", "stats")["reuse_detected"] == 0

    with journey.step("sfoauth_status: active, its idle age shown"):
        done = manage(env, "sfoauth_status")
        assert done.returncode == 0, done.stdout + done.stderr
        header, row = done.stdout.splitlines()[:2]
        columns = dict(zip(header.split("\t"), row.split("\t"), strict=True))
        assert columns["STATUS"] == "active", done.stdout
        assert columns["IDLE"].endswith("s"), done.stdout  # seconds: just refreshed
        assert columns["IDLE RISK"] == "-"  # no REFRESH_TOKEN_IDLE_LIMIT set

    journey.finish()
