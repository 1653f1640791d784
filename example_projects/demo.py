"""The demo launcher: the emulator and an example app, one command.

``sfoauth demo django|fastapi`` (from a clone of the repository) and ``./scripts/demo``
run it; so does ``python example_projects/demo.py django|fastapi``. It is example code,
kept with the example projects, not in the installed package.

The Salesforce emulator runs in this process (a uvicorn thread on a loopback port) and
is configured for the example: the app's callback URL is registered on its ``web``
app, and its ``jwt`` app gets the certificate of a key pair made for this run, with the
integration user pre-approved. The example app runs in a child process (uvicorn; the
Django project through its ASGI application after ``manage.py migrate``, which also
seeds the demo user) with its SQLite database and keys in a temporary directory.
Ctrl-C (SIGINT) or SIGTERM stops the app, then the emulator, and removes the directory.

The example projects live in the source checkout (``example_projects/``), not in the
wheel: the demo needs ``pip install -e .`` from a clone (``./scripts/demo`` does it).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import webbrowser
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sfoauth_emulator.signals import stop_on_signals as _stop_on_signals

__all__ = [
    "DEMO_DJANGO_PASSWORD",
    "DEMO_DJANGO_USERNAME",
    "build_parser",
    "examples_root",
    "main",
    "run_demo",
]

#: The Django example's seeded user (``salesforce_demo/migrations/0001_demo_user.py``).
DEMO_DJANGO_USERNAME = "demo"
DEMO_DJANGO_PASSWORD = "demo-password"

_STARTUP_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class _Example:
    name: str
    folder: str
    modules: tuple[str, ...]
    extras: str
    target: tuple[str, ...]
    lifespan: str
    slash: str  # Django's URLs end with a slash


_EXAMPLES = {
    "django": _Example(
        name="django",
        folder="django_site",
        modules=("django", "uvicorn", "starlette"),
        extras="django,emulator",
        target=("demo_site.asgi:application",),
        lifespan="off",
        slash="/",
    ),
    "fastapi": _Example(
        name="fastapi",
        folder="fastapi_app",
        modules=("fastapi", "sqlalchemy", "aiosqlite", "uvicorn", "starlette"),
        extras="fastapi,sqlalchemy,emulator",
        target=("--factory", "fastapi_example.main:create_app"),
        lifespan="on",
        slash="",
    ),
}


class DemoError(Exception):
    """A reason the demo cannot start, printed as is."""


def build_parser(prog: str = "sfoauth demo") -> argparse.ArgumentParser:
    """The demo's options (``sfoauth demo`` passes what follows ``demo`` on)."""
    demo = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Start the Salesforce emulator and the Django or FastAPI example project "
            "on loopback ports (SQLite, migrations applied, demo user seeded), print "
            "the URL and the demo credentials, and stop both on Ctrl-C. Needs the "
            "source checkout (example_projects/)."
        ),
    )
    demo.add_argument("app", choices=sorted(_EXAMPLES), help="which example to run")
    demo.add_argument(
        "--host", default="127.0.0.1", help="loopback address for both servers"
    )
    demo.add_argument(
        "--port", type=int, default=8000, help="the app's port (default 8000; 0: any)"
    )
    demo.add_argument(
        "--emulator-port",
        type=int,
        default=8999,
        help="the emulator's port (default 8999; 0: any)",
    )
    browser = demo.add_mutually_exclusive_group()
    browser.add_argument(
        "--open",
        dest="open_browser",
        action="store_true",
        help="open the app in a web browser once it answers",
    )
    browser.add_argument(
        "--no-browser",
        dest="open_browser",
        action="store_false",
        help="do not open a browser (the default)",
    )
    demo.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="keep the database and keys in DIR (default: a temporary directory "
        "removed on exit)",
    )
    return demo


def examples_root() -> Path:
    """``example_projects/``: where this launcher lives."""
    return Path(__file__).resolve().parent


