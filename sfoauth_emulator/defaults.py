"""The default org, users and apps every :class:`SalesforceEmulator` starts with."""

from __future__ import annotations

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
    INACTIVE_PASSWORD,
    INACTIVE_USER_ID,
    INACTIVE_USERNAME,
    INTEGRATION_PASSWORD,
    INTEGRATION_USER_ID,
    INTEGRATION_USERNAME,
    JWT_APP_CERTIFICATE_PEM,
    JWT_APP_CLIENT_ID,
    JWT_APP_PRIVATE_KEY_PEM,
    PUBLIC_APP_CLIENT_ID,
    WEB_APP_CLIENT_ID,
)
from .state import (
    AssetTokenConfig,
    EmulatedApp,
    EmulatedOrg,
    EmulatedUser,
    EmulatorState,
)

__all__ = ["install_defaults"]

_WEB_SCOPES = ["api", "refresh_token", "openid", "id", "profile", "email", "web"]


def install_defaults(state: EmulatorState) -> None:
    """Replace orgs, users and apps with the defaults (call with the lock held)."""
    state.orgs.clear()
    state.users.clear()
    state.apps.clear()
    state.orgs[DEFAULT_ORG_NAME] = EmulatedOrg(
        name=DEFAULT_ORG_NAME, org_id=DEFAULT_ORG_ID, my_domain=DEFAULT_ORG_NAME
    )
    for user in (
        EmulatedUser(
            username=DEFAULT_USERNAME,
            password=DEFAULT_PASSWORD,
            user_id=DEFAULT_USER_ID,
            security_token=DEFAULT_SECURITY_TOKEN,
            email=DEFAULT_USERNAME,
        ),
        EmulatedUser(
            username=INTEGRATION_USERNAME,
            password=INTEGRATION_PASSWORD,
            user_id=INTEGRATION_USER_ID,
            first_name="Integration",
            last_name="User",
            email=INTEGRATION_USERNAME,
            is_integration_user=True,
        ),
        EmulatedUser(
            username=INACTIVE_USERNAME,
            password=INACTIVE_PASSWORD,
            user_id=INACTIVE_USER_ID,
            first_name="Ian",
            last_name="Active",
            email=INACTIVE_USERNAME,
            active=False,
        ),
    ):
        state.users[user.username.lower()] = user
    callbacks = list(DEFAULT_CALLBACK_URLS)
    apps = [
        EmulatedApp(
            name="web",
            client_id=WEB_APP_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
            callback_urls=list(callbacks),
            scopes=list(_WEB_SCOPES),
        ),
        EmulatedApp(
            name="public",
            client_id=PUBLIC_APP_CLIENT_ID,
            client_secret="9A8B7C6D5E4F30211F2E3D4C5B6A7988",
            callback_urls=list(callbacks),
            scopes=list(_WEB_SCOPES),
            is_consumer_secret_optional=True,
            is_secret_required_for_refresh_token=False,
            is_pkce_required=True,
        ),
        EmulatedApp(
            name="jwt",
            client_id=JWT_APP_CLIENT_ID,
            client_secret="4C5B6A79801F2E3D4C5B6A7980A1B2C3",
            callback_urls=list(callbacks),
            scopes=["api", "web", "openid", "id", "profile", "email"],
            # The published test key pair (constants.JWT_APP_PRIVATE_KEY_FILE): the
            # same in every process, so a client elsewhere can sign for this app.
            certificate_pem=JWT_APP_CERTIFICATE_PEM,
            private_key_pem=JWT_APP_PRIVATE_KEY_PEM,
            admin_approved_users={DEFAULT_USERNAME},
        ),
        EmulatedApp(
            name="cc",
            client_id=CC_APP_CLIENT_ID,
            client_secret="7980A1B2C3D4E5F607181F2E3D4C5B6A",
            callback_urls=list(callbacks),
            scopes=["api"],
            is_client_credential_enabled=True,
            client_credential_user=INTEGRATION_USERNAME,
        ),
        EmulatedApp(
            name="device",
            client_id=DEVICE_APP_CLIENT_ID,
            client_secret="A1B2C3D4E5F607187980A1B2C3D4E5F6",
            callback_urls=list(callbacks),
            scopes=["api", "refresh_token", "openid", "id", "web"],
            is_device_flow_enabled=True,
            is_secret_required_for_refresh_token=False,
        ),
        EmulatedApp(
            name="asset",
            client_id=ASSET_APP_CLIENT_ID,
            client_secret="D4E5F607187980A1B2C3A1B2C3D4E5F6",
            callback_urls=list(callbacks),
            scopes=["api", "refresh_token", "openid"],
            asset_token=AssetTokenConfig(),
        ),
    ]
    for app in apps:
        state.apps[app.name] = app
