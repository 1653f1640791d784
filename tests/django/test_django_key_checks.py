"""Issue 13 defect 9 (Django): a key removed from TOKEN_KEYS while rows still use it is
reported by ``manage.py check --database`` (before, nothing said so until a user's
request failed)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from sfoauth_core.storage import TokenCipher
from sfoauth_core.tokens import Token
from sfoauth_django._key_checks import check_removed_keys
from sfoauth_django.storage import DjangoTokenStore

pytestmark = pytest.mark.django_db


def _save(n: int) -> None:
    user = f"005XX00000{n:05d}AAA"
    DjangoTokenStore().save(
        f"k{n}",
        Token(
            access_token=f"00DXX0000001abc!AQ0AQAccess{n}",
            instance_url="https://acme.my.salesforce.com",
            id_url=f"https://login.salesforce.com/id/00DXX0000001abcEAA/{user}",
            org_id="00DXX0000001abcEAA",
            user_id=user,
        ),
    )


def test_no_error_while_every_key_is_configured(settings):
    _save(1)
    assert check_removed_keys(databases=["default"]) == []


def test_a_removed_key_is_reported_with_its_count(settings):
    _save(1)
    _save(2)
    old_cipher = TokenCipher(settings.SFOAUTH["TOKEN_KEYS"])
    settings.SFOAUTH = {**settings.SFOAUTH, "TOKEN_KEYS": [TokenCipher.generate_key()]}
    (error,) = check_removed_keys(databases=["default"])
    assert error.id == "sfoauth_django.E020"
    assert "2 stored Salesforce connection(s)" in error.msg
    assert old_cipher.primary_key_id in error.msg
    assert "TOKEN_KEYS" in error.msg and "sfoauth_reencrypt" in error.hint
    for key in settings.SFOAUTH["TOKEN_KEYS"]:
        assert key not in error.msg + error.hint
    # Only with --database (it reads the table); then `check` fails.
    call_command("check", stdout=io.StringIO())
    with pytest.raises(SystemCheckError, match=r"sfoauth_django\.E020"):
        call_command("check", "--database", "default", stdout=io.StringIO())
