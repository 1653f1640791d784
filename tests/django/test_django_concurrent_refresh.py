"""Reference 15.1 as a Django user meets it: while another client (not sfoauth, not
sharing the store) refreshes the same refresh token, Salesforce refuses ours with
``invalid_grant`` / ``expired authorization code``. The page answers 503 "Salesforce is
unavailable" with a retry link, the connection stays active (no "reconnect"), and the
next request after the other refresh is done works, with one refresh call of ours."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from support.django_flow import connect

from sfoauth_core.testing import DEFAULT_ORG_ID, DEFAULT_USER_ID
from sfoauth_django import _runtime
from sfoauth_django.storage import DjangoTokenStore

pytestmark = pytest.mark.django_db

KEY = f"{DEFAULT_ORG_ID}:{DEFAULT_USER_ID}"


def test_an_outside_refresh_in_flight_answers_503_and_keeps_the_connection(
    user_factory, emu, browser
):
    emu.apps["web"].is_refresh_token_rotation_enabled = False
    client = Client()
    client.force_login(user_factory("alice"))
    assert connect(client, browser).status_code == 302
    store = DjangoTokenStore()
    record = store.get(KEY)
    assert record is not None and record.token.refresh_token
    # Due now, and an outside client's refresh of the same token is at Salesforce.
    store.save(
        KEY, record.token.with_expiry(time.time() - 1), expected_version=record.version
    )
    _runtime.forget(KEY)
    emu.state.refreshes_in_flight.add(record.token.refresh_token)

    response = client.get("/api-page/")
    page = response.content.decode()
    assert response.status_code == 503, page[:300]
    assert "<h1>Salesforce is unavailable</h1>" in page
    assert 'class="sfoauth-retry" href="/api-page/"' in page
    assert "Traceback" not in page and "expired authorization code" not in page
    assert emu.concurrent_refresh_rejections >= 1
    after = store.get(KEY)
    assert after is not None and not after.needs_reauth
    assert after.token.refresh_token == record.token.refresh_token

    emu.state.refreshes_in_flight.clear()  # the outside refresh is done
    before = emu.calls("refresh_token")
    assert client.get("/api-page/").json() == {"status": 200}
    assert emu.calls("refresh_token") - before == 1
