"""`sfoauth login`, `sfoauth token` and `sfoauth advise -i` against the emulator.

Every login runs in-process over a real loopback port; the browser is replaced by an
httpx GET of the authorization URL that follows the emulator's redirect to the CLI's
callback server.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import stat
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from support.browser import free_port
from support.cli import USER, common, run, stored, web_login

from sfoauth_core.cli import build_parser
from sfoauth_core.cli import login as cli_login
from sfoauth_core.cli._app import login_url
from sfoauth_core.cli._console import Progress
from sfoauth_core.cli.advise import run_interactive_advise
from sfoauth_core.exceptions import InsecureFlowWarning
from sfoauth_core.storage import FileTokenStore, TokenCipher
from sfoauth_core.storage.file import default_store_path
from sfoauth_core.testing import (
    CC_APP_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_ORG_ID,
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USER_ID,
    DEVICE_APP_CLIENT_ID,
    JWT_APP_CLIENT_ID,
    PUBLIC_APP_CLIENT_ID,
    WEB_APP_CLIENT_ID,
    SalesforceEmulator,
)
from sfoauth_core.tokens import Token

pytestmark = pytest.mark.loopback


def point_at(path: Path, alias: str, url: str, *, instance: bool = False) -> None:
    """Move a stored connection's login host (and instance) to ``url``."""
    store = FileTokenStore(path)
    details = store.details(alias)
    record = store.get(alias)
    assert details is not None and record is not None
    store.set_details(alias, {**details, "login_url": url})
    # The grant remembers the server that issued it (token_url): it moves too.
    moved = {**record.token.to_dict(), "token_url": url + "/services/oauth2/token"}
    if instance:
        moved["instance_url"] = url
    store.save(alias, Token.from_dict(moved), expected_version=record.version)


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
    return emulator


@pytest.fixture
def base_url(served):
    return served[1]


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "cfg" / "tokens.json.enc"


@pytest.fixture
def browser(monkeypatch):
    """Replace the browser: GET the authorize URL and follow it to the callback."""
    seen: list[str] = []

    def open_url(url: str) -> bool:
        seen.append(url)
        httpx.get(url, follow_redirects=True, timeout=5)
        return True

    monkeypatch.setattr(cli_login, "open_browser", open_url)
    return seen


