"""Issue 12 item 3: app-access refusals (reference 15.4-15.7) reach the user as a clear
error page that says what their Salesforce admin must fix, at the authorize redirect
and at the code exchange alike."""

from __future__ import annotations

import pytest
from django.test import Client
from support.django_flow import connect

from sfoauth_core.testing import SalesforceEmulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(user_factory) -> Client:
    c = Client()
    c.force_login(user_factory("alice"))
    return c


def _page(response) -> str:
    assert response.status_code == 400
    return response.content.decode()


@pytest.mark.parametrize("stage", ["code_exchange", "authorize"])
def test_admin_approval_missing(
    client, emu: SalesforceEmulator, browser, stage
) -> None:
    emu.apps["web"].permitted_users = "admin_approved"
    emu.apps["web"].app_access_stage = stage
    html = _page(connect(client, browser))
    assert 'data-error="app_access"' in html
    assert "Salesforce refused access to this app" in html
    assert 'class="sfoauth-hint"' in html and "permission set" in html


def test_eca_not_installed_in_the_users_org(client, emu, browser) -> None:
    emu.apps["web"].kind = "external_client_app"
    emu.apps["web"].installed = False
    html = _page(connect(client, browser))
    assert 'data-error="app_access"' in html
    assert "install" in html and "External Client App" in html


def test_ip_restricted_user(client, emu, browser) -> None:
    emu.user.ip_restricted = True
    html = _page(connect(client, browser))
    assert 'data-error="app_access"' in html
    assert "egress IP" in html and "Login History" in html


def test_other_failures_keep_their_page(client, emu, browser) -> None:
    emu.auto_consent = "deny"
    html = _page(connect(client, browser))
    assert 'data-error="access_denied"' in html
    assert "sfoauth-hint" not in html
