"""The documentation's examples, run so that the docs cannot silently rot.

Every fenced ``python`` block under ``docs/`` must be preceded by a marker comment:

- ``<!-- test -->``: run the block in a fresh namespace;
- ``<!-- test: continue -->``: run it in the namespace of the previous block of the page;
- ``warns`` (combinable, e.g. ``<!-- test: continue warns -->``): the block must emit
  :class:`~sfoauth_core.InsecureFlowWarning` (``filterwarnings = error`` is on);
- ``<!-- test: compile-only -->``: only compiled, never run (Django settings modules and
  views, Redis or PostgreSQL set-ups); ``tests/docs/test_framework_names.py`` checks that
  the ``sfoauth_*`` names such blocks use exist.

JSON blocks marked ``<!-- test: emulator-config -->`` are loaded as emulator configuration
files. The error table of ``docs/errors.md`` is checked against the exception tree, and the
command-line examples against ``sfoauth_core.cli``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.docs import ALL_BLOCKS, DOCS, ROOT, Block

from sfoauth_core import InsecureFlowWarning, exceptions
from sfoauth_core.flows.password import reset_retirement_warning

pytest.importorskip("starlette")  # the emulator extra

PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "python"]


def test_the_docs_have_examples() -> None:
    assert len(PYTHON_BLOCKS) > 30


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.id)
def test_every_python_block_is_marked(block: Block) -> None:
    assert "<unmarked>" not in block.flags, (
        f"{block.id}: add <!-- test --> (or <!-- test: continue -->) before the block"
    )


def _pages_with_python() -> list[str]:
    return sorted({b.page for b in PYTHON_BLOCKS})


@pytest.mark.parametrize("page", _pages_with_python())
def test_page_examples_run(page: str) -> None:
    namespace: dict[str, Any] = {}
    for block in (b for b in PYTHON_BLOCKS if b.page == page):
        code = compile(block.code, f"docs/{block.id}", "exec")
        if "compile-only" in block.flags:
            continue
        if "continue" not in block.flags:
            namespace = {"__name__": f"docs_example_{block.line}"}
        out = io.StringIO()
        warns = (
            pytest.warns(InsecureFlowWarning)
            if "warns" in block.flags
            else contextlib.nullcontext()
        )
        if "warns" in block.flags:
            # Each block stands for a fresh program: its first password use warns.
            reset_retirement_warning()
        with contextlib.redirect_stdout(out), warns:
            exec(code, namespace)  # noqa: S102 - the documentation's own examples
        for value in list(namespace.values()):
            # close clients the examples created, so no ResourceWarning escapes
            if isinstance(value, httpx.Client):
                value.close()


# ---------------------------------------------------------------- emulator config file
CONFIG_BLOCKS = [b for b in ALL_BLOCKS if "emulator-config" in b.flags]


def test_there_is_a_config_example() -> None:
    assert CONFIG_BLOCKS


@pytest.mark.parametrize("block", CONFIG_BLOCKS, ids=lambda b: b.id)
def test_emulator_config_examples_load(block: Block, tmp_path: Path) -> None:
    from sfoauth_emulator.server import emulator_from_config

    config = json.loads(block.code)
    path = tmp_path / "emulator.json"
    path.write_text(block.code, encoding="utf-8")
    emu = emulator_from_config(path)
    for org in config.get("orgs", []):
        assert org["name"] in emu.orgs
    for user in config.get("users", []):
        assert emu.state.user(user["username"]) is not None
    for app in config.get("apps", []):
        assert app["name"] in emu.apps
    if config.get("auto_approve"):
        assert emu.auto_approve == config["auto_approve"]


# ---------------------------------------------------------------- the error table
_ROW = re.compile(
    r"^\|\s*`(?P<error>[a-z_]+)`\s*\|\s*(?P<desc>[^|]*?)\s*\|\s*`(?P<cls>\w+)`\s*\|"
)


def _error_rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in (DOCS / "errors.md").read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            desc = match.group("desc").strip()
            desc = desc.strip("`") if desc.startswith("`") else ""
            rows.append((match.group("error"), desc, match.group("cls")))
    return rows


def test_the_error_table_is_there() -> None:
    assert len(_error_rows()) >= 25


@pytest.mark.parametrize(("error", "description", "cls"), _error_rows())
def test_error_table_row(error: str, description: str, cls: str) -> None:
    payload = {"error": error, "error_description": description}
    with pytest.raises(exceptions.OAuthProtocolError) as caught:
        exceptions.raise_for_oauth_error(payload, status_code=400)
    assert type(caught.value).__name__ == cls
    assert caught.value.error == error
    assert caught.value.description == description


def test_every_hint_is_documented() -> None:
    """Every (code, description) that has a hint appears in the docs' table."""
    documented = {(e, d.lower()) for e, d, _ in _error_rows()}
    for (code, prefix), _hint in exceptions._HINTS.items():
        if prefix:
            assert (code, prefix) in documented, (code, prefix)


def test_every_exception_is_documented() -> None:
    text = (DOCS / "errors.md").read_text(encoding="utf-8")
    for name in exceptions.__all__:
        obj = getattr(exceptions, name)
        if isinstance(obj, type) and issubclass(obj, (Exception, Warning)):
            assert f"`{name}`" in text, name


# ---------------------------------------------------------------- the command line
def _cli(argv: list[str]) -> str:
    from sfoauth_core.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["advise", "--server-to-server"], "Recommended: JWT Bearer flow [jwt_bearer]"),
        (
            ["advise", "--server-to-server", "--no-private-key"],
            "Recommended: Client Credentials flow [client_credentials]",
        ),
        (
            ["advise", "--can-keep-secret", "no"],
            "Recommended: Web Server flow with PKCE only",
        ),
        (["advise", "--device", "input_constrained"], "Recommended: Device flow"),
        (["advise", "--device", "asset_tracking"], "Recommended: Asset Token flow"),
        (["advise", "--development-only"], "Recommended: Username-Password flow"),
        (["advise", "--browser-only"], "[pkce]"),
        (["advise"], "Recommended: Web Server flow (authorization code + PKCE"),
    ],
)
def test_cli_advise(argv: list[str], expected: str) -> None:
    assert expected in _cli(argv)
    # the command documented in docs/cli.md
    assert " ".join(argv[1:]) in (DOCS / "cli.md").read_text(encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.loopback
def test_cli_emulator_serves(tmp_path: Path) -> None:
    """``sfoauth emulator --port N --config FILE`` as shown in docs/cli.md."""
    config = next(b for b in CONFIG_BLOCKS if b.page == "emulator.md")
    path = tmp_path / "emulator.json"
    path.write_text(config.code, encoding="utf-8")
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sfoauth_core.cli",
            "emulator",
            "--port",
            str(port),
            "--config",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/.well-known/openid-configuration"
                )
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        assert response.json()["issuer"] == f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------- the pytest plugin
def test_pytest_plugin_example(tmp_path: Path) -> None:
    """The test module shown in docs/emulator.md passes under the ``sfoauth`` plugin."""
    block = next(b for b in ALL_BLOCKS if "pytest-plugin" in b.flags)
    (tmp_path / "test_my_app.py").write_text(block.code, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- the site builds
def test_mkdocs_build_is_strict_clean(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert not re.search(r"^\s*WARNING\s+-", result.stderr, re.M), result.stderr
