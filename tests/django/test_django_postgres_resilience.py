"""The Django store's row locks on PostgreSQL under real processes and threads
(SECURITY.md items 1 and 23).

* A worker process takes a connection's row lock (``DjangoTokenStore.lock``, the lock
  the token manager refreshes under) and is killed with SIGKILL while holding it: the
  waiting worker gets the lock as soon as PostgreSQL sees the dead connection and makes
  exactly one refresh; the stored token is the new one and decrypts.
* Two browser tabs send the callback of one login at the same moment (threads, each
  with its own database connection, everything routed to PostgreSQL): exactly one code
  exchange, one connection stored, the other tab gets the 400 page. One variant makes
  PostgreSQL itself force the bad interleaving (both callbacks have read the pending
  login before either consumes it).

A cancelled holder on PostgreSQL is covered by the lifecycle matrix
(``test_django_lifecycle_matrix.py``, ``cancelled_holder_...``).
"""

from __future__ import annotations

import copy
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connections, transaction
from django.test import Client, override_settings
from support.django_flow import assert_no_plaintext, authorize

from sfoauth_core import SalesforceOAuth
from sfoauth_core.exceptions import StorageError
from sfoauth_core.manager import TokenManager
from sfoauth_core.testing import Fault, SalesforceEmulator
from sfoauth_core.tokens import Token
from sfoauth_django.models import PendingAuthorization, get_token_model
from sfoauth_django.storage import DjangoTokenStore

pytestmark = pytest.mark.postgres

ALIAS = "postgres"
KEY = "00DXX0000001abcEAA:005XX000001xyzQAA"
BOUND = 3.0  # seconds the survivor may wait once the holder is dead

HOLDER_SCRIPT = """
import sys, time
import django
django.setup()
from sfoauth_django.storage import DjangoTokenStore

with DjangoTokenStore(using="postgres").lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def _lock_waiters() -> int:
    """Backends of the test database waiting for a lock (row locks included)."""
    with connections[ALIAS].cursor() as cursor:
        # Inside a transaction the statistics are a snapshot: take a fresh one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        (count,) = cursor.fetchone()
    return int(count)


def _wait_for_lock_waiters(count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _lock_waiters() < count:
        assert time.monotonic() < deadline, f"{count} lock waiter(s) never appeared"
        time.sleep(0.02)


def _child_env() -> dict[str, str]:
    db = settings.DATABASES[ALIAS]  # NAME is the test database by now
    here = os.path.dirname(os.path.abspath(__file__))
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([here, os.path.dirname(here), os.getcwd()]),
        "DJANGO_SETTINGS_MODULE": "settings",
        "SFOAUTH_TEST_POSTGRES_DSN": (
            f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        ),
    }


@contextmanager
def _holding_process(tmp_path: Any) -> Iterator[subprocess.Popen[str]]:
    """A worker process that holds KEY's row lock until it is killed."""
    script = tmp_path / "holder.py"
    script.write_text(HOLDER_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), KEY],
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else ""  # type: ignore[union-attr]
        if line.strip() != "locked":
            process.kill()
            _, err = process.communicate(timeout=10)
            pytest.fail(f"the holder process did not take the lock: {err[-2000:]}")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def _expired_connection(
    emu: SalesforceEmulator,
) -> tuple[Token, SalesforceOAuth, TokenManager]:
    """A stored connection whose access token expired (rotation on), and a worker's
    manager on PostgreSQL. The row exists before any holder locks it (an earlier login
    saved it). The worker's wait is bounded, so that a broken lock fails the test
    instead of hanging it."""
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    first = Token.from_response(emu.issue_tokens("web"))
    emu.expire_access_tokens()
    DjangoTokenStore(using=ALIAS).save(KEY, first.with_expiry(time.time() - 30))
    oauth = SalesforceOAuth(
        emu.connected_app("web"), http_client=httpx.Client(transport=emu.transport())
    )
    return (
        first,
        oauth,
        TokenManager(oauth, DjangoTokenStore(using=ALIAS, lock_wait=10)),
    )


