"""``manage.py sfoauth_status``: connections, their status and key ids (never tokens)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sfoauth_core.exceptions import StorageError

from ...conf import sfoauth_settings
from ...models import get_token_model

#: The columns of the text output (``--json`` prints one object per line instead).
HEADER = (
    "OWNER",
    "SALESFORCE USERNAME",
    "ORG ID",
    "SALESFORCE USER ID",
    "STATUS",
    "KEY ID",
    "REASON",
)


class Command(BaseCommand):
    help = (
        "List Salesforce connections: owner, org, status, reason and encryption key id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON lines")

    def handle(self, *args: Any, **options: Any) -> None:
        cipher = sfoauth_settings.cipher()
        rows = list(get_token_model()._default_manager.order_by("pk"))
        if not options["json"]:
            if not rows:
                self.stdout.write("No Salesforce connections.")
                return
            self.stdout.write("\t".join(HEADER))
        for row in rows:
            try:
                key_id = (
                    cipher.key_id_of(row.token_ciphertext)
                    if row.token_ciphertext
                    else ""
                )
            except StorageError:
                key_id = "unreadable"
            entry = {
                "connection": row.name or None,
                "user": str(row.user) if row.user_id is not None else None,
                "org_id": row.org_id,
                "salesforce_user_id": row.salesforce_user_id,
                "username": row.username,
                "status": row.status,
                "reason": row.reason,
                "grant": row.grant,
                "key_id": key_id,
                "current_key": key_id == cipher.primary_key_id,
                "updated_at": row.updated_at.isoformat() if row.updated_at else None,
            }
            if options["json"]:
                self.stdout.write(json.dumps(entry))
            else:
                owner = entry["connection"] or entry["user"]
                stale = "" if entry["current_key"] else " (re-encrypt needed)"
                self.stdout.write(
                    f"{owner}\t{row.username or '-'}\t{row.org_id}"
                    f"\t{row.salesforce_user_id}\t{row.status}"
                    f"\t{key_id}{stale}\t{row.reason or '-'}"
                )
