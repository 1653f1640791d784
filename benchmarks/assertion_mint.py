"""Assertion mint: sfoauth's JWT bearer assertion vs ``jwt.encode`` with a loaded key.

The PEM is parsed once when ``ConnectedApp`` is built (loading costs milliseconds, mostly
RSA key validation); each mint only signs. Target: <= 1.1x ``jwt.encode``.

Run: .venv/bin/python benchmarks/assertion_mint.py
"""

from __future__ import annotations

import time
import timeit
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sfoauth_core.config import ConnectedApp
from sfoauth_core.flows.jwt_bearer import create_assertion

N = 300


def main() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    started = time.perf_counter()
    app = ConnectedApp(client_id="3MVG9Example", private_key=pem, username="u@acme.com")
    load_ms = (time.perf_counter() - started) * 1e3
    loaded = app.signing_key

    def raw() -> str:
        now = int(time.time())
        claims = {
            "iss": "3MVG9Example",
            "sub": "u@acme.com",
            "aud": "https://login.salesforce.com",
            "iat": now,
            "exp": now + 180,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, loaded, algorithm="RS256", headers={"typ": "JWT"})

    def ours() -> str:
        return create_assertion(app)

    for fn in (raw, ours):
        fn()
    raw_ms = min(timeit.repeat(raw, number=N, repeat=5)) / N * 1e3
    ours_ms = min(timeit.repeat(ours, number=N, repeat=5)) / N * 1e3
    print("assertion mint (RS256, 2048-bit key; lower is better)")
    print(f"  ConnectedApp build incl. PEM load (once)  {load_ms:8.2f} ms")
    print(f"  jwt.encode, key already loaded            {raw_ms:8.3f} ms/assertion")
    print(f"  sfoauth create_assertion                  {ours_ms:8.3f} ms/assertion")
    ratio = ours_ms / raw_ms
    print(
        f"  ratio: {ratio:.2f}x (target <= 1.10x: {'met' if ratio <= 1.1 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
