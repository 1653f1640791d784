"""Journey tests: whole user sessions in real processes and a real browser.

Run: ``pytest tests/journeys`` (or ``-m journey`` / ``-m "not journey"``). The Django
journey (``django_site/``, WSGI and ASGI), the FastAPI journey (``fastapi_site/``, two
uvicorn workers on PostgreSQL, one on SQLite) and the docs journey (projects assembled
from the tagged blocks of docs/django.md and docs/fastapi.md). PostgreSQL comes from
``SFOAUTH_TEST_POSTGRES_DSN`` (skipped loudly without the server, failed under
``SFOAUTH_REQUIRE_SERVICES=1``). Diagnostics: ``JOURNEY_KEEP_GOING=1`` runs every step
and lists all failing ones; ``JOURNEY_DOCS_DIR=<dir>`` runs the docs journey on drafts.
On failure: screenshots in ``test-artifacts/screenshots/<test>/``, process logs in
``test-artifacts/journey-logs/<test>/`` (their ends are printed with the failure).

Reuses the real-browser set-up of ``tests/browser`` (its ``browser`` fixture, the
failure screenshot hook and ``support.browser``) instead of a copy. Each journey gets a
``services`` fixture: every process it starts is stopped at the end, and the tail of
each process log is printed when the journey fails.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

BROWSER_TESTS = Path(__file__).resolve().parents[1] / "browser"

_spec = importlib.util.spec_from_file_location(
    "sfoauth_browser_conftest", BROWSER_TESTS / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_browser_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_browser_conftest)

# The same fixture and hook as tests/browser (screenshots, page text on failure).
browser = _browser_conftest.browser
pytest_runtest_makereport = _browser_conftest.pytest_runtest_makereport

from support.journeys import Services, journey_services  # noqa: E402


@pytest.fixture
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    """The journey's processes (logs in ``tmp_path/logs``), all stopped at the end."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    with journey_services(request, log_dir) as running:
        yield running
