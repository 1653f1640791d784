"""The public surface of all three packages (and the emulator's public face): names fixed
by ARCHITECTURE.md exist, and every `__all__` is sorted and importable (STYLE.md C11)."""

from __future__ import annotations

import importlib
import inspect

import pytest

import sfoauth_core
from sfoauth_core import ConnectedApp
from sfoauth_core.storage import AsyncInMemoryTokenStore

PACKAGES = [
    "sfoauth_core",
    "sfoauth_core.exceptions",
    "sfoauth_core.flows",
    "sfoauth_core.http",
    "sfoauth_core.storage",
    "sfoauth_core.testing",
    "sfoauth_emulator",
    "sfoauth_fastapi",
]


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions and modules.
    if name.isupper():
        return (0, name)
    return (1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_importable(name):
    pytest.importorskip(
        name.split(".")[0]
        .replace("sfoauth_django", "django")
        .replace("sfoauth_fastapi", "fastapi")
        .replace("sfoauth_emulator", "starlette")
        .replace("sfoauth_core", "httpx")
    )
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported in (sorted(exported), sorted(exported, key=_isort_key))
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute}"


def test_contract_names():
    for name in (
        "ConnectedApp",
        "Token",
        "SalesforceOAuth",
        "AsyncSalesforceOAuth",
        "AuthorizationRequest",
        "DeviceAuthorization",
        "AssetToken",
        "Introspection",
        "Identity",
        "SFOAuthError",
        "recommend_flow",
    ):
        assert hasattr(sfoauth_core, name), name


METHODS = [
    "authorization_url",
    "exchange_code",
    "user_agent_url",
    "parse_user_agent_response",
    "refresh",
    "jwt_bearer",
    "client_credentials",
    "password",
    "start_device_flow",
    "poll_device_flow",
    "asset_token",
    "verify_asset_token",
    "revoke",
    "introspect",
    "userinfo",
    "identity",
    "verify_signature",
    "verify_id_token",
]


@pytest.mark.parametrize("method", METHODS)
def test_sync_and_async_twins_share_signatures(method):
    sync = getattr(sfoauth_core.SalesforceOAuth, method)
    asynchronous = getattr(sfoauth_core.AsyncSalesforceOAuth, method)
    assert inspect.signature(sync) == inspect.signature(asynchronous)
    network = method not in {
        "authorization_url",
        "user_agent_url",
        "parse_user_agent_response",
        "verify_signature",
    }
    assert inspect.iscoroutinefunction(asynchronous) is network
    assert not inspect.iscoroutinefunction(sync)


def test_contract_signatures():
    sig = inspect.signature(sfoauth_core.SalesforceOAuth.authorization_url)
    assert list(sig.parameters)[1:] == [
        "scopes",
        "state",
        "prompt",
        "login_hint",
        "display",
        "nonce",
    ]
    sig = inspect.signature(sfoauth_core.SalesforceOAuth.exchange_code)
    assert list(sig.parameters)[1:] == [
        "code",
        "code_verifier",
        "state",
        "expected_state",
    ]
    sig = inspect.signature(sfoauth_core.SalesforceOAuth.asset_token)
    assert list(sig.parameters)[1:] == [
        "access_token",
        "actor_token",
        "device_id",
        "asset",
        "name",
        "device_key",
    ]
    assert (
        inspect.signature(sfoauth_core.SalesforceOAuth.poll_device_flow)
        .parameters["timeout"]
        .default
        == 600
    )


def test_exception_tree():
    from sfoauth_core import exceptions as e

    for cls in e.ERROR_CLASSES.values():
        assert issubclass(cls, e.OAuthProtocolError)
    for cls in (
        e.ConfigurationError,
        e.FlowError,
        e.TransportError,
        e.OAuthProtocolError,
        e.ExpiredTokenError,
        e.SFOAuthConfigurationError,
        e.VersionConflictError,
        e.TokenNotFoundError,
        e.StorageError,
    ):
        assert issubclass(cls, e.SFOAuthError)
    assert issubclass(e.StateMismatchError, e.FlowError)
    assert issubclass(e.PKCEError, e.FlowError)


def test_fastapi_contract_names():
    pytest.importorskip("fastapi")
    import sfoauth_fastapi

    for name in ("SFOAuth", "SalesforceSession", "SQLAlchemyTokenStore", "Connection"):
        assert name in sfoauth_fastapi.__all__, name
    sig = inspect.signature(sfoauth_fastapi.SFOAuth)
    for parameter in ("app", "store", "secret_key", "user_key"):
        assert parameter in sig.parameters, parameter
    sf = sfoauth_fastapi.SFOAuth(
        ConnectedApp(
            client_id="3MVG9Example",
            client_secret="not-a-real-secret",
            redirect_uri="https://app.example.com/salesforce/callback",
        ),
        store=AsyncInMemoryTokenStore(),
        secret_key="k" * 32,
    )
    for attribute in (
        "router",
        "session",
        "optional_session",
        "connection",
        "required",
    ):
        assert hasattr(sf, attribute), attribute
