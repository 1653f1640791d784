"""Django for tests/django only: settings and the emulator hook (browser-flow helpers
live in ``django_flow``).

Django is configured when this file is imported (during collection) from
``tests/django/settings.py`` (or ``DJANGO_SETTINGS_MODULE`` / ``--ds`` when given), so the
rest of the suite is untouched and pytest-django finds the settings before the first
test. ``tests/django`` goes on ``sys.path`` for ``settings``,
``settings_swapped``, ``sfoauth_testapp``, ``django_testkit`` and ``django_flow``.
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

import django_testkit  # noqa: E402
import httpx  # noqa: E402
import pytest  # noqa: E402

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
