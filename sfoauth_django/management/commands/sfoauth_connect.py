"""``manage.py sfoauth_connect NAME``: obtain and store a named connection's token."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sfoauth_core.exceptions import SFOAuthError

from ... import _runtime
from ...conf import sfoauth_settings
from ...models import connection_key


class Command(BaseCommand):
    help = (
        "Mint a token for a named server-to-server connection (SFOAUTH['CONNECTIONS']) "
        "with its JWT bearer or client credentials flow, and store it encrypted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "name", help="the connection's name in SFOAUTH['CONNECTIONS']"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        try:
            flow, _app = sfoauth_settings.connection_config(name)
            token = _runtime.manager(name).mint(connection_key(name), grant=flow)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        except SFOAuthError as exc:
            raise CommandError(f"Salesforce refused the {flow} flow: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Connected {name!r}: org {token.org_id}, user {token.user_id}, "
                f"instance {token.instance_url}"
            )
        )
