"""Real processes for the journey tests: the emulator (``sfoauth emulator``), Django
(runserver / uvicorn) and FastAPI (uvicorn) on free loopback ports, each with its own
log file; bounded waits; every process killed at the end.

The browser side (Debian's Chromium through Playwright, screenshots) is
``tests/support/browser.py`` and its ``browser`` fixture, reused here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from sfoauth_core.storage import TokenCipher
from sfoauth_core.testing import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    WEB_APP_CLIENT_ID,
)
from sfoauth_emulator.constants import DEFAULT_CALLBACK_URLS
from support.browser import REPO, Browser, free_port, slug, wait_until

#: tests/journeys (the journey projects live there).
JOURNEYS = REPO / "tests" / "journeys"
#: Where the process logs of a failed journey are kept (beside the screenshots).
LOGS = REPO / "test-artifacts" / "journey-logs"
PYTHON = sys.executable

#: Seconds a process may take to answer after it is started.
START_TIMEOUT = 60.0
#: Seconds a process may take to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0
#: Diagnostics: go on after a failed step and report them all at the end.
KEEP_GOING = os.environ.get("JOURNEY_KEEP_GOING") == "1"
#: Lines of each process log printed when a journey fails.
LOG_TAIL = 60
#: The emulator's sandbox org (``beta``, sandbox ``dev``) and its user. Over the real
#: port, ``localhost`` is that sandbox's login host (test.salesforce.com) and My Domain,
#: ``127.0.0.1`` the production org's (emulator option ``loopback_hosts``).
SANDBOX_USERNAME = "journey@beta.com.dev"
SANDBOX_PASSWORD = "journey-Sandb0x"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: nothing from the developer's shell may point
    it at a real org or other settings; the worktree (or the installed package) first
    on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SFOAUTH_", "JOURNEY_"))
        and k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(REPO), os.environ.get("PYTHONPATH", "")] if p
    )
    env.update(extra)
    return env


class Service:
    """One child process in its own session (process group), its output in a file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log_dir: Path,
        ready_url: str,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env)
        self.ready_url = ready_url
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait (bounded) until ``ready_url`` answers."""
        assert self.process is None or self.process.poll() is not None
        log = self.log_path.open("ab")
        log.write(f"\n=== start: {' '.join(self.argv)}\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: signals reach it and its workers
        )
        log.close()
        wait_until(
            lambda: (
                self.process is None
                or self.process.poll() is not None
                or _answers(self.ready_url)
            ),
            START_TIMEOUT,
            f"{self.name} start-up",
        )
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited at start-up:\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL if it does not stop in time."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)  # our own new session only
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)
        except ProcessLookupError:
            process.wait(timeout=STOP_TIMEOUT)
        # Workers of a stopped master must not linger either.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = LOG_TAIL) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code < 500
    except httpx.TransportError:
        return False


class Services:
    """Every process a journey started: stopped at the end, logs shown on failure."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.all: list[Service] = []

    def add(self, service: Service) -> Service:
        self.all.append(service)
        return service

    def stop_all(self) -> None:
        for service in reversed(self.all):
            service.stop()

    def report(self) -> str:
        return "\n".join(
            f"----- {s.name} ({s.log_path}) -----\n{s.tail()}" for s in self.all
        )


