"""sfoauth_core: every Salesforce OAuth 2.0 flow, framework-neutral.

Example:
    >>> from sfoauth_core import ConnectedApp, SalesforceOAuth
    >>> app = ConnectedApp(client_id="3MVG9Example", client_secret="...",
    ...                    redirect_uri="https://app.example.com/callback")
    >>> oauth = SalesforceOAuth(app)
    >>> request = oauth.authorization_url()      # redirect the browser to request.url
"""

from __future__ import annotations

from . import exceptions
from .advisor import FlowName, FlowRecommendation, recommend_flow
from .auth import SalesforceAuth
from .config import ConnectedApp, Secret
from .connections import Connection
from .events import TokenEvents
from .exceptions import (
    ConfigurationError,
    InsecureFlowWarning,
    OAuthProtocolError,
    ReauthorizationRequired,
    SFOAuthError,
)
from .http import AsyncSalesforceOAuth, SalesforceOAuth
from .manager import AsyncTokenManager, TokenManager
from .storage import (
    AsyncInMemoryTokenStore,
    AsyncTokenStore,
    InMemoryTokenStore,
    TokenCipher,
    TokenRecord,
    TokenStore,
)
from .tokens import (
    AssetToken,
    AuthorizationRequest,
    DeviceAuthorization,
    Identity,
    Introspection,
    Token,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "AssetToken",
    "AsyncInMemoryTokenStore",
    "AsyncSalesforceOAuth",
    "AsyncTokenManager",
    "AsyncTokenStore",
    "AuthorizationRequest",
    "ConfigurationError",
    "ConnectedApp",
    "Connection",
    "DeviceAuthorization",
    "FlowName",
    "FlowRecommendation",
    "Identity",
    "InMemoryTokenStore",
    "InsecureFlowWarning",
    "Introspection",
    "OAuthProtocolError",
    "ReauthorizationRequired",
    "SFOAuthError",
    "SalesforceAuth",
    "SalesforceOAuth",
    "Secret",
    "Token",
    "TokenCipher",
    "TokenEvents",
    "TokenManager",
    "TokenRecord",
    "TokenStore",
    "exceptions",
    "recommend_flow",
]
