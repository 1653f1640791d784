"""``SalesforceMiddleware``: puts a lazy ``request.salesforce`` on every request.

Add ``"sfoauth_django.middleware.SalesforceMiddleware"`` after
``AuthenticationMiddleware``. Nothing is read until the view uses it; clients opened by the
view are closed after the response. Works under WSGI and ASGI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

from .session import SalesforceSession

__all__ = ["SalesforceMiddleware"]


def _attach(request: HttpRequest) -> SalesforceSession:
    # One decision for both paths: a decorator that already attached a session wins.
    existing = getattr(request, "salesforce", None)
    if isinstance(existing, SalesforceSession):
        return existing
    session = SalesforceSession(request)
    request.salesforce = session  # type: ignore[attr-defined]
    return session


@sync_and_async_middleware
def SalesforceMiddleware(  # noqa: N802 - a middleware factory is named like a class
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], Any]:
    """Sets ``request.salesforce`` (a :class:`~sfoauth_django.session.SalesforceSession`)."""
    if iscoroutinefunction(get_response):
        aget_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = (
            get_response
        )

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            session = _attach(request)
            try:
                return await aget_response(request)
            finally:
                await session.aclose()

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        session = _attach(request)
        try:
            response: HttpResponseBase = get_response(request)
            return response
        finally:
            session.close()

    return middleware
