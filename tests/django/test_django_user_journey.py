"""What a user of a Django site sees when Salesforce gets in the way (issue 10, items 4,
6, 7, 12 and the login interstitial of contracts L1-L3).

Each test walks the real views, middleware and decorators against the in-process
emulator; ``django_testkit.CURRENT["down"]`` makes Salesforce unreachable.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.messages import get_messages
from django.test import AsyncClient, Client
from support import django_testkit
from support.django_flow import authorize, connect, query_of

from sfoauth_core.testing import DEFAULT_ORG_ID, DEFAULT_USER_ID
from sfoauth_django import _runtime
from sfoauth_django.models import get_token_model
from sfoauth_django.storage import DjangoTokenStore

pytestmark = pytest.mark.django_db

KEY = f"{DEFAULT_ORG_ID}:{DEFAULT_USER_ID}"
RENEW = "Your Salesforce connection needs to be renewed."
DISCONNECTED = "You disconnected Salesforce."


@pytest.fixture
def alice(user_factory):
    return user_factory("alice", email="alice@example.com")


@pytest.fixture
def client(alice) -> Client:
    c = Client()
    c.force_login(alice)
    return c


@pytest.fixture
def connected(client, emu, browser) -> Client:
    assert connect(client, browser).status_code == 302
    return client


def _refuse_grant(emu) -> None:
    """Salesforce forgets the grant (revoked, emulator restarted) and the cached access
    token is due, so the next use refreshes and is refused."""
    store = DjangoTokenStore()
    record = store.get(KEY)
    _runtime.oauth().revoke(record.token.refresh_token)
    store.save(
        KEY, record.token.with_expiry(time.time() - 1), expected_version=record.version
    )
    _runtime.forget(KEY)


def _make_due() -> None:
    store = DjangoTokenStore()
    record = store.get(KEY)
    store.save(
        KEY, record.token.with_expiry(time.time() - 1), expected_version=record.version
    )
    _runtime.forget(KEY)


def _aget(client: AsyncClient, path: str) -> Any:
    async def get() -> Any:
        return await client.get(path)

    return async_to_sync(get)()


def _text(response) -> str:
    return response.content.decode()


def _assert_unavailable(response) -> None:
    page = _text(response)
    assert response.status_code == 503, page[:300]
    assert "<h1>Salesforce is unavailable</h1>" in page
    assert 'class="sfoauth-back" href="/"' in page
    assert "Traceback" not in page
    assert response["Retry-After"].isdigit()
    assert response["Cache-Control"] == "no-store"


# -- L1: the login interstitial -------------------------------------------------------------
def test_get_login_renders_the_interstitial(client, emu):
    response = client.get("/salesforce/login/?next=/whoami/")
    page = _text(response)
    assert response.status_code == 200
    assert "<title>Connect to Salesforce</title>" in page
    assert "<h1>Connect to Salesforce</h1>" in page
    assert re.search(r'<form method="post"[^>]*>', page)
    assert page.count("<form") == 1
    assert '<button type="submit">Continue to Salesforce</button>' in page
    assert 'name="next" value="/whoami/"' in page
    assert "csrfmiddlewaretoken" in page
    assert "sfoauth-notice" not in page  # no reason given: nothing to explain
    assert emu.calls() == 0


def test_post_without_csrf_token_is_refused(user_factory, emu):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user_factory("carol"))
    assert strict.post("/salesforce/login/").status_code == 403
    page = strict.get("/salesforce/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', _text(page))
    assert token is not None
    started = strict.post(
        "/salesforce/login/", {"csrfmiddlewaretoken": token.group(1), "next": "/x/"}
    )
    assert started.status_code == 302
    assert "/services/oauth2/authorize?" in started["Location"]


def test_login_on_get_still_shows_a_reason(client, emu, settings):
    """With the opt-out a bare GET redirects, but a reason is always shown first."""
    settings.SFOAUTH = {**settings.SFOAUTH, "LOGIN_ON_GET": True}
    assert client.get("/salesforce/login/").status_code == 302
    response = client.get("/salesforce/login/?next=/whoami/&reason=disconnected")
    assert response.status_code == 200 and DISCONNECTED in _text(response)


def test_unknown_reason_is_not_reflected(client, emu):
    response = client.get("/salesforce/login/?reason=%3Cscript%3Ealert(1)")
    assert response.status_code == 200
    assert "script" not in _text(response) and "sfoauth-notice" not in _text(response)


# -- item 4 / L2: a refused connection ---------------------------------------------------------
def test_flagged_connection_is_falsy_and_pages_still_render(connected, emu):
    _refuse_grant(emu)
    # The first decorated use discovers it: back to the interstitial, with the reason.
    first = connected.get("/whoami/")
    assert first.status_code == 302
    assert first["Location"] == "/salesforce/login/?next=%2Fwhoami%2F&reason=reauth"
    assert get_token_model().objects.get().status == "needs_reauth"
    # Undecorated pages that read request.salesforce render; it is falsy.
    page = connected.get("/page/")
    assert page.status_code == 200
    assert _text(page) == "not connected|"
    assert connected.get("/optional/").json() == {"connected": False}
    assert connected.get("/api-page/").json() == {"connected": False}


def test_template_never_raises_when_the_refusal_is_found_while_rendering(
    connected, emu
):
    _refuse_grant(emu)
    calls = emu.calls("refresh_token")
    page = connected.get("/page/")
    assert page.status_code == 200, _text(page)[:300]
    # The refresh was tried once, refused, and the rest of the page saw a falsy session.
    assert emu.calls("refresh_token") == calls + 1
    assert _text(page) == "connected to |"
    assert get_token_model().objects.get().status == "needs_reauth"
    assert _text(connected.get("/page/")) == "not connected|"


def test_interstitial_says_why_once_and_the_message_is_not_shown_later(connected, emu):
    _refuse_grant(emu)
    redirect = connected.get("/whoami/")
    interstitial = connected.get(redirect["Location"])
    page = _text(interstitial)
    assert interstitial.status_code == 200
    assert page.count(RENEW) == 1
    assert 'name="next" value="/whoami/"' in page
    # The Django message was rendered there: nothing is left for another page.
    later = connected.get("/page/")
    assert list(get_messages(later.wsgi_request)) == []


def test_refusal_inside_an_undecorated_view_goes_to_the_interstitial(connected, emu):
    """A 401 on an API call, then a refused refresh: the middleware answers."""
    record = DjangoTokenStore().get(KEY)
    _runtime.oauth().revoke(record.token.refresh_token)
    emu.expire_access_tokens()
    response = connected.get("/api-page/")
    assert response.status_code == 302
    assert (
        response["Location"] == "/salesforce/login/?next=%2Fapi-page%2F&reason=reauth"
    )


def test_reconnect_clears_the_reason(connected, emu, browser):
    _refuse_grant(emu)
    connected.get("/whoami/")
    assert connect(connected, browser, next="/whoami/")["Location"] == "/whoami/"
    assert connected.get("/whoami/").status_code == 200
    assert _text(connected.get("/page/")).startswith("connected to https://")


# -- L1/L2: a disconnect is never undone without a click -------------------------------------
def test_after_disconnect_the_next_page_shows_the_interstitial(connected, emu):
    response = connected.post("/salesforce/disconnect/", {"next": "/whoami/"})
    assert response["Location"] == "/whoami/"
    redirect = connected.get("/whoami/")
    assert redirect["Location"] == (
        "/salesforce/login/?next=%2Fwhoami%2F&reason=disconnected"
    )
    interstitial = connected.get(redirect["Location"])
    page = _text(interstitial)
    assert page.count(DISCONNECTED) == 1
    assert "Continue to Salesforce" in page
    assert emu.calls("authorization_code") == 1  # nothing reconnected
    # Said once: the next visit is a plain interstitial.
    again = connected.get("/whoami/")
    assert again["Location"] == "/salesforce/login/?next=%2Fwhoami%2F"


# -- item 6 / L3: Salesforce unreachable -------------------------------------------------------
def test_decorated_view_needing_a_refresh_answers_503(connected, emu):
    _make_due()
    django_testkit.CURRENT["down"] = True
    _assert_unavailable(connected.get("/whoami/"))
    django_testkit.CURRENT["down"] = False
    assert connected.get("/whoami/").status_code == 200  # back: nothing was lost


@pytest.mark.django_db(transaction=True)
def test_async_decorated_view_answers_503(alice, connected, emu):
    _make_due()
    django_testkit.CURRENT["down"] = True
    client = AsyncClient()
    client.force_login(alice)
    _assert_unavailable(_aget(client, "/awhoami/"))
    _assert_unavailable(_aget(client, "/alimits/"))


def test_api_call_inside_an_undecorated_view_answers_503(connected, emu):
    assert connected.get("/api-page/").json() == {"status": 200}
    django_testkit.CURRENT["down"] = True
    response = connected.get("/api-page/")
    _assert_unavailable(response)
    assert 'class="sfoauth-retry" href="/api-page/"' in _text(response)


@pytest.mark.django_db(transaction=True)
def test_async_api_call_inside_an_undecorated_view_answers_503(alice, connected, emu):
    client = AsyncClient()
    client.force_login(alice)
    django_testkit.CURRENT["down"] = True
    _assert_unavailable(_aget(client, "/aapi-page/"))


def test_other_network_errors_are_not_taken_for_salesforce(rf, connected, emu):
    import httpx

    from sfoauth_django._responses import handle_exception

    request = rf.get("/x/")
    elsewhere = httpx.ConnectError(
        "refused", request=httpx.Request("GET", "https://api.example.com/")
    )
    assert handle_exception(request, elsewhere) is None
    salesforce = httpx.ConnectError(
        "refused",
        request=httpx.Request("GET", "https://acme.my.salesforce.com/services/data"),
    )
    response = handle_exception(request, salesforce)
    assert response is not None and response.status_code == 503


def test_callback_with_salesforce_unreachable_answers_503(client, emu, browser):
    query = authorize(browser, client.post("/salesforce/login/", {"next": "/whoami/"}))
    django_testkit.CURRENT["down"] = True
    response = client.get("/salesforce/callback/?" + query)
    _assert_unavailable(response)
    assert get_token_model().objects.count() == 0
    # No "Try again" link that would put the one-time code and state in the page.
    assert "sfoauth-retry" not in _text(response)
    for name, value in query_of("/?" + query).items():
        assert value not in _text(response), name


def test_callback_when_the_id_token_keys_cannot_be_fetched_answers_503(
    client, emu, browser
):
    query = authorize(browser, client.post("/salesforce/login/", {"next": "/whoami/"}))
    django_testkit.CURRENT["down"] = "/id/keys"
    _assert_unavailable(client.get("/salesforce/callback/?" + query))
    assert get_token_model().objects.count() == 0


def test_disconnect_with_salesforce_unreachable_says_what_happened(connected, emu):
    django_testkit.CURRENT["down"] = True
    response = connected.post("/salesforce/disconnect/", {"next": "/page/"})
    assert response.status_code == 302
    assert get_token_model().objects.count() == 0
    texts = [m.message for m in get_messages(response.wsgi_request)]
    assert texts[0] == DISCONNECTED
    assert "could not be reached" in texts[1] and "removed here only" in texts[1]


# -- item 7: configuration failures are logged at ERROR ---------------------------------------
def test_wrong_client_secret_is_logged_with_the_setting_to_fix(
    client, emu, browser, settings, caplog
):
    secret = "WRONG-secret-value-123"
    settings.SFOAUTH = {**settings.SFOAUTH, "CLIENT_SECRET": secret}
    query = authorize(browser, client.post("/salesforce/login/", {"next": "/x/"}))
    with caplog.at_level(logging.INFO, logger="sfoauth"):
        response = client.get("/salesforce/callback/?" + query)
    # The same page as when the secret is refused at a refresh (and FastAPI's 502
    # SFOAUTH_APP_MISCONFIGURED): the site's configuration, not the user's login.
    assert response.status_code == 502
    assert "Salesforce connection problem" in _text(response)
    assert "CLIENT_SECRET" not in _text(response) and secret not in _text(response)
    errors = [
        r
        for r in caplog.records
        if r.levelno == logging.ERROR and r.name.startswith("sfoauth")
    ]
    assert [r.name for r in errors] == ["sfoauth.django"]
    message = errors[0].getMessage()
    assert "invalid_client" in message and "SFOAUTH['CLIENT_SECRET']" in message
    assert secret not in caplog.text


def test_wrong_client_secret_at_refresh_is_logged_and_the_page_is_generic(
    connected, emu, settings, caplog
):
    _make_due()
    settings.SFOAUTH = {**settings.SFOAUTH, "CLIENT_SECRET": "WRONG-secret-4567"}
    with caplog.at_level(logging.INFO, logger="sfoauth"):
        response = connected.get("/whoami/")
    assert response.status_code == 502
    assert "Salesforce connection problem" in _text(response)
    assert "WRONG" not in _text(response) and "WRONG" not in caplog.text
    errors = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and r.name.startswith("sfoauth")
    ]
    assert len(errors) == 1 and "SFOAUTH['CLIENT_SECRET']" in errors[0]


def test_the_exchange_repeats_the_redirect_uri_of_the_authorization(
    client, emu, browser, settings, caplog
):
    # RFC 6749 §4.1.3: the pending login records the redirect_uri it was started with,
    # so a deploy that changes REDIRECT_URI mid-login no longer breaks that login with
    # a redirect_uri_mismatch (the core's transaction, as FastAPI always did).
    query = authorize(browser, client.post("/salesforce/login/", {"next": "/x/"}))
    settings.SFOAUTH = {
        **settings.SFOAUTH,
        "REDIRECT_URI": "https://app.example.com/other",
    }
    with caplog.at_level(logging.ERROR, logger="sfoauth.django"):
        response = client.get("/salesforce/callback/?" + query)
    assert response.status_code == 302 and response["Location"] == "/x/"
    assert "redirect_uri_mismatch" not in caplog.text


# -- error pages: a title and a link that fit -------------------------------------------------
def test_error_pages_have_fitting_titles_and_links(client, emu):
    expired = client.get("/salesforce/callback/?code=x&state=y")
    page = _text(expired)
    assert "<title>Salesforce login expired</title>" in page
    assert '<a class="sfoauth-back" href="/salesforce/login/">Start again</a>' in page
    missing = client.post("/salesforce/disconnect/")
    page = _text(missing)
    assert missing.status_code == 404
    assert "<title>Nothing to disconnect</title>" in page
    assert '<a class="sfoauth-back" href="/">Back</a>' in page


# -- item 12: next survives the app login and the Salesforce connect ---------------------------
def test_next_survives_app_login_then_salesforce_connect(user_factory, emu, browser):
    user_factory("dave")  # password "pw"
    from django.test import override_settings

    browser_client = Client()
    with override_settings(
        AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"]
    ):
        first = browser_client.get("/whoami/")
        assert first.status_code == 302
        assert first["Location"] == "/accounts/login/?next=/whoami/"
        form = browser_client.get(first["Location"])
        assert form.status_code == 200 and 'value="/whoami/"' in _text(form)
        signed_in = browser_client.post(
            "/accounts/login/",
            {"username": "dave", "password": "pw", "next": "/whoami/"},
        )
        assert signed_in["Location"] == "/whoami/"
        to_connect = browser_client.get("/whoami/")
        assert to_connect["Location"] == "/salesforce/login/?next=%2Fwhoami%2F"
        interstitial = browser_client.get(to_connect["Location"])
        assert 'name="next" value="/whoami/"' in _text(interstitial)
        back = connect(browser_client, browser, next="/whoami/")
        assert back["Location"] == "/whoami/"
        assert browser_client.get("/whoami/").json()["org_id"] == DEFAULT_ORG_ID


def test_flagged_connection_is_falsy_under_asgi_too(alice, connected, emu):
    _refuse_grant(emu)
    assert connected.get("/whoami/").status_code == 302  # discovers and flags it
    client = AsyncClient()
    client.force_login(alice)
    assert _aget(client, "/aoptional-none/").json() == {
        "truthy": False,
        "type": "SalesforceSession",
    }


def test_interstitial_says_why_without_the_messages_app(connected, emu, settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "messages" not in m]
    settings.INSTALLED_APPS = [
        a for a in settings.INSTALLED_APPS if "messages" not in a
    ]
    settings.TEMPLATES = [
        {
            **settings.TEMPLATES[0],
            "OPTIONS": {
                "context_processors": ["django.template.context_processors.request"]
            },
        }
    ]
    _refuse_grant(emu)
    redirect = connected.get("/whoami/")
    assert redirect["Location"].endswith("&reason=reauth")
    assert _text(connected.get(redirect["Location"])).count(RENEW) == 1
