"""``@salesforce_required`` for function views (sync and async) and
``SalesforceRequiredMixin`` for class-based views.

Both make ``request.salesforce`` usable: a user without a connection is sent to
``sfoauth:login?next=<this page>`` (or to Django's login page first when anonymous and
"Sign in with Salesforce" is off); a connection Salesforce refused is sent back to the
login interstitial, which says why (``reason=reauth``, ``reason=disconnected``);
Salesforce unreachable is a ``503`` page (see :mod:`sfoauth_django._responses`).
``connection="name"`` uses a named server-to-server connection
(``SFOAUTH["CONNECTIONS"]``), minted on first use.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from asgiref.sync import sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from sfoauth_core.exceptions import SFOAuthError, TokenNotFoundError
from sfoauth_core.storage import NEEDS_REAUTH

from . import _responses
from ._flows import DISCONNECTED
from .adapter import get_adapter
from .models import get_token_model
from .session import SalesforceSession, _auser_pk, _user_pk

__all__ = ["SalesforceRequiredMixin", "salesforce_required"]

V = TypeVar("V", bound=Callable[..., Any])

#: What the login interstitial says after a decorated view found the connection refused.
REAUTH_MESSAGE = _responses.REASONS["reauth"]


def _not_connected(request: HttpRequest, pk: Any) -> HttpResponse:
    """The redirect for a signed-in user without a usable connection, with the reason
    when there is one (flagged by Salesforce, or just disconnected)."""
    flagged = (
        get_token_model()
        ._default_manager.filter(user_id=pk, name="", status=NEEDS_REAUTH)
        .exists()
    )
    if flagged:
        return _responses.reconnect(request, "reauth")
    session = getattr(request, "session", None)
    if session is not None and session.pop(DISCONNECTED, False):
        return _responses.reconnect(request, "disconnected")
    return _responses.reconnect(request)


def _anonymous_redirect(request: HttpRequest) -> HttpResponse:
    if get_adapter(request).is_sign_in_allowed(request):
        return _responses.reconnect(request)
    return redirect_to_login(request.get_full_path())


def _handled(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Salesforce's failures become the documented answers; anything else re-raises."""
    response = _responses.handle_exception(request, exc)
    if response is None:
        raise exc
    return response


def _check(
    request: HttpRequest, connection: str | None
) -> tuple[SalesforceSession, HttpResponseBase | None]:
    session = SalesforceSession(request, connection=connection)
    request.salesforce = session  # type: ignore[attr-defined]
    pk = None if connection is not None else _user_pk(request)
    if connection is None and pk is None:
        return session, _anonymous_redirect(request)
    try:
        _ = session.token
    except TokenNotFoundError:
        return session, _not_connected(request, pk)
    except SFOAuthError as exc:
        return session, _handled(request, exc)
    return session, None


async def _acheck(
    request: HttpRequest, connection: str | None
) -> tuple[SalesforceSession, HttpResponseBase | None]:
    session = SalesforceSession(request, connection=connection)
    request.salesforce = session  # type: ignore[attr-defined]
    pk = None if connection is not None else await _auser_pk(request)
    if connection is None and pk is None:
        return session, _anonymous_redirect(request)
    try:
        await session.atoken()
    except TokenNotFoundError:
        return session, await sync_to_async(_not_connected)(request, pk)
    except SFOAuthError as exc:
        return session, await sync_to_async(_handled)(request, exc)
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
            except Exception as exc:  # noqa: BLE001 - re-raised unless Salesforce's
                return await sync_to_async(_handled)(request, exc)
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
        except Exception as exc:  # noqa: BLE001 - re-raised unless Salesforce's
            return _handled(request, exc)
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
        except Exception as exc:  # noqa: BLE001 - re-raised unless Salesforce's
            return _handled(request, exc)
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
        except Exception as exc:  # noqa: BLE001 - re-raised unless Salesforce's
            return await sync_to_async(_handled)(request, exc)
        finally:
            await session.aclose()
