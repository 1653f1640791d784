"""``manage.py check --database default``: stored tokens whose key was removed (issue 13
defect 9).

Tagged ``database`` (Django runs it only when asked to, since it reads the table): every
stored ciphertext names the key id it was made with; an id that is not in
``SFOAUTH["TOKEN_KEYS"]`` means those rows can no longer be decrypted and their users
will have to log in again. The check counts them per missing key id (ids are
fingerprints, never key material).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from sfoauth_core.exceptions import StorageError

from .conf import setting_label, sfoauth_settings
from .models import get_token_model

__all__ = ["check_removed_keys"]


@register(Tags.database)
def check_removed_keys(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """An error for each key id that stored tokens use but ``TOKEN_KEYS`` lacks."""
    try:
        cipher = sfoauth_settings.cipher()
    except ImproperlyConfigured:
        return []  # sfoauth_django.E005 already reports the keys themselves
    known = set(cipher.key_ids)
    problems: list[CheckMessage] = []
    for alias in databases or ():
        missing: Counter[str] = Counter()
        try:
            rows = (
                get_token_model()
                ._default_manager.using(alias)
                .exclude(token_ciphertext="")
                .values_list("token_ciphertext", flat=True)
                .iterator()
            )
            for ciphertext in rows:
                try:
                    kid = cipher.key_id_of(ciphertext)
                except StorageError:
                    kid = "(not a sfoauth ciphertext)"
                if kid not in known:
                    missing[kid] += 1
        except DatabaseError:
            continue  # no table yet (before migrate), or not this app's database
        for kid, count in sorted(missing.items()):
            problems.append(
                Error(
                    f"{count} stored Salesforce connection(s) in database {alias!r} are "
                    f"encrypted with key id {kid!r}, which is not in "
                    f"{setting_label('TOKEN_KEYS')}: they cannot be decrypted.",
                    hint=(
                        "Put the removed key back after the new one, run "
                        "`manage.py sfoauth_reencrypt`, then remove it; otherwise those "
                        "users must log in to Salesforce again."
                    ),
                    id="sfoauth_django.E020",
                )
            )
    return problems
