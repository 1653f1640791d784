"""DjangoTokenStore / AsyncDjangoTokenStore: the core store contract on the ORM,
encryption bound to the row, key rotation and the re-encrypt command (SECURITY.md 17)."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.test import override_settings
from support import record_contract

from sfoauth_core.ids import to_18
from sfoauth_core.storage import (
    AsyncTokenStore,
    TokenCipher,
    TokenStore,
    VersionConflictError,
)
from sfoauth_core.tokens import Token
from sfoauth_django.conf import sfoauth_settings
from sfoauth_django.models import get_token_model
from sfoauth_django.storage import AsyncDjangoTokenStore, DjangoTokenStore

ORG = "00DXX0000001abcEAA"


def make_token(n: int = 1, **changes: Any) -> Token:
    user = to_18(f"005XX{n:010d}")
    values: dict[str, Any] = {
        "access_token": f"00Dxx0000001abc!AQ0.access-{n}-{uuid.uuid4().hex}",
        "refresh_token": f"5Aep861.refresh-{n}-{uuid.uuid4().hex}",
        "instance_url": "https://acme.my.salesforce.com",
        "id_url": f"https://login.salesforce.com/id/{ORG}/{user}",
        "org_id": ORG,
        "user_id": user,
        "issued_at": 1767229200.456,
        "scopes": ("api", "refresh_token"),
        "signature": "c2lnbmF0dXJl",
    }
    values.update(changes)
    return Token(**values)


@pytest.fixture
def store(db) -> DjangoTokenStore:
    return DjangoTokenStore()


def test_is_a_core_store(store):
    assert isinstance(store, TokenStore)
    assert isinstance(AsyncDjangoTokenStore(store), AsyncTokenStore)
    assert "DjangoTokenStore(model='sfoauth_django.SalesforceConnection'" in repr(store)


def test_save_get_versions_and_columns(store):
    assert store.get("k") is None
    token = make_token(1)
    record = store.save("k", token)
    assert (record.version, record.grant, record.status) == (
        1,
        "authorization_code",
        "active",
    )
    loaded = store.get("k")
    assert loaded.token == token and loaded.token.refresh_token == token.refresh_token
    assert loaded.token.signature == token.signature and loaded.version == 1
    row = get_token_model().objects.get(key="k")
    assert (row.org_id, row.salesforce_user_id) == (ORG, token.user_id)
    assert row.scopes == "api refresh_token"
    assert row.instance_url == "https://acme.my.salesforce.com"
    for secret in (token.access_token, token.refresh_token, token.signature):
        assert secret not in row.token_ciphertext
        assert secret not in str(row) and secret not in repr(row)
    assert store.save("k", make_token(2), expected_version=1).version == 2


def test_compare_and_swap(store):
    store.save("k", make_token(1))
    newer = make_token(2)
    store.save("k", newer, expected_version=1)
    with pytest.raises(VersionConflictError) as info:
        store.save("k", make_token(3), expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert store.get("k").token == newer
    with pytest.raises(VersionConflictError):
        store.save("k", make_token(4), expected_version=0)
    store.save("new", make_token(5), expected_version=0)


def test_refresh_keeps_grant_and_username(store):
    store.save(
        "connection:erp", make_token(1), grant="jwt_bearer", username="int@acme.com"
    )
    record = store.save("connection:erp", make_token(2), expected_version=1)
    assert (record.grant, record.username) == ("jwt_bearer", "int@acme.com")
    row = get_token_model().objects.get(key="connection:erp")
    assert row.name == "erp" and row.user is None


def test_needs_reauth_keeps_the_row(store):
    token = make_token(1)
    store.save("k", token)
    flagged = store.mark_needs_reauth(
        "k", "Salesforce refused the refresh token (invalid_grant)"
    )
    assert flagged.needs_reauth and flagged.version == 2
    kept = store.get("k")
    assert kept.token == token and kept.status == "needs_reauth"
    assert kept.reason.startswith("Salesforce refused")
    with pytest.raises(VersionConflictError):
        store.mark_needs_reauth("k", "again", expected_version=1)
    with pytest.raises(VersionConflictError):
        store.mark_needs_reauth("missing", "x")
    assert store.save("k", make_token(2)).status == "active"


def test_delete(store):
    store.save("k", make_token(1))
    store.delete("k")
    store.delete("k")
    assert store.get("k") is None


def test_lock_commits_the_flag_when_the_block_raises(store):
    store.save("k", make_token(1))
    with pytest.raises(RuntimeError), store.lock("k"):
        store.mark_needs_reauth("k", "refused", expected_version=1)
        raise RuntimeError("raised after the write")
    assert store.get("k").needs_reauth


def test_ciphertext_is_bound_to_its_row(store):
    store.save("a", make_token(1))
    store.save("b", make_token(2))
    rows = get_token_model().objects
    rows.filter(key="b").update(token_ciphertext=rows.get(key="a").token_ciphertext)
    # Issue 13 defect 7: unreadable rows answer needs_reauth (no 500), never a token.
    moved = store.get("b")
    assert moved.needs_reauth and moved.token.access_token == ""
    assert not store.get("a").needs_reauth


def test_ciphertext_is_bound_to_its_owner(store, user_factory):
    alice, eve = user_factory("alice"), user_factory("eve")
    model = get_token_model()
    model.objects.create(key="k", user=alice)
    store.save("k", make_token(1))
    model.objects.filter(key="k").update(user=eve)
    assert store.get("k").needs_reauth


def test_tampered_ciphertext(store):
    store.save("k", make_token(1))
    row = get_token_model().objects.get(key="k")
    body = row.token_ciphertext
    get_token_model().objects.filter(key="k").update(
        token_ciphertext=body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB")
    )
    assert store.get("k").needs_reauth


def test_key_rotation_and_reencrypt_command(store, settings):
    old = settings.SFOAUTH["TOKEN_KEYS"][0]
    tokens = {f"k{i}": make_token(i) for i in range(5)}
    for key, token in tokens.items():
        store.save(key, token)
    new = TokenCipher.generate_key()
    settings.SFOAUTH = {**settings.SFOAUTH, "TOKEN_KEYS": [new, old]}
    cipher = sfoauth_settings.cipher()
    assert all(
        cipher.needs_reencrypt(r.token_ciphertext)
        for r in get_token_model().objects.all()
    )
    assert store.get("k1").token == tokens["k1"]  # old key still decrypts
    out = io.StringIO()
    call_command("sfoauth_reencrypt", "--batch-size", "2", stdout=out)
    assert "Re-encrypted 5 connection(s)" in out.getvalue()
    out = io.StringIO()
    call_command("sfoauth_reencrypt", stdout=out)
    assert "Re-encrypted 0 connection(s)" in out.getvalue()
    settings.SFOAUTH = {**settings.SFOAUTH, "TOKEN_KEYS": [new]}
    for key, token in tokens.items():
        assert DjangoTokenStore().get(key).token == token


def test_status_command_never_prints_tokens(store):
    token = make_token(1)
    store.save("k", token)
    store.mark_needs_reauth("k", "refused by Salesforce")
    out = io.StringIO()
    call_command("sfoauth_status", "--json", stdout=out)
    entry = json.loads(out.getvalue().splitlines()[0])
    assert entry["status"] == "needs_reauth" and entry["current_key"] is True
    assert entry["reason"] == "refused by Salesforce"
    assert token.access_token not in out.getvalue()
    assert token.refresh_token not in out.getvalue()
    text = io.StringIO()
    call_command("sfoauth_status", stdout=text)
    assert "needs_reauth" in text.getvalue()


def test_missing_keys_is_a_configuration_error(db):
    with override_settings(SFOAUTH={"CLIENT_ID": "3MVG9x", "TOKEN_KEYS": []}):
        from django.core.exceptions import ImproperlyConfigured

        with pytest.raises(ImproperlyConfigured, match="TOKEN_KEYS"):
            DjangoTokenStore().save("k", make_token())


# -- async twin (its calls run in threads: transactional database) ---------------------------
@pytest.mark.django_db(transaction=True)
def test_async_store_contract():
    store = AsyncDjangoTokenStore()

    async def scenario() -> None:
        assert await store.get("k") is None
        first = await store.save("k", make_token(1))
        assert first.version == 1
        async with store.lock("k"):
            current = await store.get("k")
            assert current is not None
            await store.save("k", make_token(2), expected_version=current.version)
        flagged = await store.mark_needs_reauth("k", "refused", expected_version=2)
        assert flagged.needs_reauth
        with pytest.raises(RuntimeError):
            async with store.lock("k"):
                await store.save("k", make_token(3), expected_version=3)
                raise RuntimeError("after the write")
        assert (await store.get("k")).version == 4
        await store.delete("k")
        assert await store.get("k") is None

    async_to_sync(scenario)()


def test_records_keep_refreshed_at_and_the_refresh_marker(store):
    record_contract.run_sync(
        record_contract.check_refreshed_at_and_marker, store, make_token
    )


def test_idle_keys(store):
    record_contract.run_sync(record_contract.check_idle_keys, store, make_token)


@pytest.mark.django_db(transaction=True)
def test_async_store_keeps_the_records_too():
    store = AsyncDjangoTokenStore(DjangoTokenStore())
    async_to_sync(record_contract.check_refreshed_at_and_marker)(store, make_token)
    async_to_sync(store.delete)("rec")  # its Salesforce user comes back below
    async_to_sync(record_contract.check_idle_keys)(store, make_token)


def test_idle_keys_fall_back_to_updated_at_for_rows_saved_before_refreshed_at(store):
    store.save("old", make_token(1))
    store.model.objects.filter(key="old").update(refreshed_at=None)
    record = store.get("old")
    assert record.refreshed_at is None and record.idle_since == record.updated_at
    assert store.idle_keys(idle_since=record.updated_at + 1) == ["old"]
    assert store.idle_keys(idle_since=record.updated_at - 1) == []
