"""``sfoauth demo django|fastapi``: starts the emulator and the example app, answers
HTTP, and stops both (no orphan process) on SIGINT; its error paths."""

from __future__ import annotations

import argparse
import dataclasses
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from support.examples import (
    PYTHON,
    REPO,
    answers,
    children_of,
    pid_alive,
    python_env,
    wait_for_http,
)

from sfoauth_core.cli.demo import load_launcher

#: example_projects/demo.py, the launcher `sfoauth demo` runs from a clone.
launcher = load_launcher()
assert launcher is not None, "example_projects/demo.py is missing"

READY = "Press Ctrl-C to stop."


def demo_command() -> list[str]:
    """``sfoauth demo`` (through ``python -m`` so that the venv's Python runs it)."""
    return [PYTHON, "-m", "sfoauth_core.cli", "demo"]


class Output:
    """The demo's output, read by a thread (so that waiting has a timeout)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def close(self) -> None:
        self.thread.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def read_until_ready(output: Output, timeout: float = 90.0) -> list[str]:
    lines = output.lines
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no banner within {timeout}s: {seen}") from None
        if line is None:
            raise AssertionError(f"the demo exited: {seen}")
        seen.append(line)
        if line == READY:
            return seen


def url_after(label: str, lines: list[str]) -> str:
    for line in lines:
        match = re.match(rf"\s*{label}:\s+(http://\S+?)/?(\s|$)", line)
        if match:
            return match.group(1)
    raise AssertionError(f"no {label} line in {lines}")


@pytest.mark.loopback
@pytest.mark.parametrize("app", ["fastapi", "django"])
def test_demo_serves_both_and_stops_cleanly_on_sigint(app: str) -> None:
    pytest.importorskip(app)
    process = subprocess.Popen(
        [*demo_command(), app, "--port", "0", "--emulator-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=python_env(),
    )
    output = Output(process)
    try:
        banner = read_until_ready(output)
        app_url = url_after("App", banner)
        emulator_url = url_after("Emulator", banner)
        assert any("jane@acme.com / Secr3t-Passw0rd" in line for line in banner)
        if app == "django":
            assert any("demo / demo-password" in line for line in banner)
        wait_for_http(app_url + "/healthz", timeout=10)
        home = httpx.get(app_url + "/", timeout=10)
        assert home.status_code == 200 and 'id="connection-state"' in home.text
        discovery = httpx.get(emulator_url + "/.well-known/openid-configuration")
        assert discovery.status_code == 200
        children = children_of(process.pid)

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:  # pragma: no cover - the demo did not stop
            process.kill()
            process.wait()
        output.close()
    if children is not None:
        assert children, "the app should run in a child process"
        assert not [pid for pid in children if pid_alive(pid)]
    assert not answers(app_url + "/healthz")
    assert not answers(emulator_url + "/.well-known/openid-configuration")


def _args(**overrides: object) -> argparse.Namespace:
    args = launcher.build_parser().parse_args(["fastapi"])
    for name, value in overrides.items():
        setattr(args, name, value)
    return args


def test_parser_defaults() -> None:
    args = _args()
    assert (args.app, args.host, args.port, args.emulator_port) == (
        "fastapi",
        "127.0.0.1",
        8000,
        8999,
    )
    assert args.open_browser is False and args.data_dir is None
    parser = launcher.build_parser()
    assert parser.parse_args(["django", "--open"]).open_browser is True
    with pytest.raises(SystemExit):
        parser.parse_args(["flask"])


@pytest.mark.loopback
def test_run_demo_in_process_until_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("fastapi")
    stop = threading.Event()
    result: list[int] = []
    args = _args(port=0, emulator_port=0, data_dir=str(tmp_path))
    runner = threading.Thread(
        target=lambda: result.append(launcher.run_demo(args, stop=stop))
    )
    runner.start()
    try:
        deadline_banner = None
        for _ in range(900):
            out = capsys.readouterr().out
            if READY in out:
                deadline_banner = out
                break
            if not runner.is_alive():
                break
            threading.Event().wait(0.1)
        assert deadline_banner is not None, "the demo did not start"
        app_url = url_after("App", deadline_banner.splitlines())
        assert httpx.get(app_url + "/status").status_code == 200
    finally:
        stop.set()
        runner.join(timeout=30)
    assert result == [0]
    assert not answers(app_url + "/healthz")
    # --data-dir keeps the database and the keys.
    assert (tmp_path / "fastapi_example.sqlite3").exists()
    assert (tmp_path / "jwt-demo-key.pem").stat().st_mode & 0o077 == 0


def test_refuses_a_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert launcher.run_demo(_args(host="0.0.0.0")) == 2
    assert "loopback" in capsys.readouterr().err


def test_needs_the_source_checkout(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(launcher, "examples_root", lambda: tmp_path / "nowhere")
    assert launcher.run_demo(_args()) == 2
    err = capsys.readouterr().err
    assert "not installed with the package" in err and "clone" in err


def test_names_the_missing_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = dataclasses.replace(
        launcher._EXAMPLES["fastapi"], modules=("sfoauth_no_such_module",)
    )
    monkeypatch.setitem(launcher._EXAMPLES, "fastapi", example)
    assert launcher.run_demo(_args()) == 2
    err = capsys.readouterr().err
    assert "sfoauth_no_such_module" in err
    # sfoauth is not on PyPI: the install that works is the one from the checkout.
    assert 'pip install -e ".[fastapi,sqlalchemy,emulator]"' in err
    assert "./scripts/demo fastapi" in err


@pytest.mark.loopback
def test_says_which_port_is_taken(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert launcher.run_demo(_args(port=port)) == 2
        assert f"port {port}" in capsys.readouterr().err
        assert launcher.run_demo(_args(port=0, emulator_port=port)) == 2
        assert "--emulator-port" in capsys.readouterr().err


def test_the_child_never_sees_the_developers_salesforce_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SFOAUTH_CLIENT_ID", "3MVG9RealOrg")
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "elsewhere.settings")
    env = launcher._child_env(
        launcher._EXAMPLES["django"],
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8999",
        tmp_path,
        tmp_path / "k.pem",
    )
    assert "SFOAUTH_CLIENT_ID" not in env
    assert env["DJANGO_SETTINGS_MODULE"] == "demo_site.settings"
    assert env["SFOAUTH_EMULATOR_URL"] == "http://127.0.0.1:8999"
    assert env["SFOAUTH_JWT_PRIVATE_KEY_FILE"] == str(tmp_path / "k.pem")


def test_signals_stop_the_demo_and_the_old_handlers_come_back() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    with launcher._stop_on_signals(stop):
        signal.raise_signal(signal.SIGTERM)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.loopback
def test_an_app_that_cannot_start_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("fastapi")
    broken = dataclasses.replace(
        launcher._EXAMPLES["fastapi"], target=("sfoauth_no_such_module:app",)
    )
    monkeypatch.setitem(launcher._EXAMPLES, "fastapi", broken)
    assert launcher.run_demo(_args(port=0, emulator_port=0)) == 2
    assert "the app exited during start-up" in capsys.readouterr().err


# ------------------------------------------------------------------ ./scripts/demo
FAKE_PIP = """#!/bin/sh
# A stand-in for .venv/bin/python: records pip's arguments and prints what pip would.
echo "$@" >> "$(dirname "$0")/../pip-calls"
echo "Collecting httpx"
"""
FAKE_SFOAUTH = """#!/bin/sh
echo "sfoauth $@"
"""


def fake_checkout(tmp_path: Path) -> Path:
    """A copy of scripts/demo next to a pyproject.toml and a .venv whose python and
    sfoauth only record what they were asked (no network, no real install)."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "demo", root / "scripts" / "demo")
    (root / "pyproject.toml").write_text("[project]\nname = 'sfoauth'\n")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", FAKE_PIP), ("sfoauth", FAKE_SFOAUTH)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return root


