"""``@salesforce_required`` for function views (sync and async) and
``SalesforceRequiredMixin`` for class-based views.

Both make ``request.salesforce`` usable: a user without a connection is sent to
``sfoauth:login?next=<this page>`` (or to Django's login page first when anonymous and
"Sign in with Salesforce" is off); a connection Salesforce refused is sent back through
login with a message. ``connection="name"`` uses a named server-to-server connection
(``SFOAUTH["CONNECTIONS"]``), minted on first use.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.urls import reverse

from sfoauth_core.exceptions import ReauthorizationRequired, TokenNotFoundError

from .adapter import get_adapter
from .session import SalesforceSession, _auser_pk, _user_pk

__all__ = ["SalesforceRequiredMixin", "salesforce_required"]

V = TypeVar("V", bound=Callable[..., Any])

REAUTH_MESSAGE = "Your Salesforce connection has expired. Please connect again."


def _login_redirect(request: HttpRequest, *, reauth: bool) -> HttpResponse:
    if reauth:
        messages.warning(request, REAUTH_MESSAGE, fail_silently=True)
    url = reverse("sfoauth:login") + "?" + urlencode({"next": request.get_full_path()})
    return HttpResponseRedirect(url)


def _anonymous_redirect(request: HttpRequest) -> HttpResponse:
    if get_adapter(request).is_sign_in_allowed(request):
        return _login_redirect(request, reauth=False)
    return redirect_to_login(request.get_full_path())


def _check(
    request: HttpRequest, connection: str | None
) -> tuple[SalesforceSession, HttpResponse | None]:
    session = SalesforceSession(request, connection=connection)
    request.salesforce = session  # type: ignore[attr-defined]
    if connection is None and _user_pk(request) is None:
        return session, _anonymous_redirect(request)
    try:
        _ = session.token
    except TokenNotFoundError:
        return session, _login_redirect(request, reauth=False)
    except ReauthorizationRequired:
        return session, _login_redirect(request, reauth=True)
    return session, None


async def _acheck(
    request: HttpRequest, connection: str | None
) -> tuple[SalesforceSession, HttpResponse | None]:
    session = SalesforceSession(request, connection=connection)
    request.salesforce = session  # type: ignore[attr-defined]
    if connection is None and await _auser_pk(request) is None:
        return session, _anonymous_redirect(request)
    try:
        await session.atoken()
    except TokenNotFoundError:
        return session, _login_redirect(request, reauth=False)
    except ReauthorizationRequired:
        return session, _login_redirect(request, reauth=True)
    return session, None


def _decorate(view: V, connection: str | None) -> V:
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            session, redirect = await _acheck(request, connection)
            if redirect is not None:
                return redirect
            try:
                return await view(request, *args, **kwargs)
            except ReauthorizationRequired:
                return _login_redirect(request, reauth=True)
            finally:
                await session.aclose()

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        session, redirect = _check(request, connection)
        if redirect is not None:
            return redirect
        try:
            return view(request, *args, **kwargs)
        except ReauthorizationRequired:
            return _login_redirect(request, reauth=True)
        finally:
            session.close()

    return wrapper  # type: ignore[return-value]


@overload
def salesforce_required(view: V, /) -> V: ...
@overload
def salesforce_required(*, connection: str | None = None) -> Callable[[V], V]: ...


def salesforce_required(
    view: V | None = None, /, *, connection: str | None = None
) -> Any:
    """Require a Salesforce connection for a sync or async function view.

    Args:
        view: the view (when used without parentheses).
        connection: a named connection from ``SFOAUTH["CONNECTIONS"]`` instead of the
            user's own.

    Example:
        >>> @salesforce_required
        ... def accounts(request):
        ...     return JsonResponse(request.salesforce.client.get("/services/data/v62.0/query",
        ...                         params={"q": "SELECT Name FROM Account"}).json())
    """
    if view is not None:
        return _decorate(view, connection)
    return functools.partial(_decorate, connection=connection)


class SalesforceRequiredMixin:
    """Class-based view twin of :func:`salesforce_required` (sync and async views).

    Set ``salesforce_connection = "name"`` to use a named connection.
    """

    salesforce_connection: str | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        parent: Any = super()
        if getattr(self, "view_is_async", False):
            return self._adispatch(parent, request, *args, **kwargs)
        session, redirect = _check(request, self.salesforce_connection)
        if redirect is not None:
            return redirect
        try:
            response: HttpResponseBase = parent.dispatch(request, *args, **kwargs)
            return response
        except ReauthorizationRequired:
            return _login_redirect(request, reauth=True)
        finally:
            session.close()

    async def _adispatch(
        self, parent: Any, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> Any:
        session, redirect = await _acheck(request, self.salesforce_connection)
        if redirect is not None:
            return redirect
        try:
            return await parent.dispatch(request, *args, **kwargs)
        except ReauthorizationRequired:
            return _login_redirect(request, reauth=True)
        finally:
            await session.aclose()
