"""``manage.py sfoauth_status``: connections, their status, how long each refresh token
has been idle (and the risk against the app's idle limit), and key ids (never tokens)."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sfoauth_core.exceptions import StorageError
from sfoauth_core.keepalive import AT_RISK_SHARE, IdleRisk, format_duration, idle_risk
from sfoauth_core.storage import MINTED_GRANTS, NEEDS_REAUTH

from ...conf import sfoauth_settings
from ...models import get_token_model

#: The columns of the text output (``--json`` prints one object per line instead).
HEADER = (
    "OWNER",
    "SALESFORCE USERNAME",
    "ORG ID",
    "SALESFORCE USER ID",
    "STATUS",
    "IDLE",
    "IDLE RISK",
    "KEY ID",
    "REASON",
)

#: How the idle risk reads in the text output.
RISK_TEXT: dict[IdleRisk, str] = {
    "ok": "ok",
    "at_risk": "AT RISK",
    "expired": "EXPIRED",
}


def _idle_seconds(row: Any, now: float) -> float | None:
    """Seconds since the row's refresh token was last used (``None``: no idle limit
    applies: minted grants, flagged connections)."""
    if row.grant in MINTED_GRANTS or row.status == NEEDS_REAUTH:
        return None
    stamp = row.refreshed_at or row.updated_at
    return max(0.0, now - stamp.timestamp()) if stamp else None


class Command(BaseCommand):
    help = (
        "List Salesforce connections: owner, org, status, how long the refresh token "
        "has been unused (and the risk against SFOAUTH['REFRESH_TOKEN_IDLE_LIMIT']), "
        "reason and encryption key id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON lines")

    def handle(self, *args: Any, **options: Any) -> None:
        cipher = sfoauth_settings.cipher()
        try:
            idle_limit = sfoauth_settings.REFRESH_TOKEN_IDLE_LIMIT
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        now = time.time()
        at_risk = 0
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
            idle = _idle_seconds(row, now)
            risk = idle_risk(idle, idle_limit)
            at_risk += risk in ("at_risk", "expired")
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
                "idle_seconds": None if idle is None else round(idle),
                "idle_risk": risk,
            }
            if options["json"]:
                self.stdout.write(json.dumps(entry))
            else:
                owner = entry["connection"] or entry["user"]
                stale = "" if entry["current_key"] else " (re-encrypt needed)"
                self.stdout.write(
                    f"{owner}\t{row.username or '-'}\t{row.org_id}"
                    f"\t{row.salesforce_user_id}\t{row.status}"
                    f"\t{'-' if idle is None else format_duration(idle)}"
                    f"\t{'-' if risk is None else RISK_TEXT[risk]}"
                    f"\t{key_id}{stale}\t{row.reason or '-'}"
                )
        if at_risk and idle_limit and not options["json"]:
            # Reference 15.3: past the idle limit the refresh token dies silently.
            self.stderr.write(
                f"{at_risk} connection(s) unused for "
                f"{format_duration(idle_limit * AT_RISK_SHARE)} or more, against the "
                f"app's refresh-token idle limit of {format_duration(idle_limit)}: run "
                "`manage.py sfoauth_keepalive` regularly (EXPIRED ones most likely "
                "need a new login already)."
            )
