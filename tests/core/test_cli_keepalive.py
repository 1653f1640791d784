"""``sfoauth keepalive`` and ``sfoauth status`` (reference 15.3) on the CLI's token file,
against a served emulator whose web app expires refresh tokens unused for 30 days.

Idle ages come from the command's clock (``cli.keepalive.time``), moved forward here;
the emulator's own clock decides what Salesforce accepts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.cli import USER, common, run, stored, web_login

from sfoauth_core.cli import keepalive as cli_keepalive
from sfoauth_core.testing import (
    DEFAULT_CLIENT_SECRET,
    JWT_APP_CLIENT_ID,
    SalesforceEmulator,
)

pytestmark = pytest.mark.loopback

DAY = 86400


@pytest.fixture(scope="module")
def served():
    emu = SalesforceEmulator()
    with emu.serve() as base_url:
        yield emu, base_url


@pytest.fixture
def emu(served):
    emulator, _ = served
    emulator.reset()
    emulator.auto_approve = USER
    emulator.apps["web"].is_refresh_token_rotation_enabled = True
    emulator.apps["web"].refresh_token_policy = "specific_inactivity:30:DAYS"
    return emulator


@pytest.fixture
def base_url(served):
    return served[1]


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "cfg" / "tokens.json.enc"


@pytest.fixture
def browser(monkeypatch):
    import httpx

    from sfoauth_core.cli import login as cli_login

    def open_url(url: str) -> bool:
        httpx.get(url, follow_redirects=True, timeout=5)
        return True

    monkeypatch.setattr(cli_login, "open_browser", open_url)


class Clock:
    """The command's clock, ``days`` ahead of the real one."""

    def __init__(self, days: float) -> None:
        self.days = days

    def time(self) -> float:
        return time.time() + self.days * DAY


def login_web_and_jwt(emu, base_url, store, tmp_path) -> None:
    assert web_login(emu, base_url, store) == 0
    key_file = tmp_path / "server.key"
    key_file.write_text(emu.apps["jwt"].private_key_pem)
    argv = [*common(base_url, store, JWT_APP_CLIENT_ID), "--username", USER]
    assert run("login", "jwt", *argv, "--key-file", str(key_file), "--alias", "ci") == 0


def test_keepalive_refreshes_the_idle_connection_which_then_outlives_the_limit(
    emu, base_url, store, tmp_path, browser, monkeypatch, capsys
):
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    login_web_and_jwt(emu, base_url, store, tmp_path)
    before = stored(store)[USER]["token"]["refresh_token"]
    capsys.readouterr()
    emu.advance_time(11 * DAY)
    monkeypatch.setattr(cli_keepalive, "time", Clock(11))

    assert run("keepalive", "--idle-limit", "30d", "--store", str(store)) == 0

    out, err = capsys.readouterr()
    assert f"[1/1] {USER}: kept alive" in err  # the JWT connection is not picked
    assert "Keep-alive: 1 idle connection(s): kept alive 1" in out
    assert stored(store)[USER]["token"]["refresh_token"] != before  # rotated, saved
    assert emu.calls("refresh_token") == 1
    emu.advance_time(25 * DAY)  # 36 days after the login, 25 after the keep-alive
    emu.expire_access_tokens()
    assert run("token", "userinfo", "--store", str(store), "--alias", USER) == 0
    assert emu.reuse_detected == 0


def test_keepalive_reports_a_dead_grant_and_json(
    emu, base_url, store, browser, monkeypatch, capsys
):
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    assert web_login(emu, base_url, store) == 0
    capsys.readouterr()
    emu.advance_time(31 * DAY)
    monkeypatch.setattr(cli_keepalive, "time", Clock(31))

    code = run("keepalive", "--idle-for", "10d", "--store", str(store), "--json")

    assert code == 0  # a dead grant is an outcome: only a new login helps
    summary = json.loads(capsys.readouterr().out)
    assert summary["needs_reauth"] == 1 and summary["failed"] == 0
    assert summary["results"][0]["alias"] == USER
    assert "expired access/refresh token" in summary["results"][0]["detail"]
    assert stored(store)[USER]["status"] == "needs_reauth"


def test_keepalive_exits_1_when_salesforce_fails(
    emu, base_url, store, browser, monkeypatch, capsys
):
    from sfoauth_core.testing import Fault

    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    assert web_login(emu, base_url, store) == 0
    before = stored(store)[USER]
    capsys.readouterr()
    emu.inject_fault(
        Fault(kind="status", status=503, count=10, grant_type="refresh_token")
    )
    monkeypatch.setattr(cli_keepalive, "time", Clock(11))

    assert run("keepalive", "--idle-for", "10d", "--store", str(store)) == 1

    out, err = capsys.readouterr()
    assert f"{USER}: failed (SalesforceUnavailableError" in err
    assert "failed 1" in out
    assert stored(store)[USER] == before  # nothing changed


def test_keepalive_needs_a_threshold(store, capsys):
    assert run("keepalive", "--store", str(store)) == 2
    assert "--idle-for" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("keepalive", "--idle-for", "soon", "--store", str(store))
    assert "expected a duration" in capsys.readouterr().err


def test_status_shows_idle_age_and_risk(
    emu, base_url, store, tmp_path, browser, monkeypatch, capsys
):
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    login_web_and_jwt(emu, base_url, store, tmp_path)
    capsys.readouterr()
    monkeypatch.setattr(cli_keepalive, "time", Clock(16))

    assert run("status", "--idle-limit", "30d", "--store", str(store)) == 0

    out, err = capsys.readouterr()
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == ["ALIAS", "USERNAME", "ORG ID", "STATUS", "IDLE", "IDLE RISK"]
    rows = {line[0]: line for line in lines[1:]}
    assert rows[USER][3] == "active"
    assert rows[USER][4].startswith("16d") and rows[USER][5] == "AT RISK"
    assert rows["ci"][4] == "-" and rows["ci"][5] == "-"  # minted: no idle limit
    assert "1 connection(s) unused for 15d or more" in err
    assert "sfoauth keepalive" in err

    assert run("status", "--store", str(store), "--json") == 0
    entries = {e["alias"]: e for e in json.loads(capsys.readouterr().out)}
    assert entries[USER]["idle_risk"] is None  # no --idle-limit
    assert entries[USER]["idle_seconds"] >= 16 * DAY
    assert entries["ci"]["grant"] == "jwt_bearer"


def test_status_of_an_empty_store(store, capsys):
    assert run("status", "--store", str(store)) == 0
    assert "No connections in" in capsys.readouterr().out
