"""Named server-to-server connections: a Connected App plus the grant that mints its tokens.

Both adapters describe their integration connections with :class:`Connection`:
``sfoauth_fastapi`` takes them in ``SFOAuth(connections=...)``, ``sfoauth_django`` builds
them from ``SFOAUTH["CONNECTIONS"]`` through :meth:`Connection.from_mapping`. There is no
refresh token: the token manager mints a new token with the grant when the old one expires.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from .config import ConnectedApp
from .exceptions import ConfigurationError

__all__ = ["SERVER_GRANTS", "Connection", "ServerGrant"]

ServerGrant = Literal["jwt_bearer", "client_credentials"]
#: The grants a server-to-server connection may use.
SERVER_GRANTS: tuple[ServerGrant, ...] = ("jwt_bearer", "client_credentials")


@dataclass(frozen=True, slots=True)
class Connection:
    """A named server-to-server connection.

    Attributes:
        app: its connected app (private key for JWT bearer; My Domain login URL and
            secret for client credentials).
        grant: ``jwt_bearer`` or ``client_credentials`` (default: JWT bearer when the
            app has a private key).
        username: the JWT ``sub`` (default: ``app.username``).

    Raises:
        ConfigurationError: ``grant`` is not a server-to-server grant.

    Example:
        >>> erp = Connection(ConnectedApp.from_env("ERP_"), grant="jwt_bearer")
        >>> erp.validate()  # raises ConfigurationError naming what the grant lacks
    """

    app: ConnectedApp
    grant: ServerGrant | None = None
    username: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.app, ConnectedApp):
            raise ConfigurationError("app", "must be a ConnectedApp")
        if self.grant is not None and self.grant not in SERVER_GRANTS:
            raise ConfigurationError(
                "grant", f"must be one of {', '.join(SERVER_GRANTS)}"
            )

    @property
    def resolved_grant(self) -> ServerGrant:
        """The grant, defaulted from the app (a private key means JWT bearer)."""
        if self.grant is not None:
            return self.grant
        return "jwt_bearer" if self.app.private_key else "client_credentials"

    @property
    def subject(self) -> str | None:
        """The username the JWT bearer grant acts as."""
        return self.username or self.app.username

    def validate(self) -> None:
        """Check that the app has what the grant needs (SECURITY.md item 27).

        Raises:
            ConfigurationError: naming the missing or unsuitable setting (``private_key``,
                ``username``, ``audience``, ``client_secret``, ``login_url``).
        """
        app = self.app
        if self.resolved_grant == "jwt_bearer":
            if app.private_key is None:
                raise ConfigurationError(
                    "private_key", "is required for the JWT bearer flow"
                )
            if not self.subject:
                raise ConfigurationError(
                    "username", "is required for the JWT bearer flow"
                )
            audience_host = (urlsplit(app.jwt_audience).hostname or "").lower()
            if not app.trusts_host(audience_host):
                raise ConfigurationError("audience", "is not a Salesforce login host")
            return
        if not app.client_secret:
            raise ConfigurationError(
                "client_secret", "is required for the client credentials flow"
            )
        app.validate_for("client_credentials")

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        *,
        label: Callable[[str], str] | None = None,
    ) -> Connection:
        """Build and :meth:`validate` a connection from settings: ``FLOW`` (the grant)
        plus the keys of :meth:`ConnectedApp.from_mapping` (``USERNAME`` is the JWT
        ``sub``).

        Raises:
            ConfigurationError: ``setting`` is ``label(KEY)``; the value is never shown.
        """
        name = label or str
        flow = values.get("FLOW")
        if flow not in SERVER_GRANTS:
            raise ConfigurationError(
                name("FLOW"), f"must be one of {', '.join(SERVER_GRANTS)}"
            )
        app = ConnectedApp.from_mapping(
            {key: value for key, value in values.items() if key != "FLOW"},
            label=label,
        )
        connection = cls(app, grant=cast(ServerGrant, flow))
        try:
            connection.validate()
        except ConfigurationError as exc:
            raise ConfigurationError(name(exc.setting.upper()), exc.problem) from None
        return connection
