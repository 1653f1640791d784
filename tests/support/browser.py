"""Helpers for the real-browser tests: finding Chromium, the browser handle with its
screenshots, free ports and bounded waits."""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

# Read at import time: the suite's `clean_environ` fixture strips SFOAUTH_* variables.
REQUIRE_SERVICES = os.environ.get("SFOAUTH_REQUIRE_SERVICES") == "1"
CHROMIUM = os.environ.get("SFOAUTH_TEST_CHROMIUM", "/usr/bin/chromium")

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"

#: No network here or in CI: nothing may phone home, and no QUIC/GPU/sandbox needs.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Upper bound (ms) for any one navigation, click or wait in the browser.
STEP_TIMEOUT_MS = 15_000


def missing_reason() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return (
            "the `playwright` package is not installed (pip install --group test; "
            "never `playwright install`: the tests use the system Chromium)"
        )
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (
            f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; "
            "scripts/test does it when run as root)"
        )
    return None


def require_browser() -> None:
    """Skip loudly (fail under CI) when Chromium or Playwright is missing."""
    reason = missing_reason()
    if reason is None:
        return
    message = f"!!! {reason}: the real-browser tests did NOT run."
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def slug(text: str) -> str:
    """``text`` as a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


class Browser:
    """One headless Chromium with a fresh profile and a single page.

    Attributes:
        page: the Playwright ``Page`` every step happens in.
        shots: where this test's screenshots go.
    """

    def __init__(self, page: Any, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self._count = 0

    def shot(self, step: str) -> Path:
        """Screenshot the whole page as ``<nn>-<step>.png``; returns the path."""
        self._count += 1
        path = self.shots / f"{self._count:02d}-{slug(step)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate()`` every 0.1 s; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 right now."""
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False
