"""Django's pending-login store: the core's protocol over ``PendingAuthorization`` rows,
bound to one browser session."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from support.django_flow import authorize

from sfoauth_core.exceptions import StorageError
from sfoauth_core.login import (
    LoginError,
    LoginErrorCode,
    PendingLogin,
    PendingLoginStore,
)
from sfoauth_django.conf import sfoauth_settings
from sfoauth_django.models import PendingAuthorization
from sfoauth_django.storage import DjangoPendingLoginStore

pytestmark = pytest.mark.django_db

PENDING = PendingLogin(
    state="S" * 43,
    code_verifier="V" * 64,
    issuer="https://login.salesforce.com",
    token_url="https://login.salesforce.com/services/oauth2/token",
    user="1",
    expires_at=time.time() + 600,
)


def store(binding: str) -> DjangoPendingLoginStore:
    return DjangoPendingLoginStore(sfoauth_settings.cipher(), binding=binding)


def test_a_login_is_taken_once_by_its_own_session():
    mine = store("b" * 43)
    assert isinstance(mine, PendingLoginStore)
    mine.put("id-1", PENDING)
    row = PendingAuthorization.objects.get()
    assert "SSSS" not in row.payload and "VVVV" not in row.payload
    assert row.binding_hash != "b" * 43
    taken = mine.take("id-1")
    assert taken is not None and taken.code_verifier == PENDING.code_verifier
    assert mine.take("id-1") is None


def test_another_session_is_refused_without_consuming_the_login():
    store("b" * 43).put("id-1", PENDING)
    with pytest.raises(LoginError) as caught:
        store("x" * 43).take("id-1")
    assert caught.value.code is LoginErrorCode.INVALID_STATE
    assert "another browser session" in caught.value.reason
    assert store("b" * 43).take("id-1") is not None  # the victim still finishes


def test_a_record_copied_under_another_id_is_unreadable():
    store("b" * 43).put("id-1", PENDING)
    PendingAuthorization.objects.update(state_hash="id-2")
    with pytest.raises(LoginError) as caught:
        store("b" * 43).take("id-2")
    assert caught.value.code is LoginErrorCode.INVALID_STATE
    with pytest.raises(StorageError):
        PendingLogin.unseal(sfoauth_settings.cipher(), "id-1", "garbage")


def test_a_foreign_session_callback_leaves_the_victims_login_usable(
    emu, browser, user_factory
):
    victim = Client()
    victim.force_login(user_factory("victim"))
    query = authorize(browser, victim.post("/salesforce/login/", {"next": "/x/"}))
    attacker = Client()
    attacker.force_login(user_factory("mallory"))
    attacker.post("/salesforce/login/")  # a session binding of its own
    assert attacker.get("/salesforce/callback/?" + query).status_code == 400
    assert emu.calls("authorization_code") == 0
    response = victim.get("/salesforce/callback/?" + query)
    assert response.status_code == 302 and response["Location"] == "/x/"
