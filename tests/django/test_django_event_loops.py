"""The async OAuth client of sfoauth_django never crosses event loops (issue 10 item 2).

Under WSGI (``runserver``, gunicorn) asgiref runs each async view in a new event loop.
The runtime used to build one ``httpx.AsyncClient`` per process and reuse it on every
loop; after a token expiry the refresh failed with ``RuntimeError: Event loop is
closed``. Now the adapter's client factory is called once per loop and each client is
closed when its loop ends (the loopback reproduction is in
``tests/core/http/test_event_loops.py``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync

from sfoauth_core import ConnectedApp
from sfoauth_core.testing import (
    CC_APP_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    WEB_APP_CLIENT_ID,
)
from sfoauth_django import _runtime

ROOT = Path(__file__).resolve().parents[2]


def test_async_oauth_builds_one_client_per_event_loop(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[httpx.AsyncClient] = []
    factory = _runtime.http_client

    def spy(app: ConnectedApp, *, asynchronous: bool) -> Any:
        client = factory(app, asynchronous=asynchronous)
        if asynchronous:
            built.append(client)
        return client

    monkeypatch.setattr(_runtime, "http_client", spy)
    oauth = _runtime.async_oauth()

    async def one_request() -> str:
        return str((await oauth.openid_configuration())["issuer"])

    issuers = {async_to_sync(one_request)() for _ in range(3)}  # three "requests"
    assert len(issuers) == 1
    assert len(built) == 3  # failed before the fix: one client for every loop
    assert all(client.is_closed for client in built)


# A real `manage.py runserver` (WSGI: asgiref runs each async view in a new loop) ------
SETTINGS = """
SECRET_KEY = "sfoauth-loop-test-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "loop_urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "sfoauth_django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "sfoauth_django.middleware.SalesforceMiddleware",
]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r}}}}}
LOGGING = {{
    "version": 1,
    "handlers": {{"console": {{"class": "logging.StreamHandler"}}}},
    "loggers": {{"django.request": {{"handlers": ["console"], "level": "ERROR"}}}},
}}
SFOAUTH = {{
    "CLIENT_ID": {web_id!r},
    "CLIENT_SECRET": {web_secret!r},
    "REDIRECT_URI": "http://localhost:8000/salesforce/callback/",
    "LOGIN_URL": {base!r},
    "ALLOW_LOOPBACK": True,
    "TOKEN_KEYS": ["pVOFZMsSsEGFaWxdHDfoWhQblV4hlg4DENOtiiK7QYY="],
    "CONNECTIONS": {{
        "ops": {{
            "FLOW": "client_credentials",
            "CLIENT_ID": {cc_id!r},
            "CLIENT_SECRET": {cc_secret!r},
        }},
    }},
}}
"""

URLS = """
from django.http import JsonResponse
from django.urls import path

from sfoauth_django.session import SalesforceSession


async def limits(request):
    sf = SalesforceSession(request, connection="ops")
    try:
        client = await sf.aclient()
        response = await client.get("/services/data/v62.0/limits")
        return JsonResponse({"status": response.status_code})
    finally:
        await sf.aclose()


urlpatterns = [path("limits/", limits)]
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.loopback
def test_async_view_under_runserver_survives_expiries(
    salesforce_emulator_server: Any, tmp_path: Path
) -> None:
    # Failed before: the second request (a new event loop) re-minted the expired token
    # over the first loop's pooled connection: 500, "RuntimeError: Event loop is closed".
    emu = salesforce_emulator_server
    (tmp_path / "loop_settings.py").write_text(
        SETTINGS.format(
            db=str(tmp_path / "db.sqlite3"),
            base=emu.base_url,
            web_id=WEB_APP_CLIENT_ID,
            web_secret=DEFAULT_CLIENT_SECRET,
            cc_id=CC_APP_CLIENT_ID,
            cc_secret=emu.apps["cc"].client_secret,
        )
    )
    (tmp_path / "loop_urls.py").write_text(URLS)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "DJANGO_SETTINGS_MODULE": "loop_settings",
    }
    manage = [sys.executable, "-m", "django"]
    subprocess.run(
        [*manage, "migrate", "--verbosity", "0"], env=env, check=True, timeout=120
    )
    port = _free_port()
    log = (tmp_path / "runserver.log").open("w")
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/limits/"
        deadline = time.monotonic() + 60
        while True:
            try:
                first = httpx.get(url, timeout=30)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert first.json() == {"status": 200}
        for round_ in range(1, 4):
            emu.expire_access_tokens()
            response = httpx.get(url, timeout=30)
            assert response.status_code == 200, (tmp_path / "runserver.log").read_text()
            assert response.json() == {"status": 200}
            assert emu.calls("client_credentials") == 1 + round_
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert "Event loop is closed" not in (tmp_path / "runserver.log").read_text()
