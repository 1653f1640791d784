"""Soak with fault injection: the token lifecycle under faults, in real processes.

Eight worker processes share one store (Redis, SQLAlchemy on PostgreSQL, or Django on
PostgreSQL; one run each) and send API requests over 50 connections to the emulator,
served on a loopback port with refresh-token rotation and reuse detection on, while
access tokens expire every few seconds. Meanwhile the parent injects faults:

* token-endpoint 503s and timeouts (a hang longer than the client's timeout) on about
  5 % of refresh calls, and latency spikes;
* dropped rotation responses (Salesforce rotated the refresh token, the answer was lost);
* a worker killed with SIGKILL every few hundred requests, preferably while it is
  refreshing (it is replaced by a new process that carries on with its share);
* PostgreSQL backends terminated (``pg_terminate_backend``) for the PostgreSQL stores;
* the Redis server restarted (with its append-only file, as a production Redis keeps
  data across restarts) for the Redis store.

What it prints per store (and checks with ``--check``):

* requests served, and failed by type;
* refresh calls per successful refresh (retries after injected faults make it > 1);
* grants revoked by reuse detection: must be 0 apart from those explained by a dropped
  rotation answer (each must end as ``needs_reauth`` with the reason Salesforce gave)
  or by a worker killed between Salesforce's answer and the store write (its new refresh
  token existed only in that process: no client can keep what it never wrote);
* tokens lost: a rotated refresh token that a worker received, that the store never got,
  while the worker and the store were alive (must be 0);
* the time from each store outage's end to the next successful refresh.

Needs PostgreSQL at 127.0.0.1:5432 (database ``test``, trust auth) and the
``redis-server`` binary (it starts its own on a free port).

Run: .venv/bin/python benchmarks/soak.py [--requests 10000] [--store all]
CI runs a short version: tests/soak/test_soak.py.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import hashlib
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REST = "/services/data/v62.0/"
PG_ADMIN_DSN = os.environ.get(
    "SFOAUTH_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
SOAK_DB = "sfoauth_soak"
STORES = ("redis", "sqlalchemy", "django")
#: The client's timeout for token calls; an injected hang lasts longer.
CLIENT_TIMEOUT = 2.0
#: How long a request waits for another worker's refresh: longer than a refresh with
#: its bounded retries can take here (three timeouts plus backoff), so that a waiter
#: gives up only when the holder is really stuck.
LOCK_WAIT = 30.0
#: Bounded retries tuned to the short client timeout, so that a whole refresh takes at
#: most 3 x 2 s + 2 x 2 s = 10 s, and a lock lease (LEASE) that outlasts it: a SIGKILLed
#: holder of a Redis lock blocks its connection for at most the lease (a database row
#: lock dies with the holder's session at once). With the library's defaults (30 s
#: timeout, Retry-After up to 30 s) the lease must exceed 150 s.
RETRY = {"attempts": 3, "base_delay": 0.25, "max_delay": 2.0, "max_retry_after": 2.0}
LEASE = 15.0
#: Seconds around a store outage in which a failed token write counts as the outage's.
OUTAGE_MARGIN = 3.0


def _digest(value: str | None) -> str:
    return hashlib.sha256((value or "").encode()).hexdigest()[:16]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_dsn(database: str, driver: str = "postgresql") -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(PG_ADMIN_DSN)
    return urlunsplit((driver, parts.netloc, f"/{database}", "", ""))


# --------------------------------------------------------------------------- workers
@dataclass
class WorkerConfig:
    store: str
    base_url: str
    client_id: str
    client_secret: str
    cipher_key: str
    keys: list[str]
    redis_port: int
    prefix: str
    out_dir: str
    slot: int
    requests: int
    seed: int


class _Log:
    """Append-only lines in this worker's own file (safe under SIGKILL: no shared
    lock that a killed process could leave held)."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, *fields: object) -> None:
        line = " ".join(str(f) for f in fields)
        with self._lock:
            self._file.write(f"{line} {os.getpid()} {time.time():.4f}\n")


