"""Virtual hosts: which emulated Salesforce host a request is addressed to.

Reference 1.1 and section 13 item 1: ``login.salesforce.com``, ``test.salesforce.com``,
each org's My Domain (production or sandbox pattern), its Experience Cloud site (with a
path prefix) and its Setup host. A loopback host (``127.0.0.1``, ``localhost``) is the
org's My Domain and login host at once (or only a login host, with
``loopback_kind="login"``); ``state.loopback_hosts`` gives a loopback name (``localhost``)
to another org, e.g. a sandbox, whose login host (test.salesforce.com) it then is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._ids import is_loopback
from .constants import LOGIN_HOST, SANDBOX_LOGIN_HOST
from .state import EmulatedOrg, EmulatorState

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = ["HostContext", "HostKind", "resolve_host"]

HostKind = Literal["login", "test", "my_domain", "site", "setup", "loopback"]


@dataclass(frozen=True)
class HostContext:
    """The host a request was sent to.

    Attributes:
        kind: what the host is.
        origin: ``scheme://host[:port]`` as the client addressed it.
        org: the org the host belongs to (``None`` for login/test hosts).
        site_prefix: ``/customers`` when the request came through a site path.
        loopback_kind: for loopback hosts, ``"my_domain"`` or ``"login"``.
    """

    kind: HostKind
    origin: str
    org: EmulatedOrg | None
    site_prefix: str = ""
    loopback_kind: str = "my_domain"

    @property
    def base_url(self) -> str:
        """Origin plus site prefix: the issuer and the base of the ``id`` URL."""
        return self.origin + self.site_prefix

    @property
    def host(self) -> str:
        """Host (and port) part of the origin."""
        return self.origin.split("://", 1)[1]

    @property
    def allows_client_credentials(self) -> bool:
        """Reference 4.8: only an org's My Domain (or site) serves client
        credentials."""
        if self.kind == "loopback":
            return self.loopback_kind == "my_domain"
        return self.kind in ("my_domain", "site")

    def instance_url(self, org: EmulatedOrg) -> str:
        """``instance_url`` for tokens of ``org`` issued through this host."""
        if self.kind == "loopback":
            return self.origin
        return org.my_domain_url

    def accepts_org(self, org: EmulatedOrg) -> bool:
        """Whether users of ``org`` may log in through this host."""
        if self.kind == "login":
            return not org.is_sandbox
        if self.kind == "test":
            return org.is_sandbox
        return self.org is not None and self.org.name == org.name

    def serves_token(self, state: EmulatorState, org_name: str, issuer: str) -> bool:
        """Whether this host knows a token of ``org_name`` issued through ``issuer``.

        As at Salesforce, production and sandboxes are separate services: a token
        issued through ``login.salesforce.com`` or a production org's My Domain is
        known there (and on the org's other hosts), one issued through
        ``test.salesforce.com`` or a sandbox My Domain on the sandbox's; a token of an
        Experience Cloud site login only on that site. Elsewhere the token is unknown
        (refresh: ``invalid_grant``, revoke: ``invalid_token``, introspect:
        ``active: false``, userinfo/identity: ``Bad_OAuth_Token``). Everything is
        served everywhere with ``state.host_binding = "off"``.
        """
        if state.host_binding == "off":
            return True
        if issuer and self.base_url == issuer.rstrip("/"):
            return True  # the host that issued it (a scripted login may cross orgs)
        org = state.orgs.get(org_name)
        if org is None:
            return False
        if org.site_url and issuer.rstrip("/") == org.site_url:
            return (
                self.kind == "site"
                and self.org is not None
                and self.org.name == org.name
            )
        return self.accepts_org(org)

    def orgs(self, state: EmulatorState) -> list[EmulatedOrg]:
        """Orgs whose users may log in here."""
        return [org for org in state.orgs.values() if self.accepts_org(org)]


def _split_host(raw: str) -> str:
    raw = raw.strip().lower()
    if raw.startswith("["):
        return raw[: raw.find("]") + 1]
    return raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw


def resolve_host(
    state: EmulatorState, scope: dict[str, Any]
) -> tuple[HostContext, str] | None:
    """Resolve the request's host; returns the context and the path without site prefix.

    Must be called with ``state.lock`` held. ``None`` means an unknown host (404).
    """
    headers = dict(scope.get("headers") or [])
    raw_host = headers.get(b"host", b"").decode("latin-1").strip()
    if not raw_host and scope.get("server"):
        server_host, server_port = scope["server"]
        raw_host = f"{server_host}:{server_port}"
    scheme = str(scope.get("scheme") or "http")
    origin = f"{scheme}://{raw_host.lower()}"
    hostname = _split_host(raw_host)
    path: str = scope.get("path") or "/"
    if hostname == LOGIN_HOST:
        return HostContext("login", origin, None), path
    if hostname == SANDBOX_LOGIN_HOST:
        return HostContext("test", origin, None), path
    if is_loopback(hostname):
        name = state.loopback_hosts.get(hostname.strip("[]"), state.loopback_org)
        org = state.orgs.get(name)
        ctx = HostContext("loopback", origin, org, loopback_kind=state.loopback_kind)
        return ctx, path
    for org in state.orgs.values():
        if hostname == org.my_domain_host:
            return HostContext("my_domain", origin, org), path
        if hostname == org.setup_host:
            return HostContext("setup", origin, org), path
        if hostname == org.site_host:
            prefix = "/" + org.site_path.strip("/") if org.site_path else ""
            if prefix and (path == prefix or path.startswith(prefix + "/")):
                return HostContext("site", origin, org, prefix), path[
                    len(prefix) :
                ] or "/"
            return HostContext("site", origin, org), path
    return None


def emulator_state(request: Request) -> EmulatorState:
    """The emulator's state, from inside one of its endpoints."""
    state: EmulatorState = request.app.state.emulator_state
    return state


def host_context(request: Request) -> HostContext:
    """The virtual host a request reached, as the host middleware resolved it."""
    ctx: HostContext = request.scope["state"]["ctx"]
    return ctx
