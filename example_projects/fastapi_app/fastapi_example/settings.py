"""Configuration from environment variables, with defaults for the local emulator.

Emulator mode (``SFOAUTH_CLIENT_ID`` not set): the emulator's ``web`` app for user
logins and its ``jwt`` app for the ``integration`` connection; the JWT key pair is made
on first start and its public half registered with the emulator (control API).

Real-org mode (``SFOAUTH_CLIENT_ID`` set): see ``example_projects/README.md``.

Secrets the example needs locally (token encryption key, cookie signing key, demo JWT
key) are generated once into ``EXAMPLE_DATA_DIR`` (default ``.data`` next to this
package) unless given as environment variables.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sfoauth_core import ConnectedApp
from sfoauth_core.storage import TokenCipher

# The emulator's default apps and users (sfoauth_emulator.constants).
EMULATOR_WEB_CLIENT_ID = "3MVG9Example.WebServerApp"
EMULATOR_WEB_CLIENT_SECRET = "1F2E3D4C5B6A7980A1B2C3D4E5F60718"
EMULATOR_JWT_CLIENT_ID = "3MVG9Example.JwtBearerApp"
EMULATOR_JWT_USERNAME = "integration@acme.com"
DEFAULT_EMULATOR_URL = "http://127.0.0.1:8999"
DEFAULT_APP_URL = "http://127.0.0.1:8000"
DEFAULT_SCOPES = "api refresh_token openid id profile email"
PROJECT_DIR = Path(__file__).resolve().parent.parent


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The content of ``path``, created (mode 0600) with ``make()`` when missing."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    return value.strip()


def demo_jwt_key(path: Path) -> str:
    """The private key PEM at ``path``, generated (RSA 2048) on first use."""
    from sfoauth_core.testing import new_private_key_pem

    return _read_or_create(path, new_private_key_pem)


def public_pem(private_pem: str) -> str:
    """The SubjectPublicKeyInfo PEM of a private key PEM (what the emulator checks)."""
    from sfoauth_core.testing import public_key_pem

    return public_key_pem(private_pem)


@dataclass(frozen=True)
class ExampleSettings:
    """Everything the example reads from its environment.

    Attributes:
        app_url: the example's own origin (``EXAMPLE_APP_URL``).
        data_dir: where the SQLite database and generated keys live.
        emulator_url: the emulator's base URL, ``None`` against a real org.
        app: the connected app for user logins (web server flow + PKCE).
        integration: the JWT-bearer app of the ``integration`` connection, or ``None``.
        integration_username: the Salesforce user the integration acts as.
        token_key: the token encryption key.
        secret_key: signs the cookies.
        api_version: REST API version (``62.0``).
        register_jwt_key: emulator mode with a generated key: register its public
            half with the emulator before the first JWT bearer call.
    """

    app_url: str
    data_dir: Path
    emulator_url: str | None
    app: ConnectedApp
    integration: ConnectedApp | None
    integration_username: str | None
    token_key: str
    secret_key: str
    api_version: str
    register_jwt_key: bool

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the example's SQLite database."""
        return f"sqlite+aiosqlite:///{self.data_dir / 'fastapi_example.sqlite3'}"

    @property
    def cookie_secure(self) -> bool:
        """Secure cookies whenever the app is served over https."""
        return self.app_url.startswith("https://")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExampleSettings:
        """Read the settings (see ``example_projects/README.md`` for the variables)."""
        env = os.environ if environ is None else environ

        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(name)
            return value if value else default

        app_url = (get("EXAMPLE_APP_URL") or DEFAULT_APP_URL).rstrip("/")
        data_dir = Path(get("EXAMPLE_DATA_DIR") or PROJECT_DIR / ".data")
        scopes = (get("SFOAUTH_SCOPES") or DEFAULT_SCOPES).replace(",", " ").split()
        redirect_uri = get("SFOAUTH_REDIRECT_URI") or app_url + "/salesforce/callback"
        client_id = get("SFOAUTH_CLIENT_ID")
        emulator_url: str | None = None
        if client_id is None:
            emulator_url = (get("SFOAUTH_EMULATOR_URL") or DEFAULT_EMULATOR_URL).rstrip(
                "/"
            )
            login_url = emulator_url
            client_id = EMULATOR_WEB_CLIENT_ID
            client_secret: str | None = EMULATOR_WEB_CLIENT_SECRET
        else:
            login_url = get("SFOAUTH_LOGIN_URL") or "https://login.salesforce.com"
            client_secret = get("SFOAUTH_CLIENT_SECRET")
        loopback = emulator_url is not None
        app = ConnectedApp(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=redirect_uri,
            login_url=login_url,
            scopes=scopes,
            allow_loopback=loopback,
        )

        key_file = get("SFOAUTH_JWT_PRIVATE_KEY_FILE")
        register = False
        private_key: str | None = None
        if key_file is not None:
            private_key = Path(key_file).read_text(encoding="utf-8")
        elif loopback:
            private_key = demo_jwt_key(data_dir / "jwt-demo-key.pem")
            register = True
        jwt_client_id = get("SFOAUTH_JWT_CLIENT_ID") or (
            EMULATOR_JWT_CLIENT_ID if loopback else get("SFOAUTH_CLIENT_ID")
        )
        jwt_username = get("SFOAUTH_JWT_USERNAME") or (
            EMULATOR_JWT_USERNAME if loopback else None
        )
        integration: ConnectedApp | None = None
        if private_key and jwt_client_id and jwt_username:
            integration = ConnectedApp(
                client_id=jwt_client_id,
                login_url=get("SFOAUTH_JWT_LOGIN_URL") or login_url,
                private_key=private_key,
                username=jwt_username,
                allow_loopback=loopback,
            )
        return cls(
            app_url=app_url,
            data_dir=data_dir,
            emulator_url=emulator_url,
            app=app,
            integration=integration,
            integration_username=jwt_username if integration else None,
            token_key=get("SFOAUTH_TOKEN_KEY")
            or _read_or_create(data_dir / "token.key", TokenCipher.generate_key),
            secret_key=get("EXAMPLE_SECRET_KEY")
            or _read_or_create(
                data_dir / "secret.key", lambda: secrets.token_urlsafe(48)
            ),
            api_version=get("SFOAUTH_API_VERSION") or "62.0",
            register_jwt_key=register,
        )
