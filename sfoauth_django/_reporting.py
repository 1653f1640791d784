"""Keep flow secrets out of Django's error reports (issue 13 defect 1).

A failure in the login or callback view must not hand a live authorization code, its
PKCE verifier, the state or a token to whoever reads the technical 500 page
(``DEBUG=True``) or the ``AdminEmailHandler`` mail (``DEBUG=False``). Three layers:

* :func:`protect_flow_view` marks the view ``sensitive_variables()`` and
  ``sensitive_post_parameters()`` (every local and POST value), so every frame called
  from the view is cleansed;
* it sets :class:`FlowExceptionReporterFilter` as the request's
  ``exception_reporter_filter``: active even with ``DEBUG=True`` (Django's own filter
  only cleans when ``DEBUG`` is off), and it also cleanses every frame of sfoauth's and
  httpx's modules (generator frames lose their callers, so the decorator alone misses
  them) and masks ``QUERY_STRING`` in ``META``;
* when an exception leaves the view, the request's query is replaced by a masked copy
  (``request.GET`` and ``META["QUERY_STRING"]``): Django renders both, and the request's
  ``repr`` and URL shown on the page are built from them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.http import HttpRequest, QueryDict
from django.views.debug import SafeExceptionReporterFilter
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

__all__ = ["FlowExceptionReporterFilter", "protect_flow_view"]

F = TypeVar("F", bound=Callable[..., Any])

#: Frames of these packages are always cleansed on a protected request.
_PROTECTED_MODULES = ("sfoauth_core", "sfoauth_django", "httpx", "httpcore", "h11")
#: Query parameters that are credentials (the callback's, and a user-agent fragment's).
SECRET_QUERY_PARAMETERS = frozenset(
    {"code", "state", "access_token", "refresh_token", "id_token", "signature", "nonce"}
)
MASK = "********************"


class FlowExceptionReporterFilter(SafeExceptionReporterFilter):
    """The exception reporter filter of sfoauth's login and callback requests."""

    cleansed_substitute = MASK

    def is_active(self, request: HttpRequest | None) -> bool:
        return True  # also with DEBUG=True: these requests carry live credentials

    def get_traceback_frame_variables(
        self, request: HttpRequest | None, tb_frame: FrameType
    ) -> Any:
        module = str(tb_frame.f_globals.get("__name__", ""))
        if module.split(".", 1)[0] in _PROTECTED_MODULES:
            return [(name, self.cleansed_substitute) for name in tb_frame.f_locals]
        return super().get_traceback_frame_variables(request, tb_frame)

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        if meta.get("QUERY_STRING"):
            meta["QUERY_STRING"] = self.cleansed_substitute
        return meta


_FILTER = FlowExceptionReporterFilter()


def _scrub_query(request: HttpRequest) -> None:
    pairs = [
        (name, MASK if name in SECRET_QUERY_PARAMETERS else value)
        for name, values in request.GET.lists()
        for value in values
    ]
    query = urlencode(pairs)
    request.GET = QueryDict(query)
    request.META["QUERY_STRING"] = query


def protect_flow_view(view: F) -> F:
    """Decorate a view that handles codes, verifiers, states or tokens (see module)."""

    @sensitive_post_parameters()
    @sensitive_variables()
    @functools.wraps(view)
    def protected(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        request.exception_reporter_filter = _FILTER
        try:
            return view(request, *args, **kwargs)
        except BaseException:
            _scrub_query(request)
            raise

    return protected  # type: ignore[return-value]
