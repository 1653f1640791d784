"""Token keys as an operator meets them (issue 13, defects 7 and 9), in real processes:
``sfoauth emulator``, the Django project under ``runserver``, ``manage.py`` commands,
Chromium.

connect → rotate the key (new key first, old one kept) → ``sfoauth_reencrypt`` → restart
with the new key only: still connected, no token call → start with a key that never
encrypted the rows: ``manage.py check --database default`` says ``sfoauth_django.E020``
and the page asks to reconnect (never a 500) → the right key back: connected again
without a reconnect → rotate again with the stored row tampered with:
``sfoauth_reencrypt`` reports it and exits non-zero, the page asks to reconnect →
reconnect: works again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from support.browser import Browser
from support.journeys import (
    APP_USER,
    CONNECT_BUTTON,
    Journey,
    Service,
    Services,
    api_page_works,
    manage,
    site_env,
    start_django,
)

from sfoauth_core.storage import TokenCipher

pytestmark = [pytest.mark.journey, pytest.mark.browser, pytest.mark.loopback]


def restart(service: Service, token_key: str) -> None:
    service.stop()
    service.env["JOURNEY_TOKEN_KEY"] = token_key
    service.start()


def test_django_token_keys_journey(
    browser: Browser, services: Services, tmp_path: Path
) -> None:
    old_key, new_key, stranger = (TokenCipher.generate_key() for _ in range(3))
    emulator, app_url = start_django(services, tmp_path, "wsgi", token_key=old_key)
    django = services.all[-1]
    env = site_env(emulator, app_url, tmp_path, old_key)
    journey = Journey(browser, emulator, app_url, "/salesforce/login/")
    page = browser.page
    sync = "/api/sync/"

    with journey.step("log in to the app and connect Salesforce"):
        journey.goto(sync)
        page.locator("#id_username").fill(APP_USER[0])
        page.locator("#id_password").fill(APP_USER[1])
        journey.click("#login-button")
        journey.expect_interstitial(sync)
        journey.connect(sync)
        api_page_works(journey, sync)
        assert emulator.calls() == {"authorization_code": 1}

    with journey.step("rotate: new key first, old kept; reencrypt; new key only"):
        rotated = {**env, "JOURNEY_TOKEN_KEY": f"{new_key},{old_key}"}
        done = manage(rotated, "sfoauth_reencrypt")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Re-encrypted 1 connection(s)" in done.stdout, done.stdout
        restart(django, new_key)
        api_page_works(journey, sync)
        assert journey.new_refreshes() == 0
        assert emulator.calls() == {"authorization_code": 1}  # no new login either
        done = manage(
            {**env, "JOURNEY_TOKEN_KEY": new_key}, "check", "--database", "default"
        )
        assert done.returncode == 0, done.stdout + done.stderr

    with journey.step("a key that never encrypted the rows: check says E020, no 500"):
        done = manage(
            {**env, "JOURNEY_TOKEN_KEY": stranger}, "check", "--database", "default"
        )
        assert done.returncode != 0
        assert "sfoauth_django.E020" in done.stdout + done.stderr, done.stderr
        restart(django, stranger)
        journey.goto(sync)
        journey.expect_interstitial(sync)  # asked to reconnect: not a server error
        assert emulator.calls() == {"authorization_code": 1}  # nothing sent anywhere

    with journey.step("the right key back: connected again, no reconnect, no call"):
        restart(django, new_key)
        api_page_works(journey, sync)
        assert emulator.calls() == {"authorization_code": 1}

    with journey.step("rotate again, one row tampered: reported, reconnect asked"):
        third = TokenCipher.generate_key()
        with sqlite3.connect(tmp_path / "db.sqlite3") as db:
            db.execute(
                "UPDATE sfoauth_django_salesforceconnection "
                "SET token_ciphertext = substr(token_ciphertext, 1, 40) || 'AAAA' "
                "|| substr(token_ciphertext, 45)"
            )
        keys = f"{third},{new_key}"
        done = manage({**env, "JOURNEY_TOKEN_KEY": keys}, "sfoauth_reencrypt")
        assert done.returncode != 0, done.stdout
        assert "Re-encrypted 0 connection(s)" in done.stdout, done.stdout
        assert "Traceback" not in done.stderr, done.stderr
        restart(django, keys)
        journey.goto(sync)
        journey.expect_interstitial(sync)

    with journey.step("reconnect: one click, Salesforce still knows the person"):
        page.get_by_role("button", name=CONNECT_BUTTON, exact=True).click()
        page.wait_for_url(app_url + sync)  # no login page: straight back
        api_page_works(journey, sync)
        assert emulator.calls() == {"authorization_code": 2}

    journey.finish()
