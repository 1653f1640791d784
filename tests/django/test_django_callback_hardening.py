"""Issue 13 defect 8: a callback repeating an OAuth parameter is refused (Django).

Before the fix ``state=a&state=b`` was read with ``request.GET`` (the last value wins),
so a spliced callback went through; now nothing is looked up, exchanged or stored.
"""

from __future__ import annotations

import pytest
from django.test import Client
from support.django_flow import authorize, query_of

from sfoauth_django.models import PendingAuthorization, get_token_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(user_factory) -> Client:
    c = Client()
    c.force_login(user_factory("alice"))
    return c


@pytest.mark.parametrize(
    "extra",
    [
        "state={state}",
        "code={code}",
        "iss=https://evil.example",
        "error=access_denied&error=server_error",
    ],
    ids=["state", "code", "iss", "error"],
)
def test_repeated_oauth_parameter_is_refused(client, emu, browser, caplog, extra):
    genuine = authorize(
        browser, client.post("/salesforce/login/", {"next": "/whoami/"})
    )
    params = query_of("/?" + genuine)
    if extra.startswith("iss=") and "iss=" not in genuine:
        extra = "iss=a&" + extra  # the emulator sent none: repeat one anyway
    response = client.get(
        "/salesforce/callback/?" + genuine + "&" + extra.format(**params)
    )
    assert response.status_code == 400
    assert response["Cache-Control"] == "no-store"
    assert emu.calls("authorization_code") == 0
    assert get_token_model().objects.count() == 0
    # Refused before the pending login was touched: the genuine callback still works.
    assert PendingAuthorization.objects.count() == 1
    assert "repeated" in caplog.text
    ours = " ".join(
        r.getMessage() for r in caplog.records if r.name.startswith("sfoauth")
    )
    assert params["code"] not in ours and params["state"] not in ours
    assert client.get("/salesforce/callback/?" + genuine).status_code == 302
