"""Helpers for the example-project tests: the emulator's HTML login and consent pages
driven like a browser would, free ports, waiting for servers, child processes."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from sfoauth_core.testing import DEFAULT_PASSWORD, DEFAULT_USERNAME

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "example_projects"
DJANGO_SITE = EXAMPLES / "django_site"
FASTAPI_APP = EXAMPLES / "fastapi_app"

_HIDDEN = re.compile(r"<input type='hidden' name='([^']*)' value='([^']*)'>")
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of the emulator's login/consent form."""
    return {unescape(name): unescape(value) for name, value in _HIDDEN.findall(page)}


def csrf_token(page: str) -> str:
    match = _CSRF.search(page)
    assert match is not None, page[:500]
    return match.group(1)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def login_and_consent(
    browser: httpx.Client, authorize_url: str, approve: bool = True
) -> str:
    """Log in as jane@acme.com on the emulator's pages and answer the consent page;
    returns the callback URL Salesforce redirects to."""
    page = browser.get(authorize_url)
    assert page.status_code == 200, page.text[:500]
    assert "name='password'" in page.text
    target = _origin(authorize_url) + "/services/oauth2/authorize"
    form = hidden_fields(page.text)
    form.update(username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD, _action="login")
    consent = browser.post(target, data=form)
    assert consent.status_code == 200, consent.text[:500]
    assert "value='allow'" in consent.text
    form = hidden_fields(consent.text)
    form["_action"] = "allow" if approve else "deny"
    answer = browser.post(target, data=form)
    assert answer.status_code == 302, answer.text[:500]
    return answer.headers["location"]


async def alogin_and_consent(browser: httpx.AsyncClient, authorize_url: str) -> str:
    """Async twin of :func:`login_and_consent`."""
    page = await browser.get(authorize_url)
    assert page.status_code == 200, page.text[:500]
    target = _origin(authorize_url) + "/services/oauth2/authorize"
    form = hidden_fields(page.text)
    form.update(username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD, _action="login")
    consent = await browser.post(target, data=form)
    assert consent.status_code == 200, consent.text[:500]
    form = hidden_fields(consent.text)
    form["_action"] = "allow"
    answer = await browser.post(target, data=form)
    assert answer.status_code == 302, answer.text[:500]
    return answer.headers["location"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60.0
) -> None:
    """Wait until ``url`` answers 200 (fails early if ``process`` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1.0)
    except httpx.TransportError:
        return False
    return True


def children_of(pid: int) -> list[int] | None:
    """Child process ids (Linux ``/proc``), or ``None`` where that is not available."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():  # a zombie has exited; only its parent has not reaped it yet
        return stat.read_text().split(") ", 1)[-1][:1] != "Z"
    return True


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a child Python: no SFOAUTH_*/EXAMPLE_* or Django settings
    from the developer's shell, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SFOAUTH_", "EXAMPLE_")) and k != "DJANGO_SETTINGS_MODULE"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


PYTHON = sys.executable
