"""A person logs in through the emulator's pages in a real browser (web server flow).

A tiny callback app (stdlib ``http.server`` on a loopback port, the sync
:class:`SalesforceOAuth` client) plays the role of a site: ``/login`` starts the flow
(PKCE, ``state`` kept in a server-side session behind a cookie), and
``/salesforce/callback`` checks ``state``, exchanges the code and shows the user from
UserInfo. The browser goes: site → authorize URL → login page → consent page →
callback → the page naming the user. Also: Deny answers ``access_denied``, a wrong
password keeps the person on the login page with Salesforce's error, and a second
login in the same browser reuses the emulator's session and the remembered consent.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from support.browser import Browser

from sfoauth_core import SalesforceOAuth
from sfoauth_core.exceptions import OAuthProtocolError, SFOAuthError
from sfoauth_core.testing import (
    DEFAULT_PASSWORD,
    DEFAULT_USER_ID,
    DEFAULT_USERNAME,
    SalesforceEmulator,
)
from sfoauth_core.tokens import AuthorizationRequest

pytestmark = [pytest.mark.browser, pytest.mark.loopback]

SESSION_COOKIE = "site_sid"
LOGIN_FAILED = "Please check your username and password."


@dataclass
class CallbackSite:
    """What the tiny site saw: pending authorizations by session, and the tokens it
    got (kept out of any page)."""

    oauth: SalesforceOAuth
    origin: str = ""
    pending: dict[str, AuthorizationRequest] = field(default_factory=dict)
    tokens: list[Any] = field(default_factory=list)
    callbacks: list[str] = field(default_factory=list)


def _page(title: str, body: str, status: int = 200) -> tuple[int, str]:
    html = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title></head><body>{body}</body></html>"
    )
    return status, html


def _handler(site: CallbackSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep the test output clean

        def _send(
            self, status: int, html: str = "", headers: dict[str, str] | None = None
        ) -> None:
            body = html.encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _session(self) -> str | None:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
            morsel = cookie.get(SESSION_COOKIE)
            return morsel.value if morsel else None

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/":
                self._send(*_page("Site", "<h1>Site</h1><a href='/login'>Connect</a>"))
            elif path == "/login":
                sid = secrets.token_urlsafe(16)
                request = site.oauth.authorization_url()
                site.pending[sid] = request
                cookie = f"{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax"
                self._send(302, headers={"Location": request.url, "Set-Cookie": cookie})
            elif path == "/salesforce/callback":
                self._callback()
            else:
                self._send(*_page("Not found", "<h1>Not found</h1>", 404))

        def _callback(self) -> None:
            url = site.origin + self.path
            site.callbacks.append(url)
            sid = self._session()
            pending = site.pending.pop(sid, None) if sid else None
            if pending is None:
                self._send(*_page("Error", "<p id='error'>no pending login</p>", 400))
                return
            try:
                code = site.oauth.parse_authorization_response(
                    url, expected_state=pending.state
                )
                token = site.oauth.exchange_code(
                    code, code_verifier=pending.code_verifier
                )
                claims = site.oauth.userinfo(token)
            except OAuthProtocolError as exc:
                body = (
                    "<h1>Not connected</h1>"
                    f"<p id='error'>{escape(exc.error)}</p>"
                    f"<p id='description'>{escape(exc.description)}</p>"
                )
                self._send(*_page("Not connected", body, 400))
                return
            except SFOAuthError as exc:  # pragma: no cover - shown if it ever happens
                body = f"<p id='error'>{escape(type(exc).__name__)}</p>"
                self._send(*_page("Error", body, 500))
                return
            site.tokens.append(token)
            body = (
                "<h1>Connected to Salesforce</h1>"
                f"<p>Hello, <b id='name'>{escape(str(claims.get('name')))}</b></p>"
                f"<p id='username'>{escape(str(claims.get('preferred_username')))}</p>"
                f"<p id='user-id'>{escape(str(claims.get('user_id')))}</p>"
                f"<p id='instance'>{escape(str(token.instance_url))}</p>"
            )
            self._send(*_page("Connected", body))

    return Handler


@dataclass
class World:
    emu: SalesforceEmulator
    emulator_url: str
    site: CallbackSite
    site_url: str


@pytest.fixture
def world() -> Iterator[World]:
    """The emulator and the callback site, each on its own loopback port."""
    emu = SalesforceEmulator()
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    site_url = f"http://127.0.0.1:{server.server_address[1]}"
    emu.apps["web"].callback_urls.append(site_url + "/salesforce/callback")
    with emu.serve() as emulator_url:
        app = emu.connected_app("web", redirect_uri=site_url + "/salesforce/callback")
        with SalesforceOAuth(app) as oauth:
            site = CallbackSite(oauth=oauth, origin=site_url)
            server.RequestHandlerClass = _handler(site)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                yield World(emu, emulator_url, site, site_url)
            finally:
                server.shutdown()
                server.server_close()
                thread.join(timeout=10)


def _log_in(browser: Browser, world: World, password: str = DEFAULT_PASSWORD) -> None:
    """From the site's home page to the emulator's login page, then submit it."""
    page = browser.page
    page.goto(world.site_url + "/")
    page.get_by_role("link", name="Connect").click()
    page.wait_for_url(world.emulator_url + "/services/oauth2/authorize?**")
    assert page.title() == "Login | Salesforce"
    query = parse_qs(urlsplit(page.url).query)
    assert query["response_type"] == ["code"]
    assert len(query["code_challenge"][0]) == 43  # PKCE S256 (Salesforce's default)
    assert query["redirect_uri"] == [world.site_url + "/salesforce/callback"]
    browser.shot("login-page")
    page.get_by_label("Username").fill(DEFAULT_USERNAME)
    page.get_by_label("Password").fill(password)
    browser.shot("login-filled")
    page.get_by_role("button", name="Log In").click()
    page.wait_for_load_state()


def test_login_consent_callback_shows_the_user(browser: Browser, world: World) -> None:
    page = browser.page
    _log_in(browser, world)

    assert page.title() == "Allow Access? | Salesforce"
    assert page.get_by_role("heading").inner_text() == "Allow Access?"
    assert DEFAULT_USERNAME in page.locator("main").inner_text()
    assert "refresh_token" in page.locator("li").all_inner_texts()
    browser.shot("consent-page")
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(world.site_url + "/salesforce/callback?**")
    callback = urlsplit(page.url)
    params = parse_qs(callback.query)
    assert set(params) == {"code", "state"}
    assert page.locator("h1").inner_text() == "Connected to Salesforce"
    assert page.locator("#username").inner_text() == DEFAULT_USERNAME
    assert page.locator("#user-id").inner_text() == DEFAULT_USER_ID
    assert page.locator("#instance").inner_text() == world.emulator_url
    assert page.locator("#name").inner_text() != "None"
    browser.shot("callback-connected")

    # One code exchange, done server side; no token ever reached the browser.
    assert world.emu.call_counts() == {"authorization_code": 1}
    (token,) = world.site.tokens
    assert token.refresh_token
    html = page.content()
    assert token.access_token not in html and token.refresh_token not in html
    for cookie in page.context.cookies():
        assert token.access_token not in cookie["value"]

    # A second connection: the emulator's session skips the login page and the consent
    # is remembered, so the browser lands straight back on the callback.
    page.goto(world.site_url + "/login")
    page.wait_for_url(world.site_url + "/salesforce/callback?**")
    assert page.locator("#username").inner_text() == DEFAULT_USERNAME
    assert world.emu.call_counts() == {"authorization_code": 2}
    browser.shot("second-login-no-pages")


def test_deny_answers_access_denied(browser: Browser, world: World) -> None:
    page = browser.page
    _log_in(browser, world)
    assert page.title() == "Allow Access? | Salesforce"
    page.get_by_role("button", name="Deny").click()

    page.wait_for_url(world.site_url + "/salesforce/callback?**")
    params = parse_qs(urlsplit(page.url).query)
    assert params["error"] == ["access_denied"]
    assert params["error_description"] == ["end-user denied authorization"]
    assert "code" not in params and len(params["state"][0]) >= 22
    assert page.locator("h1").inner_text() == "Not connected"
    assert page.locator("#error").inner_text() == "access_denied"
    assert world.emu.call_counts() == {}
    assert world.site.tokens == []
    browser.shot("callback-access-denied")


def test_wrong_password_stays_on_the_login_page(browser: Browser, world: World) -> None:
    page = browser.page
    _log_in(browser, world, password="not-the-password")

    assert page.title() == "Login | Salesforce"
    assert page.url.startswith(world.emulator_url + "/services/oauth2/authorize")
    error = page.locator(".error")
    assert LOGIN_FAILED in error.inner_text()
    assert page.get_by_label("Password").input_value() == ""
    assert world.site.callbacks == []
    browser.shot("login-error")

    # The form still carries the original request: the right password goes on.
    page.get_by_label("Username").fill(DEFAULT_USERNAME)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Log In").click()
    page.wait_for_load_state()
    assert page.title() == "Allow Access? | Salesforce"
    browser.shot("consent-after-retry")
