"""Reading the environment: emulator defaults, generated local secrets.

Emulator mode (``SFOAUTH_CLIENT_ID`` not set) uses the emulator's ``web`` app for user
logins and its ``jwt`` app for the ``integration`` connection; the JWT key pair is made
on first start (``EXAMPLE_DATA_DIR/jwt-demo-key.pem``) and its public half registered
with the emulator before the first JWT bearer call. Real-org mode: see
``example_projects/README.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

# The emulator's default apps and users (sfoauth_emulator.constants).
EMULATOR_WEB_CLIENT_ID = "3MVG9Example.WebServerApp"
EMULATOR_WEB_CLIENT_SECRET = "1F2E3D4C5B6A7980A1B2C3D4E5F60718"
EMULATOR_JWT_CLIENT_ID = "3MVG9Example.JwtBearerApp"
EMULATOR_JWT_USERNAME = "integration@acme.com"
DEFAULT_EMULATOR_URL = "http://127.0.0.1:8999"
DEFAULT_APP_URL = "http://127.0.0.1:8000"
DEFAULT_SCOPES = "api refresh_token openid id profile email"


def get(name: str, default: str | None = None) -> str | None:
    """An environment variable; empty counts as unset."""
    value = os.environ.get(name)
    return value if value else default


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The content of ``path``, created (mode 0600) with ``make()`` when missing."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process (runserver's reloader) won the race
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    return value.strip()


def make_rsa_key() -> str:
    """A new RSA 2048 private key, PKCS#8 PEM (the demo JWT key)."""
    from sfoauth_core.testing import new_private_key_pem

    return new_private_key_pem()


def public_pem(private_pem: str) -> str:
    """The SubjectPublicKeyInfo PEM of a private key PEM (what the emulator checks)."""
    from sfoauth_core.testing import public_key_pem

    return public_key_pem(private_pem)
