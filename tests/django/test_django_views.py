"""The login, callback and disconnect views against the emulator, both modes
(SECURITY.md items 1-7, 17-20), with a plaintext sweep of every table after each flow."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.django_flow import assert_no_plaintext, authorize, connect, query_of

from sfoauth_core.testing import DEFAULT_ORG_ID, DEFAULT_USER_ID, Fault
from sfoauth_django.adapter import is_safe_next
from sfoauth_django.models import PendingAuthorization, get_token_model
from sfoauth_django.signals import token_obtained, token_revoked

pytestmark = pytest.mark.django_db

KEY = f"{DEFAULT_ORG_ID}:{DEFAULT_USER_ID}"


@pytest.fixture
def client(user_factory) -> Client:
    c = Client()
    c.force_login(user_factory("alice"))
    return c


def private(response) -> None:
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"


# -- Connect an org to a logged-in user -------------------------------------------------
def test_get_login_shows_a_form_and_starts_nothing(client, emu):
    response = client.get("/salesforce/login/?next=/whoami/")
    assert response.status_code == 200
    assert b'method="post"' in response.content
    assert b'name="next" value="/whoami/"' in response.content
    assert b"csrfmiddlewaretoken" in response.content
    assert PendingAuthorization.objects.count() == 0
    private(response)


def test_login_redirects_to_salesforce_with_pkce_and_state(client, emu):
    response = client.post("/salesforce/login/", {"next": "/whoami/"})
    assert response.status_code == 302
    private(response)
    url = response["Location"]
    assert url.startswith("https://acme.my.salesforce.com/services/oauth2/authorize?")
    params = query_of(url)
    assert params["response_type"] == "code"
    assert params["client_id"] == "3MVG9Example.WebServerApp"
    assert params["redirect_uri"] == "https://app.example.com/callback"
    assert len(params["state"]) >= 22 and len(params["code_challenge"]) == 43
    assert "code_verifier" not in url
    row = PendingAuthorization.objects.get()
    assert params["state"] not in row.state_hash and row.payload.startswith("sfo1.")
    assert (row.expires_at - timezone.now()).total_seconds() == pytest.approx(
        600, abs=5
    )


def test_connect_flow_stores_an_encrypted_token(client, emu, browser):
    obtained = []
    token_obtained.connect(
        lambda **kw: obtained.append(kw), weak=False, dispatch_uid="t1"
    )
    try:
        response = connect(client, browser, next="/whoami/")
    finally:
        token_obtained.disconnect(dispatch_uid="t1")
    assert response.status_code == 302
    assert response["Location"] == "/whoami/"
    private(response)
    row = get_token_model().objects.get()
    assert row.key == KEY and row.user.username == "alice"
    assert (row.org_id, row.salesforce_user_id) == (DEFAULT_ORG_ID, DEFAULT_USER_ID)
    assert row.instance_url == "https://acme.my.salesforce.com"
    assert row.status == "active" and row.version == 1
    assert row.token_ciphertext.startswith("sfo1.")
    assert emu.calls("authorization_code") == 1
    assert [kw["key"] for kw in obtained] == [KEY]
    assert "**" in repr(obtained[0]["token"]) or "access_token" not in repr(
        obtained[0]["token"]
    )
    assert assert_no_plaintext(emu) >= 2
    assert PendingAuthorization.objects.count() == 0
    # The decorated view now works from the cache: no token-endpoint call.
    whoami = client.get("/whoami/")
    assert whoami.status_code == 200
    assert whoami.json() == {
        "org_id": DEFAULT_ORG_ID,
        "instance_url": "https://acme.my.salesforce.com",
    }
    assert emu.calls() == 1


def test_rest_client_and_refresh_on_401(client, emu, browser):
    connect(client, browser)
    assert client.get("/limits/").json() == {"status": 200}
    emu.expire_access_tokens()
    assert client.get("/limits/").json() == {"status": 200}
    assert emu.calls("refresh_token") == 1
    assert_no_plaintext(emu)


def test_login_on_get_setting(client, emu, settings):
    settings.SFOAUTH = {**settings.SFOAUTH, "LOGIN_ON_GET": True}
    response = client.get("/salesforce/login/")
    assert response.status_code == 302
    assert response["Location"].startswith("https://acme.my.salesforce.com/")


def test_login_options_from_allowlists(client, emu):
    response = client.post(
        "/salesforce/login/",
        {"prompt": "login consent", "login_hint": "jane@acme.com", "domain": "login"},
    )
    url = response["Location"]
    assert url.startswith("https://login.salesforce.com/services/oauth2/authorize?")
    assert query_of(url)["prompt"] == "login consent"
    assert query_of(url)["login_hint"] == "jane@acme.com"
    for bad in (
        {"prompt": "none"},
        {"domain": "https://evil.example.com"},
        {"domain": "sandbox"},
        {"login_hint": "x" * 200},
        {"login_hint": "a\nb"},
    ):
        response = client.post("/salesforce/login/", bad)
        assert response.status_code == 400, bad
        private(response)
    # Per-request options never touch the shared configuration (item 28).
    from sfoauth_django import _runtime

    assert _runtime.oauth().app.login_url == "https://acme.my.salesforce.com"


def test_redirect_uri_ignores_host_headers(client, emu):
    response = client.post(
        "/salesforce/login/",
        HTTP_HOST="localhost",
        HTTP_X_FORWARDED_HOST="evil.example.com",
        HTTP_X_FORWARDED_PROTO="http",
    )
    assert (
        query_of(response["Location"])["redirect_uri"]
        == "https://app.example.com/callback"
    )


# -- next (item 4) ----------------------------------------------------------------------
UNSAFE_NEXT = [
    "https://evil.example.com/",
    "//evil.example.com/",
    "/\\evil.example.com",
    "\\\\evil.example.com",
    "///evil.example.com",
    "http:/evil.example.com",
    "javascript:alert(1)",
    " /whoami/",
    "/\t/evil.example.com",
    "/\x00/evil.example.com",
    "https:evil.example.com",
    "whoami/",
    "",
]


@pytest.mark.parametrize("next_url", UNSAFE_NEXT)
def test_unsafe_next_ends_on_the_default_page(client, emu, browser, next_url):
    response = connect(client, browser, next=next_url)
    assert response.status_code == 302
    assert response["Location"] == "/"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_is_safe_next_accepts_only_local_paths(url):
    if is_safe_next(url):
        parts = urlsplit(url)
        assert url.startswith("/") and not url.startswith("//")
        assert not parts.scheme and not parts.netloc
        assert "\\" not in url and all(ord(c) > 32 for c in url)


# -- state (item 1) and callback errors -------------------------------------------------
def _start(client):
    return client.post("/salesforce/login/", {"next": "/whoami/"})


def _nothing_happened(emu):
    assert emu.calls("authorization_code") == 0
    assert get_token_model().objects.count() == 0


def test_callback_without_state(client, emu, browser, caplog):
    query = authorize(browser, _start(client))
    params = query_of("/?" + query)
    response = client.get("/salesforce/callback/", {"code": params["code"]})
    assert response.status_code == 400
    assert b"invalid, expired or was already used" in response.content
    private(response)
    _nothing_happened(emu)
    assert "missing state" in caplog.text and params["code"] not in caplog.text


def test_callback_with_wrong_state(client, emu, browser):
    query = authorize(browser, _start(client))
    params = query_of("/?" + query)
    response = client.get(
        "/salesforce/callback/",
        {"code": params["code"], "state": params["state"] + "x"},
    )
    assert response.status_code == 400
    _nothing_happened(emu)


def test_state_is_single_use(client, emu, browser):
    query = authorize(browser, _start(client))
    assert client.get("/salesforce/callback/?" + query).status_code == 302
    replay = client.get("/salesforce/callback/?" + query)
    assert replay.status_code == 400
    assert emu.calls("authorization_code") == 1


def test_expired_state(client, emu, browser):
    query = authorize(browser, _start(client))
    PendingAuthorization.objects.update(expires_at=timezone.now())
    assert client.get("/salesforce/callback/?" + query).status_code == 400
    _nothing_happened(emu)


def test_state_from_another_browser_session(client, emu, browser, user_factory):
    query = authorize(browser, _start(client))
    victim = Client()
    victim.force_login(user_factory("victim"))
    assert victim.get("/salesforce/callback/?" + query).status_code == 400
    _nothing_happened(emu)
    # The rightful browser can still finish.
    assert client.get("/salesforce/callback/?" + query).status_code == 302


def test_state_bound_to_the_user_who_started(client, emu, browser, user_factory):
    query = authorize(browser, _start(client))
    client.force_login(user_factory("mallory"))  # same browser, other account
    assert client.get("/salesforce/callback/?" + query).status_code == 400
    _nothing_happened(emu)


def test_access_denied(client, emu, browser):
    emu.auto_consent = "deny"
    response = _start(client)
    at_sf = browser.get(response["Location"].replace("?", "?prompt=consent&", 1))
    query = urlsplit(at_sf.headers["location"]).query
    assert "error=access_denied" in query
    result = client.get("/salesforce/callback/?" + query)
    assert result.status_code == 400
    assert b"not granted" in result.content
    _nothing_happened(emu)


def test_mix_up_iss_must_match(client, emu, browser):
    query = authorize(browser, _start(client))
    response = client.get(
        "/salesforce/callback/?" + query + "&iss=https%3A%2F%2Fevil.example.com"
    )
    assert response.status_code == 400
    _nothing_happened(emu)


def test_id_token_with_another_logins_nonce_is_refused(client, emu, browser):
    # The authorize request is altered on its way to Salesforce: the ID token then
    # carries a nonce this login never sent, and the callback must refuse it.
    start = _start(client)
    assert "nonce=" in start["Location"]
    location = start["Location"].replace("nonce=", "nonce=forged", 1)
    at_salesforce = browser.get(location)
    query = urlsplit(at_salesforce.headers["location"]).query
    response = client.get("/salesforce/callback/?" + query)
    assert response.status_code == 400
    assert get_token_model().objects.count() == 0
    assert emu.calls("authorization_code") == 1  # exchanged, then refused and revoked
    assert any(e.path.endswith("/services/oauth2/revoke") for e in emu.request_log)


def test_token_endpoint_failure(client, emu, browser):
    query = authorize(browser, _start(client))
    emu.inject_fault(Fault(path="/services/oauth2/token", status=503, count=5))
    response = client.get("/salesforce/callback/?" + query)
    # Salesforce failing after the retries is the "unavailable" page (issue 10 item 6).
    assert response.status_code == 503
    assert b"Salesforce is unavailable" in response.content
    assert get_token_model().objects.count() == 0


# -- Reconnect, other accounts (items 7, 19) ----------------------------------------------
def test_reconnect_replaces_the_grant_and_revokes_the_old_one(client, emu, browser):
    connect(client, browser)
    first = get_token_model().objects.get()
    with emu.state.lock:
        old_refresh = list(emu.state.refresh_tokens)
    connect(client, browser)
    second = get_token_model().objects.get()
    assert second.pk == first.pk and second.version == 2
    assert second.token_ciphertext != first.token_ciphertext
    log = [entry for entry in emu.request_log if entry.path.endswith("/revoke")]
    assert len(log) == 1
    with emu.state.lock:
        alive = [
            t for t in old_refresh if emu.state.refresh_tokens[t].status == "active"
        ]
    assert len(alive) == 0
    assert_no_plaintext(emu)


def test_a_second_salesforce_user_never_overwrites_silently(client, emu, browser):
    connect(client, browser)
    emu.add_user("bob@acme.com", "pw", user_id="005XX000001bobQ")
    emu.auto_approve = "bob@acme.com"
    response = connect(client, browser)
    assert response.status_code == 409
    assert b"another Salesforce user" in response.content
    row = get_token_model().objects.get()
    assert row.salesforce_user_id == DEFAULT_USER_ID


def test_a_linked_salesforce_user_is_not_moved_to_another_account(
    client, emu, browser, user_factory
):
    connect(client, browser)
    other = Client()
    other.force_login(user_factory("eve"))
    response = connect(other, browser)
    assert response.status_code == 409
    row = get_token_model().objects.get()
    assert row.user.username == "alice"


# -- Disconnect (item 19) ------------------------------------------------------------------
def test_disconnect_needs_post_and_csrf(client, emu, browser, user_factory):
    connect(client, browser)
    assert client.get("/salesforce/disconnect/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(get_user_model().objects.get(username="alice"))
    assert strict.post("/salesforce/disconnect/").status_code == 403
    assert get_token_model().objects.count() == 1


def test_disconnect_revokes_then_deletes(client, emu, browser):
    connect(client, browser)
    revoked = []
    token_revoked.connect(
        lambda **kw: revoked.append(kw), weak=False, dispatch_uid="t2"
    )
    try:
        response = client.post("/salesforce/disconnect/", {"next": "/bye/"})
    finally:
        token_revoked.disconnect(dispatch_uid="t2")
    assert response.status_code == 302 and response["Location"] == "/bye/"
    private(response)
    assert get_token_model().objects.count() == 0
    assert get_user_model().objects.filter(username="alice").exists()
    revokes = [e for e in emu.request_log if e.path.endswith("/revoke")]
    assert len(revokes) == 1 and revokes[0].method == "POST"
    assert [kw["reason"] for kw in revoked] == [""]
    assert client.get("/whoami/").status_code == 302


def test_disconnect_deletes_even_when_revoke_fails(client, emu, browser):
    connect(client, browser)
    emu.inject_fault(Fault(path="/services/oauth2/revoke", status=503, count=10))
    response = client.post("/salesforce/disconnect/")
    assert response.status_code == 302
    assert get_token_model().objects.count() == 0


def test_disconnect_without_connection(client, emu):
    assert client.post("/salesforce/disconnect/").status_code == 404


# -- Sign in with Salesforce ----------------------------------------------------------------
def test_sign_in_creates_a_user_and_rotates_the_session(emu, browser, db):
    anonymous = Client()
    start = anonymous.post("/salesforce/login/", {"next": "/whoami/"})
    before = anonymous.session.session_key
    response = anonymous.get("/salesforce/callback/?" + authorize(browser, start))
    assert response.status_code == 302 and response["Location"] == "/whoami/"
    assert anonymous.session.session_key != before
    user = get_user_model().objects.get()
    assert user.username == f"sf-{DEFAULT_USER_ID}" and not user.has_usable_password()
    assert user.email == "jane@acme.com"
    assert anonymous.get("/whoami/").json()["org_id"] == DEFAULT_ORG_ID
    assert_no_plaintext(emu)
    # Signing in again finds the same user by org id + user id.
    again = Client()
    again.get(
        "/salesforce/callback/?" + authorize(browser, again.post("/salesforce/login/"))
    )
    assert get_user_model().objects.count() == 1
    assert int(again.session["_auth_user_id"]) == user.pk


def test_sign_in_never_links_by_email(emu, browser, user_factory):
    user_factory("jane", email="jane@acme.com")
    anonymous = Client()
    anonymous.get(
        "/salesforce/callback/?"
        + authorize(browser, anonymous.post("/salesforce/login/"))
    )
    row = get_token_model().objects.get()
    assert row.user.username != "jane"


def test_sign_in_closed(emu, browser, db, settings):
    settings.SFOAUTH = {
        **settings.SFOAUTH,
        "ADAPTER": "test_django_views.ClosedAdapter",
    }
    anonymous = Client()
    response = anonymous.get(
        "/salesforce/callback/?"
        + authorize(browser, anonymous.post("/salesforce/login/"))
    )
    assert response.status_code == 403
    assert get_user_model().objects.count() == 0
    assert get_token_model().objects.count() == 0


def test_sign_in_not_enabled_sends_anonymous_users_to_django_login(emu, db, settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    settings.LOGIN_URL = "/accounts/login/"
    response = Client().post("/salesforce/login/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    response = Client().get("/whoami/")
    assert response["Location"].startswith("/accounts/login/?next=")


def test_stale_pending_rows_are_purged(client, emu):
    _start(client)
    PendingAuthorization.objects.update(expires_at=timezone.now())
    time.sleep(0.01)
    _start(client)
    assert PendingAuthorization.objects.count() == 1


from sfoauth_django.adapter import DefaultSFOAuthAdapter  # noqa: E402


class ClosedAdapter(DefaultSFOAuthAdapter):
    def is_open_for_signup(self, request, token, identity):
        return False