def _token_hooks(log: _Log, busy: Any, slot: int) -> tuple[Any, Any, Any]:
    """httpx event hooks that record refresh calls in flight and the refresh tokens
    received, and token events that record what was stored."""
    import json

    from sfoauth_core.events import TokenEvents

    def started(request: Any) -> None:
        if request.url.path.endswith("/services/oauth2/token"):
            busy[slot] = time.time()
            from urllib.parse import parse_qs

            sent = parse_qs(request.content.decode()).get("refresh_token")
            if sent:
                log.write("sent", _digest(sent[0]))

    def answered(response: Any, content: bytes) -> None:
        busy[slot] = 0.0
        if response.status_code != 200:
            return
        try:
            body = json.loads(content)
        except ValueError:
            return
        if isinstance(body, dict) and body.get("refresh_token"):
            log.write("received", _digest(body["refresh_token"]))

    def on_response(response: Any) -> None:
        if response.request.url.path.endswith("/services/oauth2/token"):
            answered(response, response.read())

    async def aon_request(request: Any) -> None:
        started(request)

    async def aon_response(response: Any) -> None:
        if response.request.url.path.endswith("/services/oauth2/token"):
            answered(response, await response.aread())

    events = TokenEvents()

    @events.on_token_refreshed
    def refreshed(event: Any) -> None:
        token = event.token
        log.write("stored", _digest(token.refresh_token if token else None))

    @events.on_needs_reauth
    def needs_reauth(event: Any) -> None:
        log.write("needs_reauth", "-")

    return (
        {"request": [started], "response": [on_response]},
        {"request": [aon_request], "response": [aon_response]},
        events,
    )


def _classify(exc: BaseException) -> str:
    return type(exc).__name__


_SAMPLED: set[str] = set()


def _sample(cfg: WorkerConfig, exc: BaseException) -> None:
    """Keep the first message of each failure type (for the report's diagnosis)."""
    name = _classify(exc)
    if name in _SAMPLED:
        return
    _SAMPLED.add(name)
    path = os.path.join(cfg.out_dir, f"sample-{name}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{name}: {str(exc)[:300]}")


def worker_main(cfg: WorkerConfig, busy: Any, progress: Any) -> None:
    """One worker process: ``cfg.requests`` requests in all for its slot (a replacement
    process continues where a killed one stopped)."""
    import warnings

    warnings.simplefilter("ignore")
    path = os.path.join(cfg.out_dir, f"slot{cfg.slot}.log")
    log = _Log(path)
    remaining = cfg.requests - progress[cfg.slot]
    rng = random.Random(cfg.seed + cfg.slot * 7919 + remaining)
    sync_hooks, async_hooks, events = _token_hooks(log, busy, cfg.slot)
    if cfg.store == "sqlalchemy":
        asyncio.run(
            _async_worker(cfg, log, remaining, rng, async_hooks, events, progress)
        )
    else:
        _sync_worker(cfg, log, remaining, rng, sync_hooks, events, progress)


def _app(cfg: WorkerConfig) -> Any:
    from sfoauth_core.config import ConnectedApp

    return ConnectedApp(
        client_id=cfg.client_id,
        client_secret=cfg.client_secret,
        login_url=cfg.base_url,
        allow_loopback=True,
        timeout=CLIENT_TIMEOUT,
    )


def _django_setup(cfg: WorkerConfig) -> None:
    from urllib.parse import urlsplit

    import django
    from django.conf import settings

    if settings.configured:
        return
    parts = urlsplit(_pg_dsn(SOAK_DB))
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "sfoauth_django",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": SOAK_DB,
                "USER": parts.username or "postgres",
                "HOST": parts.hostname or "127.0.0.1",
                "PORT": str(parts.port or 5432),
            }
        },
        SFOAUTH={
            "CLIENT_ID": cfg.client_id,
            "CLIENT_SECRET": cfg.client_secret,
            "LOGIN_URL": cfg.base_url,
            "ALLOW_LOOPBACK": True,
            "TOKEN_KEYS": [cfg.cipher_key],
        },
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()


def _sync_store(cfg: WorkerConfig) -> Any:
    from sfoauth_core.storage import TokenCipher

    cipher = TokenCipher([cfg.cipher_key])
    if cfg.store == "redis":
        import redis

        from sfoauth_core.storage import RedisTokenStore

        client = redis.Redis(
            host="127.0.0.1",
            port=cfg.redis_port,
            socket_timeout=CLIENT_TIMEOUT,
            socket_connect_timeout=CLIENT_TIMEOUT,
        )
        return RedisTokenStore(
            client, cipher, prefix=cfg.prefix, lock_timeout=LEASE, lock_wait=LOCK_WAIT
        )
    _django_setup(cfg)
    from sfoauth_django.storage import DjangoTokenStore

    return DjangoTokenStore(cipher=cipher, lock_timeout=LEASE, lock_wait=LOCK_WAIT)


