"""The framework pages name things that exist.

The Django and FastAPI pages show their examples as ``<!-- test: compile-only -->``
blocks (they need a configured project), so nothing runs them. Instead this module checks
that every ``sfoauth_*`` name the pages mention resolves. It also checks that the
reference tables (settings, check ids, signals, commands, error codes, command-line
options) match the code.

Django must not be configured in this process: the Django suite configures it in
``tests/django/conftest.py``. The names are therefore resolved in a subprocess that calls
``settings.configure`` with a minimal project.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
import subprocess
import sys
import textwrap

import pytest
from support.docs import ALL_BLOCKS, DOCS, ROOT

pytest.importorskip("django")
pytest.importorskip("fastapi")

PAGES = (
    "django.md",
    "fastapi.md",
    "example-projects.md",
    "token-lifecycle.md",
    "cli.md",
)
# Dotted names, not check ids (``sfoauth_django.E001`` is an id, not an attribute).
_DOTTED = re.compile(r"\bsfoauth_(?:core|django|fastapi)(?:\.(?![EW]\d{3}\b)\w+)+")
_ROW_NAME = re.compile(r"^\|\s*`([^`]+)`\s*\|", re.M)


def _text(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def _section(page: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## ``."""
    text = _text(page)
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _table_names(section: str) -> list[str]:
    return _ROW_NAME.findall(section)


def _mentioned_names() -> list[str]:
    names: set[str] = set()
    for page in PAGES:
        names.update(_DOTTED.findall(_text(page)))
    for block in ALL_BLOCKS:
        if block.page not in PAGES or block.lang != "python":
            continue
        for node in ast.walk(ast.parse(block.code)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "sfoauth_"
            ):
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(
                    a.name for a in node.names if a.name.startswith("sfoauth_")
                )
    return sorted(names)


def _attributes(page: str, prefix: str) -> list[str]:
    pattern = re.compile(re.escape(prefix) + r"\.(a?\w+)")
    return sorted(set(pattern.findall(_text(page))))


_RESOLVER = textwrap.dedent(
    """
    import importlib, json, sys

    import django
    from django.conf import settings

    settings.configure(
        DEBUG=True,
        SECRET_KEY="docs-check",
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "sfoauth_django",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SFOAUTH={},
    )
    django.setup()

    def resolve(dotted):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
            return obj
        raise ImportError(dotted)

    request = json.loads(sys.stdin.read())
    missing = []
    for dotted in request["names"]:
        try:
            resolve(dotted)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{dotted}: {type(exc).__name__}: {exc}")

    from sfoauth_core.storage import AsyncInMemoryTokenStore
    from sfoauth_core.testing import SalesforceEmulator
    from sfoauth_fastapi import SFOAuth
    from sfoauth_django.session import SalesforceSession

    emu = SalesforceEmulator()
    sf = SFOAuth(
        emu.connected_app("web"),
        store=AsyncInMemoryTokenStore(),
        secret_key="x" * 48,
        transport=emu.async_transport(),
    )
    for attr in request["sf"]:
        if not hasattr(sf, attr):
            missing.append(f"sf.{attr}")
    for attr in request["salesforce"]:
        if not hasattr(SalesforceSession, attr):
            missing.append(f"request.salesforce.{attr}")
    print(json.dumps(missing))
    """
)