def _check_requirements(example: _Example) -> Path:
    project = examples_root() / example.folder
    if not project.is_dir():
        raise DemoError(
            f"the example projects are not installed with the package: {project} does "
            "not exist. Run the demo from a clone of the sfoauth repository after "
            "`pip install -e '.[all]' --group dev`."
        )
    missing = [m for m in example.modules if importlib.util.find_spec(m) is None]
    if missing:
        raise DemoError(
            f"the {example.name} demo needs {', '.join(missing)}. From the checkout, "
            f'run: pip install -e ".[{example.extras}]" (or ./scripts/demo '
            f"{example.name}, which installs it)"
        )
    return project


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _check_port_free(host: str, port: int, option: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            raise DemoError(
                f"port {port} on {host} is in use; pick another with {option} "
                "(0: any free port)"
            ) from None


def _origin(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _demo_key(data_dir: Path) -> tuple[Path, str]:
    """The JWT key file of this run and its public key PEM."""
    from sfoauth_core.testing import new_private_key_pem, public_key_pem

    path = data_dir / "jwt-demo-key.pem"
    if path.exists():
        pem = path.read_text(encoding="ascii")
    else:
        pem = new_private_key_pem()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(pem)
    return path, public_key_pem(pem)


def _child_env(
    example: _Example, app_url: str, emulator_url: str, data_dir: Path, key: Path
) -> dict[str, str]:
    # The demo always talks to its own emulator: a developer's SFOAUTH_* variables
    # (a real org) must not leak into it.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SFOAUTH_", "EXAMPLE_")) and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        {
            "EXAMPLE_APP_URL": app_url,
            "EXAMPLE_DATA_DIR": str(data_dir),
            "SFOAUTH_EMULATOR_URL": emulator_url,
            "SFOAUTH_JWT_PRIVATE_KEY_FILE": str(key),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if example.name == "django":
        env["DJANGO_SETTINGS_MODULE"] = "demo_site.settings"
    return env


def _migrate(project: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=project,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise DemoError(f"`manage.py migrate` failed (exit {result.returncode})")


def _wait_until_up(
    url: str, child: subprocess.Popen[bytes], stop: threading.Event
) -> None:
    import httpx

    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while time.monotonic() < deadline and not stop.is_set():
        if child.poll() is not None:
            raise DemoError(f"the app exited during start-up (exit {child.returncode})")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        stop.wait(0.2)
    if not stop.is_set():
        raise DemoError(f"the app did not answer {url} within {_STARTUP_TIMEOUT:.0f}s")


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _banner(example: _Example, app_url: str, emulator_url: str) -> str:
    from sfoauth_emulator.constants import DEFAULT_PASSWORD, DEFAULT_USERNAME

    lines = [
        f"sfoauth demo ({example.name}) is running.",
        f"  App:       {app_url}/",
        f"  Emulator:  {emulator_url}  (a fake Salesforce org, 'acme')",
    ]
    if example.name == "django":
        lines.append(
            f"  Log in to the site as {DEMO_DJANGO_USERNAME} / {DEMO_DJANGO_PASSWORD},"
            " then connect Salesforce."
        )
    end = example.slash
    lines += [
        f"  Salesforce login: {DEFAULT_USERNAME} / {DEFAULT_PASSWORD}",
        f"  Pages: {app_url}/org{end}  (your connection, refreshed silently)",
        f"         {app_url}/integration{end}  (server to server, JWT bearer)",
        f"         {app_url}/status{end}  (what is stored, never a token)",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def run_demo(args: argparse.Namespace, *, stop: threading.Event | None = None) -> int:
    """Run ``sfoauth demo``; returns the exit status.

    Args:
        args: the parsed ``demo`` arguments (``app``, ``host``, ``port``,
            ``emulator_port``, ``open_browser``, ``data_dir``).
        stop: set it to stop the demo as Ctrl-C would (when embedding the demo or
            running it off the main thread, where signals cannot be caught).

    Returns:
        0 after a clean stop (Ctrl-C / SIGTERM); 1 when the app failed; 2 when the demo
        could not start (missing checkout or extra, port in use, non-loopback host).
    """
    from sfoauth_core.hosts import is_loopback_host

    example = _EXAMPLES[args.app]
    if not is_loopback_host(args.host):
        print(
            "--host must be a loopback address (127.0.0.1, ::1, localhost): the "
            "emulator hands out tokens to anyone who asks",
            file=sys.stderr,
        )
        return 2
    stop = stop if stop is not None else threading.Event()
    temporary: Path | None = None
    try:
        project = _check_requirements(example)
        port = args.port or _free_port(args.host)
        _check_port_free(args.host, port, "--port")
        if args.emulator_port:
            _check_port_free(args.host, args.emulator_port, "--emulator-port")
        if args.data_dir:
            data_dir = Path(args.data_dir).resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
        else:
            data_dir = temporary = Path(tempfile.mkdtemp(prefix="sfoauth-demo-"))
        with _stop_on_signals(stop):
            return _serve(example, project, args, port, data_dir, stop)
    except DemoError as exc:
        print(f"sfoauth demo: {exc}", file=sys.stderr)
        return 2
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def _serve(
    example: _Example,
    project: Path,
    args: argparse.Namespace,
    port: int,
    data_dir: Path,
    stop: threading.Event,
) -> int:
    from sfoauth_core.testing import INTEGRATION_USERNAME, SalesforceEmulator

    app_url = _origin(args.host, port)
    key_file, certificate = _demo_key(data_dir)
    emu = SalesforceEmulator()
    web = emu.apps["web"]
    web.callback_urls.append(app_url + "/salesforce/callback")
    jwt_app = emu.apps["jwt"]
    jwt_app.certificate_pem = certificate
    jwt_app.private_key_pem = None
    jwt_app.admin_approved_users.add(INTEGRATION_USERNAME)
    try:
        serving = emu.serve(args.host, args.emulator_port)
        emulator_url = serving.__enter__()
    except (OSError, RuntimeError) as exc:
        raise DemoError(f"the emulator could not start ({exc})") from None
    child: subprocess.Popen[bytes] | None = None
    try:
        env = _child_env(example, app_url, emulator_url, data_dir, key_file)
        if example.name == "django":
            _migrate(project, env)
        command: Sequence[str] = [
            sys.executable,
            "-m",
            "uvicorn",
            *example.target,
            "--app-dir",
            str(project),
            "--host",
            args.host,
            "--port",
            str(port),
            "--lifespan",
            example.lifespan,
            "--log-level",
            "warning",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "3",
        ]
        if stop.is_set():
            return 0
        child = subprocess.Popen(command, cwd=project, env=env)
        _wait_until_up(app_url + "/healthz", child, stop)
        if stop.is_set():
            return 0
        print(_banner(example, app_url, emulator_url), flush=True)
        if args.open_browser:
            webbrowser.open(app_url + "/")
        while not stop.wait(0.2):
            if child.poll() is not None:
                print(
                    f"sfoauth demo: the app exited (exit {child.returncode})",
                    file=sys.stderr,
                )
                return 1
        print("Stopping…", flush=True)
        return 0
    finally:
        if child is not None:
            _stop_child(child)
        serving.__exit__(None, None, None)


def main(argv: Sequence[str] | None = None) -> int:
    """``python example_projects/demo.py django|fastapi [options]`` (what ``sfoauth
    demo`` runs)."""
    return run_demo(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
