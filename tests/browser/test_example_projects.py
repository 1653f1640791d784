"""Both example projects in a real browser, started the way the README says:
``sfoauth demo django|fastapi``.

For each: the app's home → Connect → the emulator's login and consent pages → the
callback → the decorated page listing Accounts → the emulator expires every access token
(control API over HTTP) → reloading the decorated page still works, through exactly one
silent ``refresh_token`` call → the status page (no token value on it) → Disconnect
(revoked at Salesforce) → the decorated page now sends the person to log in again, and
logging in brings them back to it, after a click on the login page (neither adapter
starts a login on a page view).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from support.browser import REPO, Browser, answers, free_port, wait_until

from sfoauth_core.testing import (
    DEFAULT_ORG_ID,
    DEFAULT_PASSWORD,
    DEFAULT_USER_ID,
    DEFAULT_USERNAME,
)

pytestmark = [pytest.mark.browser, pytest.mark.loopback]

READY = "Press Ctrl-C to stop."
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
EMULATOR_SESSION_COOKIE = "sfemu_sid"
DJANGO_USER = ("demo", "demo-password")

# Salesforce-shaped secrets: an access token is `<org id>!<opaque>`, a refresh token
# starts with `5Aep`. Neither may ever be on a page.
ACCESS_TOKEN_SHAPE = re.compile(r"00D[A-Za-z0-9]{12,15}![A-Za-z0-9._-]{8,}")
REFRESH_TOKEN_SHAPE = re.compile(r"5Aep[A-Za-z0-9._]{16,}")


def demo_command() -> list[str]:
    """``sfoauth demo`` through the venv's Python."""
    return [sys.executable, "-m", "sfoauth_core.cli", "demo"]


@dataclass
class Demo:
    """A running ``sfoauth demo`` and its output so far."""

    app: str
    app_url: str
    emulator_url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        """``path`` on the app, with Django's trailing slash where it has one."""
        if self.app == "django" and path != "/":
            path += "/"
        return self.app_url + path

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the emulator's control API (``/__emulator__/<path>``)."""
        answer = httpx.request(
            method, f"{self.emulator_url}/__emulator__/{path}", timeout=10, **kwargs
        )
        answer.raise_for_status()
        return answer.json()

    def calls(self) -> dict[str, int]:
        """Token-endpoint calls so far, by grant type."""
        return dict(self.control("GET", "stats")["calls"])

    def log_paths(self) -> list[str]:
        return [entry["path"] for entry in self.control("GET", "log")]

    def describe(self) -> str:
        return "\n".join(self.output[-40:])


def _child_env() -> dict[str, str]:
    # Nothing from the developer's shell or the rest of the suite may point the demo
    # at a real org or other settings.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SFOAUTH_", "EXAMPLE_")) and k != "DJANGO_SETTINGS_MODULE"
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop(process: subprocess.Popen[str]) -> None:
    """Ctrl-C, as a person would; the whole process group is killed if that hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # our own new session only
            process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def running_demo(app: str) -> Iterator[Demo]:
    """``sfoauth demo <app> --port P --emulator-port Q`` on free loopback ports."""
    port, emulator_port = free_port(), free_port()
    command = [
        *demo_command(),
        app,
        "--port",
        str(port),
        "--emulator-port",
        str(emulator_port),
        "--no-browser",
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=_child_env(),
        start_new_session=True,  # its own process group: nothing of ours is signalled
    )
    demo = Demo(
        app,
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{emulator_port}",
        process,
    )

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            demo.output.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: READY in demo.output or process.poll() is not None,
            START_TIMEOUT,
            f"`sfoauth demo {app}` start-up",
        )
        assert process.poll() is None, f"the demo exited:\n{demo.describe()}"
        assert answers(demo.url("/healthz").rstrip("/")), demo.describe()
        assert f"  App:       {demo.app_url}/" in demo.output
        yield demo
    finally:
        _stop(process)
        reader.join(timeout=STOP_TIMEOUT)
        assert process.stdout is not None
        process.stdout.close()
    # A clean Ctrl-C stop (checked only when the test itself passed).
    assert process.returncode == 0, demo.describe()
    assert not answers(demo.emulator_url + "/.well-known/openid-configuration")


def _no_token_on(page: Any) -> None:
    html = page.content()
    assert not ACCESS_TOKEN_SHAPE.search(html), "an access token is on the page"
    assert not REFRESH_TOKEN_SHAPE.search(html), "a refresh token is on the page"


def _django_site_login(browser: Browser, demo: Demo) -> None:
    """The Django example needs its own user first (demo / demo-password)."""
    page = browser.page
    assert page.locator("#connection-state").get_attribute("data-connected") == "no"
    page.locator("#home-login-link").click()
    page.wait_for_url(demo.app_url + "/accounts/login/**")
    page.locator("#id_username").fill(DJANGO_USER[0])
    page.locator("#id_password").fill(DJANGO_USER[1])
    browser.shot("django-login")
    page.locator("#login-button").click()
    page.wait_for_url(demo.app_url + "/")
    assert DJANGO_USER[0] in page.locator("#django-user").inner_text()


def _salesforce_login(browser: Browser, demo: Demo) -> None:
    """On the emulator's login page: log in as jane@acme.com."""
    page = browser.page
    page.wait_for_url(demo.emulator_url + "/services/oauth2/authorize?**")
    assert page.title() == "Login | Salesforce"
    query = parse_qs(urlsplit(page.url).query)
    assert query["redirect_uri"] == [demo.app_url + "/salesforce/callback"]
    assert query["response_type"] == ["code"] and query["code_challenge"]
    page.get_by_label("Username").fill(DEFAULT_USERNAME)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    browser.shot("salesforce-login")
    page.get_by_role("button", name="Log In").click()
    page.wait_for_load_state()


