"""Secrets never reach logs, reprs or the public surface (SECURITY.md item 20, C11)."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from support.django_flow import assert_no_plaintext, connect

import sfoauth_django
from sfoauth_django import _runtime
from sfoauth_django.models import get_token_model
from sfoauth_django.storage import DjangoTokenStore


def test_public_api_is_sorted_and_importable():
    assert sfoauth_django.__all__ == sorted(sfoauth_django.__all__)
    for name in sfoauth_django.__all__:
        assert getattr(sfoauth_django, name) is not None
    with pytest.raises(AttributeError):
        sfoauth_django.nope  # noqa: B018


def test_no_token_in_any_log_repr_or_table(emu, browser, user_factory, caplog):
    caplog.set_level(logging.DEBUG)
    client = Client()
    client.force_login(user_factory("alice"))
    connect(client, browser)
    emu.expire_access_tokens()
    assert client.get("/limits/").json() == {"status": 200}  # 401, refresh, retry
    key = get_token_model().objects.get().key
    record = DjangoTokenStore().get(key)
    session = _runtime.manager()
    texts = [
        repr(record),
        str(record),
        repr(record.token),
        repr(get_token_model().objects.get()),
        str(get_token_model().objects.get()),
        repr(DjangoTokenStore()),
        repr(session),
        repr(_runtime.oauth()),
    ]
    assert_no_plaintext(emu)
    client.post("/salesforce/disconnect/")
    with emu.state.lock:
        secrets = [*emu.state.access_tokens, *emu.state.refresh_tokens]
    assert len(secrets) >= 3
    logged = "\n".join(
        r.getMessage() + repr(r.args) + str(r.exc_info) for r in caplog.records
    )
    assert logged  # httpx and sfoauth did log
    for secret in secrets:
        assert secret not in logged
        for text in texts:
            assert secret not in text
