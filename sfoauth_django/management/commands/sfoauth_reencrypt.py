"""``manage.py sfoauth_reencrypt``: move every stored token to the first key."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sfoauth_core.exceptions import StorageError

from ...storage import DjangoTokenStore


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored token with the first key of SFOAUTH['TOKEN_KEYS']. "
        "Idempotent and resumable: rows already under that key are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument("--database", default=None, help="database alias")

    def handle(self, *args: Any, **options: Any) -> None:
        failed: list[str] = []
        try:
            store = DjangoTokenStore(using=options["database"])
            count = store.reencrypt(batch_size=options["batch_size"], failed=failed)
        except (ImproperlyConfigured, StorageError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {count} connection(s) with key id {store.cipher.primary_key_id}."
            )
        )
        if failed:
            # One bad row never stops the run; it is reported, and the exit is non-zero.
            for key in failed:
                self.stderr.write(
                    f"Cannot decrypt connection {key}: flagged for re-login."
                )
            raise CommandError(
                f"{len(failed)} connection(s) could not be decrypted (tampered, or "
                "encrypted with a key no longer in SFOAUTH['TOKEN_KEYS']); their users "
                "must log in to Salesforce again."
            )