def test_every_mentioned_name_exists() -> None:
    names = _mentioned_names()
    assert "sfoauth_django.middleware.SalesforceMiddleware" in names
    assert "sfoauth_fastapi.SFOAuth" in names
    request = {
        "names": names,
        "sf": _attributes("fastapi.md", "sf"),
        "salesforce": _attributes("django.md", "request.salesforce"),
    }
    assert "optional_session" in request["sf"]
    assert "aclient" in request["salesforce"]
    result = subprocess.run(
        [sys.executable, "-c", _RESOLVER],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    missing = json.loads(result.stdout.strip().splitlines()[-1])
    assert missing == [], missing


# ---------------------------------------------------------------- Django reference tables
def test_django_settings_table_matches_conf() -> None:
    source = (ROOT / "sfoauth_django" / "conf.py").read_text(encoding="utf-8")
    defaults = ast.literal_eval(
        re.search(r"^DEFAULTS: dict\[str, Any\] = (\{.*?^\})", source, re.M | re.S)
        .group(1)  # type: ignore[union-attr]
        .replace("DEFAULT_LOGIN_URL", '"https://login.salesforce.com"')
    )
    documented = _table_names(_section("django.md", "Settings"))
    assert sorted(documented) == sorted(defaults)
    # every setting has a documented property in conf.py
    for name in defaults:
        assert re.search(rf"def {name}\(self\).*?\n\s+\"\"\"", source, re.S), name


def test_django_check_ids_match_checks() -> None:
    source = "".join(
        (ROOT / "sfoauth_django" / name).read_text(encoding="utf-8")
        for name in ("checks.py", "_key_checks.py")
    )
    ids = set(re.findall(r'id="(sfoauth_django\.[EW]\d{3})"', source))
    documented = _table_names(_section("django.md", "System checks"))
    assert sorted(documented) == sorted(ids)


def test_django_signals_table_matches_signals() -> None:
    source = (ROOT / "sfoauth_django" / "signals.py").read_text(encoding="utf-8")
    signals = set(re.findall(r"^(\w+) = Signal\(\)", source, re.M))
    documented = _table_names(_section("django.md", "Signals"))
    assert sorted(documented) == sorted(signals)


def test_django_commands_exist() -> None:
    commands = {
        p.stem
        for p in (ROOT / "sfoauth_django" / "management" / "commands").glob("*.py")
        if not p.stem.startswith("_")
    }
    section = _section("django.md", "Management commands")
    documented = {m.split()[0] for m in re.findall(r"`manage\.py (\w+)", section)}
    assert documented == commands


# ---------------------------------------------------------------- FastAPI reference tables
def test_fastapi_error_codes_match() -> None:
    from sfoauth_fastapi import ErrorCode
    from sfoauth_fastapi.errors import status_for

    rows = re.findall(
        r"^\|\s*`(SFOAUTH_\w+)`\s*\|\s*(\d{3})\s*\|",
        _section("fastapi.md", "Errors"),
        re.M,
    )
    assert {code: int(status) for code, status in rows} == {
        code.value: status_for(code) for code in ErrorCode
    }


def test_fastapi_startup_ids_match() -> None:
    source = (ROOT / "sfoauth_fastapi" / "app.py").read_text(encoding="utf-8")
    ids = set(re.findall(r'"(sfoauth\.[EW]\d{3})"', source))
    section = _section("fastapi.md", "`SFOAuth`")
    documented = set(re.findall(r"^\|\s*`(sfoauth\.[EW]\d{3})`", section, re.M))
    assert documented == ids


def test_fastapi_arguments_exist() -> None:
    import inspect

    from sfoauth_fastapi import SFOAuth

    parameters = set(inspect.signature(SFOAuth).parameters)
    section = _section("fastapi.md", "`SFOAuth`")
    table = section[: section.index("Start-up checks")]
    documented: set[str] = set()
    for cell in _ROW_NAME.findall(table):
        documented.add(cell)
    for row in re.findall(r"^\|\s*(`[^|]*`)\s*\|", table, re.M):
        documented.update(re.findall(r"`(\w+)`", row))
    assert documented <= parameters, documented - parameters
    assert parameters <= documented, parameters - documented


# ---------------------------------------------------------------- the command line
def _help(argv: list[str]) -> str:
    from sfoauth_core.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0, argv
    return out.getvalue()


LOGIN_FLOWS = ("web", "jwt", "device", "client-credentials", "password")
TOKEN_ACTIONS = ("introspect", "revoke", "userinfo")


def test_cli_subcommands_and_options_exist() -> None:
    text = _text("cli.md")
    helps = [_help(["login", flow]) for flow in LOGIN_FLOWS]
    helps += [_help(["token", action]) for action in TOKEN_ACTIONS]
    helps += [_help(["advise"]), _help(["demo"]), _help(["emulator"])]
    helps += [_help(["keepalive"]), _help(["status"])]
    for flow in LOGIN_FLOWS:
        assert f"sfoauth login {flow}" in text, flow
    for action in TOKEN_ACTIONS:
        assert f"sfoauth token {action}" in text, action
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", text))
    known = " ".join(helps)
    unknown = sorted(o for o in options if o not in known)
    assert unknown == [], unknown


def test_cli_environment_variables_are_read() -> None:
    source = "".join(
        path.read_text(encoding="utf-8")
        for path in [
            *sorted((ROOT / "sfoauth_core").glob("cli/*.py")),
            ROOT / "sfoauth_core" / "storage" / "file.py",
        ]
    )
    section = _section("cli.md", "`sfoauth login`")
    for variable in set(re.findall(r"`(SFOAUTH_\w+|XDG_CONFIG_HOME)", section)):
        assert variable in source, variable


def test_check_ids_are_namespaced_per_adapter() -> None:
    """Issue 11.3: ids are ``sfoauth_django.*`` / ``sfoauth_fastapi.*`` everywhere (code,
    tests, docs); a bare ``sfoauth.E001`` meant two different problems."""
    bare = re.compile(r"\bsfoauth\.[EW]\d{3}\b")
    found = [
        str(path.relative_to(ROOT))
        for folder in (
            "sfoauth_core",
            "sfoauth_django",
            "sfoauth_fastapi",
            "docs",
            "tests",
        )
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".md", ".html")
        and path.name != "test_framework_names.py"
        and bare.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []
    fastapi = (ROOT / "sfoauth_fastapi" / "app.py").read_text(encoding="utf-8")
    ids = set(re.findall(r'"(sfoauth_fastapi\.[EW]\d{3})"', fastapi))
    documented = set(re.findall(r"`(sfoauth_fastapi\.[EW]\d{3})`", _text("fastapi.md")))
    assert ids and ids == documented