class Emulator:
    """``sfoauth emulator`` as its own process on a fixed free port, so that a restart
    (all grants forgotten) comes back at the same URL."""

    def __init__(
        self, services: Services, work: Path, callbacks: Sequence[str] = ()
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        #: The sandbox's login URL (another loopback name for the same process).
        self.sandbox_url = f"http://localhost:{self.port}"
        #: Callback URLs added to the default `web` app (set before :meth:`start`).
        self.callbacks = list(callbacks)
        self.config = work / "emulator.json"
        self.service = services.add(
            Service(
                "emulator",
                [
                    PYTHON,
                    "-m",
                    "sfoauth_core.cli",
                    "emulator",
                    "--port",
                    str(self.port),
                    "--config",
                    str(self.config),
                ],
                cwd=work,
                env=child_env(),
                log_dir=services.log_dir,
                ready_url=self.url + "/.well-known/openid-configuration",
            )
        )

    def start(self) -> None:
        # Exact-match callbacks, as Salesforce: the app's own (free port) beside the
        # defaults, on the default `web` app the projects use.
        web = {
            "name": "web",
            "callback_urls": [*DEFAULT_CALLBACK_URLS, *self.callbacks],
        }
        sandbox = {
            "orgs": [
                {"name": "beta", "org_id": "00DXX0000002xyz", "sandbox_name": "dev"}
            ],
            "users": [
                {
                    "username": SANDBOX_USERNAME,
                    "password": SANDBOX_PASSWORD,
                    "user_id": "005XX0000002bob",
                    "org": "beta",
                }
            ],
            "loopback_hosts": {"localhost": "beta"},
        }
        self.config.write_text(json.dumps({"apps": [web], **sandbox}), encoding="utf-8")
        self.service.start()

    def stop(self) -> None:
        self.service.stop()
        wait_until(lambda: not _answers(self.url), STOP_TIMEOUT, "emulator stop")

    def restart(self) -> None:
        """Stop and start again: same URL, every token and grant unknown."""
        self.stop()
        self.start()

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        """The control API (``/__emulator__/<path>``)."""
        answer = httpx.request(
            method, f"{self.url}/__emulator__/{path}", timeout=10.0, **kwargs
        )
        answer.raise_for_status()
        return answer.json()

    def calls(self) -> dict[str, int]:
        """Token-endpoint calls by grant type since this emulator process started."""
        return {k: v for k, v in self.control("GET", "stats")["calls"].items() if v}

    def refreshes(self) -> int:
        return int(
            self.control("GET", "calls", params={"grant_type": "refresh_token"})[
                "count"
            ]
        )

    def expire(self) -> None:
        """Salesforce expires every access token (the apps do not know yet)."""
        self.control("POST", "expire", json={})

    def fail_token_endpoint(self, count: int = 20) -> None:
        """The token endpoint answers 503 for the next ``count`` calls."""
        self.control(
            "POST",
            "faults",
            json={
                "kind": "status",
                "status": 503,
                "count": count,
                "path": "/services/oauth2/token",
            },
        )

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def paths(self) -> list[str]:
        return [entry["path"] for entry in self.control("GET", "log")]

    def hosts(self, path: str, grant_type: str | None = None) -> list[str]:
        """The ``Host`` (name:port) of each request to ``path`` (of one grant type),
        in order: which authorization server a call went to."""
        return [
            entry["host"]
            for entry in self.control("GET", "log")
            if entry["path"] == path
            and (grant_type is None or entry["grant_type"] == grant_type)
        ]

    def accepts_redirect_uri(
        self, redirect_uri: str, client_id: str = WEB_APP_CLIENT_ID
    ) -> bool:
        """Whether the authorize endpoint takes ``redirect_uri`` for ``client_id`` as it
        is (Salesforce matches callbacks exactly)."""
        answer = httpx.get(
            f"{self.url}/services/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
            },
            timeout=10.0,
        )
        return answer.status_code == 200 and "redirect_uri_mismatch" not in answer.text


def salesforce_login(
    browser: Browser,
    emulator: Emulator,
    *,
    base_url: str | None = None,
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
) -> None:
    """On the emulator's pages at ``base_url`` (default its production URL; the
    sandbox's is ``emulator.sandbox_url``): log in as ``username`` (unless the emulator
    still knows the browser) and allow access when asked; returns once the browser left
    the emulator."""
    page = browser.page
    base_url = base_url or emulator.url
    page.wait_for_url(base_url + "/**")
    if page.title() == "Login | Salesforce":
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        browser.shot("salesforce-login")
        page.get_by_role("button", name="Log In").click()
        page.wait_for_load_state()
    if page.url.startswith(base_url) and page.title() == "Allow Access? | Salesforce":
        browser.shot("salesforce-consent")
        page.get_by_role("button", name="Allow").click()
    wait_until(
        lambda: not page.url.startswith(base_url), 15.0, "back from the emulator"
    )
    page.wait_for_load_state()


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


@contextmanager
def journey_services(request: Any, log_dir: Path) -> Iterator[Services]:
    """A :class:`Services` whose processes are all stopped at the end; when the test
    failed, the tail of every process log is printed (shown with the failure)."""
    services = Services(log_dir)
    try:
        yield services
    finally:
        services.stop_all()
        report = getattr(request.node, "browser_report_call", None)
        if report is not None and report.failed:
            kept = LOGS / slug(request.node.name)
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(log_dir, kept)
            print(f"Process logs kept in {kept}; their ends:")
            print(services.report())


def wait_seconds(seconds: float) -> None:
    """A deliberate pause (e.g. to see that nothing happens by itself)."""
    time.sleep(seconds)


