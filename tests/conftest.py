"""Fixtures shared by the whole suite.

Services: tests that need PostgreSQL or Redis use the ``redis_url`` / ``postgres_dsn``
fixtures. When the service does not answer they skip with a loud reason, except under CI
(``SFOAUTH_REQUIRE_SERVICES=1``, set by ``.ci/run``) where a missing service fails the run.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# The suite runs on shared 2-core machines beside browsers and servers: a slow draw is
# load, not a bad strategy, and a per-example deadline measures the machine, not the code.
settings.register_profile(
    "sfoauth", suppress_health_check=[HealthCheck.too_slow], deadline=None
)
settings.load_profile("sfoauth")

# Read before `clean_environ` strips SFOAUTH_* variables from every test.
REQUIRE_SERVICES = os.environ.get("SFOAUTH_REQUIRE_SERVICES") == "1"
REDIS_URL = os.environ.get("SFOAUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get(
    "SFOAUTH_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _service_or_skip(name: str, host: str, port: int) -> None:
    if _answers(host, port):
        return
    message = (
        f"!!! {name} at {host}:{port} is not reachable: the tests that need it did NOT run."
        " Start it (see .ci/run) to run them."
    )
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def redis_url() -> str:
    """URL of the real Redis server; skips loudly (fails under CI) when it is down."""
    _service_or_skip("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def postgres_dsn() -> str:
    """DSN of the real PostgreSQL server; skips loudly (fails under CI) when it is down."""
    _service_or_skip("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_DSN


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SFOAUTH_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("SFOAUTH_"):
            monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Async tests run on asyncio and on trio (the core is anyio-based)."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _password_retirement_warning_per_test() -> Iterator[None]:
    """The username-password flow warns once per process (issue 12 item 4): each test
    starts as a fresh process would, so a test's first use warns again."""
    from sfoauth_core.flows.password import reset_retirement_warning

    reset_retirement_warning()
    yield
