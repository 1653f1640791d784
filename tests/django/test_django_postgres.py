"""Single-flight refresh across workers on PostgreSQL row locks (SECURITY.md 21-23, 25).

Each worker has its own TokenManager (its own in-process cache and locks, like a separate
process) and its own database connection; they share one connection row. The emulator
runs with refresh-token rotation and reuse detection: a second refresh with the same
refresh token would revoke the grant. The last test uses real processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import anyio
import httpx
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import connections

from sfoauth_core import AsyncSalesforceOAuth, SalesforceOAuth
from sfoauth_core.exceptions import ReauthorizationRequired
from sfoauth_core.manager import AsyncTokenManager, TokenManager
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_core.tokens import Token
from sfoauth_django.storage import AsyncDjangoTokenStore, DjangoTokenStore

pytestmark = pytest.mark.postgres

ALIAS = "postgres"
WORKERS = 8


@pytest.fixture
def rotating(salesforce_emulator: SalesforceEmulator) -> SalesforceEmulator:
    emu = salesforce_emulator
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    return emu


def _expired_token(emu: SalesforceEmulator) -> Token:
    token = Token.from_response(emu.issue_tokens("web"))
    emu.expire_access_tokens()
    return token.with_expiry(time.time() - 30)


def _sync_manager(emu: SalesforceEmulator) -> TokenManager:
    app = emu.connected_app("web")
    oauth = SalesforceOAuth(app, http_client=httpx.Client(transport=emu.transport()))
    return TokenManager(oauth, DjangoTokenStore(using=ALIAS))


def _run_workers(target: Any, count: int = WORKERS) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as exc:  # reported by the assertion below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_expired_token_many_workers_one_refresh(pg, rotating):
    key = "00DXX0000001abcEAA:005XX000001xyzQAA"
    DjangoTokenStore(using=ALIAS).save(key, _expired_token(rotating))
    managers = [_sync_manager(rotating) for _ in range(WORKERS)]
    results = _run_workers(lambda i: managers[i].valid_token(key))
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    assert rotating.calls("refresh_token") == 1
    assert rotating.reuse_detected == 0
    assert len({r.access_token for r in results}) == 1
    record = DjangoTokenStore(using=ALIAS).get(key)
    assert record.version == 3 and record.token.access_token == results[0].access_token


def test_401_on_many_workers_one_refresh(pg, rotating):
    key = "00DXX0000001abcEAA:005XX000001xyzQAA"
    token = Token.from_response(rotating.issue_tokens("web"))
    DjangoTokenStore(using=ALIAS).save(key, token)
    managers = [_sync_manager(rotating) for _ in range(WORKERS)]
    for manager in managers:
        manager.valid_token(key)  # every worker has the token cached
    rotating.expire_access_tokens()

    def call(i: int) -> int:
        with managers[i].client(key, transport=rotating.transport()) as client:
            return client.get("/services/data/v62.0/limits").status_code

    results = _run_workers(call)
    assert results == [200] * WORKERS
    assert rotating.calls("refresh_token") == 1
    assert rotating.reuse_detected == 0


def test_locks_are_per_connection(pg, rotating):
    store = DjangoTokenStore(using=ALIAS)
    keys = []
    for i in range(4):
        user = rotating.add_user(f"u{i}@acme.com", "pw", user_id=f"005XX00000{i}0000")
        token = Token.from_response(rotating.issue_tokens("web", user.username))
        key = f"{token.org_id}:{token.user_id}"
        store.save(key, token.with_expiry(time.time() - 30))
        keys.append(key)
    rotating.expire_access_tokens()
    managers = [_sync_manager(rotating) for _ in keys]
    results = _run_workers(lambda i: managers[i].valid_token(keys[i]), count=len(keys))
    assert all(isinstance(r, Token) for r in results), results
    assert rotating.calls("refresh_token") == len(keys)


def test_invalid_grant_flags_the_connection_once(pg, rotating):
    key = "00DXX0000001abcEAA:005XX000001xyzQAA"
    token = _expired_token(rotating)
    DjangoTokenStore(using=ALIAS).save(key, token)
    SalesforceOAuth(
        rotating.connected_app("web"),
        http_client=httpx.Client(transport=rotating.transport()),
    ).revoke(token.refresh_token)
    managers = [_sync_manager(rotating) for _ in range(4)]
    results = _run_workers(lambda i: managers[i].valid_token(key), count=4)
    assert all(isinstance(r, ReauthorizationRequired) for r in results), results
    assert rotating.calls("refresh_token") == 1
    record = DjangoTokenStore(using=ALIAS).get(key)
    assert record.needs_reauth and "invalid_grant" in record.reason
    assert record.token.refresh_token == token.refresh_token  # the row is kept


def test_async_managers_one_refresh(pg, rotating):
    key = "00DXX0000001abcEAA:005XX000001xyzQAA"
    DjangoTokenStore(using=ALIAS).save(key, _expired_token(rotating))
    app = rotating.connected_app("web")
    managers = [
        AsyncTokenManager(
            AsyncSalesforceOAuth(
                app, http_client=httpx.AsyncClient(transport=rotating.async_transport())
            ),
            AsyncDjangoTokenStore(DjangoTokenStore(using=ALIAS)),
        )
        for _ in range(WORKERS)
    ]
    tokens: list[Token] = []

    async def one(manager: AsyncTokenManager) -> None:
        tokens.append(await manager.valid_token(key))

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for manager in managers:
                tg.start_soon(one, manager)

    anyio.run(main)
    async_to_sync(sync_to_async(connections.close_all))()
    assert len(tokens) == WORKERS and len({t.access_token for t in tokens}) == 1
    assert rotating.calls("refresh_token") == 1
    assert rotating.reuse_detected == 0


WORKER_SCRIPT = """
import os, sys, time
import django
django.setup()
from django.conf import settings
import httpx
from sfoauth_core import ConnectedApp, SalesforceOAuth
from sfoauth_core.manager import TokenManager
from sfoauth_django.storage import DjangoTokenStore

