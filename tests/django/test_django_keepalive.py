"""``manage.py sfoauth_keepalive`` and the idle columns of ``sfoauth_status``
(reference 15.3: refresh tokens expire when unused for the app's idle limit)."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone
from support import django_testkit

from sfoauth_core import SalesforceOAuth, TokenManager
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_core.tokens import Token
from sfoauth_django import _runtime
from sfoauth_django.conf import sfoauth_settings
from sfoauth_django.models import get_token_model, user_key
from sfoauth_django.storage import DjangoTokenStore

DAY = 86400
LIMIT = 30 * DAY


@pytest.fixture
def idle_limit(settings, emu: SalesforceEmulator) -> float:
    """The app expires refresh tokens unused for 30 days, and the project says so."""
    emu.apps["web"].refresh_token_policy = "specific_inactivity:30:DAYS"
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    settings.SFOAUTH = {**settings.SFOAUTH, "REFRESH_TOKEN_IDLE_LIMIT": LIMIT}
    sfoauth_settings.reload()
    return LIMIT


def connect(emu: SalesforceEmulator, n: int) -> str:
    """A stored user connection (a Salesforce user of its own)."""
    username = f"user{n}@acme.com"
    if emu.state.user(username) is None:
        emu.add_user(username, "pw", user_id=f"005XX00000{n:05d}AAA"[:15])
    token = Token.from_response(emu.issue_tokens(user=username))
    assert token.org_id and token.user_id
    key = user_key(token.org_id, token.user_id)
    _runtime.manager().save(key, token, revoke_superseded=False)
    return key


def age(key: str, days: float) -> None:
    """Pretend the connection's refresh token was last used ``days`` ago."""
    stamp = timezone.now() - timedelta(days=days)
    get_token_model().objects.filter(key=key).update(refreshed_at=stamp)


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("sfoauth_keepalive", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_idle_connections_are_kept_alive_and_survive(db, emu, idle_limit):
    kept, fresh = connect(emu, 1), connect(emu, 2)
    age(kept, 11)  # past a third of the limit: the default --idle-for
    emu.advance_time(11 * DAY)

    out, _ = run("--concurrency", "1")

    assert "Refreshing connections unused for 10d or more." in out
    assert f"[1/1] {kept}: kept alive" in out
    assert "Keep-alive: 1 idle connection(s): kept alive 1" in out
    emu.advance_time(25 * DAY)  # 36 days after login, 25 after the keep-alive
    _runtime.reset()
    _runtime.manager().refresh(kept)
    row = get_token_model().objects.get(key=fresh)
    assert row.status == "active"
    with pytest.raises(Exception, match="expired access/refresh token"):
        _runtime.manager().refresh(fresh)  # idle 36 days: dead


def test_a_dead_grant_is_reported_and_a_failure_exits_non_zero(db, emu, idle_limit):
    dead = connect(emu, 1)
    age(dead, 40)
    emu.advance_time(40 * DAY)

    out, _ = run("--idle-for", "10d", "--concurrency", "1")

    assert f"{dead}: needs a new login (" in out
    assert "expired access/refresh token" in out
    assert get_token_model().objects.get(key=dead).status == "needs_reauth"

    down = connect(emu, 2)
    age(down, 12)
    django_testkit.CURRENT["down"] = True
    with pytest.raises(
        CommandError, match="1 connection\\(s\\) could not be refreshed"
    ):
        run("--idle-for", "10d")
    django_testkit.CURRENT["down"] = False
    assert get_token_model().objects.get(key=down).status == "active"


def test_json_summary_and_limit(db, emu, idle_limit):
    keys = [connect(emu, n) for n in range(1, 4)]
    for days, key in zip((15, 14, 13), keys, strict=True):
        age(key, days)

    out, _ = run("--idle-for", "12d", "--limit", "2", "--json", "--concurrency", "1")

    summary = json.loads(out)
    assert summary["kept_alive"] == 2 and summary["failed"] == 0
    assert {r["key"] for r in summary["results"]} == set(keys[:2])


def test_idle_for_is_required_without_an_idle_limit(db, emu):
    with pytest.raises(CommandError, match="pass --idle-for"):
        run()
    with pytest.raises(CommandError, match="expected a duration"):
        run("--idle-for", "soon")


def test_status_shows_idle_age_and_risk(db, emu, idle_limit):
    ok, risky, expired = connect(emu, 1), connect(emu, 2), connect(emu, 3)
    age(ok, 2)
    age(risky, 16)
    age(expired, 31)
    out, err = io.StringIO(), io.StringIO()
    call_command("sfoauth_status", stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    header = lines[0].split("\t")
    idle, risk = header.index("IDLE"), header.index("IDLE RISK")
    rows = {line.split("\t")[3]: line.split("\t") for line in lines[1:]}
    by_key = {
        key: rows[get_token_model().objects.get(key=key).salesforce_user_id]
        for key in (ok, risky, expired)
    }
    assert by_key[ok][idle].startswith("2d") and by_key[ok][risk] == "ok"
    assert by_key[risky][idle].startswith("16d") and by_key[risky][risk] == "AT RISK"
    assert by_key[expired][risk] == "EXPIRED"
    assert "2 connection(s) unused for 15d or more" in err.getvalue()
    assert "sfoauth_keepalive" in err.getvalue()

    out = io.StringIO()
    call_command("sfoauth_status", "--json", stdout=out)
    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(e["idle_risk"] for e in entries) == ["at_risk", "expired", "ok"]
    assert all(e["idle_seconds"] >= 2 * DAY for e in entries)


def test_status_without_an_idle_limit_shows_no_risk(db, emu):
    connect(emu, 1)
    out, err = io.StringIO(), io.StringIO()
    call_command("sfoauth_status", stdout=out, stderr=err)
    line = out.getvalue().splitlines()[1].split("\t")
    assert line[6] == "-"  # IDLE RISK
    assert err.getvalue() == ""


@pytest.mark.postgres
def test_two_hosts_on_postgres_refresh_each_connection_once(pg, emu):
    """Two hosts' keep-alives at once (each its own manager and threads) over one
    PostgreSQL table: one refresh per connection, no reuse, every thread's database
    connection closed (``DjangoTokenStore.release_thread``)."""
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    store = DjangoTokenStore(using=pg)
    keys = []
    for n in range(1, 13):
        username = f"pg{n}@acme.com"
        emu.add_user(username, "pw", user_id=f"005XX00000{n:05d}AAA"[:15])
        token = Token.from_response(emu.issue_tokens(user=username))
        assert token.org_id and token.user_id
        keys.append(user_key(token.org_id, token.user_id))
        store.save(keys[-1], token)
    get_token_model().objects.using(pg).update(
        refreshed_at=timezone.now() - timedelta(days=11)
    )

    def host() -> TokenManager:
        oauth = SalesforceOAuth(
            emu.connected_app("web"),
            http_client=httpx.Client(transport=emu.transport()),
        )
        return TokenManager(oauth, DjangoTokenStore(using=pg))

    hosts = [host(), host()]
    summaries: list[Any] = []
    barrier = threading.Barrier(2)

    def run(manager: TokenManager) -> None:
        try:
            barrier.wait()
            summaries.append(manager.keep_alive(idle_for=10 * DAY, concurrency=3))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(h,)) for h in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert len(summaries) == 2, summaries
    assert sum(s.kept_alive for s in summaries) == len(keys)
    assert all(s.failed == 0 and s.needs_reauth == 0 for s in summaries)
    assert emu.calls("refresh_token") == len(keys)
    assert emu.reuse_detected == 0
    assert _other_sessions(pg) == 0


def _other_sessions(alias: str) -> int:
    """Other sessions on the test database, once closed ones are gone (a backend ends
    a moment after its client closes: bounded wait, no timing asserted)."""
    deadline = time.monotonic() + 10
    while True:
        with connections[alias].cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            count = int(cursor.fetchone()[0])
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def test_the_async_manager_keeps_django_connections_alive(
    transactional_db, emu, idle_limit
):
    kept = connect(emu, 1)
    age(kept, 11)

    async def run() -> Any:
        return await _runtime.async_manager().keep_alive(idle_for=10 * DAY)

    summary = async_to_sync(run)()

    assert [(r.key, r.outcome) for r in summary.results] == [(kept, "kept_alive")]
    assert emu.reuse_detected == 0