def assert_private_and_opaque(store: Path) -> dict:
    """The store and its key are 0600, and the file shows no token or identity."""
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    key = store.with_name(store.name + ".key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    raw = store.read_bytes()
    connections = stored(store)
    for connection in connections.values():
        token = connection["token"]
        for value in (token["access_token"], token["refresh_token"]):
            if value:
                assert value.encode() not in raw
                assert value[:12].encode() not in raw
    assert b"jane" not in raw and b"acme" not in raw
    assert raw.startswith(b"sfo1.")
    return connections


# ---------------------------------------------------------------------- login web
def test_login_web_stores_encrypted_token_and_token_commands_use_it(
    emu, base_url, store, browser, monkeypatch, capsys
):
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    assert web_login(emu, base_url, store) == 0
    out, err = capsys.readouterr()
    assert f"Logged in as {USER} (org {DEFAULT_ORG_ID}) at {base_url}" in out
    assert f"Stored as '{USER}'" in out
    assert browser[0] in err  # the URL is printed for copy/paste

    # The authorization request: PKCE S256, prompt=login, the CLI's callback path.
    query = parse_qs(urlsplit(browser[0]).query)
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [WEB_APP_CLIENT_ID]
    assert query["prompt"] == ["login"]
    assert len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"][0].startswith("http://localhost:")
    assert query["redirect_uri"][0].endswith("/OauthRedirect")
    assert "code_verifier" not in query

    connections = assert_private_and_opaque(store)
    entry = connections[USER]
    assert entry["org_id"] == DEFAULT_ORG_ID
    assert entry["user_id"] == DEFAULT_USER_ID
    assert entry["instance_url"] == base_url
    assert entry["client_id"] == WEB_APP_CLIENT_ID
    assert entry["flow"] == "web_server"
    access = entry["token"]["access_token"]
    refresh = entry["token"]["refresh_token"]
    assert refresh and access
    assert access not in out + err and refresh not in out + err
    assert DEFAULT_CLIENT_SECRET not in out + err

    assert run("token", "userinfo", "--store", str(store)) == 0
    out, _ = capsys.readouterr()
    assert f"username: {USER}" in out
    assert f"org id: {DEFAULT_ORG_ID}" in out

    assert run("token", "introspect", "--store", str(store), "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["active"] is True
    assert info["username"] == USER
    assert info["client_id"] == WEB_APP_CLIENT_ID

    assert run("token", "introspect", "--store", str(store), "--which", "refresh") == 0
    assert "active: yes" in capsys.readouterr().out

    assert run("token", "revoke", "--alias", USER, "--store", str(store)) == 0
    out, _ = capsys.readouterr()
    assert f"Revoked the token of '{USER}'" in out
    assert stored(store) == {}
    # The refresh token took the access token with it.
    with httpx.Client() as client:
        response = client.get(
            f"{base_url}/services/oauth2/userinfo",
            headers={"Authorization": f"Bearer {access}"},
        )
    assert response.status_code in (401, 403)

    assert run("token", "userinfo", "--store", str(store)) == 1
    assert "no token stored" in capsys.readouterr().err


def test_login_web_public_client_without_secret(emu, base_url, store, browser, capsys):
    code = web_login(
        emu,
        base_url,
        store,
        "--alias",
        "dev",
        "--json",
        app="public",
        client_id=PUBLIC_APP_CLIENT_ID,
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["alias"] == "dev"
    assert summary["username"] == USER
    assert summary["store"] == str(store)
    assert stored(store)["dev"]["client_id"] == PUBLIC_APP_CLIENT_ID


def test_login_web_error_callback(emu, base_url, store, browser, monkeypatch, capsys):
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    emu.auto_consent = "deny"
    assert web_login(emu, base_url, store) == 1
    err = capsys.readouterr().err
    assert "access_denied" in err
    assert "Traceback" not in err
    assert not store.exists()
    assert emu.calls("authorization_code") == 0


def test_login_web_wrong_state_makes_no_exchange(
    emu, base_url, store, monkeypatch, capsys
):
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    pages: list[httpx.Response] = []

    def forged(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        pages.append(
            httpx.get(redirect, params={"code": "aPrx==", "state": "forged"}, timeout=5)
        )
        return True

    monkeypatch.setattr(cli_login, "open_browser", forged)
    assert web_login(emu, base_url, store) == 1
    assert "StateMismatchError" in capsys.readouterr().err
    assert emu.calls("authorization_code") == 0
    assert not store.exists()
    assert pages[0].headers["cache-control"] == "no-store"
    assert pages[0].headers["referrer-policy"] == "no-referrer"


def test_callback_server_ignores_other_paths(emu, base_url, store, monkeypatch):
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    statuses: list[int] = []

    def browse(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        root = redirect.rsplit("/", 1)[0]
        statuses.append(httpx.get(root + "/favicon.ico", timeout=5).status_code)
        statuses.append(httpx.get(redirect, timeout=5).status_code)
        httpx.get(url, follow_redirects=True, timeout=5)
        statuses.append(httpx.get(redirect, params={"state": "x"}).status_code)
        return True

    monkeypatch.setattr(cli_login, "open_browser", browse)
    assert web_login(emu, base_url, store) == 0
    assert statuses == [404, 400, 409]


def test_login_web_times_out_without_callback(
    emu, base_url, store, monkeypatch, capsys
):
    monkeypatch.setattr(cli_login, "open_browser", lambda url: False)
    code = run(
        "login",
        "web",
        *common(base_url, store, PUBLIC_APP_CLIENT_ID),
        "--port",
        str(free_port()),
        "--timeout",
        "0.3",
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "Could not open a browser" in err
    assert "no login callback arrived within 0.3 seconds" in err


def test_login_web_no_browser_and_port_in_use(emu, base_url, store, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = run(
            "login",
            "web",
            *common(base_url, store, PUBLIC_APP_CLIENT_ID),
            "--port",
            str(port),
            "--no-browser",
        )
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


# ---------------------------------------------------------------------- login jwt
def test_login_jwt(emu, base_url, store, tmp_path, capsys):
    key_file = tmp_path / "server.key"
    key_file.write_text(emu.apps["jwt"].private_key_pem)
    code = run(
        "login",
        "jwt",
        *common(base_url, store, JWT_APP_CLIENT_ID),
        "--username",
        USER,
        "--key-file",
        str(key_file),
        "--json",
    )
    assert code == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["username"] == USER
    assert summary["org_id"] == DEFAULT_ORG_ID
    assert summary["flow"] == "jwt_bearer"
    assert "PRIVATE KEY" not in out + err
    entry = assert_private_and_opaque(store)[USER]
    assert entry["token"]["refresh_token"] is None
    assert emu.calls("urn:ietf:params:oauth:grant-type:jwt-bearer") == 1


def test_login_jwt_setup_makes_what_the_app_needs(
    emu, base_url, store, tmp_path, capsys
):
    """Issue 12 item 4: the replacement of the password flow, set up from the CLI: a key
    and certificate, the steps printed, and the certificate accepted once uploaded."""
    out_dir = tmp_path / "jwt"
    code = run(
        "login",
        "jwt",
        "--setup",
        "--out",
        str(out_dir),
        "--client-id",
        JWT_APP_CLIENT_ID,
        "--username",
        USER,
        "--my-domain",
        "acme",
    )
    assert code == 0
    printed, errors = capsys.readouterr()
    key_file, cert_file = out_dir / "salesforce-jwt.key", out_dir / "salesforce-jwt.crt"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "Upload the certificate" in printed
    assert f"SFOAUTH_PRIVATE_KEY_FILE={key_file}" in printed
    assert "SFOAUTH_LOGIN_URL=https://acme.my.salesforce.com" in printed
    assert "PRIVATE KEY" not in printed + errors
    assert emu.calls() == 0 and not store.exists()  # nothing sent, nothing stored
    # A second run keeps the key the app may already trust.
    assert run("login", "jwt", "--setup", "--out", str(out_dir)) == 2
    assert "already has" in capsys.readouterr().err
    # What the admin does, then the login with the new key.
    emu.upload_certificate("jwt", cert_file.read_text())
    code = run(
        "login",
        "jwt",
        *common(base_url, store, JWT_APP_CLIENT_ID),
        "--username",
        USER,
        "--key-file",
        str(key_file),
    )
    assert code == 0
    assert emu.calls("urn:ietf:params:oauth:grant-type:jwt-bearer") == 1


def test_login_jwt_unapproved_user_says_what_to_fix(
    emu, base_url, store, tmp_path, capsys
):
    emu.apps["jwt"].admin_approved_users.clear()
    key_file = tmp_path / "server.key"
    key_file.write_text(emu.apps["jwt"].private_key_pem)
    code = run(
        "login",
        "jwt",
        *common(base_url, store, JWT_APP_CLIENT_ID),
        "--username",
        USER,
        "--key-file",
        str(key_file),
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "InvalidGrantError" in err and "pre-authorize the user" in err
    assert len(err.strip().splitlines()) == 1
    assert not store.exists()


def test_login_jwt_unreadable_key_is_a_config_error(emu, base_url, store, capsys):
    code = run(
        "login",
        "jwt",
        *common(base_url, store, JWT_APP_CLIENT_ID),
        "--username",
        USER,
        "--key-file",
        "/nonexistent/key.pem",
    )
    assert code == 2
    assert "--key-file: cannot be read" in capsys.readouterr().err


# ---------------------------------------------------------------------- login device
def approve_when_pending(emu) -> threading.Thread:
    def approve() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with emu.state.lock:
                codes = [d.user_code for d in emu.state.devices.values()]
            if codes:
                emu.approve_device(codes[0])
                return
            time.sleep(0.02)

    thread = threading.Thread(target=approve, daemon=True)
    thread.start()
    return thread


def test_login_device_shows_code_and_stores_token(emu, base_url, store, capsys):
    emu.apps["device"].device_interval = 1
    approver = approve_when_pending(emu)
    code = run("login", "device", *common(base_url, store, DEVICE_APP_CLIENT_ID))
    approver.join()
    assert code == 0
    out, err = capsys.readouterr()
    with emu.state.lock:
        (record,) = emu.state.devices.values()
    assert record.user_code in err
    assert f"open {base_url}/setup/connect" in err
    assert record.device_code not in out + err
    assert "Waiting for approval" in err and "approved" in err
    assert f"Logged in as {USER}" in out
    entry = assert_private_and_opaque(store)[USER]
    assert entry["token"]["refresh_token"]
    assert entry["flow"] == "device"


def test_login_device_ctrl_c_cancels_cleanly(emu, base_url, store, monkeypatch, capsys):
    emu.apps["device"].device_interval = 1

    def interrupted(thread, seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_login, "_join", interrupted)
    code = run("login", "device", *common(base_url, store, DEVICE_APP_CLIENT_ID))
    assert code == 130
    err = capsys.readouterr().err
    assert "cancelled" in err
    assert "Traceback" not in err
    assert not store.exists()
    time.sleep(1.2)  # past the poller's first wait: it must stop instead of polling
    assert emu.calls("device") == 0


def test_login_device_denied(emu, base_url, store, capsys):
    emu.apps["device"].device_interval = 1

    def deny() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with emu.state.lock:
                codes = [d.user_code for d in emu.state.devices.values()]
            if codes:
                emu.deny_device(codes[0])
                return
            time.sleep(0.02)

    threading.Thread(target=deny, daemon=True).start()
    code = run("login", "device", *common(base_url, store, DEVICE_APP_CLIENT_ID))
    assert code == 1
    err = capsys.readouterr().err
    assert "failed" in err and "access_denied" in err


class FakeTTY(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def test_progress_spinner_on_a_tty_and_dots_elsewhere():
    tty = FakeTTY()
    spinner = Progress(tty, "Waiting", dot_every=1.0)
    spinner.tick(0.1)
    spinner.tick(0.2)
    spinner.finish("approved")
    text = tty.getvalue()
    assert "\r⠋ Waiting (0s)" in text and "\r⠙ Waiting" in text
    assert text.endswith("\r\033[Kapproved\n")

    plain = io.StringIO()
    dots = Progress(plain, "Waiting", dot_every=1.0)
    for elapsed in (0.5, 1.0, 1.5, 2.1, 3.2):
        dots.tick(elapsed)
    dots.finish("approved")
    assert plain.getvalue() == "Waiting ... approved\n"


def test_progress_falls_back_to_ascii():
    class Latin1TTY(FakeTTY):
        encoding = "ascii"

    stream = Latin1TTY()
    Progress(stream, "Waiting", dot_every=1).tick(0)
    assert stream.getvalue() == "\r| Waiting (0s) "


# ---------------------------------------------------------------------- login cc
def test_login_client_credentials(emu, base_url, store, monkeypatch, capsys):
    secret = emu.apps["cc"].client_secret
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", secret)
    code = run(
        "login", "client-credentials", *common(base_url, store, CC_APP_CLIENT_ID)
    )
    assert code == 0
    out, err = capsys.readouterr()
    assert "Logged in as integration@acme.com" in out
    assert secret not in out + err
    assert "integration@acme.com" in assert_private_and_opaque(store)


def test_login_client_credentials_secret_flag_warns_but_works(
    emu, base_url, store, capsys
):
    secret = emu.apps["cc"].client_secret
    code = run(
        "login",
        "client-credentials",
        *common(base_url, store, CC_APP_CLIENT_ID),
        "--client-secret",
        secret,
        "--basic-auth",
        "--print",
    )
    assert code == 0
    out, err = capsys.readouterr()
    assert "visible in the process list" in err
    assert secret not in err
    assert json.loads(out)["access_token"]
    assert "clear text" in err
    assert not store.exists()


def test_login_client_credentials_needs_secret(
    emu, base_url, store, monkeypatch, capsys
):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = run(
        "login", "client-credentials", *common(base_url, store, CC_APP_CLIENT_ID)
    )
    assert code == 2
    assert "SFOAUTH_CLIENT_SECRET" in capsys.readouterr().err


def test_login_client_credentials_prompts_on_a_tty(
    emu, base_url, store, monkeypatch, capsys
):
    secret = emu.apps["cc"].client_secret
    monkeypatch.setattr("sys.stdin", FakeTTY())
    prompts: list[str] = []
    monkeypatch.setattr(
        cli_login.getpass, "getpass", lambda prompt: prompts.append(prompt) or secret
    )
    code = run(
        "login", "client-credentials", *common(base_url, store, CC_APP_CLIENT_ID)
    )
    assert code == 0
    assert prompts == ["Consumer secret (not shown): "]


def test_login_client_credentials_on_login_host_is_a_config_error(store, capsys):
    code = run(
        "login",
        "client-credentials",
        "--client-id",
        CC_APP_CLIENT_ID,
        "--client-secret",
        "x",
        "--store",
        str(store),
    )
    assert code == 2
    assert "My Domain" in capsys.readouterr().err


# ---------------------------------------------------------------------- login password
def test_login_password_warns_and_reads_stdin(
    emu, base_url, store, monkeypatch, capsys
):
    emu.org.username_password_blocked = False
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    password = DEFAULT_PASSWORD + DEFAULT_SECURITY_TOKEN
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    with pytest.warns(InsecureFlowWarning):
        code = run(
            "login",
            "password",
            *common(base_url, store, WEB_APP_CLIENT_ID),
            "--username",
            USER,
            "--password-stdin",
        )
    assert code == 0
    out, err = capsys.readouterr()
    assert "development only" in err
    assert f"Logged in as {USER}" in out
    assert DEFAULT_PASSWORD not in out + err
    assert USER in assert_private_and_opaque(store)


def test_login_password_refused(emu, base_url, store, monkeypatch, capsys):
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    monkeypatch.setattr(cli_login.getpass, "getpass", lambda prompt: "wrong-pass")
    with pytest.warns(InsecureFlowWarning):
        code = run(
            "login",
            "password",
            *common(base_url, store, WEB_APP_CLIENT_ID),
            "--username",
            USER,
        )
    assert code == 1
    err = capsys.readouterr().err
    assert "invalid_grant" in err
    assert "wrong-pass" not in err
    assert not store.exists()


# ---------------------------------------------------------------------- token userinfo
def test_userinfo_refreshes_once_and_saves_the_new_token(
    emu, base_url, store, browser, monkeypatch, capsys
):
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    assert web_login(emu, base_url, store) == 0
    before = stored(store)[USER]["token"]
    assert emu.expire_access_tokens() == 1
    capsys.readouterr()
    assert run("token", "userinfo", "--store", str(store), "--json") == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["preferred_username"] == USER
    assert "refreshing it once" in err
    after = stored(store)[USER]["token"]
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] == before["refresh_token"]
    assert emu.calls("refresh_token") == 1
    assert_private_and_opaque(store)


def test_userinfo_re_mints_a_jwt_token_with_the_key_file_named_at_login(
    emu, base_url, store, tmp_path, capsys
):
    # Before: "InvalidTokenError" (the CLI only knew how to use a refresh token). The
    # token manager re-mints a refused JWT bearer token; the key file's path (never the
    # key) was kept at login for that.
    key_file = tmp_path / "server.key"
    key_file.write_text(emu.apps["jwt"].private_key_pem)
    jwt_args = ["--username", USER, "--key-file", str(key_file)]
    assert (
        run("login", "jwt", *common(base_url, store, JWT_APP_CLIENT_ID), *jwt_args) == 0
    )
    entry = stored(store)[USER]
    assert entry["key_file"] == str(key_file.resolve())
    assert entry["grant"] == "jwt_bearer"
    assert emu.apps["jwt"].private_key_pem not in store.read_text()
    emu.expire_access_tokens()
    capsys.readouterr()
    assert run("token", "userinfo", "--store", str(store)) == 0
    out, err = capsys.readouterr()
    assert f"username: {USER}" in out
    assert "refused; minting a new one" in err
    assert emu.calls("urn:ietf:params:oauth:grant-type:jwt-bearer") == 2

    key_file.unlink()  # without the key nothing can be minted: say what is missing
    emu.expire_access_tokens()
    assert run("token", "userinfo", "--store", str(store)) == 2
    assert "configuration error: private_key" in capsys.readouterr().err


def test_userinfo_without_refresh_token_flags_the_connection(
    emu, base_url, store, browser, monkeypatch, capsys
):
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    assert web_login(emu, base_url, store, "--scopes", "api openid") == 0
    assert stored(store)[USER]["token"]["refresh_token"] is None
    emu.expire_access_tokens()
    capsys.readouterr()
    assert run("token", "userinfo", "--store", str(store)) == 1
    err = capsys.readouterr().err
    assert "ReauthorizationRequired" in err and "no refresh token" in err
    assert "was marked" in err and "run `sfoauth login` again" in err
    assert stored(store)[USER]["status"] == "needs_reauth"
    assert run("token", "userinfo", "--store", str(store)) == 1
    assert "needs a new login" in capsys.readouterr().err
    assert run("token", "revoke", "--store", str(store)) == 0  # still removable
    assert stored(store) == {}


def test_token_commands_need_an_alias_when_several_are_stored(
    emu, base_url, store, tmp_path, monkeypatch, capsys
):
    key_file = tmp_path / "server.key"
    key_file.write_text(emu.apps["jwt"].private_key_pem)
    for alias in ("one", "two"):
        assert (
            run(
                "login",
                "jwt",
                *common(base_url, store, JWT_APP_CLIENT_ID),
                "--username",
                USER,
                "--key-file",
                str(key_file),
                "--alias",
                alias,
            )
            == 0
        )
    capsys.readouterr()
    assert run("token", "userinfo", "--store", str(store)) == 1
    assert "choose one with --alias: one, two" in capsys.readouterr().err
    assert run("token", "userinfo", "--store", str(store), "--alias", "three") == 1
    assert "no token stored under alias 'three'" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert run("token", "introspect", "--store", str(store), "--alias", "one") == 2
    assert "introspection needs the consumer secret" in capsys.readouterr().err
    assert run("token", "revoke", "--store", str(store), "--alias", "two") == 0
    assert set(stored(store)) == {"one"}


# ---------------------------------------------------------------------- the store
def test_default_store_path_honours_xdg(tmp_path, monkeypatch):
    assert default_store_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "sfoauth" / "tokens.json.enc"
    )
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".config" / "sfoauth" / "tokens.json.enc"
    assert default_store_path({}) == expected
    assert default_store_path({"XDG_CONFIG_HOME": "relative"}) == expected


def test_login_uses_default_store(emu, base_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    key_file = tmp_path / "server.key"
    key_file.write_text(emu.apps["jwt"].private_key_pem)
    code = run(
        "login",
        "jwt",
        "--client-id",
        JWT_APP_CLIENT_ID,
        "--instance-url",
        base_url,
        "--allow-loopback",
        "--username",
        USER,
        "--key-file",
        str(key_file),
    )
    assert code == 0
    path = tmp_path / "xdg" / "sfoauth" / "tokens.json.enc"
    assert_private_and_opaque(path)
    assert run("token", "userinfo") == 0


def test_store_errors_are_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "tokens.json.enc"
    FileTokenStore(path).save("a", Token(access_token="00Dx!not-a-real-token"))
    key = path.with_name(path.name + ".key")
    os.chmod(key, 0o644)
    assert run("token", "userinfo", "--store", str(path)) == 2
    assert "readable by other users" in capsys.readouterr().err
    key.unlink()
    assert run("token", "userinfo", "--store", str(path)) == 1
    assert "set SFOAUTH_TOKEN_KEY" in capsys.readouterr().err
    path.write_text("sfo1.abc.garbage\n")
    monkeypatch.setenv("SFOAUTH_TOKEN_KEY", TokenCipher.generate_key())
    assert run("token", "userinfo", "--store", str(path)) == 1
    err = capsys.readouterr().err
    assert "StorageError" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------- configuration
def parse_login(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["login", "device", *argv])


@pytest.mark.parametrize(
    ("argv", "url"),
    [
        ((), "https://login.salesforce.com"),
        (("--sandbox",), "https://test.salesforce.com"),
        (("--my-domain", "acme"), "https://acme.my.salesforce.com"),
        (
            ("--my-domain", "acme--dev", "--sandbox"),
            "https://acme--dev.sandbox.my.salesforce.com",
        ),
        (("--my-domain", "acme.my.site.com"), "https://acme.my.site.com"),
        (
            ("--instance-url", "https://x.my.salesforce.com"),
            "https://x.my.salesforce.com",
        ),
        (("--login-url", "https://x.my.salesforce.com"), "https://x.my.salesforce.com"),
    ],
)
def test_login_url_options(argv, url):
    assert login_url(parse_login(*argv)) == url


def test_login_url_from_env(monkeypatch):
    monkeypatch.setenv("SFOAUTH_LOGIN_URL", "https://acme.my.salesforce.com")
    assert login_url(parse_login()) == "https://acme.my.salesforce.com"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "--client-id: is required"),
        (
            (
                "--client-id",
                "3MVG9x",
                "--sandbox",
                "--login-url",
                "https://a.my.salesforce.com",
            ),
            "--sandbox: cannot be combined",
        ),
        (
            ("--client-id", "3MVG9x", "--my-domain", "https://acme.my.salesforce.com"),
            "--my-domain: takes a name",
        ),
        (
            ("--client-id", "3MVG9x", "--login-url", "http://127.0.0.1:9"),
            "pass --allow-loopback",
        ),
        (
            ("--client-id", "3MVG9x", "--login-url", "https://evil.example.com"),
            "login_url: is not a Salesforce host",
        ),
    ],
)
def test_configuration_errors_exit_2(argv, message, capsys):
    assert run("login", "device", *argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_mutually_exclusive_hosts():
    with pytest.raises(SystemExit):
        parse_login("--my-domain", "a", "--instance-url", "https://a.my.salesforce.com")


def test_advise_interactive_runs_from_the_command(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n\nyes\n\n\n\n"))
    assert run("advise", "-i") == 0
    assert "JWT Bearer" in capsys.readouterr().out


# ---------------------------------------------------------------------- advise -i
def scripted(*answers: str):
    asked: list[str] = []
    printed: list[str] = []
    feed = iter(answers)

    def input_fn(prompt: str) -> str:
        asked.append(prompt)
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    def print_fn(*parts: object) -> None:
        printed.append(" ".join(str(p) for p in parts))

    return input_fn, print_fn, asked, printed


def test_advise_interactive_server_to_server():
    input_fn, print_fn, asked, printed = scripted("no", "none", "yes", "yes", "", "")
    assert run_interactive_advise(input_fn, print_fn) == 0
    text = "\n".join(printed)
    assert "Recommended: JWT Bearer flow [jwt_bearer]" in text
    assert "Caveats:" in text
    assert "sfoauth advise --can-keep-secret yes --no-user" in text
    assert len(asked) == 6
    assert asked[0].endswith("[YES/no] ")


def test_advise_interactive_browser_only_app():
    input_fn, print_fn, _asked, printed = scripted("", "n", "no", "n", "y", "n", "")
    assert run_interactive_advise(input_fn, print_fn) == 0
    text = "\n".join(printed)
    assert "Recommended: Web Server flow with PKCE only" in text
    assert "CORS" in text
    assert "sfoauth advise --can-keep-secret no --no-my-domain --browser-only" in text


def test_advise_interactive_users_of_another_identity_provider():
    input_fn, print_fn, asked, printed = scripted("", "none", "yes", "yes", "", "")
    assert run_interactive_advise(input_fn, print_fn) == 0
    text = "\n".join(printed)
    assert "Recommended: Token Exchange flow" in text
    assert "Auth.OauthTokenExchangeHandler" in text
    assert "sfoauth advise --can-keep-secret yes --external-idp" in text
    assert not any("entirely in the browser" in q for q in asked)


def test_advise_interactive_device_skips_irrelevant_questions():
    input_fn, print_fn, asked, printed = scripted("yes", "input", "?", "yes")
    assert run_interactive_advise(input_fn, print_fn) == 0
    assert "Recommended: Device flow [device]" in "\n".join(printed)
    assert len(asked) == 4
    assert "sfoauth advise --device input_constrained" in printed[-1]


def test_advise_interactive_repeats_bad_answers_and_stops_on_eof():
    input_fn, print_fn, asked, printed = scripted("maybe", "yes")
    assert run_interactive_advise(input_fn, print_fn) == 1
    assert "  Please answer one of: yes, no" in printed
    assert asked[0] == asked[1]
    assert printed[-1] == "No answer; nothing recommended."


def test_advise_interactive_gives_up_after_five_bad_answers():
    input_fn, print_fn, _, _printed = scripted(*["what"] * 5)
    assert run_interactive_advise(input_fn, print_fn) == 1


def test_advise_interactive_ctrl_c():
    def interrupted(prompt: str) -> str:
        raise KeyboardInterrupt

    printed: list[str] = []
    assert run_interactive_advise(interrupted, printed.append) == 130
    assert printed == ["\nCancelled."]


# Salesforce unavailable: what happened, and what changed locally (issue 10 item 6) ----
def _cc_login(base_url: str, store: Path, emu, monkeypatch) -> str:
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", emu.apps["cc"].client_secret)
    assert (
        run("login", "client-credentials", *common(base_url, store, CC_APP_CLIENT_ID))
        == 0
    )
    (alias,) = stored(store)
    return alias


@pytest.fixture
def no_back_off(monkeypatch):
    from sfoauth_core.http import _drivers

    monkeypatch.setattr(_drivers.time, "sleep", lambda seconds: None)


def test_token_revoke_when_salesforce_is_unreachable_says_the_grant_is_still_live(
    emu, base_url, store, monkeypatch, capsys, no_back_off
):
    # Before: "sfoauth: SalesforceUnavailableError: ..." and nothing about the alias
    # that had just been deleted.
    alias = _cc_login(base_url, store, emu, monkeypatch)
    point_at(store, alias, f"http://127.0.0.1:{free_port()}")
    capsys.readouterr()
    assert run("token", "revoke", "--store", str(store)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"the token of {alias!r} was NOT revoked at Salesforce" in err
    assert "Salesforce is unavailable" in err and "ConnectError" in err
    assert f"It was removed from {store} anyway" in err
    assert "stays valid at Salesforce" in err
    assert "Traceback" not in err
    assert stored(store) == {}


def test_token_revoke_json_on_a_5xx(
    emu, base_url, store, monkeypatch, capsys, no_back_off
):
    from sfoauth_core.testing import Fault

    alias = _cc_login(base_url, store, emu, monkeypatch)
    capsys.readouterr()
    emu.inject_fault(Fault(kind="status", status=503, count=3))
    assert run("token", "revoke", "--store", str(store), "--json") == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "alias": alias,
        "revoked": False,
        "removed": True,
        "error": "SalesforceUnavailableError",
    }
    assert "HTTP 503" in err and "NOT revoked" in err
    assert stored(store) == {}


def test_token_revoke_of_an_already_dead_token_succeeds(
    emu, base_url, store, monkeypatch, capsys
):
    # Before: exit 1 with "InvalidTokenError" although the goal (a dead grant, no local
    # copy) was reached.
    alias = _cc_login(base_url, store, emu, monkeypatch)
    dead = stored(store)[alias]["token"]["access_token"]
    with httpx.Client() as client:
        assert (
            client.post(
                f"{base_url}/services/oauth2/revoke", data={"token": dead}
            ).status_code
            == 200
        )
    capsys.readouterr()
    assert run("token", "revoke", "--store", str(store)) == 0
    out, _ = capsys.readouterr()
    assert f"The token of {alias!r} was already invalid at Salesforce" in out
    assert stored(store) == {}


def test_token_userinfo_when_salesforce_is_unreachable_changes_nothing(
    emu, base_url, store, monkeypatch, capsys, no_back_off
):
    alias = _cc_login(base_url, store, emu, monkeypatch)
    point_at(store, alias, f"http://127.0.0.1:{free_port()}", instance=True)
    before = stored(store)
    capsys.readouterr()
    assert run("token", "userinfo", "--store", str(store)) == 1
    err = capsys.readouterr().err
    assert "sfoauth: Salesforce is unavailable" in err
    assert "Nothing was changed locally." in err
    assert stored(store) == before


def test_login_when_salesforce_is_unreachable_stores_nothing(
    emu, store, monkeypatch, capsys, no_back_off
):
    monkeypatch.setenv("SFOAUTH_CLIENT_SECRET", emu.apps["cc"].client_secret)
    dead = f"http://127.0.0.1:{free_port()}"
    code = run("login", "client-credentials", *common(dead, store, CC_APP_CLIENT_ID))
    assert code == 1
    err = capsys.readouterr().err
    assert "sfoauth: Salesforce is unavailable: " in err
    assert "Nothing was changed locally." in err
    assert "Traceback" not in err
    assert not store.exists()


def test_advise_interactive_development_script_on_an_eca():
    # user present: no; device: none; secret: yes; private key: yes; My Domain: yes;
    # development only: yes; External Client App: yes.
    input_fn, print_fn, asked, printed = scripted(
        "no", "none", "yes", "yes", "", "yes", "yes"
    )
    assert run_interactive_advise(input_fn, print_fn) == 0
    text = "\n".join(printed)
    assert "Recommended: JWT Bearer flow [jwt_bearer]" in text
    assert "the closest flow they support" in " ".join(text.split())
    assert "--development-only --external-client-app" in printed[-1]
    assert "External Client App" in asked[-1]
