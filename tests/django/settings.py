"""Django settings for the sfoauth_django tests (``DJANGO_SETTINGS_MODULE=settings`` with
``tests/django`` on ``sys.path``; ``tests/django/conftest.py`` sets both).

The default database is SQLite; the ``postgres`` alias (PostgreSQL at 127.0.0.1:5432,
test database ``test_sfoauth``) is used only by the row-lock tests, which create it
themselves.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

_DSN = urlsplit(
    os.environ.get(
        "SFOAUTH_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
    )
)

SECRET_KEY = "sfoauth-django-tests-not-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
ROOT_URLCONF = "sfoauth_testapp.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "sfoauth_django",
    "sfoauth_testapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "sfoauth_django.middleware.SalesforceMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "sfoauth_django.backends.SalesforceBackend",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": (_DSN.path or "/test").lstrip("/") or "test",
        "USER": _DSN.username or "postgres",
        "PASSWORD": _DSN.password or "",
        "HOST": _DSN.hostname or "127.0.0.1",
        "PORT": str(_DSN.port or 5432),
        "TEST": {"NAME": "test_sfoauth"},  # the row-lock tests add the process id
    },
}

# The emulator's "web" app (sfoauth_core.testing): loopback-free My Domain URLs, reached
# through the in-process transport that the HTTP client factory hands out.
SFOAUTH = {
    "CLIENT_ID": "3MVG9Example.WebServerApp",
    "CLIENT_SECRET": "1F2E3D4C5B6A7980A1B2C3D4E5F60718",
    "REDIRECT_URI": "https://app.example.com/callback",
    "LOGIN_URL": "https://acme.my.salesforce.com",
    "LOGIN_URLS": {"login": "https://login.salesforce.com"},
    "SCOPES": ["api", "refresh_token", "openid", "id", "profile", "email"],
    "TOKEN_KEYS": ["pVOFZMsSsEGFaWxdHDfoWhQblV4hlg4DENOtiiK7QYY="],
    "HTTP_CLIENT_FACTORY": "support.django_testkit.http_client",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"], "level": "DEBUG"},
}
