"""Hot-path cost of ``Depends(sf.session)``: a route with a valid cached token vs the
same route without it, in one run, through ASGI (no network).

Three routes, interleaved rounds, median of each: the route without a dependency, the
same route with a no-op ``Depends`` (FastAPI's own price for any dependency, the floor
no dependency can go under) and the route with ``Depends(sf.session)``. Two harnesses:

* ``httpx.AsyncClient`` over ``ASGITransport``: what a caller sees in-process (the
  client's own cost is in both sides of the ratio);
* raw ASGI calls: the server's cost alone, which magnifies FastAPI's floor.

Target: <= 1.05x, and no store I/O on the hot path (the store is wrapped and its calls
counted during the timed loops).

Run: ``.venv/bin/python benchmarks/fastapi_route.py [requests]``
"""

# No `from __future__ import annotations`: the routes are closures over `sf`.

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Request

from sfoauth_core.storage import AsyncInMemoryTokenStore
from sfoauth_core.testing import SalesforceEmulator
from sfoauth_core.tokens import Token
from sfoauth_fastapi import SalesforceSession, SFOAuth


class CountingStore(AsyncInMemoryTokenStore):
    reads = 0

    async def get(self, key: str) -> Any:
        CountingStore.reads += 1
        return await super().get(key)


async def build() -> tuple[dict[str, FastAPI], SFOAuth, str]:
    """One app per variant, each with sfoauth's router first and the measured route at
    the same place, so that Starlette's route matching costs the same in all three."""
    emu = SalesforceEmulator()
    sf = SFOAuth(
        emu.connected_app(
            "web", redirect_uri="http://localhost:8000/salesforce/callback"
        ),
        store=CountingStore(),
        secret_key="benchmark-secret-key-0123456789abcdef",
        transport=emu.async_transport(),
        cookie_secure=False,
    )

    def app() -> FastAPI:
        api = FastAPI()
        api.include_router(sf.router, prefix="/salesforce")
        return api

    plain_api, noop_api, session_api = app(), app(), app()

    @plain_api.get("/route")
    async def plain() -> dict[str, str]:
        return {"instance": "https://acme.my.salesforce.com"}

    async def noop(request: Request) -> int:
        return 1

    @noop_api.get("/route")
    async def with_noop(value: Annotated[int, Depends(noop)]) -> dict[str, str]:
        # FastAPI's own price for any request-reading dependency, for scale.
        return {"instance": "https://acme.my.salesforce.com"}

    @session_api.get("/route")
    async def with_session(
        session: Annotated[SalesforceSession, Depends(sf.session)],
    ) -> dict[str, str]:
        return {"instance": session.instance_url}

    uid = "anon:benchmark"
    token = Token.from_response(emu.issue_tokens("web"))
    await sf.manager.save(sf.key_for_user(uid), token, revoke_superseded=False)
    assert sf.identity is not None
    apps = {"plain": plain_api, "noop": noop_api, "session": session_api}
    return apps, sf, sf.signer.sign("uid", uid)


VARIANTS = ("plain", "noop", "session")
Timer = Callable[[int], Awaitable[float]]


def httpx_timer(client: httpx.AsyncClient) -> Timer:
    async def timed(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            r = await client.get("/route")
            assert r.status_code == 200, r.text
        return (time.perf_counter() - start) / n

    return timed


def asgi_timer(api: FastAPI, cookie: str) -> Timer:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/route",
        "raw_path": b"/route",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost:8000"),
            (b"cookie", b"sfoauth_uid=" + cookie.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 8000),
    }

    async def timed(n: int) -> float:
        statuses: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        start = time.perf_counter()
        for _ in range(n):
            await api(dict(scope), receive, send)
        elapsed = (time.perf_counter() - start) / n
        assert statuses == [200] * n, set(statuses)
        return elapsed

    return timed


async def measure(timers: dict[str, Timer], n: int) -> dict[str, float]:
    for timed in timers.values():  # warm up (sf.session's first call fills the cache)
        await timed(200)
    rounds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(7):  # interleaved rounds, median of each
        for name in VARIANTS:
            rounds[name].append(await timers[name](n))
    return {name: statistics.median(times) for name, times in rounds.items()}


def report(title: str, t: dict[str, float]) -> float:
    p, e, s = (t[name] for name in VARIANTS)
    print(title)
    print(f"  route without a dependency: {p * 1e6:7.1f} us/request")
    print(f"  with a no-op Depends:       {e * 1e6:7.1f} us/request ({e / p:.3f}x)")
    print(f"  with Depends(sf.session):   {s * 1e6:7.1f} us/request ({s / p:.3f}x)")
    print(
        f"  sfoauth's own share (session vs no-op): {(s - e) * 1e6:+.1f} us "
        f"({s / e:.3f}x)"
    )
    return s / p


async def main(n: int) -> None:
    apps, sf, cookie = await build()
    reads_before = CountingStore.reads
    async with AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=api),
                    base_url="http://localhost:8000",
                    cookies={"sfoauth_uid": cookie},
                )
            )
            for name, api in apps.items()
        }
        via_httpx = await measure(
            {name: httpx_timer(client) for name, client in clients.items()}, n
        )
    via_asgi = await measure(
        {name: asgi_timer(api, cookie) for name, api in apps.items()}, n
    )
    store_reads = CountingStore.reads - reads_before
    print(f"requests per round: {n} x 7 rounds, interleaved (median)")
    ratio = report("httpx.AsyncClient + ASGITransport:", via_httpx)
    report("raw ASGI calls (server only):", via_asgi)
    print(f"ratio: {ratio:.3f}x (httpx harness; target <= 1.05x)")
    print(f"store reads during the timed loops: {store_reads}")
    await sf.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
