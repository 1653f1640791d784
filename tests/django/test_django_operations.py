"""What operators see (issue 10 item 15): runserver's log without the callback's secrets,
the admin's username column and its delete that revokes, ``sfoauth_status``'s header."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from support import django_testkit
from support.django_flow import connect

from sfoauth_core.testing import DEFAULT_USERNAME
from sfoauth_django.models import get_token_model
from sfoauth_django.redaction import RedactOAuthQuery

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CODE = "aPrxSECRETCODE0123456789"
STATE = "STATEsecret-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_runserver_log_never_shows_code_or_state(tmp_path):
    """A real ``manage.py runserver``: its request line for the callback is redacted."""
    port = _free_port()
    log = tmp_path / "runserver.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([HERE, os.path.dirname(HERE), ROOT]),
        "DJANGO_SETTINGS_MODULE": "settings",
        "PYTHONUNBUFFERED": "1",
        "PYTHONWARNINGS": "ignore",
    }
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "runserver",
                f"127.0.0.1:{port}",
                "--noreload",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    response = httpx.get(
                        f"http://127.0.0.1:{port}/salesforce/callback/",
                        params={"code": CODE, "state": STATE},
                        timeout=5,
                    )
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.2)
            assert response.status_code == 400  # no login in this session
            time.sleep(0.5)  # let the server write its request line
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = log.read_text()
    assert "/salesforce/callback/?code=[redacted]&state=[redacted]" in text, text[
        -2000:
    ]
    assert CODE not in text and STATE not in text


def test_the_filter_is_installed_on_django_server(caplog):
    logger = logging.getLogger("django.server")
    assert any(isinstance(f, RedactOAuthQuery) for f in logger.filters)
    with caplog.at_level(logging.INFO, logger="django.server"):
        logger.info(
            '"%s" %s %s', f"GET /cb/?state={STATE}&code={CODE} HTTP/1.1", 302, 0
        )
    assert STATE not in caplog.text and CODE not in caplog.text
    assert "state=[redacted]&code=[redacted]" in caplog.text


# -- admin --------------------------------------------------------------------------------------
BASE = "/admin/sfoauth_django/salesforceconnection/"


@pytest.fixture
def admin_client(db) -> Client:
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def row(emu, browser, user_factory):
    client = Client()
    client.force_login(user_factory("alice"))
    assert connect(client, browser).status_code == 302
    return get_token_model().objects.get()


def _grant_is_live(emu, row) -> bool:
    with emu.state.lock:
        return any(r.status == "active" for r in emu.state.refresh_tokens.values())


def test_admin_rows_show_the_salesforce_username(admin_client, row):
    assert row.username == DEFAULT_USERNAME
    page = admin_client.get(BASE).content.decode()
    assert "Salesforce username" in page and DEFAULT_USERNAME in page


def test_admin_offers_no_delete_that_skips_salesforce(admin_client, row, emu):
    page = admin_client.get(BASE).content.decode()
    assert 'value="delete_selected"' not in page
    assert 'value="revoke_connections"' in page
    confirm = admin_client.get(f"{BASE}{row.pk}/delete/").content.decode()
    assert "revokes its grant at Salesforce first" in confirm
    assert _grant_is_live(emu, row)
    response = admin_client.post(f"{BASE}{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert get_token_model().objects.count() == 0
    assert not _grant_is_live(emu, row)  # revoked at Salesforce, not only deleted


def test_admin_delete_says_so_when_salesforce_cannot_be_told(admin_client, row, emu):
    django_testkit.CURRENT["down"] = True
    response = admin_client.post(
        f"{BASE}{row.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert get_token_model().objects.count() == 0
    page = response.content.decode()
    assert "did not confirm the revocation" in page
    assert "may still be live" in page


# -- sfoauth_status -----------------------------------------------------------------------------
def test_status_prints_a_header(db, row):
    out = io.StringIO()
    call_command("sfoauth_status", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split("\t") == [
        "OWNER",
        "SALESFORCE USERNAME",
        "ORG ID",
        "SALESFORCE USER ID",
        "STATUS",
        "IDLE",
        "IDLE RISK",
        "KEY ID",
        "REASON",
    ]
    assert lines[1].split("\t")[:3] == ["alice", DEFAULT_USERNAME, row.org_id]


def test_status_without_connections(db):
    out = io.StringIO()
    call_command("sfoauth_status", stdout=out)
    assert out.getvalue().strip() == "No Salesforce connections."