def test_killed_lock_holder_frees_the_row_for_exactly_one_refresh(
    pg, salesforce_emulator, tmp_path
):
    emu: SalesforceEmulator = salesforce_emulator
    first, oauth, manager = _expired_connection(emu)
    outcome: dict[str, Any] = {}

    def survivor() -> None:
        try:
            outcome["token"] = manager.valid_token(KEY)
        except BaseException as exc:  # reported by the assertions below
            outcome["error"] = exc
        finally:
            outcome["done"] = time.monotonic()
            connections.close_all()

    thread = threading.Thread(target=survivor)
    try:
        with _holding_process(tmp_path) as holder:
            thread.start()
            _wait_for_lock_waiters(1)  # the survivor is queued behind the holder
            time.sleep(0.3)
            assert thread.is_alive() and emu.calls("refresh_token") == 0
            killed = time.monotonic()
            os.kill(holder.pid, signal.SIGKILL)
            thread.join(BOUND + 10)
            assert holder.wait(5) == -signal.SIGKILL
    finally:
        thread.join(30)
        oauth.close()
    assert "error" not in outcome, outcome.get("error")
    waited = outcome["done"] - killed
    print(f"survivor done {waited:.3f} s after the kill")
    assert waited < BOUND, f"the survivor waited {waited:.2f} s after the kill"

    renewed: Token = outcome["token"]
    assert emu.calls("refresh_token") == 1
    assert emu.reuse_detected == 0
    with emu.state.lock:
        last_refresh_token = list(emu.state.refresh_tokens)[-1]
    record = DjangoTokenStore(using=ALIAS).get(KEY)  # decrypts with the app's keys
    assert record is not None and record.version == 3  # marker, token
    assert record.token.access_token == renewed.access_token != first.access_token
    assert record.token.refresh_token == last_refresh_token != first.refresh_token
    assert_no_plaintext(emu, ALIAS)


# Item 1: racing callbacks ----------------------------------------------------------
class EverythingOnPostgres:
    """Router: users, sessions, pending logins and connections all on PostgreSQL."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return ALIAS

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return ALIAS

    def allow_relation(self, *objs: Any, **hints: Any) -> bool:
        return True


@pytest.fixture
def on_postgres(pg: str, emu: SalesforceEmulator) -> Iterator[SalesforceEmulator]:
    with override_settings(DATABASE_ROUTERS=[EverythingOnPostgres()]):
        yield emu
        connections.close_all()
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session

    for model in (get_user_model(), Session, PendingAuthorization):
        model.objects.using(ALIAS).all().delete()


def _race(tabs: list[Client], query: str) -> list[tuple[Any, float, float]]:
    """Both tabs send the callback at the same moment, each on its own thread (and
    its own database connection); (response, started, ended) per tab."""
    barrier = threading.Barrier(len(tabs))
    results: list[Any] = [None] * len(tabs)

    def send(i: int) -> None:
        try:
            barrier.wait(10)
            started = time.monotonic()
            response = tabs[i].get("/salesforce/callback/?" + query)
            results[i] = (response, started, time.monotonic())
        except BaseException as exc:  # reported by the assertion below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(tabs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(isinstance(r, tuple) for r in results), results
    return results


def _second_tab(client: Client) -> Client:
    tab = Client()
    tab.cookies = copy.deepcopy(client.cookies)  # the same browser session
    return tab


def _assert_one_exchange(emu: SalesforceEmulator, responses: list[Any]) -> None:
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [302, 400], [r.content[:300] for r in responses]
    loser = next(r for r in responses if r.status_code == 400)
    assert b"invalid, expired or was already used" in loser.content
    assert emu.calls("authorization_code") == 1
    assert get_token_model().objects.using(ALIAS).count() == 1
    assert not PendingAuthorization.objects.using(ALIAS).exists()
    assert_no_plaintext(emu, ALIAS)


def test_two_racing_callbacks_on_postgres_make_exactly_one_exchange(
    on_postgres, browser
):
    emu = on_postgres
    client = Client()
    query = authorize(browser, client.post("/salesforce/login/", {"next": "/"}))
    assert PendingAuthorization.objects.using(ALIAS).count() == 1
    # The winner's exchange takes 0.5 s: both requests are in flight together.
    emu.inject_fault(
        Fault(kind="latency", seconds=0.5, count=2, grant_type="authorization_code")
    )
    results = _race([client, _second_tab(client)], query)
    assert max(s for _, s, _ in results) < min(e for _, _, e in results)
    _assert_one_exchange(emu, [r for r, _, _ in results])


def test_callbacks_that_both_read_the_pending_login_make_one_exchange(
    on_postgres, browser
):
    """PostgreSQL forces the interleaving: the test holds the pending row's lock, so
    both callbacks have read the row and wait to consume it; then it lets go."""
    emu = on_postgres
    client = Client()
    query = authorize(browser, client.post("/salesforce/login/", {"next": "/"}))
    tabs = [client, _second_tab(client)]
    outcome: list[Any] = []
    racer = threading.Thread(target=lambda: outcome.append(_race(tabs, query)))
    try:
        with transaction.atomic(using=ALIAS):
            gate = PendingAuthorization.objects.using(ALIAS).select_for_update()
            assert len(list(gate)) == 1
            racer.start()
            _wait_for_lock_waiters(2)  # both callbacks have read it, now wait
            assert emu.calls("authorization_code") == 0
    finally:
        if racer.is_alive():
            racer.join(30)
    assert outcome, "the callbacks did not finish"
    _assert_one_exchange(emu, [r for r, _, _ in outcome[0]])


# Item 23: a lease, a bounded wait, and a first mint locked by name ---------------------
FROZEN_HOLDER_SCRIPT = """
import sys, time
import django
django.setup()
from sfoauth_core.exceptions import StorageError
from sfoauth_django.storage import DjangoTokenStore

