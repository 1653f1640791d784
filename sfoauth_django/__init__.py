"""sfoauth for Django: views, middleware, decorators and encrypted model storage.

Add ``"sfoauth_django"`` to ``INSTALLED_APPS``, ``path("salesforce/",
include("sfoauth_django.urls"))`` to your URLs, set ``SFOAUTH = {...}`` and decorate the
views that need Salesforce with :func:`salesforce_required`.

Names are imported lazily, so importing the package does not need the app registry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .adapter import DefaultSFOAuthAdapter, get_adapter
    from .backends import SalesforceBackend
    from .conf import sfoauth_settings
    from .decorators import SalesforceRequiredMixin, salesforce_required
    from .middleware import SalesforceMiddleware
    from .models import AbstractSalesforceConnection, get_token_model
    from .session import SalesforceSession
    from .storage import AsyncDjangoTokenStore, DjangoTokenStore
    from .token_exchange import connect_with_token_exchange

__all__ = [
    "AbstractSalesforceConnection",
    "AsyncDjangoTokenStore",
    "DefaultSFOAuthAdapter",
    "DjangoTokenStore",
    "SalesforceBackend",
    "SalesforceMiddleware",
    "SalesforceRequiredMixin",
    "SalesforceSession",
    "connect_with_token_exchange",
    "get_adapter",
    "get_token_model",
    "salesforce_required",
    "sfoauth_settings",
]

_MODULES = {
    "AbstractSalesforceConnection": "models",
    "AsyncDjangoTokenStore": "storage",
    "DefaultSFOAuthAdapter": "adapter",
    "DjangoTokenStore": "storage",
    "SalesforceBackend": "backends",
    "SalesforceMiddleware": "middleware",
    "SalesforceRequiredMixin": "decorators",
    "SalesforceSession": "session",
    "connect_with_token_exchange": "token_exchange",
    "get_adapter": "adapter",
    "get_token_model": "models",
    "salesforce_required": "decorators",
    "sfoauth_settings": "conf",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