base = os.environ["EMULATOR_URL"]
app = ConnectedApp(client_id=sys.argv[1], client_secret=sys.argv[2],
                   redirect_uri="https://app.example.com/callback", login_url=base,
                   allow_loopback=True)
manager = TokenManager(SalesforceOAuth(app), DjangoTokenStore(using="postgres"))
start = float(sys.argv[4])
while time.time() < start:
    time.sleep(0.005)
print(manager.valid_token(sys.argv[3]).access_token[-12:])
"""


@pytest.mark.loopback
def test_worker_processes_one_refresh(pg, salesforce_emulator_server, tmp_path):
    emu = salesforce_emulator_server
    emu.apps["web"].is_refresh_token_rotation_enabled = True
    app = emu.connected_app("web")
    oauth = SalesforceOAuth(app)
    key = "00DXX0000001abcEAA:005XX000001xyzQAA"
    token = Token.from_response(emu.issue_tokens("web", issuer=emu.base_url or ""))
    DjangoTokenStore(using=ALIAS).save(key, token.with_expiry(time.time() - 30))
    emu.expire_access_tokens()
    oauth.close()
    here = os.path.dirname(os.path.abspath(__file__))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([here, os.path.dirname(here), os.getcwd()]),
        "DJANGO_SETTINGS_MODULE": "settings",
        "EMULATOR_URL": emu.base_url or "",
    }
    env["SFOAUTH_TEST_POSTGRES_DSN"] = (
        f"postgresql://{settings.DATABASES[ALIAS]['USER']}@"
        f"{settings.DATABASES[ALIAS]['HOST']}:{settings.DATABASES[ALIAS]['PORT']}/"
        f"{settings.DATABASES[ALIAS]['NAME']}"
    )
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    start = time.time() + 3.0
    secret = app.client_secret.reveal() if app.client_secret else ""
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), app.client_id, secret, key, str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1
    assert emu.calls("refresh_token") == 1
    assert emu.reuse_detected == 0


def _terminate_my_backend() -> None:
    """Kill this thread's database session server-side, as a restart or
    ``pg_terminate_backend`` by an operator would."""
    import psycopg

    pid = connections[ALIAS].cursor().connection.info.backend_pid
    db = settings.DATABASES[ALIAS]
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_get_after_the_server_dropped_the_connection_reconnects(pg, rotating):
    # Found by the soak (benchmarks/soak.py): after pg_terminate_backend the next read
    # raised django.db.utils.OperationalError into the application.
    key = "00DXX0000001abcEAA:005XX000001xyzQAA"
    store = DjangoTokenStore(using=ALIAS)
    store.save(key, _expired_token(rotating))
    _terminate_my_backend()
    record = store.get(key)
    assert record is not None and record.version == 1


def test_get_inside_a_broken_transaction_is_a_storage_error(pg, rotating):
    from django.db import transaction

    from sfoauth_core.exceptions import StorageError

    key = "00DXX0000001abcEAA:005XX000001xyzQAA"
    store = DjangoTokenStore(using=ALIAS)
    store.save(key, _expired_token(rotating))
    with pytest.raises(StorageError) as caught:
        with transaction.atomic(using=ALIAS):
            _terminate_my_backend()
            store.get(key)
    assert "OperationalError" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    connections[ALIAS].close()
