"""SECURITY.md items 1-7 and 17-20 through the Django views: the cases
``test_django_views.py`` does not already prove.

Racing callbacks, the default 10-minute state lifetime with the clock moved, security
log events that never carry the values, ``next`` and ``iss`` over many generated inputs,
a second org or a case-variant Salesforce id, a plaintext sweep after refused logins,
and a disconnect that leaves everything else alone.
"""

from __future__ import annotations

import logging
import string
import warnings
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db.models.query import QuerySet
from django.test import Client
from django.utils import timezone
from django.utils.encoding import iri_to_uri
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.django_flow import assert_no_plaintext, authorize, connect, query_of
from support.security_inputs import browser_target, near_miss_issuers, next_candidates

from sfoauth_core.login import PendingLogin
from sfoauth_core.testing import DEFAULT_ORG_ID, DEFAULT_USER_ID
from sfoauth_django import _flows
from sfoauth_django.conf import sfoauth_settings
from sfoauth_django.models import PendingAuthorization, get_token_model

pytestmark = pytest.mark.django_db

ORIGIN = "https://app.example.com"
HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def client(user_factory: Any) -> Client:
    c = Client()
    c.force_login(user_factory("alice"))
    return c


def private(response: Any) -> None:
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"


def start(client: Client, **form: str) -> Any:
    return client.post("/salesforce/login/", {"next": "/whoami/", **form})


def issued(emu: Any) -> list[str]:
    with emu.state.lock:
        return [*emu.state.access_tokens, *emu.state.refresh_tokens]


def security_events(caplog: Any) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "sfoauth.security"]


def logged_text(caplog: Any) -> str:
    return "\n".join(r.getMessage() + repr(r.args) for r in caplog.records)


NEXT_CANDIDATES = next_candidates("whoami")


# -- Item 1: state ---------------------------------------------------------------------
def test_two_racing_callbacks_make_exactly_one_exchange(client, emu, browser):
    """Both callbacks read the pending row before either consumes it."""
    query = authorize(browser, start(client))
    other_tab = Client()
    other_tab.cookies = client.cookies  # the same browser session, a second tab
    real_delete = QuerySet.delete
    inner: list[Any] = []
    started: list[bool] = []

    def racing_delete(self: QuerySet, *args: Any, **kwargs: Any) -> Any:
        if self.model is PendingAuthorization and not started:
            # The first callback has read the row: the second one runs to the end now.
            started.append(True)
            inner.append(other_tab.get("/salesforce/callback/?" + query))
        return real_delete(self, *args, **kwargs)

    QuerySet.delete = racing_delete  # type: ignore[method-assign]
    try:
        outer = client.get("/salesforce/callback/?" + query)
    finally:
        QuerySet.delete = real_delete  # type: ignore[method-assign]
    assert len(inner) == 1
    assert sorted([outer.status_code, inner[0].status_code]) == [302, 400]
    assert emu.calls("authorization_code") == 1
    assert get_token_model().objects.count() == 1
    for response in (outer, inner[0]):
        private(response)


def test_state_expires_after_ten_minutes_by_default(
    client, emu, browser, caplog, monkeypatch
):
    assert sfoauth_settings.STATE_TTL == 600
    caplog.set_level(logging.DEBUG)
    real_now = timezone.now
    query = authorize(browser, start(client))
    params = query_of("/?" + query)
    caplog.clear()  # the test's own browser logged its visit to Salesforce
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=601))
    response = client.get("/salesforce/callback/?" + query)
    assert response.status_code == 400
    private(response)
    assert b"invalid, expired or was already used" in response.content
    assert emu.calls("authorization_code") == 0
    assert get_token_model().objects.count() == 0
    assert not issued(emu)
    events = security_events(caplog)
    assert [e.levelno for e in events] == [logging.WARNING]
    assert "expired" in events[0].getMessage()
    text = logged_text(caplog)
    assert params["state"] not in text and params["code"] not in text
    assert params["code"] not in response.content.decode()


def test_state_is_still_good_just_before_ten_minutes(client, emu, browser, monkeypatch):
    real_now = timezone.now
    query = authorize(browser, start(client))
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=590))
    assert client.get("/salesforce/callback/?" + query).status_code == 302
    assert emu.calls("authorization_code") == 1


