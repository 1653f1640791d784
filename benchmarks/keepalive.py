"""Keep-alive throughput: connections kept alive per second over 1,000 idle connections
stored on PostgreSQL (reference 15.3, issue 12.2).

The emulator runs in its own process on a loopback port (refresh-token rotation on), so
its CPU is not the client's. 1,000 connections are stored in ``SQLAlchemyTokenStore``
(asyncpg, one encrypted row each); the manager's clock is a day ahead, so every one is
idle for ``idle_for`` = 1 hour. Measured in one run:

1. ``AsyncTokenManager.keep_alive(concurrency=1)``: list the idle rows, then for each one
   re-read, take the row lock, refresh at the emulator, save (compare-and-swap), unlock;
2. the same with ``concurrency=4`` (the default);
3. baseline: the same 1,000 refreshes as bare ``AsyncSalesforceOAuth.refresh`` calls one
   after another, with no store at all (the floor: what a loop over refresh tokens costs
   before any listing, locking, re-reading or saving).

Reported: connections kept alive per second, the ratio to the baseline, refresh calls
per connection (must be 1), reuse detections (must be 0).

Needs PostgreSQL (``SFOAUTH_TEST_POSTGRES_DSN``, default
``postgresql://postgres@127.0.0.1:5432/test``).
Run: .venv/bin/python benchmarks/keepalive.py [--connections 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
import uuid
from dataclasses import replace
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from sfoauth_core.config import ConnectedApp
from sfoauth_core.http.async_client import AsyncSalesforceOAuth
from sfoauth_core.manager import AsyncTokenManager
from sfoauth_core.storage import TokenCipher
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_core.tokens import Token
from sfoauth_fastapi.storage import (
    SQLAlchemyTokenStore,
    build_tables,
    create_tables,
    drop_tables,
)

DSN = os.environ.get(
    "SFOAUTH_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
DAY = 86400.0


def serve_emulator(count: int, ready: Any, stop: Any) -> None:
    """The emulator process: issue ``count`` grants, hand them over, serve."""
    emu = SalesforceEmulator()
    web = emu.apps["web"]
    web.is_refresh_token_rotation_enabled = True
    web.refresh_token_policy = "specific_inactivity:30:DAYS"
    with emu.serve() as base:
        bodies = []
        for _ in range(count):
            # No openid: the refresh answers carry no ID token to verify.
            body = emu.issue_tokens(scopes="api refresh_token")
            with emu.state.lock:  # refreshes answer the served instance
                emu.state.refresh_tokens[body["refresh_token"]].instance_url = base
            bodies.append(body)
        ready.put((base, web.client_id, web.client_secret, bodies))
        stop.wait()
        ready.put((emu.calls("refresh_token"), emu.reuse_detected))


def oauth_for(base: str, client_id: str, secret: str) -> AsyncSalesforceOAuth:
    app = ConnectedApp(
        client_id=client_id,
        client_secret=secret,
        login_url=base,
        allow_loopback=True,
        timeout=10,
    )
    return AsyncSalesforceOAuth(app, http_client=httpx.AsyncClient(timeout=10))


async def main(count: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    emulator = ctx.Process(target=serve_emulator, args=(count, ready, stop))
    emulator.start()
    base, client_id, secret, bodies = ready.get(timeout=300)
    url = DSN.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url, pool_size=8)
    tables = build_tables(prefix=f"bench{uuid.uuid4().hex[:8]}_")
    await create_tables(engine, tables)
    store = SQLAlchemyTokenStore(
        engine, TokenCipher([TokenCipher.generate_key()]), tables=tables
    )
    keys = [f"00DXX0000001abcEAA:005XX{n:010d}AAA" for n in range(count)]
    for key, body in zip(keys, bodies, strict=True):
        await store.save(key, replace(Token.from_response(body), instance_url=base))
    oauth = oauth_for(base, client_id, secret)
    results: dict[str, dict[str, float]] = {}
    try:
        for concurrency in (1, 4):
            manager = AsyncTokenManager(oauth, store, clock=lambda: time.time() + DAY)
            summary = await manager.keep_alive(idle_for=3600, concurrency=concurrency)
            assert summary.kept_alive == count, str(summary)
            results[f"keep_alive, concurrency {concurrency}"] = {
                "seconds": summary.seconds,
                "rate": summary.kept_alive / summary.seconds,
            }
        tokens = []
        for key in keys:
            record = await store.get(key)
            assert record is not None
            tokens.append(record.token)
        started = time.perf_counter()
        for token in tokens:
            await oauth.refresh(token)
        floor = time.perf_counter() - started
        results["baseline: bare refresh calls, no store"] = {
            "seconds": floor,
            "rate": count / floor,
        }
    finally:
        await oauth.aclose()
        await drop_tables(engine, tables)
        await engine.dispose()
        stop.set()
        calls, reuse = ready.get(timeout=60)
        emulator.join(timeout=30)

    baseline = results["baseline: bare refresh calls, no store"]["rate"]
    print(f"{count} idle connections, SQLAlchemyTokenStore on PostgreSQL (asyncpg),")
    print("emulator in its own process, refresh-token rotation on")
    for name, figures in results.items():
        print(
            f"  {name:42s} {figures['rate']:7.1f} connections/s "
            f"({figures['seconds']:.2f} s) = {figures['rate'] / baseline:.2f}x baseline"
        )
    print(
        f"  refresh calls: {calls} for {3 * count} refreshes "
        f"({calls / (3 * count):.2f} per refresh), reuse detected: {reuse}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    asyncio.run(main(parser.parse_args().connections))
