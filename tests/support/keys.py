"""A Connected App's test credentials and private keys (each generated once per run)."""

from __future__ import annotations

import functools
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CLIENT_ID = "3MVG9Example"
CLIENT_SECRET = "1F2E3D4C5B6A"


def _pem(key: Any, encryption: Any = None) -> str:
    return str(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            encryption or serialization.NoEncryption(),
        ).decode()
    )


@functools.cache
def rsa_2048() -> str:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@functools.cache
def rsa_1024() -> str:
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))


@functools.cache
def ec_p256() -> str:
    return _pem(ec.generate_private_key(ec.SECP256R1()))


@functools.cache
def rsa_2048_encrypted() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pem(key, serialization.BestAvailableEncryption(b"passphrase"))
