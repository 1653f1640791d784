"""The journey pages: sync and async decorated pages calling the REST API through
``request.salesforce``, an identity page and an undecorated home page."""

from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sfoauth_django import salesforce_required

QUERY = {"q": "SELECT Name FROM Account"}
PATH = "/services/data/v62.0/query"


def _api_page(
    request: HttpRequest, kind: str, status: int, body: object
) -> HttpResponse:
    names = []
    if status == 200 and isinstance(body, dict):
        names = [r.get("Name") for r in body.get("records", [])]
    return render(
        request,
        "journey/api.html",
        {"kind": kind, "status": status, "names": names, "pid": os.getpid()},
    )


def home(request: HttpRequest) -> HttpResponse:
    """Undecorated: the template reads ``request.salesforce``."""
    return render(request, "journey/home.html", {"pid": os.getpid()})


@salesforce_required
def api_sync(request: HttpRequest) -> HttpResponse:
    response = request.salesforce.client.get(PATH, params=QUERY)  # type: ignore[attr-defined]
    return _api_page(request, "sync", response.status_code, response.json())


@salesforce_required
async def api_async(request: HttpRequest) -> HttpResponse:
    client = await request.salesforce.aclient()  # type: ignore[attr-defined]
    response = await client.get(PATH, params=QUERY)
    return _api_page(request, "async", response.status_code, response.json())


@salesforce_required
def identity(request: HttpRequest) -> HttpResponse:
    who = request.salesforce.identity  # type: ignore[attr-defined]
    return render(request, "journey/identity.html", {"who": who})
