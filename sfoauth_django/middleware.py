"""``SalesforceMiddleware``: ``request.salesforce`` on every request.

Add ``"sfoauth_django.middleware.SalesforceMiddleware"`` after
``AuthenticationMiddleware``. ``request.salesforce`` is always the user's
:class:`~sfoauth_django.session.SalesforceSession`: a lazy object, falsy when the user has
no usable connection (anonymous, never connected, disconnected, or one that needs
re-authorization), the same object under WSGI and ASGI. Reading it never raises; nothing
is read from the database until it is used:

* ``if request.salesforce:`` looks up the user's connection key (one query per process
  and user, then cached) and keeps the answer for the request;
* under ASGI the middleware resolves that key before the view with the async lookups
  (``await request.auser()`` and the same cached lookup), so an async view can test the
  object without a query inside the event loop. An async view behind the *sync*
  middleware (under WSGI) awaits ``request.salesforce.akey()`` instead.

Clients opened by the view are closed after the response. ``process_exception`` turns
what Salesforce's failures raise in any view (decorated or not) into the documented
answers: re-authorization → the login interstitial with the reason, Salesforce
unreachable → the ``503`` page, a refused app configuration → an ``ERROR`` log and a
generic page (see :mod:`sfoauth_django._responses`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

from ._responses import handle_exception
from .session import SalesforceSession

__all__ = ["SalesforceMiddleware"]


@sync_and_async_middleware
def SalesforceMiddleware(  # noqa: N802 - a middleware factory is named like a class
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], Any]:
    """Sets ``request.salesforce``: the user's lazy session, falsy without a usable
    connection."""
    if iscoroutinefunction(get_response):
        aget_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = (
            get_response
        )

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            session = SalesforceSession(request)
            await session.akey()  # so that bool() needs no query in the event loop
            request.salesforce = session  # type: ignore[attr-defined]
            try:
                return await aget_response(request)
            finally:
                await session.aclose()

        async_middleware.process_exception = handle_exception  # type: ignore[attr-defined]
        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        session = SalesforceSession(request)
        request.salesforce = session  # type: ignore[attr-defined]
        try:
            response: HttpResponseBase = get_response(request)
            return response
        finally:
            session.close()

    middleware.process_exception = handle_exception  # type: ignore[attr-defined]
    return middleware
