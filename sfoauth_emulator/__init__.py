"""The Salesforce OAuth emulator (a starlette ASGI app); see
:class:`SalesforceEmulator`."""

from __future__ import annotations

from .app import SalesforceEmulator, build_app
from .constants import (
    ASSET_APP_CLIENT_ID,
    CC_APP_CLIENT_ID,
    DEFAULT_CALLBACK_URLS,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_ORG_ID,
    DEFAULT_ORG_NAME,
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USER_ID,
    DEFAULT_USERNAME,
    DEVICE_APP_CLIENT_ID,
    INACTIVE_USERNAME,
    INTEGRATION_USER_ID,
    INTEGRATION_USERNAME,
    JWT_APP_CERTIFICATE_FILE,
    JWT_APP_CERTIFICATE_PEM,
    JWT_APP_CLIENT_ID,
    JWT_APP_PRIVATE_KEY_FILE,
    JWT_APP_PRIVATE_KEY_PEM,
    PUBLIC_APP_CLIENT_ID,
    WEB_APP_CLIENT_ID,
)
from .crypto import certificate_pem_for, new_private_key_pem, public_key_pem
from .server import run
from .state import (
    AssetTokenConfig,
    EmulatedApp,
    EmulatedOrg,
    EmulatedUser,
    Fault,
    LogEntry,
    TokenExchangeConfig,
)
from .tls import EmulatorTLS
from .transport import EmulatorAsyncTransport, EmulatorTransport

__all__ = [
    "ASSET_APP_CLIENT_ID",
    "CC_APP_CLIENT_ID",
    "DEFAULT_CALLBACK_URLS",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_ORG_ID",
    "DEFAULT_ORG_NAME",
    "DEFAULT_PASSWORD",
    "DEFAULT_SECURITY_TOKEN",
    "DEFAULT_USERNAME",
    "DEFAULT_USER_ID",
    "DEVICE_APP_CLIENT_ID",
    "INACTIVE_USERNAME",
    "INTEGRATION_USERNAME",
    "INTEGRATION_USER_ID",
    "JWT_APP_CERTIFICATE_FILE",
    "JWT_APP_CERTIFICATE_PEM",
    "JWT_APP_CLIENT_ID",
    "JWT_APP_PRIVATE_KEY_FILE",
    "JWT_APP_PRIVATE_KEY_PEM",
    "PUBLIC_APP_CLIENT_ID",
    "WEB_APP_CLIENT_ID",
    "AssetTokenConfig",
    "EmulatedApp",
    "EmulatedOrg",
    "EmulatedUser",
    "EmulatorAsyncTransport",
    "EmulatorTLS",
    "EmulatorTransport",
    "Fault",
    "LogEntry",
    "SalesforceEmulator",
    "TokenExchangeConfig",
    "build_app",
    "certificate_pem_for",
    "new_private_key_pem",
    "public_key_pem",
    "run",
]
