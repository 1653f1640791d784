"""Helpers shared by the emulator tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from sfoauth_core.testing import (
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USERNAME,
    SalesforceEmulator,
)

LOGIN = "https://login.salesforce.com"
MY_DOMAIN = "https://acme.my.salesforce.com"
TOKEN = "/services/oauth2/token"


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def fragment_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).fragment).items()}


def web_params(
    emu: SalesforceEmulator, name: str = "web", **extra: Any
) -> dict[str, str]:
    app = emu.apps[name]
    data = {"client_id": app.client_id, "redirect_uri": app.callback_urls[0]}
    if app.client_secret and name != "public":
        data["client_secret"] = app.client_secret
    data.update(extra)
    return data


def assert_error(
    response: httpx.Response, error: str, description: str | None = None
) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == error, body
    if description is not None:
        assert body["error_description"] == description, body


def password_form(**extra: str) -> dict[str, str]:
    """A username-password grant for the default user (password + security token)."""
    return {
        "grant_type": "password",
        "username": DEFAULT_USERNAME,
        "password": DEFAULT_PASSWORD + DEFAULT_SECURITY_TOKEN,
        **extra,
    }
