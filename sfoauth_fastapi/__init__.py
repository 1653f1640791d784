"""sfoauth for FastAPI: a router to mount, dependencies, SQLAlchemy and Redis stores.

Example:
    >>> sf = SFOAuth(app_config, store=store, secret_key=secret, user_key=current_user)
    >>> api = FastAPI(lifespan=sf.lifespan)
    >>> api.include_router(sf.router, prefix="/salesforce")
"""

from __future__ import annotations

from .app import (
    ConfigIssue,
    Connection,
    RedactCallbackFilter,
    SFOAuth,
    SFOAuthConfigurationError,
)
from .dependencies import (
    CallbackParams,
    ConnectionDependency,
    CookieIdentity,
    SalesforceCallback,
    SalesforceSession,
)
from .errors import ErrorCode, ErrorModel, SFOAuthHTTPException, http_error
from .router import get_sfoauth_router
from .state import (
    MAX_PENDING_LOGINS,
    CookieSigner,
    InMemoryPendingFlowStore,
    PendingFlow,
    PendingFlowStore,
    RedisPendingFlowStore,
)

try:
    from .storage import (
        SQLAlchemyPendingFlowStore,
        SQLAlchemyTokenStore,
        create_tables,
        metadata,
    )
except ImportError:  # pragma: no cover - the sqlalchemy extra is not installed
    pass

__all__ = [
    "MAX_PENDING_LOGINS",
    "CallbackParams",
    "ConfigIssue",
    "Connection",
    "ConnectionDependency",
    "CookieIdentity",
    "CookieSigner",
    "ErrorCode",
    "ErrorModel",
    "InMemoryPendingFlowStore",
    "PendingFlow",
    "PendingFlowStore",
    "RedactCallbackFilter",
    "RedisPendingFlowStore",
    "SFOAuth",
    "SFOAuthConfigurationError",
    "SFOAuthHTTPException",
    "SQLAlchemyPendingFlowStore",
    "SQLAlchemyTokenStore",
    "SalesforceCallback",
    "SalesforceSession",
    "create_tables",
    "get_sfoauth_router",
    "http_error",
    "metadata",
]
