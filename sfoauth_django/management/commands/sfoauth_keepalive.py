"""``manage.py sfoauth_keepalive``: refresh connections idle past a threshold, so the
app's refresh-token idle limit (reference 15.3) does not expire them.

Run it from cron or a scheduler, on one host or several at once: each connection is
refreshed at most once per run across hosts (sfoauth_core.keepalive).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sfoauth_core.exceptions import SFOAuthError
from sfoauth_core.keepalive import (
    DEFAULT_KEEPALIVE_CONCURRENCY,
    OUTCOME_LABELS,
    KeepAliveResult,
    default_idle_for,
    format_duration,
    parse_duration,
)

from ... import _runtime
from ...conf import sfoauth_settings


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise CommandError(f"--idle-for: {exc}") from None


class Command(BaseCommand):
    help = (
        "Refresh the Salesforce connections whose refresh token has not been used for "
        "--idle-for (default: a third of SFOAUTH['REFRESH_TOKEN_IDLE_LIMIT']), so the "
        "app's idle limit does not expire them. Safe to run on several hosts at once. "
        "Exits non-zero when some refresh failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--idle-for",
            metavar="DURATION",
            default=None,
            help="refresh connections unused for this long: 90s, 45m, 12h, 10d, 2w",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="at most this many connections this run (the longest idle first)",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=DEFAULT_KEEPALIVE_CONCURRENCY,
            help=f"refreshes at once (default {DEFAULT_KEEPALIVE_CONCURRENCY})",
        )
        parser.add_argument(
            "--quiet", action="store_true", help="print only the summary"
        )
        parser.add_argument(
            "--json", action="store_true", help="print the summary as one JSON object"
        )

    def _idle_for(self, option: str | None) -> float:
        if option is not None:
            return _duration(option)
        try:
            limit = sfoauth_settings.REFRESH_TOKEN_IDLE_LIMIT
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        if limit is None:
            raise CommandError(
                "pass --idle-for (e.g. --idle-for 10d), or set "
                "SFOAUTH['REFRESH_TOKEN_IDLE_LIMIT'] to the app's refresh-token idle "
                "limit in seconds"
            )
        return default_idle_for(limit)

    def _progress(self, result: KeepAliveResult, done: int, total: int) -> None:
        text = f"[{done}/{total}] {result.key}: {OUTCOME_LABELS[result.outcome]}"
        if result.detail:
            text += f" ({result.detail})"
        if result.outcome == "failed":
            self.stderr.write(text)
        elif result.outcome == "needs_reauth":
            self.stdout.write(self.style.WARNING(text))
        else:
            self.stdout.write(text)

    def handle(self, *args: Any, **options: Any) -> None:
        idle_for = self._idle_for(options["idle_for"])
        quiet = options["quiet"] or options["json"]
        if not quiet:
            self.stdout.write(
                f"Refreshing connections unused for {format_duration(idle_for)} or more."
            )
        try:
            summary = _runtime.manager().keep_alive(
                idle_for=idle_for,
                limit=options["limit"],
                concurrency=options["concurrency"],
                progress=None if quiet else self._progress,
            )
        except (ImproperlyConfigured, SFOAuthError) as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "idle_for": idle_for,
                        "seconds": round(summary.seconds, 3),
                        "kept_alive": summary.kept_alive,
                        "needs_reauth": summary.needs_reauth,
                        "failed": summary.failed,
                        "skipped": summary.skipped,
                        "results": [
                            {"key": r.key, "outcome": r.outcome, "detail": r.detail}
                            for r in summary.results
                        ],
                    }
                )
            )
        else:
            style = self.style.SUCCESS if summary.ok else self.style.ERROR
            self.stdout.write(style(f"Keep-alive: {summary}"))
        if not summary.ok:
            raise CommandError(
                f"{summary.failed} connection(s) could not be refreshed (Salesforce or "
                "the database was unavailable); nothing was changed for them, and the "
                "next run tries again"
            )