store = DjangoTokenStore(using="postgres", lock_timeout=float(sys.argv[2]))
try:
    with store.lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(float(sys.argv[3]))  # frozen (SIGSTOP) for part of it
        record = store.get(sys.argv[1])
        store.save(sys.argv[1], record.token, expected_version=record.version)
    print("wrote", flush=True)
except StorageError as exc:
    print("refused", type(exc).__name__, flush=True)
"""


def test_frozen_lock_holder_loses_its_lease_and_cannot_write(
    pg, salesforce_emulator, tmp_path
):
    lease = 1.0
    emu: SalesforceEmulator = salesforce_emulator
    first, oauth, manager = _expired_connection(emu)
    script = tmp_path / "frozen_holder.py"
    script.write_text(FROZEN_HOLDER_SCRIPT)
    holder = subprocess.Popen(
        [sys.executable, str(script), KEY, str(lease), "3"],
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        ready, _, _ = select.select([holder.stdout], [], [], 30)
        assert ready and holder.stdout.readline().strip() == "locked", holder.stderr
        locked = time.monotonic()
        os.kill(holder.pid, signal.SIGSTOP)  # a worker that hangs with the lock
        renewed = manager.valid_token(KEY)  # waits for the lease to run out
        waited = time.monotonic() - locked
        os.kill(holder.pid, signal.SIGCONT)  # it wakes up and tries to write
        said, err = holder.communicate(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate(timeout=10)
        oauth.close()
        connections.close_all()
    print(f"survivor done {waited:.3f} s after the holder locked (lease {lease} s)")
    assert lease * 0.9 < waited < lease + BOUND, waited
    assert said.strip() == "refused StorageError", (said, err[-2000:])
    assert emu.calls("refresh_token") == 1 and emu.reuse_detected == 0
    record = DjangoTokenStore(using=ALIAS).get(KEY)
    assert record is not None and record.version == 3  # marker, token
    assert record.token.access_token == renewed.access_token != first.access_token


def test_a_waiter_gives_up_after_lock_wait(pg, tmp_path):
    store = DjangoTokenStore(using=ALIAS)
    store.save(KEY, Token.from_response(SalesforceEmulator().issue_tokens("web")))
    impatient = DjangoTokenStore(using=ALIAS, lock_wait=0.5)
    with _holding_process(tmp_path):
        started = time.monotonic()
        with pytest.raises(StorageError, match="could not take the token lock"):
            with impatient.lock(KEY):
                pytest.fail("the lock was held by another process")
        waited = time.monotonic() - started
    connections.close_all()
    assert 0.4 < waited < 3, waited


def test_first_mint_without_a_row_is_single_flight_across_workers(
    pg, salesforce_emulator
):
    # Ten workers (threads with their own manager, database connection and in-process
    # locks) ask for a server-to-server token never minted: no row to lock yet, so
    # the key is locked by name.
    emu: SalesforceEmulator = salesforce_emulator
    key = "connection:integration"
    clients = [httpx.Client(transport=emu.transport()) for _ in range(10)]
    managers = [
        TokenManager(
            SalesforceOAuth(emu.connected_app("cc"), http_client=c),
            DjangoTokenStore(using=ALIAS),
        )
        for c in clients
    ]
    emu.inject_fault(  # the first mint is slow: the others arrive while it runs
        Fault(kind="latency", seconds=0.5, count=1, grant_type="client_credentials")
    )
    barrier = threading.Barrier(len(managers))
    tokens: list[Any] = []

    def worker(manager: TokenManager) -> None:
        try:
            barrier.wait(10)
            tokens.append(manager.obtain(key, grant="client_credentials"))
        except BaseException as exc:  # reported by the assertions below
            tokens.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for c in clients:
        c.close()
    assert all(isinstance(t, Token) for t in tokens), tokens
    assert emu.calls("client_credentials") == 1
    assert len({t.access_token for t in tokens}) == 1
    assert get_token_model().objects.using(ALIAS).filter(key=key).count() == 1


# Issue 13 / 12.1: the holder's session is terminated while its refresh is at Salesforce
def test_terminated_session_of_the_refresher_replays_nothing_and_lands_the_token(
    pg, postgres_dsn, salesforce_emulator
):
    """``pg_terminate_backend`` of the refreshing worker's database session while its
    refresh request is at Salesforce: its marker (committed before the request left)
    keeps a second worker from presenting the same refresh token, the first worker's
    save reconnects and lands the rotated token, nothing is revoked."""
    emu: SalesforceEmulator = salesforce_emulator
    first, oauth, manager = _expired_connection(emu)
    at_salesforce = threading.Event()
    inner = emu.transport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            at_salesforce.set()
        return inner.handle_request(request)

    slow = SalesforceOAuth(
        emu.connected_app("web"),
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    holder_manager = TokenManager(slow, DjangoTokenStore(using=ALIAS, lock_wait=10))
    emu.inject_fault(
        Fault(kind="latency", seconds=1.0, count=1, grant_type="refresh_token")
    )
    outcome: dict[str, Any] = {}

    def holder() -> None:
        try:
            with connections[ALIAS].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                outcome["pid"] = cursor.fetchone()[0]
            outcome["holder"] = holder_manager.valid_token(KEY)
        except BaseException as exc:  # reported by the assertions below
            outcome["holder_error"] = exc
        finally:
            connections.close_all()

    def other() -> None:
        try:
            outcome["other"] = manager.valid_token(KEY)
        except BaseException as exc:
            outcome["other_error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert at_salesforce.wait(10)
        with _admin(postgres_dsn) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [outcome["pid"]])
        second = threading.Thread(target=other)
        second.start()
        second.join(30)
    finally:
        thread.join(30)
        oauth.close()
        slow.close()
    assert "holder_error" not in outcome, outcome.get("holder_error")
    renewed: Token = outcome["holder"]
    # The other worker got the holder's token (or, had it not been saved yet, a 503);
    # it never presented the refresh token itself.
    assert outcome.get("other", renewed) == renewed, outcome.get("other_error")
    assert emu.calls("refresh_token") == 1
    assert emu.reuse_detected == 0
    record = DjangoTokenStore(using=ALIAS).get(KEY)
    assert record is not None and not record.needs_reauth
    assert record.token.access_token == renewed.access_token != first.access_token
    assert record.refresh_digest is None


@contextmanager
def _admin(dsn: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn
