"""Who may use an app in an org (reference 15.5 and 15.7): installation, External
Client Apps, the "Approve Uninstalled Connected Apps" permission, admin approval.

Every function here runs with ``state.lock`` held and raises
:class:`~sfoauth_emulator.wire.OAuthError` with the wire pair to answer.
"""

from __future__ import annotations

import ipaddress

from .state import EmulatedApp, EmulatedOrg, EmulatedUser
from .wire import OAuthError

__all__ = [
    "JWT_NOT_INSTALLED",
    "check_app_access",
    "check_ip_ranges",
    "check_password_flow",
    "installed_in",
]

#: The JWT bearer answer for an app not installed in the org (forcedotcom/cli#3482).
JWT_NOT_INSTALLED = (
    "invalid_grant",
    "External client app is not installed in this org",
)
_NOT_ADMIN_APPROVED = (
    "invalid_app_access",
    "user is not admin approved to access this app",
)


def installed_in(app: EmulatedApp, org: EmulatedOrg) -> bool:
    """Whether ``app`` is installed in ``org``."""
    if not app.installed:
        return False
    return app.installed_orgs is None or org.name in app.installed_orgs


def check_app_access(
    app: EmulatedApp,
    user: EmulatedUser,
    org: EmulatedOrg,
    *,
    admin_approval: bool = True,
    not_installed: tuple[str, str] | None = None,
) -> None:
    """Refuse a user who may not use ``app`` in ``org``.

    Args:
        admin_approval: also apply the "Admin approved users are pre-authorized"
            policy (``permitted_users="admin_approved"``).
        not_installed: the answer for an app not installed in ``org`` (default: the
            app's :attr:`~EmulatedApp.not_installed_error` for an External Client App,
            :attr:`~EmulatedApp.uninstalled_app_error` for a connected app whose user
            lacks the approval permission).

    Raises:
        OAuthError: the refusal.
    """
    if not installed_in(app, org):
        if not_installed is not None:
            raise OAuthError(*not_installed)
        if app.kind == "external_client_app":
            raise OAuthError(*app.not_installed_error)
        if not user.can_approve_uninstalled_apps:
            raise OAuthError(*app.uninstalled_app_error)
    if (
        admin_approval
        and app.permitted_users == "admin_approved"
        and user.username not in app.admin_approved_users
    ):
        raise OAuthError(*_NOT_ADMIN_APPROVED)


def check_password_flow(app: EmulatedApp) -> None:
    """External Client Apps have no username-password flow (reference 15.5)."""
    if app.kind == "external_client_app":
        raise OAuthError(*app.password_flow_error)


def check_ip_ranges(app: EmulatedApp, client_ip: str) -> None:
    """The app's refresh-token IP allowlist (reference 15.4), for the code exchange and
    the refresh: ``client_ip`` must be in one of the ranges."""
    ranges = app.refresh_token_ip_ranges
    if ranges is None:
        return
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        raise OAuthError(*app.ip_refused_error) from None
    for cidr in ranges:
        if address in ipaddress.ip_network(cidr, strict=False):
            return
    raise OAuthError(*app.ip_refused_error)
