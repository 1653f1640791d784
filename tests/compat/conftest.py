"""Fixtures of the compatibility suite: an emulator served on a loopback port, and
jsforce on Node installed from the npm registry into ``.cache/compat-node/``.

Without ``node``/``npm`` (or when the install fails) the jsforce tests skip with a loud
reason, except under CI (``SFOAUTH_REQUIRE_SERVICES=1``) where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from sfoauth_core.testing import DEFAULT_USERNAME, SalesforceEmulator
from sfoauth_emulator.state import LogEntry

REPO = Path(__file__).resolve().parents[2]
NODE_CACHE = REPO / ".cache" / "compat-node"
# Exact versions, so every run drives the same jsforce (bump them deliberately).
NODE_PACKAGES = {"jsforce": "3.10.16", "jsonwebtoken": "9.0.3"}
STEPS_SCRIPT = Path(__file__).with_name("jsforce_steps.js")
# Read at import: the suite's autouse fixture strips SFOAUTH_* variables from each test.
REQUIRE_SERVICES = os.environ.get("SFOAUTH_REQUIRE_SERVICES") == "1"


@dataclass
class Served:
    """An emulator served on a loopback port."""

    emu: SalesforceEmulator
    base_url: str

    def logged(self, wanted: Callable[[LogEntry], bool]) -> LogEntry:
        """The first logged request matching ``wanted`` (the emulator logs a request
        before the client has its whole answer, so no wait is needed)."""
        found = next((e for e in self.emu.request_log if wanted(e)), None)
        assert found is not None, "no such request in the emulator's log"
        return found


@pytest.fixture
def served() -> Iterator[Served]:
    """A fresh emulator on a free loopback port; the scripted user approves every
    authorization (the browser step of a web flow is one redirect)."""
    emu = SalesforceEmulator()
    emu.auto_approve = DEFAULT_USERNAME
    with emu.serve() as base_url:
        yield Served(emu, base_url)


def _unavailable(message: str) -> None:
    message = f"!!! {message}: the jsforce compatibility tests did NOT run."
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def _installed(modules: Path, name: str) -> str | None:
    manifest = modules / name / "package.json"
    if not manifest.exists():
        return None
    version: str | None = json.loads(manifest.read_text(encoding="utf-8")).get(
        "version"
    )
    return version


def _install_jsforce() -> Path:
    modules = NODE_CACHE / "node_modules"
    if all(_installed(modules, n) == v for n, v in NODE_PACKAGES.items()):
        return modules
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm is not installed (Debian: apt-get install nodejs npm)")
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    manifest = NODE_CACHE / "package.json"
    if not manifest.exists():
        manifest.write_text('{"name": "sfoauth-compat-node", "private": true}\n')
    specs = [f"{name}@{version}" for name, version in NODE_PACKAGES.items()]
    result = subprocess.run(
        [str(npm), "install", "--no-audit", "--no-fund", "--silent", *specs],
        cwd=NODE_CACHE,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        _unavailable(f"npm install {' '.join(specs)} failed: {result.stderr[-500:]}")
    return modules


class JsforceRunner(Protocol):
    def __call__(
        self, step: str, args: dict[str, Any], *, env: dict[str, str] | None = None
    ) -> dict[str, Any]: ...


@pytest.fixture(scope="session")
def jsforce() -> JsforceRunner:
    """Run one step of ``jsforce_steps.js``; returns its JSON result."""
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed (Debian: apt-get install nodejs npm)")
    modules = _install_jsforce()
    base_env = {**os.environ, "NODE_PATH": str(modules)}

    def run(
        step: str, args: dict[str, Any], *, env: dict[str, str] | None = None
    ) -> dict[str, Any]:
        done = subprocess.run(
            [str(node), str(STEPS_SCRIPT), step, json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**base_env, **(env or {})},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    return run