def _missing(client, query, user_factory):
    params = query_of("/?" + query)
    return client.get("/salesforce/callback/", {"code": params["code"]})


def _wrong(client, query, user_factory):
    params = query_of("/?" + query)
    params["state"] = params["state"][:-2] + "xy"
    return client.get("/salesforce/callback/", params)


def _replayed(client, query, user_factory):
    return client.get("/salesforce/callback/?" + query)  # after a successful one


def _foreign(client, query, user_factory):
    victim = Client()
    victim.force_login(user_factory("victim"))
    victim.post("/salesforce/login/")  # the victim has a login of their own
    return victim.get("/salesforce/callback/?" + query)


def _other_user(client, query, user_factory):
    client.force_login(user_factory("mallory"))
    return client.get("/salesforce/callback/?" + query)


@pytest.mark.parametrize(
    "forge, reason",
    [
        (_missing, "missing state"),
        (_wrong, "unknown or already used"),
        (_replayed, "unknown or already used"),
        (_foreign, "another browser session"),
        # Django's login() of another user flushes the session (and its binding).
        (_other_user, "no login in this session"),
    ],
    ids=["missing", "wrong", "replayed", "foreign", "other-user"],
)
def test_every_refused_state_is_a_400_and_a_security_event_without_values(
    client, emu, browser, caplog, user_factory, forge, reason
):
    caplog.set_level(logging.DEBUG)
    query = authorize(browser, start(client))
    params = query_of("/?" + query)
    if forge is _replayed:
        assert client.get("/salesforce/callback/?" + query).status_code == 302
    caplog.clear()  # the test's own browser logged its visit to Salesforce
    calls_before = emu.calls("authorization_code")
    rows_before = get_token_model().objects.count()
    response = forge(client, query, user_factory)
    assert response.status_code == 400
    private(response)
    assert emu.calls("authorization_code") == calls_before  # zero new exchanges
    assert get_token_model().objects.count() == rows_before  # nothing stored
    events = security_events(caplog)
    assert len(events) == 1 and reason in events[0].getMessage()
    assert events[0].levelno == logging.WARNING
    text = logged_text(caplog) + response.content.decode()
    assert params["state"] not in text and params["code"] not in text
    assert "Location" not in response


# -- Item 2: PKCE -------------------------------------------------------------------------
def test_each_pending_login_has_its_own_verifier_kept_out_of_urls_logs_and_cookies(
    client, emu, caplog
):
    caplog.set_level(logging.DEBUG)
    urls = [start(client)["Location"] for _ in range(3)]
    challenges = {query_of(u)["code_challenge"] for u in urls}
    assert len(challenges) == 3 and all(len(c) == 43 for c in challenges)
    rows = list(PendingAuthorization.objects.all())
    assert len(rows) == 3
    verifiers = []
    for url in urls:
        state = query_of(url)["state"]
        row = next(r for r in rows if r.state_hash == _flows._login_id(state))
        pending = PendingLogin.unseal(
            sfoauth_settings.cipher(), row.state_hash, row.payload
        )
        verifiers.append(pending.code_verifier)
    assert len(set(verifiers)) == 3
    import base64
    import hashlib

    for url, verifier in zip(urls, verifiers, strict=True):
        digest = hashlib.sha256(verifier.encode()).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert query_of(url)["code_challenge"] == expected  # S256, not plain
        assert verifier not in url and verifier not in logged_text(caplog)
        for cookie in client.cookies.values():
            assert verifier not in cookie.value
        for row in rows:
            assert verifier not in row.payload


# -- Item 3 ------------------------------------------------------------------------------
@HYPOTHESIS
@given(
    host=st.sampled_from(["evil.example", "localhost", "127.0.0.1", "testserver"]),
    forwarded=st.text(alphabet=string.ascii_lowercase + ".:-", min_size=1, max_size=20),
    proto=st.sampled_from(["http", "https", "ftp"]),
)
def test_redirect_uri_never_comes_from_request_headers(
    client, emu, host, forwarded, proto
):
    response = client.post(
        "/salesforce/login/",
        HTTP_HOST=host,
        HTTP_X_FORWARDED_HOST=forwarded,
        HTTP_X_FORWARDED_PROTO=proto,
        HTTP_FORWARDED=f"host={forwarded};proto={proto}",
    )
    if response.status_code == 400:  # Django refused a Host it does not allow
        assert host == "evil.example"
        return
    assert query_of(response["Location"])["redirect_uri"] == (
        "https://app.example.com/callback"
    )