def run_script(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "scripts" / "demo"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def pip_calls(root: Path) -> list[str]:
    calls = root / ".venv" / "pip-calls"
    return calls.read_text().splitlines() if calls.exists() else []


@pytest.mark.skipif(
    shutil.which("bash") is None, reason="scripts/demo is a bash script"
)
def test_scripts_demo_says_what_it_installs_and_shows_pips_progress(
    tmp_path: Path,
) -> None:
    root = fake_checkout(tmp_path)
    first = run_script(root, "fastapi", "--port", "0")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    announce = next(i for i, line in enumerate(lines) if line.startswith("==> Install"))
    assert 'pip install -e ".[fastapi,sqlalchemy,emulator]"' in lines[announce]
    assert lines.index("Collecting httpx") > announce  # pip talks, not --quiet
    assert pip_calls(root) == [
        "-m pip install --progress-bar on -e .[fastapi,sqlalchemy,emulator]"
    ]
    assert lines[-1] == "sfoauth demo fastapi --port 0"

    again = run_script(root, "fastapi")
    assert again.returncode == 0, again.stderr
    assert "already installed" in again.stdout
    assert len(pip_calls(root)) == 1  # no second install

    django = run_script(root, "django")
    assert (
        pip_calls(root)[-1] == "-m pip install --progress-bar on -e .[django,emulator]"
    )
    assert django.stdout.splitlines()[-1] == "sfoauth demo django"

    (root / "pyproject.toml").write_text("[project]\nname = 'sfoauth'\n# changed\n")
    run_script(root, "fastapi")
    assert len(pip_calls(root)) == 3  # a changed pyproject.toml installs again


def test_scripts_demo_refuses_an_unknown_app(tmp_path: Path) -> None:
    root = fake_checkout(tmp_path)
    answer = run_script(root, "flask")
    assert answer.returncode == 2
    assert "usage: ./scripts/demo [fastapi|django]" in answer.stderr
    assert pip_calls(root) == []
