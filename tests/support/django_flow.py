"""Browser-flow helpers of the Django tests: walk a login through the views and the
emulator, and sweep every table for token plaintext.

A module of its own, not ``conftest``: several test directories have a ``conftest.py``,
and ``from conftest import ...`` would pick whichever was imported last when more than
one directory is collected.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from django.db import connections
from django.test import Client

from sfoauth_core.testing import SalesforceEmulator


def authorize(browser: httpx.Client, response: Any) -> str:
    """Follow the login view's redirect at the emulator; return the callback query."""
    assert response.status_code == 302, getattr(response, "content", b"")[:500]
    at_salesforce = browser.get(response["Location"])
    assert at_salesforce.status_code == 302, at_salesforce.text[:500]
    return urlsplit(at_salesforce.headers["location"]).query


def connect(client: Client, browser: httpx.Client, **form: str) -> Any:
    """POST the login view, approve at the emulator, GET the callback; the callback's response."""
    query = authorize(browser, client.post("/salesforce/login/", form))
    return client.get("/salesforce/callback/?" + query)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def all_rows(alias: str = "default") -> list[tuple[str, tuple[Any, ...]]]:
    """Every row of every table of ``alias`` (sessions, users, connections...)."""
    connection = connections[alias]
    rows: list[tuple[str, tuple[Any, ...]]] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows.extend((table, tuple(row)) for row in cursor.fetchall())
    return rows


def assert_no_plaintext(emu: SalesforceEmulator, alias: str = "default") -> int:
    """No access or refresh token the emulator ever issued appears in any table.

    Returns how many secrets were looked for (so a test can check it is not zero).
    """
    with emu.state.lock:
        secrets = [*emu.state.access_tokens, *emu.state.refresh_tokens]
    assert secrets, "the emulator issued no token: the sweep would prove nothing"
    from django.contrib.sessions.backends.db import SessionStore

    for table, row in all_rows(alias):
        values = [bytes(v) if isinstance(v, memoryview) else v for v in row]
        text = " ".join(
            v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in values
        )
        if table == "django_session":
            text += repr(SessionStore().decode(str(values[1])))
        for secret in secrets:
            assert secret not in text, f"token plaintext found in table {table}"
    return len(secrets)