def test_code_exchange_uses_the_configured_redirect_uri(client, emu, browser):
    query = authorize(browser, start(client))
    client.get("/salesforce/callback/?" + query, HTTP_X_FORWARDED_HOST="evil.example")
    (exchange,) = [e for e in emu.request_log if e.grant_type == "authorization_code"]
    assert exchange.params["redirect_uri"] == "https://app.example.com/callback"


# -- Item 4: next ----------------------------------------------------------------------
@HYPOTHESIS
@given(candidate=NEXT_CANDIDATES)
def test_any_next_after_login_stays_on_this_site(client, emu, browser, candidate):
    response = connect(client, browser, next=candidate)
    assert response.status_code == 302
    location = response["Location"]
    assert location in (iri_to_uri(candidate), "/")
    assert urlsplit(browser_target(ORIGIN, location)).netloc == urlsplit(ORIGIN).netloc
    assert location.startswith("/") and not location.startswith(("//", "/\\"))


@HYPOTHESIS
@given(candidate=NEXT_CANDIDATES)
def test_any_next_after_disconnect_stays_on_this_site(client, emu, candidate):
    # A connection row without tokens: disconnect deletes it without calling out.
    user = get_user_model().objects.get(username="alice")
    get_token_model().objects.create(
        key=f"{DEFAULT_ORG_ID}:{DEFAULT_USER_ID}",
        user=user,
        org_id=DEFAULT_ORG_ID,
        salesforce_user_id=DEFAULT_USER_ID,
    )
    response = client.post("/salesforce/disconnect/", {"next": candidate})
    assert response.status_code == 302
    private(response)
    location = response["Location"]
    assert location in (iri_to_uri(candidate), "/")
    assert urlsplit(browser_target(ORIGIN, location)).netloc == urlsplit(ORIGIN).netloc


def test_error_pages_never_link_to_an_unsafe_next(client, emu, browser):
    for bad in ("//evil.example/", "/\\evil.example", "https:evil.example"):
        response = client.post("/salesforce/login/", {"next": bad, "domain": "nowhere"})
        assert response.status_code == 400
        assert b"evil.example" not in response.content


@pytest.mark.parametrize(
    "encoded",
    ["%2F%2Fevil.example", "%5C%5Cevil.example", "/%2F/evil.example", "%09//evil"],
)
def test_percent_encoded_next_never_leaves_the_site(client, emu, browser, encoded):
    # Sent once more encoded than the form value, as a link on another site would.
    query = authorize(browser, client.post(f"/salesforce/login/?next={encoded}", {}))
    response = client.get("/salesforce/callback/?" + query)
    location = response["Location"]
    assert urlsplit(browser_target(ORIGIN, location)).netloc == urlsplit(ORIGIN).netloc
    assert (
        urlsplit(browser_target(ORIGIN, quote(location))).netloc
        == urlsplit(ORIGIN).netloc
    )


# -- Item 5: mix-up ------------------------------------------------------------------
ISSUER = "https://acme.my.salesforce.com"


@HYPOTHESIS
@given(iss=near_miss_issuers(ISSUER))
def test_any_other_iss_is_refused_before_the_exchange(client, emu, browser, iss):
    query = authorize(browser, start(client))
    calls = emu.calls("authorization_code")
    response = client.get("/salesforce/callback/?" + query + "&iss=" + quote(iss))
    if iss == ISSUER:
        assert response.status_code == 302
        return
    assert response.status_code == 400
    private(response)
    assert emu.calls("authorization_code") == calls


def test_exchange_goes_to_the_recorded_login_host(client, emu, browser):
    query = authorize(browser, start(client, domain="login"))
    response = client.get(
        "/salesforce/callback/?"
        + query
        + "&token_url=https%3A%2F%2Fevil.example%2Ftoken&login_url=https%3A%2F%2Fevil"
        + "&iss=https%3A%2F%2Flogin.salesforce.com"
    )
    assert response.status_code == 302
    (exchange,) = [e for e in emu.request_log if e.grant_type == "authorization_code"]
    assert exchange.host == "login.salesforce.com"


