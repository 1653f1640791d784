"""Views a project would write with sfoauth_django."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import RequestContext, Template
from django.views import View

from sfoauth_django.decorators import SalesforceRequiredMixin, salesforce_required


@salesforce_required
def whoami(request: HttpRequest) -> JsonResponse:
    sf = request.salesforce  # type: ignore[attr-defined]
    token = sf.token
    return JsonResponse({"org_id": token.org_id, "instance_url": sf.instance_url})


@salesforce_required
async def awhoami(request: HttpRequest) -> JsonResponse:
    token = await request.salesforce.atoken()  # type: ignore[attr-defined]
    return JsonResponse({"org_id": token.org_id})


@salesforce_required
def limits(request: HttpRequest) -> JsonResponse:
    response = request.salesforce.client.get("/services/data/v62.0/limits")  # type: ignore[attr-defined]
    return JsonResponse({"status": response.status_code})


@salesforce_required
async def alimits(request: HttpRequest) -> JsonResponse:
    client = await request.salesforce.aclient()  # type: ignore[attr-defined]
    response = await client.get("/services/data/v62.0/limits")
    return JsonResponse({"status": response.status_code})


@salesforce_required(connection="integration")
def integration(request: HttpRequest) -> JsonResponse:
    token = request.salesforce.token  # type: ignore[attr-defined]
    return JsonResponse({"user_id": token.user_id})


class WhoAmIView(SalesforceRequiredMixin, View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"org_id": request.salesforce.token.org_id})  # type: ignore[attr-defined]


class AsyncWhoAmIView(SalesforceRequiredMixin, View):
    async def get(self, request: HttpRequest) -> JsonResponse:
        token = await request.salesforce.atoken()  # type: ignore[attr-defined]
        return JsonResponse({"org_id": token.org_id})


def plain(request: HttpRequest) -> HttpResponse:
    """The benchmark's baseline: reads the user, no Salesforce."""
    return HttpResponse(request.user.get_username())


@salesforce_required
def decorated(request: HttpRequest) -> HttpResponse:
    """The benchmark's decorated view: the user plus the cached token."""
    token = request.salesforce.token  # type: ignore[attr-defined]
    return HttpResponse(request.user.get_username() + (token.org_id or ""))


def optional(request: HttpRequest) -> JsonResponse:
    """Uses the middleware's lazy ``request.salesforce`` without requiring it."""
    sf = request.salesforce  # type: ignore[attr-defined]
    return JsonResponse({"connected": bool(sf)})


def _describe(sf: object) -> dict[str, object]:
    return {"truthy": bool(sf), "type": type(sf).__name__}


def optional_none(request: HttpRequest) -> JsonResponse:
    """``request.salesforce`` is a falsy lazy session without a connection."""
    return JsonResponse(_describe(request.salesforce))  # type: ignore[attr-defined]


async def aoptional_none(request: HttpRequest) -> JsonResponse:
    """The same from an async view (under ASGI the middleware resolved the key before)."""
    return JsonResponse(_describe(request.salesforce))  # type: ignore[attr-defined]


_PAGE = Template(
    "{% if request.salesforce %}connected to {{ request.salesforce.instance_url }}"
    "{% else %}not connected{% endif %}|{{ request.salesforce.instance_url }}"
)


def page(request: HttpRequest) -> HttpResponse:
    """An undecorated page whose template reads ``request.salesforce``."""
    return HttpResponse(_PAGE.render(RequestContext(request)))


def api_page(request: HttpRequest) -> JsonResponse:
    """An undecorated view calling Salesforce through ``request.salesforce.client``."""
    if not request.salesforce:  # type: ignore[attr-defined]
        return JsonResponse({"connected": False})
    response = request.salesforce.client.get("/services/data/v62.0/limits")  # type: ignore[attr-defined]
    return JsonResponse({"status": response.status_code})


async def aapi_page(request: HttpRequest) -> JsonResponse:
    """The async twin (under ASGI ``request.salesforce`` was resolved before)."""
    if not request.salesforce:  # type: ignore[attr-defined]
        return JsonResponse({"connected": False})
    client = await request.salesforce.aclient()  # type: ignore[attr-defined]
    response = await client.get("/services/data/v62.0/limits")
    return JsonResponse({"status": response.status_code})
