"""Four uvicorn worker processes share one connection (SECURITY.md item 21).

The emulator serves on a loopback port with refresh-token rotation and reuse detection;
a user logs in through the real router (login on one worker, callback on any other);
the access token is expired; 200 concurrent requests spread over the 4 workers must
cause exactly one refresh call, all succeed, and nothing be revoked. Once with the
PostgreSQL store (row locks), once with the Redis store. uvicorn runs at DEBUG and its
output must not contain the code or any token.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sfoauth_core.storage import TokenCipher
from sfoauth_core.testing import SalesforceEmulator

pytestmark = [pytest.mark.anyio, pytest.mark.loopback]

HERE = Path(__file__).parent
WORKERS = 4
REQUESTS = 200


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg, redis.asyncio and uvicorn are asyncio-only


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_uvicorn(config_path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFOAUTH_")}
    env["SFO_MULTIWORKER_CONFIG"] = str(config_path)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent.parent)])
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "multiworker_app:create_app",
                "--app-dir",
                str(HERE),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(WORKERS),
                "--log-level",
                "debug",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # our own session: uvicorn + workers
            process.wait(timeout=10)


async def wait_ready(
    client: httpx.AsyncClient, process: subprocess.Popen[bytes]
) -> None:
    pids: set[int] = set()
    for _ in range(600):  # at most ~60 s
        if process.poll() is not None:
            raise AssertionError("uvicorn exited early")
        try:
            r = await client.get("/health")
            if r.status_code == 200:
                pids.add(r.json()["pid"])
                if len(pids) >= 2:
                    return
        except httpx.TransportError:
            pass
        await anyio.sleep(0.1)
    raise AssertionError("uvicorn did not become ready")


async def run_scenario(tmp_path: Path, store: str, url: str, prefix: str) -> None:
    emu = SalesforceEmulator()
    web = emu.apps["web"]
    web.is_refresh_token_rotation_enabled = True
    emu.auto_approve = "jane@acme.com"
    port = free_port()
    callback = f"http://127.0.0.1:{port}/salesforce/callback"
    web.callback_urls.append(callback)
    log = tmp_path / "uvicorn.log"
    with emu.serve() as base_url:
        config = {
            "store": store,
            "url": url,
            "prefix": prefix,
            "cipher_key": TokenCipher.generate_key(),
            "secret_key": uuid.uuid4().hex * 2,
            "client_id": web.client_id,
            "client_secret": web.client_secret,
            "redirect_uri": callback,
            "login_url": base_url,
            "scopes": web.scopes,
        }
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config))
        process = start_uvicorn(config_path, port, log)
        try:
            limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=0)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                timeout=60,
                limits=limits,
                headers={"x-user": "alice"},
            ) as client:
                await wait_ready(client, process)
                login = await client.post("/salesforce/login")
                assert login.status_code == 303
                async with httpx.AsyncClient(timeout=30) as browser:
                    authorized = await browser.get(login.headers["location"])
                assert authorized.status_code == 302
                code_url = authorized.headers["location"]
                done = await client.get(code_url)
                assert done.status_code == 303, done.text
                warm = await client.get("/limits")
                assert warm.json()["status"] == 200
                assert emu.expire_access_tokens() >= 1
                results: list[dict[str, Any]] = []

                async def hit() -> None:
                    results.append((await client.get("/limits")).json())

                with anyio.fail_after(120):
                    async with anyio.create_task_group() as tg:
                        for _ in range(REQUESTS):
                            tg.start_soon(hit)
            assert [r["status"] for r in results] == [200] * REQUESTS
            assert len({r["pid"] for r in results}) >= 2  # really several workers
            assert emu.calls("refresh_token") == 1
            assert emu.reuse_detected == 0
        finally:
            stop(process)
    output = log.read_text(errors="replace")
    code = code_url.split("code=")[1].split("&")[0]
    assert code not in output and "code=[redacted]" in output
    for entry in emu.request_log:
        assert "access_token" not in entry.params or "*" in entry.params["access_token"]


@pytest.mark.postgres
async def test_four_workers_on_postgres_refresh_once(tmp_path, postgres_dsn):
    from sqlalchemy.ext.asyncio import create_async_engine

    from sfoauth_fastapi.storage import build_tables, create_tables, drop_tables

    url = postgres_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    prefix = f"mw{uuid.uuid4().hex[:10]}_"
    which = build_tables(prefix=prefix)
    engine = create_async_engine(url)
    await create_tables(engine, which)
    try:
        await run_scenario(tmp_path, "postgres", url, prefix)
    finally:
        await drop_tables(engine, which)
        await engine.dispose()


@pytest.mark.redis
async def test_four_workers_on_redis_refresh_once(tmp_path, redis_url):
    from redis.asyncio import Redis

    prefix = f"sfomw:{uuid.uuid4().hex}:"
    try:
        await run_scenario(tmp_path, "redis", redis_url, prefix)
    finally:
        redis = Redis.from_url(redis_url)
        async for name in redis.scan_iter(match=prefix + "*"):
            await redis.delete(name)
        await redis.aclose()