# -- Item 6 -------------------------------------------------------------------------------
def test_callback_location_never_carries_code_or_state(client, emu, browser):
    query = authorize(browser, start(client, next="/whoami/?tab=1"))
    params = query_of("/?" + query)
    response = client.get("/salesforce/callback/?" + query)
    assert response.status_code == 302
    private(response)
    location = response["Location"]
    assert location == "/whoami/?tab=1"
    assert params["code"] not in location and params["state"] not in location
    assert quote(params["code"], safe="") not in location


@pytest.mark.parametrize(
    "request_",
    [
        lambda c: c.get("/salesforce/login/"),
        lambda c: c.post("/salesforce/login/"),
        lambda c: c.post("/salesforce/login/", {"prompt": "none"}),
        lambda c: c.get("/salesforce/callback/"),
        lambda c: c.get("/salesforce/callback/", {"error": "access_denied"}),
        lambda c: c.post("/salesforce/disconnect/"),
    ],
    ids=["get-login", "post-login", "bad-login", "bare-callback", "error", "disc"],
)
def test_every_login_and_callback_answer_is_private(client, emu, request_):
    private(request_(client))


def test_signing_in_rotates_the_session_key_and_drops_old_data(emu, browser, db):
    anonymous = Client()
    anonymous.get("/salesforce/login/")  # a session exists before the login
    session = anonymous.session
    session["pre_login"] = "x"
    session.save()
    start_response = anonymous.post("/salesforce/login/")
    before = anonymous.session.session_key
    assert before
    response = anonymous.get(
        "/salesforce/callback/?" + authorize(browser, start_response)
    )
    assert response.status_code == 302
    assert anonymous.session.session_key != before
    from django.contrib.sessions.models import Session

    assert not Session.objects.filter(session_key=before).exists()


# -- Item 7 ------------------------------------------------------------------------------
def test_a_second_org_never_overwrites_the_first_connection(client, emu, browser):
    connect(client, browser)
    first = get_token_model().objects.get()
    emu.add_org("globex", org_id="00DXX0000002glb")
    emu.add_user(
        "jo@globex.com", "pw-12345678", user_id="005XX000003jo0Q", org="globex"
    )
    emu.auto_approve = "jo@globex.com"
    response = connect(client, browser)
    # Another org is another connection of the same user, next to the first one.
    assert response.status_code == 302
    assert get_token_model().objects.filter(user=first.user).count() == 2
    kept = get_token_model().objects.get(pk=first.pk)
    assert (kept.token_ciphertext, kept.version) == (
        first.token_ciphertext,
        first.version,
    )
    assert (kept.org_id, kept.salesforce_user_id) == (DEFAULT_ORG_ID, DEFAULT_USER_ID)
    assert not [e for e in emu.request_log if e.path.endswith("/revoke")]
    assert_no_plaintext(emu)


def test_a_refused_second_user_gets_its_grant_revoked_and_stores_nothing(
    client, emu, browser
):
    connect(client, browser)
    first = get_token_model().objects.get()
    emu.add_user("bob@acme.com", "pw-12345678", user_id="005XX000001bobQ")
    emu.auto_approve = "bob@acme.com"
    response = connect(client, browser)
    assert response.status_code == 409
    private(response)
    kept = get_token_model().objects.get()
    assert (kept.pk, kept.token_ciphertext, kept.version) == (
        first.pk,
        first.token_ciphertext,
        first.version,
    )
    with emu.state.lock:
        bobs = [
            r for r in emu.state.refresh_tokens.values() if r.username == "bob@acme.com"
        ]
    assert len(bobs) == 1 and bobs[0].status == "revoked"
    assert_no_plaintext(emu)


def test_get_login_is_no_cross_site_side_effect(client, emu):
    for params in ({}, {"next": "/x/"}, {"domain": "login"}, {"prompt": "consent"}):
        response = client.get("/salesforce/login/", params)
        assert response.status_code == 200
    assert PendingAuthorization.objects.count() == 0
    assert emu.calls() == 0


# -- Item 17 ---------------------------------------------------------------------------
def test_no_plaintext_after_a_refused_id_token(client, emu, browser):
    response = start(client)
    forged = response["Location"].replace("nonce=", "nonce=forged", 1)
    query = urlsplit(browser.get(forged).headers["location"]).query
    assert client.get("/salesforce/callback/?" + query).status_code == 400
    assert assert_no_plaintext(emu) >= 1


