"""Real-browser tests: headless Chromium driven by Playwright's sync API.

The browser is the Debian package's ``/usr/bin/chromium`` (``scripts/test`` installs it);
Playwright's own browser downloads are never used. Override the path with
``SFOAUTH_TEST_CHROMIUM``. When Chromium or the ``playwright`` package is missing the
tests skip with a loud reason, except under CI (``SFOAUTH_REQUIRE_SERVICES=1``) where
they fail.

Every test gets a fresh browser profile (its own user-data directory: no cookie from
another test) and a :class:`~support.browser.Browser` whose ``shot(step)`` keeps
screenshots in ``test-artifacts/screenshots/<test>/<nn>-<step>.png``; a failing test
also leaves ``99-failure.png`` there.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    STEP_TIMEOUT_MS,
    Browser,
    require_browser,
    slug,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives a real headless Chromium through Playwright"
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # The `browser` fixture's teardown reads this to keep a screenshot of a failure.
    setattr(item, f"browser_report_{report.when}", report)
    return report


def _running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browser]:
    """A fresh headless Chromium (own user-data dir) and a page; screenshots kept."""
    require_browser()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API refuses to start inside a running event loop; these are
    # plain (sync) tests, so there is none.
    assert not _running_loop()
    shots = SCREENSHOTS / slug(request.node.name)
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1000, "height": 760},
            timeout=30_000,
        )
        try:
            context.set_default_timeout(STEP_TIMEOUT_MS)
            context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
            page = context.pages[0] if context.pages else context.new_page()
            handle = Browser(page, shots)
            yield handle
            report = getattr(request.node, "browser_report_call", None)
            if report is not None and report.failed:
                page.screenshot(path=str(shots / "99-failure.png"), full_page=True)
                # Shown under "Captured stdout teardown" in the failure report.
                try:
                    text = page.locator("body").inner_text(timeout=2_000)
                except Exception as exc:
                    text = f"(no page text: {exc!r})"
                print(f"The browser was on {page.url}:\n{text[:1500]}")
        finally:
            context.close()
