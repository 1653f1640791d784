"""Settings of the sfoauth Django example, read from environment variables.

Against the local emulator by default (``sfoauth emulator`` on http://127.0.0.1:8999,
or ``sfoauth demo django`` which starts everything); against a real org when
``SFOAUTH_CLIENT_ID`` is set. The variables are listed in ``example_projects/README.md``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from sfoauth_core.storage import TokenCipher

from . import env

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env.get("EXAMPLE_DATA_DIR") or BASE_DIR / ".data")
DATA_DIR.mkdir(parents=True, exist_ok=True)

APP_URL = (env.get("EXAMPLE_APP_URL") or env.DEFAULT_APP_URL).rstrip("/")
EMULATOR_URL: str | None = None
if not env.get("SFOAUTH_CLIENT_ID"):
    EMULATOR_URL = (env.get("SFOAUTH_EMULATOR_URL") or env.DEFAULT_EMULATOR_URL).rstrip(
        "/"
    )

SECRET_KEY = env.get("EXAMPLE_SECRET_KEY") or env.read_or_create(
    DATA_DIR / "secret.key", lambda: secrets.token_urlsafe(50)
)
# A local development setup against the emulator: DEBUG on unless EXAMPLE_DEBUG=0.
DEBUG = (env.get("EXAMPLE_DEBUG") or ("1" if EMULATOR_URL else "0")) == "1"
ALLOWED_HOSTS = (env.get("EXAMPLE_ALLOWED_HOSTS") or "127.0.0.1,localhost,[::1]").split(
    ","
)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = APP_URL.startswith("https://")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "sfoauth_django",
    "salesforce_demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "sfoauth_django.middleware.SalesforceMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"
ASGI_APPLICATION = "demo_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
    }
}

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# sfoauth ---------------------------------------------------------------------------
if EMULATOR_URL is not None:
    LOGIN_HOST = EMULATOR_URL
    CLIENT_ID = env.EMULATOR_WEB_CLIENT_ID
    CLIENT_SECRET: str | None = env.EMULATOR_WEB_CLIENT_SECRET
else:
    LOGIN_HOST = env.get("SFOAUTH_LOGIN_URL") or "https://login.salesforce.com"
    CLIENT_ID = env.get("SFOAUTH_CLIENT_ID") or ""
    CLIENT_SECRET = env.get("SFOAUTH_CLIENT_SECRET")

SFOAUTH: dict[str, Any] = {
    "CLIENT_ID": CLIENT_ID,
    "CLIENT_SECRET": CLIENT_SECRET,
    # One callback URL for both example apps (and the emulator's default app): the
    # project also routes it without the trailing slash (see urls.py).
    "REDIRECT_URI": env.get("SFOAUTH_REDIRECT_URI") or APP_URL + "/salesforce/callback",
    "LOGIN_URL": LOGIN_HOST,
    "SCOPES": (env.get("SFOAUTH_SCOPES") or env.DEFAULT_SCOPES)
    .replace(",", " ")
    .split(),
    "ALLOW_LOOPBACK": EMULATOR_URL is not None,
    "TOKEN_KEYS": [
        env.get("SFOAUTH_TOKEN_KEY")
        or env.read_or_create(DATA_DIR / "token.key", TokenCipher.generate_key)
    ],
    "LOGIN_REDIRECT_URL": "/org/",
    "DISCONNECT_REDIRECT_URL": "/",
    "CONNECTIONS": {},
}

# The "integration" connection: JWT bearer, server to server.
JWT_KEY_FILE = env.get("SFOAUTH_JWT_PRIVATE_KEY_FILE")
#: Emulator mode with a generated key: register it with the emulator before first use.
REGISTER_JWT_KEY_WITH_EMULATOR = JWT_KEY_FILE is None and EMULATOR_URL is not None
if REGISTER_JWT_KEY_WITH_EMULATOR:
    JWT_KEY_FILE = str(DATA_DIR / "jwt-demo-key.pem")
    env.read_or_create(Path(JWT_KEY_FILE), env.make_rsa_key)
JWT_USERNAME = env.get("SFOAUTH_JWT_USERNAME") or (
    env.EMULATOR_JWT_USERNAME if EMULATOR_URL else None
)
JWT_CLIENT_ID = env.get("SFOAUTH_JWT_CLIENT_ID") or (
    env.EMULATOR_JWT_CLIENT_ID if EMULATOR_URL else CLIENT_ID
)
if JWT_KEY_FILE and JWT_USERNAME and JWT_CLIENT_ID:
    SFOAUTH["CONNECTIONS"]["integration"] = {
        "FLOW": "jwt_bearer",
        "CLIENT_ID": JWT_CLIENT_ID,
        "CLIENT_SECRET": env.get("SFOAUTH_JWT_CLIENT_SECRET"),
        "PRIVATE_KEY_FILE": JWT_KEY_FILE,
        "USERNAME": JWT_USERNAME,
        "LOGIN_URL": env.get("SFOAUTH_JWT_LOGIN_URL") or LOGIN_HOST,
    }

SALESFORCE_API_VERSION = env.get("SFOAUTH_API_VERSION") or "62.0"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"sfoauth": {"handlers": ["console"], "level": "INFO"}},
}
