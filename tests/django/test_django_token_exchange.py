"""Issue 12 item 5, reference 15.8: a user signed in with another identity provider is
connected to Salesforce by token exchange, stored like a login (row, encrypted token,
signal, adapter hook), with no Salesforce login page."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory

from sfoauth_core.exceptions import InvalidGrantError, SFOAuthError
from sfoauth_core.testing import (
    DEFAULT_ORG_ID,
    DEFAULT_USER_ID,
    DEFAULT_USERNAME,
    SalesforceEmulator,
    TokenExchangeConfig,
)
from sfoauth_django import _runtime
from sfoauth_django.models import get_token_model
from sfoauth_django.signals import token_obtained
from sfoauth_django.token_exchange import connect_with_token_exchange

pytestmark = pytest.mark.django_db

OKTA_TOKEN = "eyJraWQiOiJva3RhIn0.okta-id-token"


@pytest.fixture
def exchange(emu: SalesforceEmulator) -> SalesforceEmulator:
    # Stand-in for the org's Apex token exchange handler.
    emu.apps["web"].token_exchange = TokenExchangeConfig(
        subjects={OKTA_TOKEN: DEFAULT_USERNAME}
    )
    return emu


def _request(user: Any) -> Any:
    request = RequestFactory().get("/after-okta/")
    request.user = user
    return request


def test_connects_the_signed_in_user_like_a_login(exchange, user_factory) -> None:
    user = user_factory("alice")
    obtained: list[dict[str, Any]] = []
    token_obtained.connect(
        lambda **kw: obtained.append(kw), weak=False, dispatch_uid="tx"
    )
    try:
        connection = connect_with_token_exchange(
            _request(user), OKTA_TOKEN, "id_token", token_handler="ExternalIdpHandler"
        )
    finally:
        token_obtained.disconnect(dispatch_uid="tx")
    assert connection.user_id == user.pk
    assert (connection.org_id, connection.salesforce_user_id) == (
        DEFAULT_ORG_ID,
        DEFAULT_USER_ID,
    )
    assert connection.token_ciphertext.startswith("sfo1.")
    assert [kw["grant"] for kw in obtained] == ["token_exchange"]
    assert exchange.calls("urn:ietf:params:oauth:grant-type:token-exchange") == 1
    assert exchange.calls("authorization_code") == 0  # no Salesforce login page
    # The site's decorated views now see the connection, as after a login.
    client = Client()
    client.force_login(user)
    whoami = client.get("/whoami/")
    assert whoami.status_code == 200
    assert whoami.json()["org_id"] == DEFAULT_ORG_ID
    # Refreshed like any login when it expires.
    record = _runtime.manager().record(connection.key)
    assert record is not None and record.grant == "token_exchange"
    assert record.token.refresh_token


def test_a_user_object_works_too(exchange, user_factory) -> None:
    user = user_factory("bob")
    connection = connect_with_token_exchange(user, OKTA_TOKEN, "id_token")
    assert connection.user_id == user.pk


def test_a_refused_outside_token_stores_nothing(exchange, user_factory) -> None:
    with pytest.raises(InvalidGrantError):
        connect_with_token_exchange(
            _request(user_factory()), "forged-token", "id_token"
        )
    assert get_token_model().objects.count() == 0


def test_anonymous_users_cannot_connect(exchange) -> None:
    with pytest.raises(PermissionDenied):
        connect_with_token_exchange(_request(AnonymousUser()), OKTA_TOKEN, "id_token")
    assert exchange.calls() == 0  # the outside token was not spent


def test_a_salesforce_user_linked_elsewhere_is_refused_and_revoked(
    exchange, user_factory
) -> None:
    connect_with_token_exchange(_request(user_factory("alice")), OKTA_TOKEN, "id_token")
    with pytest.raises(SFOAuthError) as info:
        connect_with_token_exchange(
            _request(user_factory("mallory")), OKTA_TOKEN, "id_token"
        )
    assert getattr(info.value, "reason", None) == "already_linked"
    assert get_token_model().objects.count() == 1
    revokes = [e for e in exchange.request_log if e.path == "/services/oauth2/revoke"]
    assert revokes  # the second grant did not outlive the refusal


def test_the_adapter_hook_runs_with_the_request(
    exchange, user_factory, monkeypatch
) -> None:
    from sfoauth_django.adapter import DefaultSFOAuthAdapter

    seen: list[Any] = []
    monkeypatch.setattr(
        DefaultSFOAuthAdapter,
        "on_token_obtained",
        lambda self, request, connection, token: seen.append((request, connection)),
    )
    request = _request(user_factory())
    connection = connect_with_token_exchange(request, OKTA_TOKEN, "id_token")
    assert seen == [(request, connection)]