# ------------------------------------------------------------------ what the user sees
#: Contract L1/L2/L3 (/work/wt/CONTRACTS.md): the texts the journeys assert.
CONNECT_TITLE = "Connect to Salesforce"
CONNECT_BUTTON = "Continue to Salesforce"
REASON_RENEW = "Your Salesforce connection needs to be renewed."
REASON_DISCONNECTED = "You disconnected Salesforce."
UNAVAILABLE_TITLE = "Salesforce is unavailable"

#: Salesforce-shaped secrets (an access token is `<org id>!<opaque>`, a refresh token
#: starts with `5Aep`): never on a page the person sees.
SECRET_SHAPES = (
    re.compile(r"00D[A-Za-z0-9]{12,15}![A-Za-z0-9._-]{8,}"),
    re.compile(r"5Aep[A-Za-z0-9._]{16,}"),
)


class Journey:
    """One person's session in the browser against an app and the emulator; each
    ``step`` names itself in a failure and leaves a screenshot."""

    def __init__(
        self, browser: Browser, emulator: Emulator, app_url: str, login_path: str
    ) -> None:
        self.failed: list[str] = []
        self._refreshes_before = 0
        self.browser = browser
        self.page = browser.page
        self.emulator = emulator
        self.app_url = app_url
        self.login_path = login_path  # the adapter's `sfoauth:login` path

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """One step; with ``JOURNEY_KEEP_GOING=1`` a failed step is recorded and the
        journey goes on (to list every failing step at once; :meth:`finish` fails)."""
        print(f"[journey] {name}")
        try:
            self._refreshes_before = self.emulator.refreshes()
        except httpx.TransportError:  # the emulator is stopped
            self._refreshes_before = 0
        try:
            yield
            self.no_secret_on_page()
        except Exception as exc:
            message = f"journey step {name!r} failed on {self.page.url}: {exc}"
            if not KEEP_GOING:
                raise AssertionError(message) from exc
            print(f"[journey] FAILED {message}")
            self.failed.append(message)
            self.browser.shot(f"FAILED {name}")
            return
        print("[journey] ok")
        self.browser.shot(name)

    def no_secret_on_page(self) -> None:
        html = self.page.content()
        for shape in SECRET_SHAPES:
            assert not shape.search(html), f"a token is on {self.page.url}"

    def new_refreshes(self) -> int:
        """``refresh_token`` calls since this step started (same emulator process)."""
        return self.emulator.refreshes() - self._refreshes_before

    def finish(self) -> None:
        """Fail with every step that failed (keep-going mode)."""
        assert not self.failed, "\n\n".join(self.failed)

    def goto(self, path: str, status: int | None = 200) -> Any:
        """Open ``path``; check the final answer's status when given."""
        response = self.page.goto(self.app_url + path)
        assert response is not None
        if status is not None:
            assert response.status == status, (
                f"GET {path} answered {response.status}, expected {status}:\n"
                + self.text()[:800]
            )
        return response

    def text(self) -> str:
        return str(self.page.locator("body").inner_text())

    def click(self, selector: str) -> None:
        """Click the element (which must be on the loaded page) and wait for the next
        page."""
        found = self.page.locator(selector)
        assert found.count() == 1, f"no {selector} on {self.page.url}:\n{self.text()}"
        found.click()
        self.page.wait_for_load_state()

    def text_of(self, selector: str) -> str | None:
        """The text of the first element matching ``selector`` on the loaded page, or
        ``None`` without waiting when there is none."""
        found = self.page.locator(selector)
        return str(found.first.inner_text()) if found.count() else None

    def path(self) -> str:
        parts = urlsplit(self.page.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def at(self, path: str) -> None:
        assert self.page.url == self.app_url + path, (
            f"expected to be on {path}, the browser is on {self.page.url}:\n"
            + self.text()[:800]
        )

    def expect_interstitial(self, next_path: str, reason: str | None = None) -> None:
        """Contract L1: the login URL's page asks for a click; L2: it says why. Every
        difference is listed at once."""
        parts = urlsplit(self.page.url)
        assert parts.path == self.login_path, (
            f"expected the {CONNECT_TITLE!r} page at {self.login_path}, the browser "
            f"is on {self.page.url}:\n{self.text()[:800]}"
        )
        problems = []
        if query_of(self.page.url).get("next") != [next_path]:
            problems.append(f"next is not {next_path!r}")
        if self.page.title() != CONNECT_TITLE:
            problems.append(f"title {self.page.title()!r}, expected {CONNECT_TITLE!r}")
        heading = self.text_of("h1")
        if heading != CONNECT_TITLE:
            problems.append(f"heading {heading!r}, expected {CONNECT_TITLE!r}")
        button = self.page.get_by_role("button", name=CONNECT_BUTTON, exact=True)
        if button.count() != 1:
            problems.append(f"{button.count()} buttons {CONNECT_BUTTON!r}")
        if reason is not None and reason not in self.text():
            problems.append(f"the reason {reason!r} is not on the page")
        assert not problems, "; ".join(problems) + ". The page:\n" + self.text()[:600]

    def connect(self, next_path: str, *, sandbox: bool = False) -> None:
        """On the interstitial: the click, the emulator's pages (the sandbox's, as
        its user, with ``sandbox``), back at ``next``."""
        button = self.page.get_by_role("button", name=CONNECT_BUTTON, exact=True)
        assert button.count() == 1, f"no {CONNECT_BUTTON!r} button on {self.page.url}"
        button.click()
        if sandbox:
            salesforce_login(
                self.browser,
                self.emulator,
                base_url=self.emulator.sandbox_url,
                username=SANDBOX_USERNAME,
                password=SANDBOX_PASSWORD,
            )
        else:
            salesforce_login(self.browser, self.emulator)
        self.at(next_path)

    def expect_unavailable(self, path: str) -> None:
        """Contract L3: a 503 page with a heading and a back link, no traceback."""
        response = self.goto(path, status=None)
        assert response.status == 503, (
            f"GET {path} with Salesforce down answered {response.status}:\n"
            + self.text()[:800]
        )
        heading = self.text_of("h1")
        assert heading == UNAVAILABLE_TITLE, (
            f"heading {heading!r}, expected {UNAVAILABLE_TITLE!r}:\n"
            + self.text()[:500]
        )
        assert self.page.locator("a[href]").count() >= 1, "no back link"
        assert "Traceback" not in self.page.content()


# ------------------------------------------------ the Django journeys' project

#: The Django project of the Django journeys (``tests/journeys/django_site``).
DJANGO_SITE = JOURNEYS / "django_site"
APP_USER = ("journey", "journey-Passw0rd")


def site_env(
    emulator: Emulator, app_url: str, work: Path, token_key: str
) -> dict[str, str]:
    """The environment of the project's processes (servers and ``manage.py``)."""
    return child_env(
        JOURNEY_EMULATOR_URL=emulator.url,
        JOURNEY_SANDBOX_URL=emulator.sandbox_url,
        JOURNEY_APP_URL=app_url,
        JOURNEY_DB=str(work / "db.sqlite3"),
        JOURNEY_TOKEN_KEY=token_key,
        DJANGO_SETTINGS_MODULE="journey_site.settings",
        DJANGO_SUPERUSER_PASSWORD=APP_USER[1],
    )


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py <args>`` of the project, as the operator runs it."""
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=DJANGO_SITE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_django(
    services: Services, work: Path, server: str, *, token_key: str | None = None
) -> tuple[Emulator, str]:
    """The emulator, then the migrated project under ``server`` (wsgi or asgi)."""
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    emulator = Emulator(services, work, [app_url + "/salesforce/callback/"])
    emulator.start()
    env = site_env(emulator, app_url, work, token_key or TokenCipher.generate_key())
    for command in (
        ["migrate", "--noinput"],
        [
            "createsuperuser",
            "--noinput",
            "--username",
            APP_USER[0],
            "--email",
            "j@example.com",
        ],
    ):
        done = manage(env, *command)
        assert done.returncode == 0, done.stdout + done.stderr
    if server == "wsgi":
        argv = [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    else:
        argv = [
            PYTHON,
            "-m",
            "uvicorn",
            "journey_site.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    services.add(
        Service(
            f"django-{server}",
            argv,
            cwd=DJANGO_SITE,
            env=env,
            log_dir=services.log_dir,
            ready_url=app_url + "/accounts/login/",
        )
    ).start()
    return emulator, app_url


def api_page_works(journey: Journey, path: str) -> None:
    """A decorated page that called the REST API and got the Accounts."""
    journey.goto(path)
    journey.at(path)
    page = journey.page
    assert journey.text_of("#api-status") == "200", journey.text()[:800]
    assert page.locator("#accounts li.account").count() >= 1
