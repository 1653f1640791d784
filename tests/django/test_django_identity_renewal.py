"""``request.salesforce.identity`` renews a refused token like ``.client`` (issue 10
item 3).

Before, the identity call went straight to the OAuth client: after an expiry the
identity URL answered ``403 Bad_OAuth_Token`` on every request until some other view
refreshed. It now runs through the token manager's rule (docs/token-lifecycle.md).
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client, RequestFactory
from support.django_flow import connect

from sfoauth_core.testing import DEFAULT_USERNAME
from sfoauth_django.session import SalesforceSession


@pytest.fixture
def alice(user_factory: Any) -> Any:
    return user_factory("alice")


def _session(user: Any) -> SalesforceSession:
    request = RequestFactory().get("/")
    request.user = user
    return SalesforceSession(request)


def _connect(alice: Any, browser: Any) -> None:
    client = Client()
    client.force_login(alice)
    connect(client, browser)


def test_identity_after_expiry_renews_once(emu: Any, browser: Any, alice: Any) -> None:
    _connect(alice, browser)
    emu.expire_access_tokens()
    before = emu.calls("refresh_token")
    assert _session(alice).identity.username == DEFAULT_USERNAME
    assert emu.calls("refresh_token") - before == 1
    assert _session(alice).identity.username == DEFAULT_USERNAME  # no more calls
    assert emu.calls("refresh_token") - before == 1


@pytest.mark.django_db(transaction=True)
def test_async_identity_after_expiry_renews_once(
    emu: Any, browser: Any, alice: Any
) -> None:
    _connect(alice, browser)
    emu.expire_access_tokens()
    before = emu.calls("refresh_token")
    identity = async_to_sync(_session(alice).aidentity)()
    assert identity.username == DEFAULT_USERNAME
    assert emu.calls("refresh_token") - before == 1
