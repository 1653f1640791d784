"""``SFOAUTH["LOGIN_URLS"]`` and ``?domain=``: a sandbox connection survives its first
refresh and is revoked at the sandbox (issue 11.2).

Before, the login URL picked with ``?domain=`` was used for the code exchange only;
every later refresh went to the configured ``LOGIN_URL``, which (like Salesforce) does
not know a sandbox grant: the connection died at its first refresh.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory
from support.django_flow import connect

from sfoauth_core.testing import SalesforceEmulator
from sfoauth_django import _runtime
from sfoauth_django.conf import sfoauth_settings
from sfoauth_django.models import get_token_model
from sfoauth_django.session import SalesforceSession

SANDBOX = "https://test.salesforce.com"
SANDBOX_USER = "bob@beta.com.dev"


@pytest.fixture
def sandbox(emu: SalesforceEmulator, settings: Any) -> SalesforceEmulator:
    settings.SFOAUTH = {
        **settings.SFOAUTH,
        "LOGIN_URL": "https://login.salesforce.com",
        "LOGIN_URLS": {"sandbox": SANDBOX},
    }
    sfoauth_settings.reload()
    _runtime.reset()
    emu.add_org("beta", org_id="00DXX0000002xyz", sandbox_name="dev")
    emu.add_user(SANDBOX_USER, "pw", user_id="005XX0000002bob", org="beta")
    emu.auto_approve = SANDBOX_USER
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    return emu


def _session(user: Any) -> SalesforceSession:
    request = RequestFactory().get("/")
    request.user = user
    return SalesforceSession(request)


def _hosts(emu: SalesforceEmulator, path: str) -> list[str]:
    return [e.host for e in emu.request_log if e.path == path]


def test_a_sandbox_connection_refreshes_and_disconnects_at_the_sandbox(
    sandbox: SalesforceEmulator, browser: Any, user_factory: Any
) -> None:
    emu = sandbox
    alice = user_factory("alice")
    client = Client()
    client.force_login(alice)
    response = connect(client, browser, domain="sandbox")
    assert response.status_code == 302, response.content[:500]
    row = get_token_model()._default_manager.get(user=alice)
    assert row.org_id == emu.orgs["beta"].org_id
    record = _runtime.manager().get(row.key)
    assert record.token_url == SANDBOX + "/services/oauth2/token"

    emu.expire_access_tokens()
    assert _session(alice).identity.username == SANDBOX_USER
    assert emu.calls("refresh_token") == 1
    assert _hosts(emu, "/services/oauth2/token") == ["test.salesforce.com"] * 2

    assert client.post("/salesforce/disconnect/").status_code == 302
    assert _hosts(emu, "/services/oauth2/revoke") == ["test.salesforce.com"]
    assert [r.status for r in emu.state.refresh_tokens.values()] == [
        "rotated",
        "revoked",
    ]