def _check_org_page(browser: Browser, demo: Demo, step: str) -> None:
    page = browser.page
    assert page.url == demo.url("/org"), page.url
    assert page.locator("#page-title").inner_text() == "My org"
    assert DEFAULT_USERNAME in page.locator("#salesforce-user").inner_text()
    assert DEFAULT_ORG_ID in page.locator("#salesforce-user").inner_text()
    names = page.locator("#accounts tr.account td.account-name").all_inner_texts()
    assert len(names) >= 2 and all(names), names
    assert page.locator("#accounts-total").inner_text() == str(len(names))
    assert page.locator("#org-limits tr.limit").count() >= 1
    _no_token_on(page)
    browser.shot(step)


@pytest.mark.parametrize("app", ["fastapi", "django"])
def test_demo_login_refresh_status_disconnect(browser: Browser, app: str) -> None:
    page = browser.page
    with running_demo(app) as demo:
        # Home, not connected.
        page.goto(demo.app_url + "/")
        assert demo.emulator_url in page.locator("#mode").inner_text()
        browser.shot("home")
        if app == "django":
            _django_site_login(browser, demo)
        state = page.locator("#connection-state")
        assert state.get_attribute("data-connected") == "no"
        browser.shot("home-not-connected")

        # Connect: login and consent at the (emulated) Salesforce, then the callback.
        page.locator("#connect-button").click()
        _salesforce_login(browser, demo)
        assert page.title() == "Allow Access? | Salesforce"
        browser.shot("salesforce-consent")
        with page.expect_request(demo.app_url + "/salesforce/callback?**") as seen:
            page.get_by_role("button", name="Allow").click()
        callback = parse_qs(urlsplit(seen.value.url).query)
        assert set(callback) >= {"code", "state"} and "error" not in callback
        page.wait_for_url(demo.url("/org"))
        _check_org_page(browser, demo, "org-accounts")
        assert demo.calls() == {"authorization_code": 1}

        # Every access token expires; the decorated page refreshes silently, once.
        assert demo.control("POST", "expire", json={})["expired"] >= 1
        page.reload()
        _check_org_page(browser, demo, "org-after-silent-refresh")
        assert demo.calls() == {"authorization_code": 1, "refresh_token": 1}
        page.reload()  # the new token is stored: no second refresh
        assert demo.calls() == {"authorization_code": 1, "refresh_token": 1}

        # The status page: the stored connection, never a token.
        page.locator("#nav-status").click()
        page.wait_for_url(demo.url("/status"))
        assert page.locator("#user-status").inner_text() == "active"
        assert page.locator("#user-grant").inner_text() == "authorization_code"
        assert page.locator("#user-org-id").inner_text() == DEFAULT_ORG_ID
        assert page.locator("#user-user-id").inner_text() == DEFAULT_USER_ID
        assert page.locator("#user-instance-url").inner_text() == demo.emulator_url
        assert "refresh_token" in page.locator("#user-scopes").inner_text()
        _no_token_on(page)
        browser.shot("status-connected")

        # Disconnect: revoked at Salesforce, gone from the store.
        page.locator("#disconnect-button").click()
        page.wait_for_url(demo.url("/status"))
        assert page.locator("#user-missing").is_visible()
        browser.shot("status-disconnected")
        assert "/services/oauth2/revoke" in demo.log_paths()

        # The decorated page now sends the person to log in to Salesforce again. (The
        # emulator's session cookie is dropped, as if they had logged out there, so
        # that its login page shows.)
        page.context.clear_cookies(name=EMULATOR_SESSION_COOKIE)
        navigations: list[str] = []
        page.on(
            "request",
            lambda r: navigations.append(r.url) if r.is_navigation_request() else None,
        )
        page.goto(demo.url("/org"))
        if app == "django":
            # sfoauth_django's login view asks for a click (POST + CSRF) on a GET.
            page.wait_for_url(demo.url("/salesforce/login") + "?**")
            assert page.title() == "Connect to Salesforce"
            assert "You disconnected Salesforce." in page.content()
            browser.shot("connect-again")
            page.get_by_role("button", name="Continue to Salesforce").click()
        else:
            # sfoauth_fastapi's login page: the same click, and why the user is there.
            page.wait_for_url(demo.url("/salesforce/login") + "?**")
            assert page.title() == "Connect to Salesforce"
            reason = page.locator("#sfoauth-reason").inner_text()
            assert reason == "You disconnected Salesforce."
            browser.shot("connect-again")
            page.get_by_role("button", name="Continue to Salesforce").click()
        _salesforce_login(browser, demo)
        assert urlsplit(navigations[1]).path.rstrip("/") == "/salesforce/login"
        assert parse_qs(urlsplit(navigations[1]).query)["next"] == [
            urlsplit(demo.url("/org")).path
        ]
        # The consent is remembered: straight back to the decorated page.
        page.wait_for_url(demo.url("/org"))
        _check_org_page(browser, demo, "org-reconnected")
        assert demo.calls() == {"authorization_code": 2, "refresh_token": 1}
