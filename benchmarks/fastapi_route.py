"""Hot-path cost of ``Depends(sf.session)``: a route with a valid cached token vs the
same route without it, in one run, through ASGI (no network).

Target: <= 1.05x, and no store I/O on the hot path (the store is wrapped and its calls
counted during the timed loop).

Run: ``.venv/bin/python benchmarks/fastapi_route.py [requests]``
"""

# No `from __future__ import annotations`: the routes are closures over `sf`.

import asyncio
import statistics
import sys
import time
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


async def timed(client: httpx.AsyncClient, path: str, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        r = await client.get(path)
        assert r.status_code == 200, r.text
    return (time.perf_counter() - start) / n


async def main(n: int) -> None:
    api, sf, cookie = await build()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api),
        base_url="http://localhost:8000",
        cookies={"sfoauth_uid": cookie},
    ) as client:
        await timed(client, "/with-session", 200)  # warm the token cache
        await timed(client, "/plain", 200)
        reads_before = CountingStore.reads
        plain, noop, session = [], [], []
        for _ in range(7):  # interleaved rounds, median of each
            plain.append(await timed(client, "/plain", n))
            noop.append(await timed(client, "/with-noop", n))
            session.append(await timed(client, "/with-session", n))
        store_reads = CountingStore.reads - reads_before
    p, s = statistics.median(plain), statistics.median(session)
    e = statistics.median(noop)
    print(f"requests per round: {n} x 7 rounds (median)")
    print(f"route without sf.session: {p * 1e6:8.1f} us/request")
    print(f"route with a no-op dep:   {e * 1e6:8.1f} us/request ({e / p:.3f}x)")
    print(f"route with sf.session:    {s * 1e6:8.1f} us/request")
    print(f"ratio: {s / p:.3f}x (target <= 1.05x)")
    print(f"store reads during the timed loop: {store_reads}")
    await sf.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
