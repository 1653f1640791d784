"""The ``sfoauth`` command in a real session: ``sfoauth emulator`` as its own process,
``sfoauth login web`` waiting for its callback while the user logs in with Chromium,
then ``sfoauth token`` commands, each its own process, sharing the encrypted token file.

After Salesforce expires the access token, two ``sfoauth token userinfo`` started at
once both answer and Salesforce sees ONE refresh: the token manager renews under the
file's OS lock, and the second process re-reads the token the first one saved instead
of presenting the refresh token again.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from pathlib import Path

import pytest
from support.browser import Browser, free_port
from support.journeys import PYTHON, Emulator, Services, child_env, salesforce_login

from sfoauth_core.storage import FileTokenStore
from sfoauth_core.testing import (
    DEFAULT_CLIENT_SECRET,
    DEFAULT_USERNAME,
    WEB_APP_CLIENT_ID,
)

pytestmark = [pytest.mark.journey, pytest.mark.browser, pytest.mark.loopback]


def sfoauth(*argv: str) -> list[str]:
    return [PYTHON, "-m", "sfoauth_core.cli", *argv]


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sfoauth(*argv),
        env=env,
        cwd=env["HOME"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines_of(stream: object) -> queue.Queue[str | None]:
    """The lines of a child's output, read by a thread (so waits can time out)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def authorization_url(lines: queue.Queue[str | None]) -> str:
    seen: list[str] = []
    while True:
        line = lines.get(timeout=60)
        assert line is not None, f"sfoauth login exited: {seen}"
        seen.append(line)
        if line.strip().startswith("http") and "/services/oauth2/authorize" in line:
            return line.strip()


def test_login_then_token_commands_share_one_refresh(
    browser: Browser, services: Services, tmp_path: Path
) -> None:
    port = free_port()
    callback = f"http://127.0.0.1:{port}/OauthRedirect"
    emulator = Emulator(services, tmp_path, callbacks=[callback])
    emulator.start()
    store = tmp_path / "config" / "sfoauth" / "tokens.json.enc"
    # A user's shell: its own home and config directory, away from the checkout.
    (tmp_path / "home").mkdir()
    env = child_env(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        SFOAUTH_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
    )

    # sfoauth login web: prints the URL, the user logs in in the browser.
    login = subprocess.Popen(
        sfoauth(
            "login",
            "web",
            "--client-id",
            WEB_APP_CLIENT_ID,
            "--instance-url",
            emulator.url,
            "--allow-loopback",
            "--no-browser",
            "--callback-host",
            "127.0.0.1",
            "--port",
            str(port),
            "--timeout",
            "90",
        ),
        env=env,
        cwd=env["HOME"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert login.stderr is not None
        url = authorization_url(lines_of(login.stderr))
        browser.page.goto(url)
        salesforce_login(browser, emulator)
        assert "Login received" in browser.page.content()
        out, _ = login.communicate(timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
            login.communicate()
    assert login.returncode == 0
    assert f"Logged in as {DEFAULT_USERNAME}" in out
    assert f"Stored as '{DEFAULT_USERNAME}' in {store}" in out

    shown = run(env, "token", "userinfo")
    assert shown.returncode == 0, shown.stderr
    assert f"username: {DEFAULT_USERNAME}" in shown.stdout

    # Salesforce expires the access token; two commands at once renew it once.
    before = FileTokenStore(store, environ={}).get(DEFAULT_USERNAME)
    assert before is not None
    refreshes = emulator.refreshes()
    emulator.expire()
    both = [
        subprocess.Popen(
            sfoauth("token", "userinfo", "--json"),
            env=env,
            cwd=env["HOME"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    answers = [child.communicate(timeout=120) for child in both]
    for child, (child_out, child_err) in zip(both, answers, strict=True):
        assert child.returncode == 0, child_err
        assert f'"preferred_username": "{DEFAULT_USERNAME}"' in child_out
    assert emulator.refreshes() == refreshes + 1
    after = FileTokenStore(store, environ={}).get(DEFAULT_USERNAME)
    # One renewal: the in-flight marker, then the new token (two writes), marker cleared.
    assert after is not None and after.version == before.version + 2
    assert after.refresh_started_at is None
    assert after.token.access_token != before.token.access_token

    # sfoauth token revoke: gone at Salesforce and from the file.
    revoked = run(env, "token", "revoke")
    assert revoked.returncode == 0, revoked.stderr
    assert f"Revoked the token of '{DEFAULT_USERNAME}'" in revoked.stdout
    assert FileTokenStore(store, environ={}).keys() == []
    gone = run(env, "token", "userinfo")
    assert gone.returncode == 1 and "no token stored" in gone.stderr