def _answered(cfg: WorkerConfig, log: _Log, key: str, response: Any) -> None:
    """Record one API answer; a refusal with its connection and the digest of the
    access token of the last attempt, for the analysis."""
    if response.status_code == 200:
        log.write("ok")
        return
    bearer = response.request.headers.get("authorization", "").partition(" ")[2]
    log.write(f"fail http{response.status_code}", cfg.keys.index(key), _digest(bearer))


def _failed(cfg: WorkerConfig, log: _Log, exc: BaseException) -> None:
    """Record one request that raised, by exception type."""
    log.write("fail", _classify(exc))
    _sample(cfg, exc)


def _sync_worker(
    cfg: WorkerConfig,
    log: _Log,
    remaining: int,
    rng: random.Random,
    hooks: Any,
    events: Any,
    progress: Any,
) -> None:
    import httpx

    from sfoauth_core.flows import RetryPolicy
    from sfoauth_core.http.client import SalesforceOAuth
    from sfoauth_core.manager import TokenManager

    http = httpx.Client(timeout=CLIENT_TIMEOUT, event_hooks=hooks)
    manager = TokenManager(
        SalesforceOAuth(_app(cfg), http_client=http),
        _sync_store(cfg),
        events=events,
        retry=RetryPolicy(**RETRY),
    )
    clients: dict[str, httpx.Client] = {}
    for _ in range(remaining):
        key = rng.choice(cfg.keys)
        try:
            client = clients.get(key)
            if client is None:
                client = clients[key] = manager.client(key, timeout=CLIENT_TIMEOUT)
            _answered(cfg, log, key, client.get(REST))
        except Exception as exc:
            _failed(cfg, log, exc)
            if cfg.store == "django":
                from django.db import close_old_connections

                close_old_connections()
        progress[cfg.slot] += 1


async def _async_worker(
    cfg: WorkerConfig,
    log: _Log,
    remaining: int,
    rng: random.Random,
    hooks: Any,
    events: Any,
    progress: Any,
) -> None:
    import httpx
    from sqlalchemy.ext.asyncio import create_async_engine

    from sfoauth_core.flows import RetryPolicy
    from sfoauth_core.http.async_client import AsyncSalesforceOAuth
    from sfoauth_core.manager import AsyncTokenManager
    from sfoauth_core.storage import TokenCipher
    from sfoauth_fastapi.storage import SQLAlchemyTokenStore

    engine = create_async_engine(
        _pg_dsn(SOAK_DB, "postgresql+asyncpg"), pool_pre_ping=True
    )
    store = SQLAlchemyTokenStore(
        engine, TokenCipher([cfg.cipher_key]), lock_timeout=LEASE, lock_wait=LOCK_WAIT
    )
    http = httpx.AsyncClient(timeout=CLIENT_TIMEOUT, event_hooks=hooks)
    manager = AsyncTokenManager(
        AsyncSalesforceOAuth(_app(cfg), http_client=http),
        store,
        events=events,
        retry=RetryPolicy(**RETRY),
    )
    clients: dict[str, httpx.AsyncClient] = {}
    for _ in range(remaining):
        key = rng.choice(cfg.keys)
        try:
            client = clients.get(key)
            if client is None:
                client = clients[key] = await manager.client(
                    key, timeout=CLIENT_TIMEOUT
                )
            _answered(cfg, log, key, await client.get(REST))
        except Exception as exc:
            _failed(cfg, log, exc)
        progress[cfg.slot] += 1
    await engine.dispose()


