"""Salesforce OAuth endpoint URLs, derived from a login URL (reference, section 1.2).

Experience Cloud sites serve the endpoints under their path prefix
(``https://acme.my.site.com/customers/services/oauth2/token``), so paths are appended to the
whole login URL, not to its origin.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TOKEN_PATH", "Endpoints", "endpoints_for"]

#: The token endpoint's path under a login URL.
TOKEN_PATH = "/services/oauth2/token"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Every endpoint of one Salesforce login host (or site)."""

    base: str

    def _join(self, path: str) -> str:
        return self.base.rstrip("/") + path

    @property
    def authorize(self) -> str:
        return self._join("/services/oauth2/authorize")

    @property
    def token(self) -> str:
        return self._join(TOKEN_PATH)

    @property
    def revoke(self) -> str:
        return self._join("/services/oauth2/revoke")

    @property
    def introspect(self) -> str:
        return self._join("/services/oauth2/introspect")

    @property
    def userinfo(self) -> str:
        return self._join("/services/oauth2/userinfo")

    @property
    def keys(self) -> str:
        return self._join("/id/keys")

    @property
    def openid_configuration(self) -> str:
        return self._join("/.well-known/openid-configuration")

    @property
    def auth_configuration(self) -> str:
        return self._join("/.well-known/auth-configuration")


def endpoints_for(login_url: str) -> Endpoints:
    """Endpoints for a login URL (login/test host, My Domain or site URL with path)."""
    return Endpoints(login_url.rstrip("/"))
