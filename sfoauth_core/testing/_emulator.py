"""The emulator as the client's tests meet it: :class:`sfoauth_emulator.SalesforceEmulator`
plus :meth:`SalesforceEmulator.connected_app`, the bridge to a core
:class:`~sfoauth_core.config.ConnectedApp`.

The bridge lives here, on the client's side, so that the emulator package imports
nothing from the client (its ids, hosts and wire rules are its own).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sfoauth_emulator import SalesforceEmulator as _Emulator
from sfoauth_emulator.constants import DEFAULT_USERNAME

from ..config import ConnectedApp
from ..hosts import is_loopback_host

__all__ = ["SalesforceEmulator"]


class SalesforceEmulator(_Emulator):
    """An emulated Salesforce org (see :class:`sfoauth_emulator.SalesforceEmulator`)
    that also builds the client's configuration for its apps."""

    def connected_app(self, name: str = "web", **overrides: Any) -> ConnectedApp:
        """A :class:`sfoauth_core.config.ConnectedApp` configured for an emulated app.

        The login URL is the org's My Domain (or the loopback base URL while served).

        Args:
            name: app name.
            **overrides: ``ConnectedApp`` arguments to change.
        """
        app = self.apps[name]
        base = self.base_url or self.org.my_domain_url
        kwargs: dict[str, Any] = {
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "redirect_uri": app.callback_urls[0] if app.callback_urls else None,
            "login_url": base,
            "scopes": tuple(app.scopes),
            # Served (http or https --tls) on a loopback address.
            "allow_loopback": is_loopback_host(urlsplit(base).hostname or ""),
        }
        if app.private_key_pem:
            kwargs["private_key"] = app.private_key_pem
        if app.certificate_pem:  # a JWT bearer app: sign as the default user
            kwargs["username"] = DEFAULT_USERNAME
        kwargs.update(overrides)
        return ConnectedApp(**kwargs)
