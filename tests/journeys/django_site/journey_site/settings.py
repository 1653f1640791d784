"""A small Django project for the journeys, against a separate `sfoauth emulator`.

Read from the environment the journey sets: ``JOURNEY_EMULATOR_URL``,
``JOURNEY_SANDBOX_URL``, ``JOURNEY_APP_URL``, ``JOURNEY_DB`` (SQLite file) and ``JOURNEY_TOKEN_KEY`` (keys, comma-separated).
"""

from __future__ import annotations

import os

from sfoauth_core.testing import DEFAULT_CLIENT_SECRET, WEB_APP_CLIENT_ID

EMULATOR_URL = os.environ["JOURNEY_EMULATOR_URL"]
APP_URL = os.environ["JOURNEY_APP_URL"]

SECRET_KEY = "journey-tests-only-" + "x" * 40
DEBUG = False  # what users run: no technical 500 page
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "sfoauth_django",
    "journey_site",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "sfoauth_django.middleware.SalesforceMiddleware",
]
ROOT_URLCONF = "journey_site.urls"
WSGI_APPLICATION = "journey_site.wsgi.application"
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
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["JOURNEY_DB"],
    }
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

SFOAUTH = {
    "CLIENT_ID": WEB_APP_CLIENT_ID,
    "CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
    "REDIRECT_URI": APP_URL + "/salesforce/callback/",
    "LOGIN_URL": EMULATOR_URL,
    # ?domain=sandbox: the emulator's sandbox (its test.salesforce.com).
    "LOGIN_URLS": {"sandbox": os.environ["JOURNEY_SANDBOX_URL"]},
    "ALLOW_LOOPBACK": True,
    "SCOPES": ["api", "refresh_token", "id"],
    # Comma-separated: the first encrypts, the others still decrypt (a key rotation).
    "TOKEN_KEYS": [k for k in os.environ["JOURNEY_TOKEN_KEY"].split(",") if k],
    "LOGIN_REDIRECT_URL": "/",
    "DISCONNECT_REDIRECT_URL": "/",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "sfoauth": {"handlers": ["console"], "level": "INFO"},
        # Tracebacks of 500s in the journey's process log (DEBUG is off).
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}
