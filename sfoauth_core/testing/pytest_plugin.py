"""pytest plugin (entry point ``sfoauth``): fixtures handing tests an emulated
Salesforce org.

Fixtures:
    ``salesforce_emulator``
        A fresh in-process :class:`~sfoauth_core.testing.SalesforceEmulator` per test.
        Use ``emu.transport()`` / ``emu.async_transport()`` with httpx, and
        ``emu.connected_app("web")`` for a matching client configuration.
    ``salesforce_emulator_server``
        One emulator per test session served by uvicorn on ``127.0.0.1`` (a free port),
        reset before each test that uses it. Its ``base_url`` is the org's My Domain and
        login host; ``connected_app()`` points there. Use it for browsers, subprocesses
        and real sockets.

Example:
    >>> def test_login(salesforce_emulator):
    ...     emu = salesforce_emulator
    ...     emu.auto_approve = "jane@acme.com"

The emulator is imported lazily: this plugin loads even without the ``emulator`` extra.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._emulator import SalesforceEmulator

__all__ = ["salesforce_emulator", "salesforce_emulator_server"]


@pytest.fixture
def salesforce_emulator() -> SalesforceEmulator:
    """A fresh in-process Salesforce emulator (default org, users and apps)."""
    from ._emulator import SalesforceEmulator

    return SalesforceEmulator()


@pytest.fixture(scope="session")
def _sfoauth_emulator_server_session() -> Iterator[SalesforceEmulator]:
    from ._emulator import SalesforceEmulator

    emu = SalesforceEmulator()
    with emu.serve():
        yield emu


@pytest.fixture
def salesforce_emulator_server(
    _sfoauth_emulator_server_session: SalesforceEmulator,
) -> SalesforceEmulator:
    """The session's loopback emulator server, reset for this test (``.base_url``
    set)."""
    emu = _sfoauth_emulator_server_session
    emu.reset()
    return emu
