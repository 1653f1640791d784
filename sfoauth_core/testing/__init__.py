"""Testing tools: a local Salesforce emulator and a pytest plugin.

The emulator needs the ``emulator`` extra (starlette, uvicorn, python-multipart); names
are imported lazily so that ``sfoauth_core.testing.pytest_plugin`` loads without it.

Example:
    >>> from sfoauth_core.testing import SalesforceEmulator
    >>> emu = SalesforceEmulator()
    >>> client = httpx.Client(transport=emu.transport(), base_url=emu.org.my_domain_url)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfoauth_emulator import (
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
        AssetTokenConfig,
        EmulatedApp,
        EmulatedOrg,
        EmulatedUser,
        EmulatorAsyncTransport,
        EmulatorTLS,
        EmulatorTransport,
        Fault,
        LogEntry,
        TokenExchangeConfig,
        build_app,
        certificate_pem_for,
        new_private_key_pem,
        public_key_pem,
        run,
    )

    from ._emulator import SalesforceEmulator

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


def __getattr__(name: str) -> Any:
    if name in __all__:
        if name == "SalesforceEmulator":  # the client's face: adds connected_app()
            return importlib.import_module("._emulator", __name__).SalesforceEmulator
        return getattr(importlib.import_module("sfoauth_emulator"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