# --------------------------------------------------------------------------- stores
class RedisServer:
    """A private redis-server with an append-only file, restartable mid-run."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.dir = tempfile.mkdtemp(prefix="sfoauth-soak-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.dir,
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: the AOF is flushed
            self.process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_admin(sql: str, database: str = "test") -> None:
    import psycopg

    with psycopg.connect(_pg_dsn(database), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _prepare_postgres(store: str, cipher_key: str) -> None:
    _pg_admin(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{SOAK_DB}' AND pid <> pg_backend_pid()"
    )
    _pg_admin(f"DROP DATABASE IF EXISTS {SOAK_DB}")
    _pg_admin(f"CREATE DATABASE {SOAK_DB}")
    if store == "sqlalchemy":
        from sqlalchemy.ext.asyncio import create_async_engine

        from sfoauth_fastapi.storage import create_tables

        async def make() -> None:
            engine = create_async_engine(_pg_dsn(SOAK_DB, "postgresql+asyncpg"))
            await create_tables(engine)
            await engine.dispose()

        asyncio.run(make())


def _terminate_backends() -> None:
    _pg_admin(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{SOAK_DB}' AND pid <> pg_backend_pid()"
    )


# --------------------------------------------------------------------------- parent
@dataclass
class SoakResult:
    store: str
    requests: int
    served: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    refresh_calls: int = 0
    refreshes_ok: int = 0
    faults_injected: Counter[str] = field(default_factory=Counter)
    drops: int = 0
    kills: int = 0
    kills_mid_refresh: int = 0
    killed_before_store: int = 0
    reuse_detected: int = 0
    revoked_grants: int = 0
    revoked_explained: int = 0
    needs_reauth: int = 0
    needs_reauth_reasons: Counter[str] = field(default_factory=Counter)
    tokens_lost: int = 0
    lost_in_outage: int = 0
    revoked_by_outage: int = 0
    revoked_by_inflight_kill: int = 0
    refused_on_revoked: int = 0  # 401s on a just-renewed token (expired or revoked)
    lifetime: float = 0.0
    recoveries: list[float] = field(default_factory=list)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def row(self) -> str:
        per = self.refresh_calls / self.refreshes_ok if self.refreshes_ok else 0.0
        failed = ", ".join(f"{k} {v}" for k, v in self.failed.most_common()) or "none"
        rec = ", ".join(f"{r:.2f} s" for r in self.recoveries) or "-"
        return (
            f"[{self.store}] {self.served}/{self.requests} served in "
            f"{self.seconds:.1f} s; failed: {failed} ({self.refused_on_revoked} of the "
            "401s on a just-renewed token that expired or was revoked before the "
            "retry)\n"
            f"    refresh calls {self.refresh_calls} for {self.refreshes_ok} "
            f"refreshes ({per:.2f} per refresh); faults "
            f"{dict(self.faults_injected)}; dropped rotations {self.drops}; "
            f"kills {self.kills} ({self.kills_mid_refresh} mid-refresh, "
            f"{self.killed_before_store} between answer and store write)\n"
            f"    reuse detections {self.reuse_detected}; grants revoked "
            f"{self.revoked_grants} (lost answer or kill {self.revoked_explained}, "
            f"store failing at the write {self.revoked_by_outage}, killed worker's "
            f"refresh still in flight {self.revoked_by_inflight_kill}); "
            f"needs_reauth {self.needs_reauth} {dict(self.needs_reauth_reasons)}; "
            f"tokens lost {self.tokens_lost} (+{self.lost_in_outage} while the "
            f"store failed at the write); recovery after store outages: {rec}"
        )


def _seed(
    emu: Any, manager_store: Any, base: str, connections: int, seeds: set[str]
) -> list[str]:
    from sfoauth_core.tokens import Token

    keys = []
    for i in range(connections):
        # One Salesforce user per connection (a store keeps one row per org and user).
        user = emu.add_user(
            f"soak{i}@acme.com", "Soak-Passw0rd", user_id=f"005XX{i:010d}"
        )
        body = emu.issue_tokens(user=user.username, issuer=base)
        with emu.state.lock:  # refreshes answer the served (loopback) instance
            emu.state.refresh_tokens[body["refresh_token"]].instance_url = base
        token = replace(Token.from_response(body), instance_url=base)
        seeds.add(_digest(body["refresh_token"]))
        key = f"{token.org_id}:{token.user_id}"
        manager_store(key, token)
        keys.append(key)
    return keys


def run_soak(
    store: str,
    *,
    requests: int = 10_000,
    connections: int = 50,
    workers: int = 8,
    lifetime: float = 3.0,
    kill_every: int = 300,
    drops: int = 3,
    seed: int = 1,
) -> SoakResult:
    """Run one soak against ``store`` and return what it measured."""
    import warnings

    warnings.simplefilter("ignore")
    from sfoauth_core.storage import TokenCipher
    from sfoauth_core.testing import Fault, SalesforceEmulator

    rng = random.Random(seed)
    result = SoakResult(store, requests, lifetime=lifetime)
    revocations = _watch_revocations()
    emu = SalesforceEmulator()
    web = emu.apps["web"]
    web.is_refresh_token_rotation_enabled = True
    web.session_timeout = lifetime
    cipher_key = TokenCipher.generate_key()
    cipher_key_text = (
        cipher_key.decode() if isinstance(cipher_key, bytes) else str(cipher_key)
    )
    redis_server = RedisServer() if store == "redis" else None
    out_dir = tempfile.mkdtemp(prefix=f"sfoauth-soak-{store}-")
    prefix = f"sfoauth-soak:{uuid.uuid4().hex}:"
    outages: list[tuple[float, float]] = []
    killed: set[int] = set()
    try:
        if redis_server:
            redis_server.start()
        else:
            _prepare_postgres(store, cipher_key_text)
        with emu.serve() as base:
            cfg0 = WorkerConfig(
                store,
                base,
                web.client_id,
                web.client_secret,
                cipher_key_text,
                [],
                redis_server.port if redis_server else 0,
                prefix,
                out_dir,
                0,
                requests // workers,
                seed,
            )
            parent_store = _parent_store(cfg0)
            seeds: set[str] = set()
            keys = _seed(emu, parent_store.save, base, connections, seeds)
            if isinstance(parent_store, _DjangoBridge):
                parent_store.flush()
            cfg0.keys = keys
            ctx = multiprocessing.get_context("spawn")
            busy = ctx.Array(ctypes.c_double, workers, lock=False)
            progress = ctx.Array(ctypes.c_long, workers, lock=False)
            procs: dict[int, Any] = {}

            def spawn(slot: int) -> None:
                share = requests // workers + (1 if slot < requests % workers else 0)
                cfg = replace(cfg0, slot=slot, requests=share)
                busy[slot] = 0.0
                p = ctx.Process(
                    target=worker_main, args=(cfg, busy, progress), daemon=True
                )
                p.start()
                procs[slot] = p

            started = time.monotonic()
            for slot in range(workers):
                spawn(slot)
            last_calls = 0
            next_kill = kill_every
            drop_marks = [requests * (i + 1) / (drops + 1) for i in range(drops)]
            outage_marks = [requests * 0.4, requests * 0.7]
            pending_drops: list[Any] = []
            spike_at = time.monotonic() + 1.0
            kind_cycle = 0
            while True:
                done = sum(progress)
                alive = [s for s, p in procs.items() if p.is_alive()]
                for slot, p in list(procs.items()):
                    if not p.is_alive():
                        share = requests // workers + (
                            1 if slot < requests % workers else 0
                        )
                        mine = progress[slot]
                        if mine < share and p.exitcode not in (0, None):
                            spawn(slot)  # a killed worker is replaced
                        elif mine >= share:
                            procs.pop(slot)
                if not procs:
                    break
                if time.monotonic() - started > 600:
                    result.problems.append("soak did not finish within 600 s")
                    break
                # ~5 % of refresh calls answer a 503 or hang past the client timeout.
                calls = emu.calls("refresh_token")
                while calls - last_calls >= 20:
                    last_calls += 20
                    if kind_cycle % 2 == 0:
                        emu.inject_fault(
                            Fault(kind="status", status=503, grant_type="refresh_token")
                        )
                        result.faults_injected["503"] += 1
                    else:
                        emu.inject_fault(
                            Fault(
                                kind="hang",
                                seconds=CLIENT_TIMEOUT + 1.0,
                                grant_type="refresh_token",
                            )
                        )
                        result.faults_injected["timeout"] += 1
                    kind_cycle += 1
                if time.monotonic() >= spike_at:
                    emu.inject_fault(
                        Fault(
                            kind="latency",
                            seconds=rng.uniform(0.3, 1.0),
                            count=3,
                            path="/services/oauth2/token",
                        )
                    )
                    result.faults_injected["latency"] += 1
                    spike_at = time.monotonic() + 2.0
                if drop_marks and done >= drop_marks[0]:
                    drop_marks.pop(0)
                    fault = Fault(kind="drop_after_rotation")
                    emu.inject_fault(fault)
                    pending_drops.append(fault)
                for fault in list(pending_drops):
                    if not any(f is fault for f in emu.state.faults):
                        pending_drops.remove(fault)
                        result.drops += 1
                if done >= next_kill and alive:
                    next_kill += kill_every
                    deadline = time.monotonic() + 1.0
                    victim = None
                    while time.monotonic() < deadline and victim is None:
                        refreshing = [s for s in alive if busy[s] > 0]
                        if refreshing:
                            victim = rng.choice(refreshing)
                        else:
                            time.sleep(0.005)
                    if victim is not None:
                        result.kills_mid_refresh += 1
                    else:
                        victim = rng.choice(alive)
                    killed.add(procs[victim].pid)
                    os.kill(procs[victim].pid, signal.SIGKILL)
                    result.kills += 1
                if outage_marks and done >= outage_marks[0]:
                    outage_marks.pop(0)
                    began = time.time()
                    if redis_server:
                        redis_server.stop()
                        time.sleep(1.0)
                        redis_server.start()
                        result.faults_injected["redis_restart"] += 1
                    else:
                        _terminate_backends()
                        result.faults_injected["pg_terminate"] += 1
                    outages.append((began, time.time()))
                time.sleep(0.05)
            for p in procs.values():
                p.join(timeout=30)
            result.seconds = time.monotonic() - started
            for fault in list(pending_drops):  # consumed at the very end
                if not any(f is fault for f in emu.state.faults):
                    result.drops += 1
            emu.clear_faults()
            _analyse(
                result,
                emu,
                parent_store,
                keys,
                out_dir,
                outages,
                killed,
                seeds,
                revocations,
            )
    finally:
        if redis_server:
            redis_server.close()
        shutil.rmtree(out_dir, ignore_errors=True)
    return result


def _watch_revocations() -> dict[str, Any]:
    """When the emulator (in this process) revokes each grant for reuse: wraps its
    ``revoke_family`` (instrumentation of the benchmark's own emulator)."""
    from sfoauth_emulator import oauth

    seen: dict[str, Any] = {}
    original = getattr(oauth.revoke_family, "__wrapped__", oauth.revoke_family)

    def revoke_family(state: Any, record: Any) -> None:
        seen.setdefault(record.family, time.time())
        seen.setdefault(f"replayed:{record.family}", _digest(record.value))
        original(state, record)

    revoke_family.__wrapped__ = original  # type: ignore[attr-defined]
    oauth.revoke_family = revoke_family  # type: ignore[assignment]
    return seen


class _DjangoBridge:
    """The parent's Django store, in a child process: the parent may already run
    Django with other settings (the test suite does), so the soak's database is
    migrated, seeded and read back by ``soak.py --django-helper``."""

    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        self.pending: list[tuple[str, dict[str, Any]]] = []
        self.records: dict[str, Any] | None = None

    def _helper(self, command: str, payload: Any) -> Any:
        import json
        from dataclasses import asdict

        answer = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--django-helper", command],
            input=json.dumps({"cfg": asdict(self.cfg), "payload": payload}),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if answer.returncode != 0:
            raise RuntimeError(
                f"django helper {command} failed: {answer.stderr[-2000:]}"
            )
        return json.loads(answer.stdout)

    def save(self, key: str, token: Any) -> None:
        self.pending.append((key, token.to_dict()))

    def flush(self) -> None:
        self._helper("seed", self.pending)
        self.pending = []

    def get(self, key: str) -> Any:
        from types import SimpleNamespace

        if self.records is None:
            self.records = self._helper("dump", None)
        found = self.records.get(key)
        if found is None:
            return None
        return SimpleNamespace(
            needs_reauth=found["needs_reauth"],
            reason=found["reason"],
            token=SimpleNamespace(refresh_token=found["refresh_token"]),
        )


def _django_helper(command: str) -> None:
    """``soak.py --django-helper seed|dump``: the Django side of :class:`_DjangoBridge`."""
    import json

    data = json.load(sys.stdin)
    cfg = WorkerConfig(**data["cfg"])
    store = _sync_store(cfg)
    if command == "seed":
        from django.core.management import call_command

        from sfoauth_core.tokens import Token

        call_command("migrate", verbosity=0)
        for key, token in data["payload"]:
            store.save(key, Token.from_dict(token))
        print("{}")
        return
    model = store.model
    out = {}
    for row in model._default_manager.all():
        record = store.get(row.key)
        out[row.key] = {
            "needs_reauth": record.needs_reauth,
            "reason": record.reason,
            "refresh_token": record.token.refresh_token,
        }
    print(json.dumps(out))


def _parent_store(cfg: WorkerConfig) -> Any:
    """The parent's view of the store: sync ``save``/``get`` for any backend."""
    if cfg.store == "django":
        return _DjangoBridge(cfg)
    if cfg.store != "sqlalchemy":
        return _sync_store(cfg)
    from sqlalchemy.ext.asyncio import create_async_engine

    from sfoauth_core.storage import TokenCipher
    from sfoauth_fastapi.storage import SQLAlchemyTokenStore

    class _Bridge:
        def _run(self, coro_fn: Any) -> Any:
            async def go() -> Any:
                engine = create_async_engine(_pg_dsn(SOAK_DB, "postgresql+asyncpg"))
                try:
                    store = SQLAlchemyTokenStore(engine, TokenCipher([cfg.cipher_key]))
                    return await coro_fn(store)
                finally:
                    await engine.dispose()

            return asyncio.run(go())

        def save(self, key: str, token: Any) -> Any:
            return self._run(lambda s: s.save(key, token))

        def get(self, key: str) -> Any:
            return self._run(lambda s: s.get(key))

    return _Bridge()


def _analyse(
    result: SoakResult,
    emu: Any,
    store: Any,
    keys: list[str],
    out_dir: str,
    outages: list[tuple[float, float]],
    killed: set[int],
    seeds: set[str],
    revocations: dict[str, Any],
) -> None:
    """Read the workers' lines and the end state of the store and of the emulator.

    A refresh token that a worker received and never reported stored is either held
    by a process that was SIGKILLed right after (its last token line is that
    ``received``: nobody can keep what only a dead process had), or lost.
    """
    stored: set[str] = set()
    unstored: list[tuple[str, int, bool]] = []  # digest, pid, last line of that pid
    refresh_times: list[float] = []
    last_token_line: dict[int, str] = {}
    received: list[tuple[str, int, float]] = []
    events: dict[str, list[str]] = {}  # what happened to each refresh token, by whom
    refused: list[tuple[str, float]] = []  # (access token digest, time) of 401s
    for path in Path(out_dir).glob("slot*.log"):
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            kind, pid = parts[0], int(parts[-2])
            if kind == "ok":
                result.served += 1
            elif kind == "fail":
                result.failed[parts[1]] += 1
                if parts[1] == "http401" and len(parts) == 6:
                    refused.append((parts[3], float(parts[-1])))
            elif kind == "sent":
                events.setdefault(parts[1], []).append(f"sent by {pid} at {parts[-1]}")
            elif kind == "received":
                received.append((parts[1], pid, float(parts[-1])))
                last_token_line[pid] = f"received {parts[1]}"
                events.setdefault(parts[1], []).append(
                    f"received by {pid} at {parts[-1]}"
                )
            elif kind == "stored":
                stored.add(parts[1])
                events.setdefault(parts[1], []).append(
                    f"stored by {pid} at {parts[-1]}"
                )
                refresh_times.append(float(parts[-1]))
                last_token_line[pid] = f"stored {parts[1]}"
    received_digests = {d for d, _, _ in received}
    killed_unstored: set[str] = set()
    outage_unstored: set[str] = set()
    for digest, pid, at in received:
        if digest in stored:
            continue
        last = last_token_line.get(pid) == f"received {digest}"
        if last and pid in killed:
            killed_unstored.add(digest)
        elif any(b - OUTAGE_MARGIN <= at <= e + OUTAGE_MARGIN for b, e in outages):
            outage_unstored.add(digest)  # the store failed at the write
        else:
            unstored.append((digest, pid, False))
    result.killed_before_store = len(killed_unstored)
    result.lost_in_outage = len(outage_unstored)
    result.tokens_lost = len(unstored)
    with emu.state.lock:
        records = list(emu.state.refresh_tokens.values())
    by_digest = {_digest(r.value): r for r in records}
    result.refresh_calls = emu.calls("refresh_token")
    result.refreshes_ok = sum(
        1
        for e in emu.request_log
        if e.grant_type == "refresh_token" and e.status == 200
    )
    result.reuse_detected = emu.reuse_detected
    # A grant revoked by reuse detection is explained when one of its rotated refresh
    # tokens never reached a live worker's store: its answer was dropped or timed out
    # at the client (Salesforce had rotated anyway), or only a killed process had it.
    # Otherwise a live worker held the new token and the old one was replayed: a bug.
    families: dict[str, list[Any]] = {}
    for r in records:
        families.setdefault(r.family, []).append(r)
    revoked = [
        f for f, rs in families.items() if any(r.status == "revoked" for r in rs)
    ]
    result.revoked_grants = len(revoked)
    for family in revoked:
        issued = [
            _digest(r.value) for r in families[family] if _digest(r.value) not in seeds
        ]
        if any(d not in received_digests or d in killed_unstored for d in issued):
            result.revoked_explained += 1
        elif any(d in outage_unstored for d in issued) or any(
            b - OUTAGE_MARGIN <= revocations.get(family, -1.0) <= e + OUTAGE_MARGIN
            for b, e in outages
        ):
            # The store failed while a worker was refreshing: its write failed, or its
            # row lock died with its database session, so another worker took the lock
            # and replayed the refresh token Salesforce had just rotated.
            result.revoked_by_outage += 1
        elif any(
            line.split()[2].isdigit() and int(line.split()[2]) in killed
            for line in events.get(str(revocations.get("replayed:" + family)), [])
            if line.startswith("sent by ")
        ):
            # The replayed refresh token was sent by a worker that was then SIGKILLed:
            # its request was still on its way to Salesforce when the next worker took
            # the freed lock and refreshed; the late one arrived after the rotation.
            result.revoked_by_inflight_kill += 1
        else:
            chain = sorted(families[family], key=lambda r: r.issued_at)
            result.problems.append(
                "grant revoked with every refresh token delivered: "
                + " -> ".join(
                    f"{_digest(r.value)[:6]}[{r.status}"
                    f"{', received' if _digest(r.value) in received_digests else ''}"
                    f"{', stored' if _digest(r.value) in stored else ''}]"
                    for r in chain
                )
                + f"; replayed {str(revocations.get('replayed:' + family))[:6]} at "
                + f"{revocations.get(family)}; "
                + "; ".join(
                    f"{_digest(r.value)[:6]}: {', '.join(events.get(_digest(r.value), []))}"
                    for r in chain[-4:]
                )
            )
    for key in keys:
        record = store.get(key)
        if record is None:
            result.problems.append(f"connection {key} disappeared from the store")
            continue
        if record.needs_reauth:
            result.needs_reauth += 1
            result.needs_reauth_reasons[record.reason or "?"] += 1
        if by_digest.get(_digest(record.token.refresh_token)) is None:
            result.problems.append(f"{key}: stored refresh token unknown to Salesforce")
    # A 401 that reached the app after the renewals is a failure of the rule unless the
    # token of the last attempt was a fresh one (issued within a token lifetime plus a
    # client timeout before the answer: it expired again during the renewal and retry,
    # which the soak's seconds-long lifetimes provoke) or was revoked meanwhile (reuse
    # detection killed the grant). A stale token served with no renewal fails it.
    with emu.state.lock:
        access = {_digest(a.value): a for a in emu.state.access_tokens.values()}
    for digest, at in refused:
        used = access.get(digest)
        if used is not None and (
            used.revoked or at - used.issued_at <= result.lifetime + CLIENT_TIMEOUT
        ):
            result.refused_on_revoked += 1
    for sample in sorted(Path(out_dir).glob("sample-*.txt")):
        result.samples.append(sample.read_text(encoding="utf-8"))
    refresh_times.sort()
    for _, at in outages:
        later = [t for t in refresh_times if t > at]
        if later:
            result.recoveries.append(later[0] - at)


def check(result: SoakResult) -> list[str]:
    """The zero targets; returns what is violated."""
    problems = list(result.problems)
    if result.tokens_lost:
        problems.append(f"{result.tokens_lost} rotated refresh tokens lost")
    unexplained_401 = result.failed.get("http401", 0) - result.refused_on_revoked
    if unexplained_401 > 0:
        problems.append(f"{unexplained_401} 401s reached the app with a stale token")
    return problems


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--django-helper":
        _django_helper(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=[*STORES, "all"], default="all")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--lifetime", type=float, default=3.0)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stores = STORES if args.store == "all" else (args.store,)
    failures = []
    for name in stores:
        result = run_soak(
            name,
            requests=args.requests,
            connections=args.connections,
            workers=args.workers,
            lifetime=args.lifetime,
        )
        print(result.row(), flush=True)
        failures += [f"{name}: {p}" for p in check(result)]
    for line in failures:
        print("TARGET MISSED:", line)
    if args.check and failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
