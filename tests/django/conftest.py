"""Django for tests/django only: settings and the emulator hook (browser-flow helpers
live in ``support.django_flow``).

Django is configured when this file is imported (during collection) from
``tests/django/settings.py`` (or ``DJANGO_SETTINGS_MODULE`` / ``--ds`` when given), so the
rest of the suite is untouched and pytest-django finds the settings before the first
test. ``tests/django`` goes on ``sys.path`` for ``settings``, ``settings_swapped`` and
``sfoauth_testapp``; the helpers (``support.django_testkit``, ``support.django_flow``)
come from the ``tests/support`` package.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

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

import httpx  # noqa: E402
import pytest  # noqa: E402
from django.db import connections  # noqa: E402
from support import django_testkit  # noqa: E402

from sfoauth_core.testing import DEFAULT_USERNAME, SalesforceEmulator  # noqa: E402
from sfoauth_django import _runtime  # noqa: E402
from sfoauth_django.conf import sfoauth_settings  # noqa: E402
from sfoauth_django.models import get_token_model  # noqa: E402


@pytest.fixture
def emu(salesforce_emulator: SalesforceEmulator) -> Iterator[SalesforceEmulator]:
    """The in-process emulator every sfoauth_django HTTP client talks to."""
    salesforce_emulator.auto_approve = DEFAULT_USERNAME
    django_testkit.CURRENT["emulator"] = salesforce_emulator
    django_testkit.CURRENT["down"] = False
    sfoauth_settings.reload()
    _runtime.reset()
    yield salesforce_emulator
    _runtime.reset()
    django_testkit.CURRENT["emulator"] = None
    django_testkit.CURRENT["down"] = False


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


# PostgreSQL (the ``postgres`` alias) for the row-lock tests -------------------------
PG_ALIAS = "postgres"
_STATE: dict[str, Any] = {"created": False, "name": None}


@pytest.fixture(scope="session")
def _pg_session(django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    yield _STATE
    if _STATE["created"]:
        with django_db_blocker.unblock():
            # Threads of asgiref/anyio pools may still hold a connection: end them first.
            with connections[PG_ALIAS].cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            connections[PG_ALIAS].close()
            connections[PG_ALIAS].creation.destroy_test_db(_STATE["name"], verbosity=0)


@pytest.fixture
def pg(
    postgres_dsn: str, _pg_session: dict[str, Any], django_db_blocker: Any
) -> Iterator[str]:
    """The ``postgres`` alias on a fresh test database (created once per session)."""
    with django_db_blocker.unblock():
        if not _STATE["created"]:
            _STATE["name"] = django_settings.DATABASES[PG_ALIAS]["NAME"]
            # One database per test process: several suites may run at once on one server.
            connections[PG_ALIAS].settings_dict["TEST"]["NAME"] = (
                f"test_sfoauth_{os.getpid()}"
            )
            # No fixture serialization: Django < 6.0 serializes unless told not to;
            # Django 6.0 deprecates the argument (and no longer serializes here).
            no_serialize = {"serialize": False} if django.VERSION < (6, 0) else {}
            connections[PG_ALIAS].creation.create_test_db(
                verbosity=0, autoclobber=True, **no_serialize
            )
            _STATE["created"] = True
        yield PG_ALIAS
        get_token_model().objects.using(PG_ALIAS).all().delete()
        connections[PG_ALIAS].close()
