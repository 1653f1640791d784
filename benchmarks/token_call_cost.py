"""Token call cost: client CPU per refresh call against a loopback fake token endpoint.

The endpoint runs in a separate process, so ``time.process_time`` counts only the client.
Measured in one run:

* floor: a raw ``httpx.Client`` POST of the same form, reusing one client;
* sfoauth: ``SalesforceOAuth.refresh`` reusing its client (sans-IO flow + driver + parsing,
  signature-less response, host checks);
* authlib ``OAuth2Client.refresh_token``, one client reused;
* authlib with a new client per call (how framework integrations tend to use it).

Target: sfoauth <= 1.10x the floor.

Run: .venv/bin/python benchmarks/token_call_cost.py
"""

from __future__ import annotations

import json
import multiprocessing
import socket
import time
import warnings
from collections.abc import Callable

import httpx

from sfoauth_core.config import ConnectedApp
from sfoauth_core.http.client import SalesforceOAuth

N = int(__import__("os").environ.get("BENCH_N", "1500"))
BODY = json.dumps(
    {
        "access_token": "00DXX0000001abc!AQ0AQNewAccessToken",
        "scope": "refresh_token api",
        "instance_url": "https://acme.my.salesforce.com",
        "id": "https://login.salesforce.com/id/00DXX0000001abcEAA/005XX000001xyzQAA",
        "token_type": "Bearer",
        "issued_at": "1767229200456",
    }
).encode()


async def token_endpoint(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """A minimal ASGI token endpoint: drain the body, answer a refresh response."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json;charset=UTF-8"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


def serve(port: int) -> None:
    import uvicorn

    uvicorn.run(token_endpoint, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_per_call(fn: Callable[[], object], n: int = N) -> float:
    for _ in range(50):
        fn()
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n)
    return best * 1e6  # microseconds


def main() -> None:
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port,))
    server.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):  # wait for the server to listen
        try:
            httpx.post(base, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    url = f"{base}/services/oauth2/token"
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "5Aep861ExampleRefreshToken",
        "client_id": "3MVG9Example",
        "client_secret": "s3cr3t",
    }
    results: dict[str, float] = {}

    with httpx.Client() as raw:
        results["raw httpx.Client POST (floor)"] = cpu_per_call(
            lambda: raw.post(
                url, data=form, headers={"Accept": "application/json"}
            ).json()
        )

    app = ConnectedApp(
        client_id="3MVG9Example",
        client_secret="s3cr3t",
        login_url=base,
        allow_loopback=True,
    )
    with SalesforceOAuth(app) as oauth:
        results["sfoauth SalesforceOAuth.refresh"] = cpu_per_call(
            lambda: oauth.refresh("5Aep861ExampleRefreshToken")
        )

    try:
        with warnings.catch_warnings():  # authlib's own deprecation notice about httpx
            warnings.simplefilter("ignore")
            from authlib.integrations.httpx_client import OAuth2Client
    except ImportError:  # pragma: no cover
        OAuth2Client = None  # noqa: N806
    if OAuth2Client is not None:
        with OAuth2Client(
            "3MVG9Example", "s3cr3t", token_endpoint=url, timeout=10
        ) as reused:
            results["authlib OAuth2Client (reused)"] = cpu_per_call(
                lambda: reused.refresh_token(url, refresh_token="5Aep861Example")
            )

        def per_call() -> object:
            with OAuth2Client(
                "3MVG9Example", "s3cr3t", token_endpoint=url, timeout=10
            ) as fresh:
                return fresh.refresh_token(url, refresh_token="5Aep861Example")

        results["authlib OAuth2Client (new per call)"] = cpu_per_call(per_call, n=60)

    floor = results["raw httpx.Client POST (floor)"]
    print(f"token call cost: client CPU per refresh call ({N} calls, best of 3)")
    for name, micros in results.items():
        print(f"  {name:40s} {micros:9.1f} us  {micros / floor:6.2f}x floor")
    ours = results["sfoauth SalesforceOAuth.refresh"] / floor
    print(f"  target sfoauth <= 1.10x floor: {'met' if ours <= 1.10 else 'MISSED'}")
    server.terminate()
    server.join(timeout=10)


if __name__ == "__main__":
    main()
