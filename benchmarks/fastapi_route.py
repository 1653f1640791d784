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


async def build() -> tuple[FastAPI, SFOAuth, str]:
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
    api = FastAPI()
    api.include_router(sf.router, prefix="/salesforce")

    @api.get("/plain")
    async def plain() -> dict[str, str]:
        return {"instance": "https://acme.my.salesforce.com"}

    async def noop(request: Request) -> int:
        return 1

    @api.get("/with-noop")
    async def with_noop(value: Annotated[int, Depends(noop)]) -> dict[str, str]:
        # FastAPI's own price for any request-reading dependency, for scale.
        return {"instance": "https://acme.my.salesforce.com"}

    @api.get("/with-session")
    async def with_session(
        session: Annotated[SalesforceSession, Depends(sf.session)],
    ) -> dict[str, str]:
        return {"instance": session.instance_url}

    uid = "anon:benchmark"
    token = Token.from_response(emu.issue_tokens("web"))
    await sf.manager.save(sf.key_for_user(uid), token, revoke_superseded=False)
    assert sf.identity is not None
    return api, sf, sf.signer.sign("uid", uid)


ROUTES = ("/plain", "/with-noop", "/with-session")
Timer = Callable[[str, int], Awaitable[float]]


def httpx_timer(client: httpx.AsyncClient) -> Timer:
    async def timed(path: str, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            r = await client.get(path)
            assert r.status_code == 200, r.text
        return (time.perf_counter() - start) / n

    return timed


def asgi_timer(api: FastAPI, cookie: str) -> Timer:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def timed(path: str, n: int) -> float:
        statuses: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"localhost:8000"),
                (b"cookie", b"sfoauth_uid=" + cookie.encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("localhost", 8000),
        }
        start = time.perf_counter()
        for _ in range(n):
            await api(dict(scope), receive, send)
        elapsed = (time.perf_counter() - start) / n
        assert statuses == [200] * n, set(statuses)
        return elapsed

    return timed


async def measure(timed: Timer, n: int) -> dict[str, float]:
    for path in ROUTES:  # warm up (the first sf.session call fills the token cache)
        await timed(path, 200)
    rounds: dict[str, list[float]] = {path: [] for path in ROUTES}
    for _ in range(7):  # interleaved rounds, median of each
        for path in ROUTES:
            rounds[path].append(await timed(path, n))
    return {path: statistics.median(times) for path, times in rounds.items()}


def report(title: str, t: dict[str, float]) -> float:
    p, e, s = (t[path] for path in ROUTES)
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
    api, sf, cookie = await build()
    reads_before = CountingStore.reads
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url="http://localhost:8000",
        cookies={"sfoauth_uid": cookie},
    ) as client:
        via_httpx = await measure(httpx_timer(client), n)
    via_asgi = await measure(asgi_timer(api, cookie), n)
    store_reads = CountingStore.reads - reads_before
    print(f"requests per round: {n} x 7 rounds, interleaved (median)")
    ratio = report("httpx.AsyncClient + ASGITransport:", via_httpx)
    report("raw ASGI calls (server only):", via_asgi)
    print(f"ratio: {ratio:.3f}x (httpx harness; target <= 1.05x)")
    print(f"store reads during the timed loops: {store_reads}")
    await sf.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
