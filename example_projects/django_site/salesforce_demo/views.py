"""The example's views. Sync views: ``request.salesforce.client`` is an ``httpx.Client``
that adds the bearer token and refreshes it once when Salesforce says it expired."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from sfoauth_core.exceptions import SFOAuthError
from sfoauth_django.decorators import salesforce_required
from sfoauth_django.models import connection_key, get_token_model

ACCOUNT_SOQL = "SELECT Id, Name, Industry FROM Account ORDER BY Name LIMIT 10"


def fetch_org_data(client: httpx.Client) -> dict[str, Any]:
    """Org limits and a SOQL query of Accounts.

    Raises:
        httpx.HTTPStatusError: the REST API answered with an error.
    """
    version = settings.SALESFORCE_API_VERSION
    limits = client.get(f"/services/data/v{version}/limits")
    limits.raise_for_status()
    query = client.get(f"/services/data/v{version}/query", params={"q": ACCOUNT_SOQL})
    query.raise_for_status()
    body = query.json()
    return {
        "limits": sorted(
            (name, value)
            for name, value in limits.json().items()
            if isinstance(value, dict)
        ),
        "accounts": body.get("records", []),
        "total": body.get("totalSize", 0),
    }


def _rest_error(
    request: HttpRequest, title: str, exc: httpx.HTTPStatusError
) -> HttpResponse:
    return render(
        request,
        "salesforce_demo/error.html",
        {
            "title": title,
            "message": f"The REST API answered {exc.response.status_code}.",
        },
        status=502,
    )


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@never_cache
def home(request: HttpRequest) -> HttpResponse:
    connected = bool(request.user.is_authenticated and request.salesforce)  # type: ignore[attr-defined]
    return render(
        request,
        "salesforce_demo/home.html",
        {
            "connected": connected,
            "emulator_url": settings.EMULATOR_URL,
            "login_host": settings.SFOAUTH["LOGIN_URL"],
        },
    )


@never_cache
@salesforce_required
def org(request: HttpRequest) -> HttpResponse:
    salesforce = request.salesforce  # type: ignore[attr-defined]
    try:
        data = fetch_org_data(salesforce.client)
    except httpx.HTTPStatusError as exc:
        return _rest_error(request, "My org", exc)
    token = salesforce.token
    return render(
        request,
        "salesforce_demo/org.html",
        {
            **data,
            "identity": salesforce.identity,
            "org_id": token.org_id,
            "instance_url": token.instance_url,
        },
    )


# The integration connection ------------------------------------------------------
_registered = threading.Event()
_register_lock = threading.Lock()


def register_demo_jwt_key() -> None:
    """Emulator mode: give the emulator's JWT app the example's demo certificate
    (control API), once per process, before the first JWT bearer call."""
    if not settings.REGISTER_JWT_KEY_WITH_EMULATOR or _registered.is_set():
        return
    from demo_site.env import public_pem

    with _register_lock:
        if _registered.is_set():
            return
        with open(settings.JWT_KEY_FILE, encoding="utf-8") as fh:
            certificate = public_pem(fh.read())
        answer = httpx.patch(
            f"{settings.EMULATOR_URL}/__emulator__/apps/jwt",
            json={
                "certificate_pem": certificate,
                "admin_approved_users": ["jane@acme.com", settings.JWT_USERNAME],
            },
            timeout=10,
        )
        answer.raise_for_status()
        _registered.set()


@salesforce_required(connection="integration")
def _integration_page(request: HttpRequest) -> HttpResponse:
    salesforce = request.salesforce  # type: ignore[attr-defined]
    try:
        data = fetch_org_data(salesforce.client)
    except httpx.HTTPStatusError as exc:
        return _rest_error(request, "Integration (JWT bearer)", exc)
    return render(
        request,
        "salesforce_demo/integration.html",
        {
            **data,
            "username": settings.JWT_USERNAME,
            "org_id": salesforce.token.org_id,
        },
    )


@never_cache
@login_required
def integration(request: HttpRequest) -> HttpResponse:
    if "integration" not in settings.SFOAUTH["CONNECTIONS"]:
        return render(request, "salesforce_demo/integration.html", {"missing": True})
    try:
        register_demo_jwt_key()
        return _integration_page(request)
    except SFOAuthError as exc:
        # Messages of sfoauth errors name settings and Salesforce's error, never a
        # secret: safe to show, and they say what to fix (e.g. approve the user).
        return render(
            request,
            "salesforce_demo/error.html",
            {"title": "Integration (JWT bearer)", "message": str(exc)},
            status=502,
        )


@never_cache
@login_required
def status(request: HttpRequest) -> HttpResponse:
    model = get_token_model()._default_manager
    return render(
        request,
        "salesforce_demo/status.html",
        {
            "connections": model.filter(user=request.user, name="").order_by(
                "-updated_at"
            ),
            "integration": model.filter(key=connection_key("integration")).first(),
        },
    )
