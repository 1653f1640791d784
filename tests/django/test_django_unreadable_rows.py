"""Issue 13 defect 7: a tampered or undecryptable stored row never gives a 500.

Before the fix ``store.get`` raised ``StorageError`` from every read of such a row, so a
decorated view answered 500 and ``sfoauth_reencrypt`` stopped at the first bad row.
Now the row is flagged ``needs_reauth`` with a reason, a security event is logged, the
user is sent to reconnect, and the re-encryption goes on and exits non-zero.
"""

from __future__ import annotations

import io
import logging

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from support.django_flow import connect

from sfoauth_core.exceptions import ReauthorizationRequired
from sfoauth_core.ids import to_18
from sfoauth_core.storage import NEEDS_REAUTH, TokenCipher
from sfoauth_core.tokens import Token
from sfoauth_django.conf import sfoauth_settings
from sfoauth_django.models import get_token_model
from sfoauth_django.storage import UNREADABLE_REASON, DjangoTokenStore

pytestmark = pytest.mark.django_db


def token(n: int) -> Token:
    user = to_18(f"005XX00000{n:05d}")
    return Token(
        access_token=f"00DXX0000001abc!AQ0AQAccess{n}",
        refresh_token=f"5Aep861Refresh{n}",
        instance_url="https://acme.my.salesforce.com",
        id_url=f"https://login.salesforce.com/id/00DXX0000001abcEAA/{user}",
        org_id="00DXX0000001abcEAA",
        user_id=user,
    )


def tamper(key: str) -> None:
    rows = get_token_model().objects
    body = rows.get(key=key).token_ciphertext
    rows.filter(key=key).update(
        token_ciphertext=body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB")
    )


def test_a_tampered_row_is_flagged_and_logged_not_raised(caplog):
    caplog.set_level(logging.WARNING, "sfoauth.security")
    store = DjangoTokenStore()
    store.save("k", token(1))
    tamper("k")
    record = store.get("k")
    assert record is not None and record.needs_reauth
    assert record.reason == UNREADABLE_REASON and record.token.access_token == ""
    row = get_token_model().objects.get(key="k")
    assert row.status == NEEDS_REAUTH and row.reason == UNREADABLE_REASON
    assert "cannot be decrypted" in caplog.text and "'k'" in caplog.text
    # Logged once, not on every read.
    caplog.clear()
    assert store.get("k").needs_reauth
    assert "cannot be decrypted" not in caplog.text


def test_the_manager_raises_the_typed_reauthorization_error(emu):
    store = DjangoTokenStore()
    store.save("k", token(1))
    tamper("k")
    from sfoauth_django import _runtime

    with pytest.raises(ReauthorizationRequired) as info:
        _runtime.manager().valid_token("k")
    assert "unreadable" in info.value.reason


def test_a_decorated_view_sends_the_user_to_reconnect_not_a_500(
    user_factory, emu, browser
):
    client = Client(raise_request_exception=False)
    client.force_login(user_factory("alice"))
    assert connect(client, browser, next="/whoami/").status_code == 302
    (row,) = get_token_model().objects.all()
    tamper(row.key)
    from sfoauth_django import _runtime

    _runtime.forget(row.key)  # another process: nothing cached in memory
    response = client.get("/whoami/")
    assert response.status_code in (302, 303)
    assert "/salesforce/login/" in response["Location"]
    assert get_token_model().objects.get(key=row.key).status == NEEDS_REAUTH


def test_reencrypt_goes_past_bad_rows_and_exits_non_zero(settings):
    store = DjangoTokenStore()
    for i in range(4):
        store.save(f"k{i}", token(i))
    tamper("k1")
    old = settings.SFOAUTH["TOKEN_KEYS"][0]
    new = TokenCipher.generate_key()
    settings.SFOAUTH = {**settings.SFOAUTH, "TOKEN_KEYS": [new, old]}
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 connection"):
        call_command("sfoauth_reencrypt", "--batch-size", "2", stdout=out, stderr=err)
    assert "Re-encrypted 3 connection(s)" in out.getvalue()
    assert "k1" in err.getvalue()
    cipher = sfoauth_settings.cipher()
    rows = {r.key: r for r in get_token_model().objects.all()}
    assert not any(
        cipher.needs_reencrypt(rows[k].token_ciphertext) for k in ("k0", "k2", "k3")
    )
    assert rows["k1"].status == NEEDS_REAUTH
    settings.SFOAUTH = {**settings.SFOAUTH, "TOKEN_KEYS": [new]}
    assert DjangoTokenStore().get("k3").token == token(3)


def test_request_salesforce_is_falsy_once_the_row_was_read(user_factory, emu, browser):
    """The first read of the row flags it; from then on ``request.salesforce`` is falsy
    (deciding without decrypting is impossible: the flag is what later requests see)."""
    from sfoauth_django import _runtime

    client = Client(raise_request_exception=False)
    user = user_factory("alice")
    client.force_login(user)
    assert connect(client, browser, next="/whoami/").status_code == 302
    assert client.get("/optional/").json() == {"connected": True}
    (row,) = get_token_model().objects.all()
    tamper(row.key)
    _runtime.forget(row.key)
    assert client.get("/whoami/").status_code in (302, 303)  # the read that flags it
    assert client.get("/optional/").json() == {"connected": False}


def test_a_row_flagged_under_a_wrong_key_is_active_again_when_the_key_is_back(
    settings, caplog
):
    """A deploy with the wrong ``TOKEN_KEYS`` flags every row it reads; once the key
    is back, the rows decrypt (AES-GCM proves them authentic) and are active again:
    nobody has to reconnect because of an operator's slip. A tampered row stays
    flagged."""
    caplog.set_level(logging.WARNING, "sfoauth.security")
    store = DjangoTokenStore()
    store.save("k", token(1))
    store.save("bad", token(2))
    tamper("bad")
    right = settings.SFOAUTH["TOKEN_KEYS"]
    settings.SFOAUTH = {**settings.SFOAUTH, "TOKEN_KEYS": [TokenCipher.generate_key()]}
    assert DjangoTokenStore().get("k").needs_reauth  # flagged under the wrong key
    version = get_token_model().objects.get(key="k").version
    settings.SFOAUTH = {**settings.SFOAUTH, "TOKEN_KEYS": right}
    record = DjangoTokenStore().get("k")
    assert record is not None and not record.needs_reauth and record.reason == ""
    assert record.token == token(1) and record.version == version + 1
    row = get_token_model().objects.get(key="k")
    assert row.status == "active" and row.version == version + 1
    assert "can be decrypted again" in caplog.text
    assert DjangoTokenStore().get("bad").needs_reauth  # still unreadable
