"""example_projects/django_site end to end: the Django project runs in a subprocess
(uvicorn + its ASGI app, after ``manage.py migrate`` seeded the demo user), the emulator
on a loopback port in this process; an httpx client plays the browser.

Django runs in its own process so that its settings never meet the test suite's
(``tests/django`` configures Django in this process).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("django")
pytest.importorskip("uvicorn")

import httpx
from support.examples import (
    DJANGO_SITE,
    PYTHON,
    csrf_token,
    free_port,
    login_and_consent,
    python_env,
    wait_for_http,
)

from sfoauth_core.testing import (
    DEFAULT_ORG_ID,
    DEFAULT_USER_ID,
    INTEGRATION_USER_ID,
    SalesforceEmulator,
)

pytestmark = pytest.mark.loopback

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class Site:
    url: str
    emulator: SalesforceEmulator
    emulator_url: str
    data_dir: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("django_site")
    emu = SalesforceEmulator()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emu.apps["web"].callback_urls.append(url + "/salesforce/callback")
    with emu.serve() as emulator_url:
        # No SFOAUTH_JWT_PRIVATE_KEY_FILE: the site makes its demo key and registers
        # it with the emulator itself, as when run by hand next to `sfoauth emulator`.
        env = python_env(
            EXAMPLE_APP_URL=url,
            EXAMPLE_DATA_DIR=str(data_dir),
            SFOAUTH_EMULATOR_URL=emulator_url,
            DJANGO_SETTINGS_MODULE="demo_site.settings",
        )
        log = (data_dir / "server.log").open("wb")
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=DJANGO_SITE,
            env=env,
            check=True,
            timeout=120,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "uvicorn",
                "demo_site.asgi:application",
                "--port",
                str(port),
                "--lifespan",
                "off",
                "--log-level",
                "warning",
            ],
            cwd=DJANGO_SITE,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_http(url + "/healthz", server)
            yield Site(url, emu, emulator_url, data_dir)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
                server.kill()
                server.wait()
            log.close()


def dd(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert match is not None, f"#{element_id} missing"
    return match.group(1)


def log_in(browser: httpx.Client, site: Site, password: str = "demo-password") -> None:
    page = browser.get(site.url + "/accounts/login/?next=/")
    answer = browser.post(
        site.url + "/accounts/login/",
        data={
            "csrfmiddlewaretoken": csrf_token(page.text),
            "username": "demo",
            "password": password,
            "next": "/",
        },
    )
    assert answer.status_code == 302, answer.text[:500]


def test_login_connect_refresh_integration_status_disconnect(site: Site) -> None:
    emu = site.emulator
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        anonymous = browser.get(site.url + "/org/")
        assert anonymous.status_code == 302
        assert anonymous.headers["location"] == "/accounts/login/?next=/org/"

        log_in(browser, site)  # the demo user the data migration seeded
        home = browser.get(site.url + "/")
        assert 'id="connection-state" data-connected="no"' in home.text
        assert 'id="connect-button"' in home.text

        # Connect: POST + CSRF, the emulator's login and consent pages, the callback.
        start = browser.post(
            site.url + "/salesforce/login/",
            data={"csrfmiddlewaretoken": csrf_token(home.text), "next": "/org/"},
        )
        assert start.status_code == 302, start.text[:500]
        authorize = start.headers["location"]
        assert authorize.startswith(site.emulator_url + "/services/oauth2/authorize?")
        callback = login_and_consent(browser, authorize)
        assert callback.startswith(site.url + "/salesforce/callback?code=")
        landed = browser.get(callback)
        assert (landed.status_code, landed.headers["location"]) == (302, "/org/")

        pages: list[str] = []
        org = browser.get(site.url + "/org/")
        assert org.status_code == 200, org.text[:2000]
        pages.append(org.text)
        names = re.findall(r'class="account-name">([^<]*)<', org.text)
        assert names == [
            "Acme Corporation",
            "Burlington Textiles",
            "Global Media",
        ]  # ORDER BY Name
        assert dd(org.text, "accounts-total") == "3"
        assert 'id="org-limits"' in org.text and "DailyApiRequests" in org.text
        assert "jane@acme.com" in org.text

        # The session expires at Salesforce: the page still works (one silent refresh).
        assert emu.expire_access_tokens() == 1
        again = browser.get(site.url + "/org/")
        assert again.status_code == 200
        assert again.text.count('class="account"') == 3
        assert emu.calls("refresh_token") == 1
        pages.append(again.text)

        integration = browser.get(site.url + "/integration/")
        assert integration.status_code == 200, integration.text[:2000]
        assert integration.text.count('class="account"') == 3
        assert "integration@acme.com" in integration.text
        assert emu.calls(JWT_GRANT) == 1
        pages.append(integration.text)

        status = browser.get(site.url + "/status/")
        pages.append(status.text)
        assert dd(status.text, "user-status") == "active"
        assert dd(status.text, "user-org-id") == DEFAULT_ORG_ID
        assert dd(status.text, "user-user-id") == DEFAULT_USER_ID
        assert dd(status.text, "user-instance-url") == site.emulator_url
        assert dd(status.text, "integration-user-id") == INTEGRATION_USER_ID
        assert dd(status.text, "integration-grant") == "jwt_bearer"

        with emu.state.lock:
            secrets = [*emu.state.access_tokens, *emu.state.refresh_tokens]
        assert len(secrets) >= 4
        database = (site.data_dir / "db.sqlite3").read_bytes()
        for secret in secrets:
            assert all(secret not in page for page in pages)
            assert secret.encode() not in database

        disconnected = browser.post(
            site.url + "/salesforce/disconnect/",
            data={"csrfmiddlewaretoken": csrf_token(status.text), "next": "/status/"},
        )
        assert (disconnected.status_code, disconnected.headers["location"]) == (
            302,
            "/status/",
        )
        assert any(e.path == "/services/oauth2/revoke" for e in emu.request_log)
        status = browser.get(site.url + "/status/")
        assert 'id="user-missing"' in status.text
        assert "You disconnected Salesforce." in status.text  # the message, shown here
        home = browser.get(site.url + "/")
        assert 'data-connected="no"' in home.text
        assert "You disconnected Salesforce." not in home.text  # and only once

        # No silent reconnect: the decorated page shows the interstitial, with the reason.
        org = browser.get(site.url + "/org/")
        assert org.headers["location"] == (
            "/salesforce/login/?next=%2Forg%2F&reason=disconnected"
        )
        interstitial = browser.get(site.url + org.headers["location"])
        assert interstitial.status_code == 200
        assert "<h1>Connect to Salesforce</h1>" in interstitial.text
        assert "You disconnected Salesforce." in interstitial.text
        assert "Continue to Salesforce" in interstitial.text
        assert emu.calls("authorization_code") == 1


def test_disconnect_needs_csrf_and_the_demo_password_is_checked(site: Site) -> None:
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        page = browser.get(site.url + "/accounts/login/")
        wrong = browser.post(
            site.url + "/accounts/login/",
            data={
                "csrfmiddlewaretoken": csrf_token(page.text),
                "username": "demo",
                "password": "not-it",
            },
        )
        assert wrong.status_code == 200 and 'id="login-error"' in wrong.text
        log_in(browser, site)
        forged = browser.post(site.url + "/salesforce/disconnect/", data={})
        assert forged.status_code == 403