def test_no_plaintext_after_disconnect_and_relogin(client, emu, browser):
    connect(client, browser)
    client.post("/salesforce/disconnect/")
    assert_no_plaintext(emu)
    connect(client, browser)
    emu.expire_access_tokens()
    assert client.get("/limits/").json() == {"status": 200}
    assert assert_no_plaintext(emu) >= 4


# -- Item 18 ---------------------------------------------------------------------------
def test_a_case_variant_salesforce_id_never_signs_in_as_someone_else(
    emu, browser, user_factory
):
    victim = user_factory("victim")
    swapped_user, swapped_org = DEFAULT_USER_ID.swapcase(), DEFAULT_ORG_ID.swapcase()
    get_token_model().objects.create(
        key=f"{swapped_org}:{swapped_user}",
        user=victim,
        org_id=swapped_org,
        salesforce_user_id=swapped_user,
    )
    anonymous = Client()
    response = anonymous.get(
        "/salesforce/callback/?"
        + authorize(browser, anonymous.post("/salesforce/login/"))
    )
    assert response.status_code == 302
    signed_in = get_user_model().objects.get(pk=anonymous.session["_auth_user_id"])
    assert signed_in.pk != victim.pk
    assert signed_in.username == f"sf-{DEFAULT_USER_ID}"
    assert get_token_model().objects.filter(user=victim).count() == 1
    row = get_token_model().objects.get(user=signed_in)
    assert (row.org_id, row.salesforce_user_id) == (DEFAULT_ORG_ID, DEFAULT_USER_ID)


# -- Item 19 ---------------------------------------------------------------------------
def test_disconnect_touches_nothing_but_the_connection(
    client, emu, browser, user_factory
):
    connect(client, browser)
    session = client.session
    session["cart"] = ["book"]
    session.save()
    bob = Client()
    bob.force_login(user_factory("bob"))
    emu.add_user("bob@acme.com", "pw-12345678", user_id="005XX000001bobQ")
    emu.auto_approve = "bob@acme.com"
    assert connect(bob, browser).status_code == 302
    bobs_row = get_token_model().objects.get(user__username="bob")
    response = client.post("/salesforce/disconnect/")
    assert response.status_code == 302
    assert not get_token_model().objects.filter(user__username="alice").exists()
    kept = get_token_model().objects.get(user__username="bob")
    assert (kept.token_ciphertext, kept.version) == (
        bobs_row.token_ciphertext,
        bobs_row.version,
    )
    assert client.session["cart"] == ["book"]  # alice stays logged in, with her data
    assert client.get("/whoami/").status_code == 302  # ... but is not connected
    assert get_user_model().objects.filter(username="alice").exists()
    assert bob.get("/whoami/").status_code == 200


def test_reconnect_revokes_the_superseded_refresh_token_at_salesforce(
    client, emu, browser
):
    connect(client, browser)
    old = set(issued(emu))
    connect(client, browser)
    with emu.state.lock:
        superseded = [r for v, r in emu.state.refresh_tokens.items() if v in old]
        current = [r for v, r in emu.state.refresh_tokens.items() if v not in old]
    assert superseded and all(r.status == "revoked" for r in superseded)
    assert current and all(r.status == "active" for r in current)


# -- Item 20 ---------------------------------------------------------------------------
def test_no_secret_in_warnings_or_django_logs(client, emu, browser, caplog):
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        query = authorize(browser, start(client))
        caplog.clear()  # the test's own browser logged its visit to Salesforce
        client.get("/salesforce/callback/?" + query)
        emu.expire_access_tokens()
        client.get("/limits/")
        client.get("/salesforce/callback/?" + query)  # replay: a 400 and a log line
        client.post("/salesforce/disconnect/")
    params = query_of("/?" + query)
    secrets_ = [
        *issued(emu),
        params["code"],
        params["state"],
        emu.apps["web"].client_secret,
    ]
    text = logged_text(caplog) + "\n".join(str(w.message) for w in caught)
    assert any(r.name == "django.request" for r in caplog.records)
    assert any(r.name.startswith("httpx") for r in caplog.records)
    for secret in secrets_:
        assert secret and secret not in text
