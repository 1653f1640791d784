"""``SalesforceMiddleware``: ``request.salesforce`` on every request.

Add ``"sfoauth_django.middleware.SalesforceMiddleware"`` after
``AuthenticationMiddleware``. ``request.salesforce`` is the user's
:class:`~sfoauth_django.session.SalesforceSession`, or ``None`` when the user has no
connection (anonymous, never connected, or disconnected). Clients opened by the view are
closed after the response. Works under WSGI and ASGI:

* **sync** (WSGI, or sync middleware): the attribute is lazy. Nothing is read until the
  view first reads ``request.salesforce``; then the user's connection key is looked up
  (one query per process and user, then cached) and the answer is kept for the request.
* **async** (ASGI): the middleware resolves it before the view with the async
  lookups (``await request.auser()`` and the same cached key lookup), since an async view
  cannot run a query behind an attribute read.

An async view behind the *sync* middleware (an async view under WSGI) reads a
:class:`~sfoauth_django.session.SalesforceSession` that is falsy when there is no
connection: deciding ``None`` there would need a query inside the event loop.

A connection that needs re-authorization counts as none: reading ``request.salesforce``
never raises. ``process_exception`` turns what Salesforce's failures raise in any view
(decorated or not) into the documented answers: re-authorization → the login
interstitial with the reason, Salesforce unreachable → the ``503`` page, a refused app
configuration → an ``ERROR`` log and a generic page (see :mod:`sfoauth_django._responses`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

from ._responses import handle_exception
from .session import SalesforceSession

__all__ = ["SalesforceMiddleware"]

_SESSION = "_sfoauth_session"


class _LazySalesforce:
    """``request.salesforce`` until the first read (a non-data descriptor: the value
    stored on the instance, by the first read or by a decorator, wins)."""

    def __get__(self, request: HttpRequest | None, owner: type | None = None) -> Any:
        if request is None:
            return self
        session: SalesforceSession | None = request.__dict__.get(_SESSION)
        if session is None:
            raise AttributeError("salesforce")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            value = session if session.key is not None else None
            request.__dict__["salesforce"] = value
            return value
        return session  # inside an event loop: no query possible here


@cache
def _lazy_request_class(cls: type) -> type:
    # One subclass per request class (WSGIRequest, ASGIRequest, test requests) that
    # adds only the lazy attribute; isinstance checks against the original still hold.
    return type(
        cls.__name__,
        (cls,),
        {"salesforce": _LazySalesforce(), "__module__": cls.__module__},
    )


def _attach_lazy(request: HttpRequest) -> SalesforceSession:
    session = SalesforceSession(request)
    request.__dict__[_SESSION] = session
    cls: type = type(request)
    if not isinstance(getattr(cls, "salesforce", None), _LazySalesforce):
        request.__class__ = _lazy_request_class(cls)
    return session


@sync_and_async_middleware
def SalesforceMiddleware(  # noqa: N802 - a middleware factory is named like a class
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], Any]:
    """Sets ``request.salesforce``: the user's session, or ``None`` without a
    connection."""
    if iscoroutinefunction(get_response):
        aget_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = (
            get_response
        )

        async def async_middleware(request: HttpRequest) -> HttpResponseBase:
            session = SalesforceSession(request)
            key = await session.akey()
            request.salesforce = session if key is not None else None  # type: ignore[attr-defined]
            try:
                return await aget_response(request)
            finally:
                await session.aclose()

        async_middleware.process_exception = handle_exception  # type: ignore[attr-defined]
        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponseBase:
        session = _attach_lazy(request)
        try:
            response: HttpResponseBase = get_response(request)
            return response
        finally:
            session.close()

    middleware.process_exception = handle_exception  # type: ignore[attr-defined]
    return middleware
