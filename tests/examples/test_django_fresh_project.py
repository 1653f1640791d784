"""A fresh ``django-admin startproject`` with Django's default logging (issue 10 items 7
and 15): a wrong client secret shows up in ``runserver``'s output as an ERROR naming
``SFOAUTH['CLIENT_SECRET']`` (never its value), the page stays generic, and the
callback's request line carries no ``code`` or ``state``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support.examples import (
    PYTHON,
    csrf_token,
    free_port,
    login_and_consent,
    python_env,
    wait_for_http,
)

from sfoauth_core.storage import TokenCipher
from sfoauth_core.testing import WEB_APP_CLIENT_ID, SalesforceEmulator

pytest.importorskip("django")

WRONG_SECRET = "WRONG-secret-0123456789abcdef"


def _write_project(root: Path, emulator_url: str, app_url: str) -> None:
    subprocess.run(
        [PYTHON, "-m", "django", "startproject", "mysite", str(root)],
        check=True,
        env=python_env(),
        timeout=120,
    )
    settings = root / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + f"""
INSTALLED_APPS += ["sfoauth_django"]
MIDDLEWARE += ["sfoauth_django.middleware.SalesforceMiddleware"]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "sfoauth_django.backends.SalesforceBackend",
]
SFOAUTH = {{
    "CLIENT_ID": {WEB_APP_CLIENT_ID!r},
    "CLIENT_SECRET": {WRONG_SECRET!r},
    "REDIRECT_URI": {app_url + "/salesforce/callback/"!r},
    "LOGIN_URL": {emulator_url!r},
    "ALLOW_LOOPBACK": True,
    "TOKEN_KEYS": [{TokenCipher.generate_key()!r}],
}}
"""
    )
    urls = root / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text()
        + """
from django.urls import include

urlpatterns += [path("salesforce/", include("sfoauth_django.urls"))]
"""
    )


def test_wrong_client_secret_is_an_error_in_runserver_output(
    salesforce_emulator: SalesforceEmulator, tmp_path: Path
) -> None:
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    root = tmp_path / "site"
    root.mkdir()
    with salesforce_emulator.serve() as emulator_url:
        patched = httpx.patch(
            emulator_url + "/__emulator__/apps/web",
            json={"callback_urls": [app_url + "/salesforce/callback/"]},
            timeout=10,
        )
        assert patched.status_code == 200, patched.text
        _write_project(root, emulator_url, app_url)
        env = python_env()
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "-v0"],
            cwd=root,
            check=True,
            env=env,
            timeout=120,
        )
        log = tmp_path / "runserver.log"
        with log.open("w") as out:
            server = subprocess.Popen(
                [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                cwd=root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_for_http(app_url + "/salesforce/login/", server)
                with httpx.Client(
                    base_url=app_url, follow_redirects=False, timeout=30
                ) as browser:
                    page = browser.get("/salesforce/login/")
                    assert "Continue to Salesforce" in page.text
                    start = browser.post(
                        "/salesforce/login/",
                        data={"csrfmiddlewaretoken": csrf_token(page.text)},
                    )
                    assert start.status_code == 302, start.text[:500]
                    with httpx.Client(follow_redirects=False, timeout=30) as at_sf:
                        callback = login_and_consent(at_sf, start.headers["location"])
                    answer = browser.get(callback.removeprefix(app_url))
                # The same page as a refused secret at a refresh (the core's
                # app_misconfigured code), never a value of the configuration.
                assert answer.status_code == 502
                assert "Salesforce connection problem" in answer.text
                assert "CLIENT_SECRET" not in answer.text
                deadline = time.monotonic() + 10  # the request line follows the answer
                while "/salesforce/callback/?" not in log.read_text():
                    assert time.monotonic() < deadline, log.read_text()[-2000:]
                    time.sleep(0.1)
            finally:
                server.terminate()
                server.wait(timeout=30)
    output = log.read_text()
    assert "Salesforce refused this site's app configuration" in output, output[-3000:]
    assert "invalid_client" in output and "SFOAUTH['CLIENT_SECRET']" in output
    assert WRONG_SECRET not in output
    assert "/salesforce/callback/?code=[redacted]&state=[redacted]" in output
