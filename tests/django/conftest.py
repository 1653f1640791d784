"""Django for tests/django only: settings, the emulator hook, browser-flow helpers.

Django is configured when this file is imported (during collection) from
``tests/django/settings.py`` (or ``DJANGO_SETTINGS_MODULE`` / ``--ds`` when given), so the
rest of the suite is untouched and pytest-django finds the settings before the first
test. ``tests/django`` goes on ``sys.path`` for ``settings``,
``settings_swapped``, ``sfoauth_testapp`` and ``django_testkit``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import django  # noqa: E402
from django.conf import settings as django_settings  # noqa: E402

if not os.environ.get("DJANGO_SETTINGS_MODULE") and not django_settings.configured:
    # settings.configure() rather than DJANGO_SETTINGS_MODULE: the variable would leak
    # into the subprocesses other tests start.
    import settings as test_settings

    django_settings.configure(
        **{
            name: getattr(test_settings, name)
            for name in dir(test_settings)
            if name.isupper()
        }
    )
django.setup()

import django_testkit  # noqa: E402
import httpx  # noqa: E402
import pytest  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402

from sfoauth_core.testing import DEFAULT_USERNAME, SalesforceEmulator  # noqa: E402
from sfoauth_django import _runtime  # noqa: E402
from sfoauth_django.conf import sfoauth_settings  # noqa: E402


@pytest.fixture
def emu(salesforce_emulator: SalesforceEmulator) -> Iterator[SalesforceEmulator]:
    """The in-process emulator every sfoauth_django HTTP client talks to."""
    salesforce_emulator.auto_approve = DEFAULT_USERNAME
    django_testkit.CURRENT["emulator"] = salesforce_emulator
    sfoauth_settings.reload()
    _runtime.reset()
    yield salesforce_emulator
    _runtime.reset()
    django_testkit.CURRENT["emulator"] = None


@pytest.fixture
def browser(emu: SalesforceEmulator) -> Iterator[httpx.Client]:
    """The user's browser at Salesforce (the emulator's authorize pages)."""
    with httpx.Client(transport=emu.transport(), follow_redirects=False) as client:
        yield client


@pytest.fixture
def user_factory(db: None) -> Callable[..., Any]:
    from django.contrib.auth import get_user_model

    counter = iter(range(1, 10_000))

    def make(username: str | None = None, **fields: Any) -> Any:
        model = get_user_model()
        return model.objects.create_user(
            username=username or f"user{next(counter)}", password="pw", **fields
        )

    return make


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
