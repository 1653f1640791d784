"""The emulator's data model: orgs, users, apps (with Salesforce's per-app policies),
faults, issued tokens and the shared, lock-guarded state.

Every policy is a plain dataclass field that a test may change at any time, e.g.
``emu.apps["web"].is_refresh_token_rotation_enabled = True``. All mutable state lives in
:class:`EmulatorState`, guarded by one :class:`threading.Lock` that is never held across
an ``await`` (handlers parse the request first, then run a synchronous step under the
lock).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .constants import (
    DEFAULT_ORG_NAME,
    DEFAULT_SITE_ID,
    DEFAULT_USERNAME,
    MAX_API_VERSION,
    MIN_API_VERSION,
)
from .records import RecordStore

__all__ = [
    "AccessTokenRecord",
    "AssetTokenConfig",
    "AuthCodeRecord",
    "DeviceRecord",
    "EmulatedApp",
    "EmulatedOrg",
    "EmulatedUser",
    "EmulatorState",
    "Fault",
    "LogEntry",
    "RefreshTokenRecord",
    "parse_refresh_policy",
    "refresh_token_expired",
]

FaultKind = Literal["status", "latency", "hang", "drop_after_rotation", "html"]
LoopbackKind = Literal["my_domain", "login"]
AppKind = Literal["connected_app", "external_client_app"]
AppAccessStage = Literal["authorize", "code_exchange"]
HostBinding = Literal["family", "off"]


@dataclass
class EmulatedOrg:
    """A Salesforce org and its org-wide OAuth settings.

    Attributes:
        name: key of the org in the emulator.
        org_id: 18-character org id (``00D…``).
        my_domain: My Domain name; the host is ``<my_domain>.my.salesforce.com`` or, for
            a sandbox, ``<my_domain>--<sandbox_name>.sandbox.my.salesforce.com``.
        sandbox_name: set for sandbox orgs (their users log in at
            ``test.salesforce.com``).
        site_path: path prefix of the Experience Cloud site on
            ``<my_domain>.my.site.com`` (``None``: no site).
        site_id: ``sfdc_community_id`` reported for site logins.
        username_password_blocked: org setting "Allow OAuth Username-Password Flows" off
            (default, like orgs created Summer '23 or later).
        password_blocked_error: ``(error, error_description)`` answered when blocked.
            Live reports show the generic ``invalid_grant`` / ``authentication
            failure``.
        user_agent_blocked: block the user-agent (and hybrid token) flow.
        user_agent_blocked_error: ``(error, error_description)`` redirected when
            blocked.
        access_denied_error: ``(error, error_description)`` redirected when the user
            clicks Deny (and answered to a denied device poll). Reference 2.7: the
            docs word it "user denied authorization"; the live string was not seen.
        active: ``False`` answers ``inactive_org``.
        jwt_my_domain_audience: accept the org's My Domain URL (and the loopback base
            URL) as JWT ``aud`` in addition to the login/test/site URLs.
        session_timeout: the org's Session Settings timeout in seconds: the lifetime
            of access tokens of apps that set no ``session_timeout`` (reference 2.5).
        min_api_version: the oldest REST API version served (``"31.0"``, as Salesforce
            since Summer '25); older versions (down to 7.0) answer ``410`` with
            :attr:`retired_api_version_error`.
        max_api_version: the newest version served (``"68.0"``, Winter '27); newer ones
            answer ``404 NOT_FOUND``.
        retired_api_version_error: ``(errorCode, message)`` of the ``410`` for a retired
            version. Salesforce documents the status (410 GONE); ``GONE`` is the code a
            client saw in July 2025; the message is not verified.
        revoke_error_format: how ``/services/oauth2/revoke`` words its errors when the
            request names no ``format`` and no ``Accept`` type: ``"json"`` (default,
            ``{"error":"invalid_token",…}`` like the token endpoint) or
            ``"urlencoded"`` (``error=invalid_token&…``, what jsforce parses).
            Reference 14.8: Salesforce's real format is not documented. The org is the
            one whose host answered (the loopback org on ``127.0.0.1``).
    """

    name: str
    org_id: str
    my_domain: str
    sandbox_name: str | None = None
    site_path: str | None = "customers"
    site_id: str = DEFAULT_SITE_ID
    username_password_blocked: bool = True
    password_blocked_error: tuple[str, str] = (
        "invalid_grant",
        "authentication failure",
    )
    user_agent_blocked: bool = False
    user_agent_blocked_error: tuple[str, str] = (
        "unsupported_response_type",
        "response type not supported",
    )
    access_denied_error: tuple[str, str] = (
        "access_denied",
        "end-user denied authorization",
    )
    active: bool = True
    jwt_my_domain_audience: bool = True
    session_timeout: float = 7200.0
    min_api_version: str = MIN_API_VERSION
    max_api_version: str = MAX_API_VERSION
    retired_api_version_error: tuple[str, str] = (
        "GONE",
        "The requested version of the API is no longer available.",
    )
    revoke_error_format: Literal["json", "urlencoded"] = "json"

    @property
    def is_sandbox(self) -> bool:
        """True for a sandbox org."""
        return self.sandbox_name is not None

    @property
    def _label(self) -> str:
        if self.sandbox_name:
            return f"{self.my_domain}--{self.sandbox_name}.sandbox"
        return self.my_domain

    @property
    def my_domain_host(self) -> str:
        """``acme.my.salesforce.com`` or ``acme--dev.sandbox.my.salesforce.com``."""
        return f"{self._label}.my.salesforce.com"

    @property
    def site_host(self) -> str:
        """The Experience Cloud host, e.g. ``acme.my.site.com``."""
        return f"{self._label}.my.site.com"

    @property
    def setup_host(self) -> str:
        """The Setup host (``*.my.salesforce-setup.com``), which refuses client
        credentials."""
        return f"{self._label}.my.salesforce-setup.com"

    @property
    def my_domain_url(self) -> str:
        """``https://<my domain host>``; also the ``instance_url`` of tokens."""
        return f"https://{self.my_domain_host}"

    @property
    def site_url(self) -> str | None:
        """``https://acme.my.site.com/customers`` or ``None`` when the org has no
        site."""
        if self.site_path is None:
            return None
        return f"https://{self.site_host}/{self.site_path.strip('/')}".rstrip("/")

    @property
    def login_host(self) -> str:
        """The generic login host for this org's users."""
        return "test.salesforce.com" if self.is_sandbox else "login.salesforce.com"


@dataclass
class EmulatedUser:
    """A Salesforce user.

    Attributes:
        username: login name (unique across the emulator, compared case-insensitively).
        password: password typed on the login page.
        user_id: 18-character user id (``005…``).
        org: name of the user's org.
        security_token: appended to the password in the username-password flow.
        active: ``False`` answers ``inactive_user``.
        ip_restricted: every login answers ``IP restricted or invalid login hours``.
        trusted_ip: the password flow accepts the password without the security token.
        can_approve_uninstalled_apps: the "Approve Uninstalled Connected Apps"
            permission (reference 15.7): lets the user authorize a connected app that
            is not installed in the org.
    """

    username: str
    password: str
    user_id: str
    org: str = DEFAULT_ORG_NAME
    security_token: str = ""
    first_name: str = "Jane"
    last_name: str = "Doe"
    email: str = ""
    active: bool = True
    ip_restricted: bool = False
    trusted_ip: bool = False
    can_approve_uninstalled_apps: bool = False
    user_type: str = "STANDARD"
    is_integration_user: bool = False
    language: str = "en_US"
    locale: str = "en_US"
    timezone: str = "America/Los_Angeles"
    utc_offset: int = -28800000

    @property
    def display_name(self) -> str:
        """``First Last``."""
        return f"{self.first_name} {self.last_name}".strip()


@dataclass
class AssetTokenConfig:
    """Asset-token settings of an app (ConnectedApp ``assetTokenConfig``).

    Attributes:
        audiences: ``aud`` of issued asset tokens.
        validity: lifetime in seconds (``expires_in`` of the exchange response).
        kid: ``kid`` header naming the signing certificate (published at ``/id/keys``).
    """

    audiences: list[str] = field(
        default_factory=lambda: ["https://devices.example.com"]
    )
    validity: int = 60
    kid: str = "Assets"


@dataclass
class TokenExchangeConfig:
    """Token exchange with another identity provider (reference 15.8): the app's
    "Enable Token Exchange Flow" settings and the Apex handler it runs.

    Attributes:
        handler: the API name of the app's ``Auth.OauthTokenExchangeHandler``; a request
            that names another handler is refused (``None``: any name, or none).
        subjects: outside tokens the handler accepts, mapped to the Salesforce username
            they stand for (an outside token not listed is refused with
            ``invalid_grant``).
        map_subject: instead of (or besides) ``subjects``, a callable
            ``(subject_token, subject_token_type) -> username | None`` standing for the
            Apex handler's validation and user mapping (``None``: refused).
        is_secret_required: "Require Secret for Token Exchange Flow".
        subject_token_types: token types the handler accepts (full URNs).
    """

    handler: str | None = "ExternalIdpHandler"
    subjects: dict[str, str] = field(default_factory=dict)
    map_subject: Callable[[str, str], str | None] | None = None
    is_secret_required: bool = False
    subject_token_types: tuple[str, ...] = (
        "urn:ietf:params:oauth:token-type:access_token",
        "urn:ietf:params:oauth:token-type:id_token",
        "urn:ietf:params:oauth:token-type:jwt",
    )


@dataclass
class EmulatedApp:
    """A Connected App / External Client App with the policies that change wire
    behaviour.

    Attributes:
        name: key of the app in the emulator.
        client_id: consumer key.
        client_secret: consumer secret (``None``: the app has none).
        callback_urls: exact-match callback URLs.
        scopes: scopes the app may be granted.
        is_consumer_secret_optional: "Require Secret for Web Server Flow" off.
        is_secret_required_for_refresh_token: "Require Secret for Refresh Token Flow".
        is_pkce_required: authorization requests must carry ``code_challenge``.
        is_refresh_token_rotation_enabled: refresh-token rotation with reuse detection.
        is_client_credential_enabled: client credentials flow on.
        client_credential_user: username of the run-as user.
        admin_approved_users: pre-authorized usernames (JWT bearer, consent skipped).
        permitted_users: ``"all"`` (self-authorize) or ``"admin_approved"``.
        is_device_flow_enabled: device flow on.
        refresh_token_policy: ``"infinite"``, ``"zero"``, ``"lifetime:<seconds>"``,
            ``"inactivity:<seconds>"`` or Salesforce's
            ``specific_lifetime:N:HOURS|DAYS|MONTHS`` / ``specific_inactivity:N:…``
            (reference 15.3), on the emulator's clock. ``inactivity`` is the idle
            limit, a sliding window: each refresh restarts it. A refresh token past
            its limit answers ``invalid_grant`` / ``expired access/refresh token``
            and introspects as inactive. Checked when set (``ValueError``).
        session_timeout: access-token lifetime in seconds (never reported to clients);
            ``None`` (default): the org's :attr:`EmulatedOrg.session_timeout`.
        refresh_processing_seconds: how long Salesforce takes to process a refresh
            (reference 15.1): a second refresh with the same refresh token that
            arrives meanwhile is refused with ``invalid_grant`` / ``expired
            authorization code``. ``0`` (default) answers at once, so only requests
            that really overlap are refused; raise it to provoke the rejection.
        id_token_validity: ID-token lifetime in seconds (Salesforce default 2 minutes).
        is_introspect_all_tokens: may introspect tokens of other apps.
        kind: ``"connected_app"`` (default) or ``"external_client_app"`` (reference
            15.5: no username-password flow; an org without the app installed answers
            :attr:`not_installed_error`).
        installed: ``False``: the app is installed in no org (see
            :attr:`installed_orgs`).
        installed_orgs: names of the orgs the app is installed in (``None``, the
            default: every org). A user of another org gets, for an External Client
            App, :attr:`not_installed_error` (JWT bearer: ``invalid_grant`` / "External
            client app is not installed in this org", as observed), and for a connected
            app :attr:`uninstalled_app_error` unless the user may approve uninstalled
            apps (reference 15.7).
        not_installed_error: ``(error, error_description)`` of an External Client App
            used in an org where it is not installed (reference 15.5, observed on a
            refresh: ``app_not_found`` / "External client app is not installed in this
            org").
        uninstalled_app_error: ``(error, error_description)`` for a user without the
            "Approve Uninstalled Connected Apps" permission (reference 15.7: the wire
            is not verified, reported as ``OAUTH_APP_ACCESS_DENIED`` /
            ``invalid_app_access`` variants; set it to the variant you want).
        app_access_stage: where app-access refusals (admin approval, installation)
            surface in the web server flow: ``"code_exchange"`` (default; reference 2.7
            lists ``invalid_app_access`` at the code exchange) or ``"authorize"`` (an
            error redirect to the callback).
        password_flow_error: ``(error, error_description)`` of a username-password
            request to an External Client App, which has no such flow (reference 15.5;
            the wire is not verified: ``unsupported_grant_type`` is what Salesforce
            answers for a disabled grant).
        propagation_seconds: after the app is created (:meth:`SalesforceEmulator.add_app`,
            on the emulator's clock), it answers ``invalid_client_id`` for this long,
            as a new External Client App does until it has propagated (reference 15.5;
            ``0``, the default: at once).
        created_at: emulator time the app was created (set by ``add_app``).
        refresh_token_ip_ranges: the refresh-token IP allowlist (reference 15.4: "only
            IPs in allowed ranges can complete the OAuth web server flow or the refresh
            token flow"; up to 128 CIDR ranges; ``None``, the default: any address). A
            code exchange or refresh from another address answers
            :attr:`ip_refused_error`.
        ip_refused_error: ``(error, error_description)`` of such a refusal (the exact
            wire is not verified; default the documented ``invalid_grant`` / "IP
            restricted or invalid login hours").
        jwt_access_tokens: issue JWT-format access tokens ("isNamedUserJwtEnabled",
            reference 15.9), signed with the org's access-token key published at
            ``/id/keys``.
        certificate_pem: the X.509 certificate PEM (what Salesforce users upload) or
            public key PEM checking JWT bearer assertions; see
            :meth:`SalesforceEmulator.upload_certificate`.
        private_key_pem: the matching private key (a test convenience).
        asset_token: asset-token settings (``None``: token exchange not enabled).
        token_exchange: token exchange with another identity provider (``None``: not
            enabled; reference 15.8).
        jwt_include_signature: add ``signature`` to JWT bearer responses (the Postman
            sample has none).
        jwt_include_issued_at: add ``issued_at`` to JWT bearer responses.
        user_agent_refresh: when the user-agent flow returns a refresh token: ``"safe"``
            (custom-scheme callbacks or ``/services/oauth2/success``), ``"always"``,
            ``"never"``.
        code_lifetime: authorization-code lifetime in seconds.
        device_code_lifetime: seconds a device code may wait for approval (``None``,
            the default: no expiry; reference 13 item 21 keeps expiry off by default
            because it is not evidenced; ``600`` models sfdx-core's "within 10
            minutes", after which polls answer ``expired_token``).
        device_interval: polling ``interval`` announced to device clients.
        device_slow_down: answer ``slow_down`` to polls faster than the interval (off
            by default, not evidenced).
    """

    name: str
    client_id: str
    client_secret: str | None = None
    callback_urls: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=lambda: ["api", "refresh_token"])
    is_consumer_secret_optional: bool = False
    is_secret_required_for_refresh_token: bool = True
    is_pkce_required: bool = False
    is_refresh_token_rotation_enabled: bool = False
    is_client_credential_enabled: bool = False
    client_credential_user: str | None = None
    admin_approved_users: set[str] = field(default_factory=set)
    permitted_users: Literal["all", "admin_approved"] = "all"
    is_device_flow_enabled: bool = False
    refresh_token_policy: str = "infinite"
    session_timeout: float | None = None
    refresh_processing_seconds: float = 0.0
    id_token_validity: int = 120
    is_introspect_all_tokens: bool = False
    kind: AppKind = "connected_app"
    installed: bool = True
    installed_orgs: set[str] | None = None
    not_installed_error: tuple[str, str] = (
        "app_not_found",
        "External client app is not installed in this org",
    )
    uninstalled_app_error: tuple[str, str] = (
        "invalid_app_access",
        "user is not admin approved to access this app",
    )
    app_access_stage: AppAccessStage = "code_exchange"
    password_flow_error: tuple[str, str] = (
        "unsupported_grant_type",
        "grant type not supported",
    )
    propagation_seconds: float = 0.0
    created_at: float | None = None
    refresh_token_ip_ranges: list[str] | None = None
    ip_refused_error: tuple[str, str] = (
        "invalid_grant",
        "IP restricted or invalid login hours",
    )
    jwt_access_tokens: bool = False
    certificate_pem: str | None = None
    private_key_pem: str | None = None
    asset_token: AssetTokenConfig | None = None
    token_exchange: TokenExchangeConfig | None = None
    jwt_include_signature: bool = False
    jwt_include_issued_at: bool = True
    user_agent_refresh: Literal["safe", "always", "never"] = "safe"
    code_lifetime: float = 900.0
    device_code_lifetime: float | None = None
    device_interval: int = 5
    device_slow_down: bool = False

    def __setattr__(self, name: str, value: object) -> None:
        # A typo in a policy must fail where it is set, not as a 500 at the next refresh.
        if name == "refresh_token_policy":
            if not isinstance(value, str):
                raise ValueError("refresh_token_policy must be a string")
            parse_refresh_policy(value)
        super().__setattr__(name, value)


@dataclass
class Fault:
    """A scripted failure for the next ``count`` matching requests.

    Attributes:
        kind: ``"status"`` (answer ``status``, with ``Retry-After`` when set),
            ``"latency"`` (wait ``seconds`` then answer normally), ``"hang"`` (wait
            ``seconds``, default 600, far beyond client timeouts; cancellable),
            ``"drop_after_rotation"`` (run the request, e.g. a refresh that rotates,
            then answer ``status`` (502) instead so the client never sees the result),
            ``"html"`` (a ``text/html`` maintenance page).
        status: HTTP status (defaults: 503, or 502 for ``drop_after_rotation``).
        count: number of requests it applies to.
        path: only requests to this path (site prefix stripped); ``None``: any OAuth
            path.
        grant_type: only token requests with this ``grant_type``
            (``drop_after_rotation`` defaults to ``refresh_token``/``hybrid_refresh``).
        retry_after: ``Retry-After`` header value.
        seconds: latency or hang duration.
    """

    kind: FaultKind = "status"
    status: int | None = None
    count: int = 1
    path: str | None = None
    grant_type: str | None = None
    retry_after: float | str | None = None
    seconds: float | None = None

    def effective_status(self) -> int:
        """The HTTP status this fault answers with."""
        if self.status is not None:
            return self.status
        return 502 if self.kind == "drop_after_rotation" else 503


@dataclass
class LogEntry:
    """One request seen by the emulator; secrets are masked in ``params``."""

    method: str
    host: str
    path: str
    grant_type: str | None
    status: int
    time: float
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class AccessTokenRecord:
    """An issued access token."""

    value: str
    client_id: str
    username: str
    org: str
    scopes: tuple[str, ...]
    id_url: str
    instance_url: str
    issued_at: float
    expires_at: float
    grant: str
    refresh_token: str | None = None
    code: str | None = None
    revoked: bool = False
    introspectable: bool = True
    #: Base URL of the host that issued it (its ``iss``): with ``host_binding``
    #: ``"family"`` only that host family serves the token.
    issuer: str = ""


@dataclass
class RefreshTokenRecord:
    """An issued refresh token; ``family`` links the tokens of one grant across
    rotations."""

    value: str
    client_id: str
    username: str
    org: str
    scopes: tuple[str, ...]
    id_url: str
    issuer: str
    instance_url: str
    issued_at: float
    last_used: float
    family: str
    status: Literal["active", "rotated", "revoked"] = "active"
    code: str | None = None
    grant_created_at: float = 0.0


@dataclass
class AuthCodeRecord:
    """An authorization code waiting for its exchange."""

    value: str
    client_id: str
    redirect_uri: str
    username: str
    scopes: tuple[str, ...]
    challenge: str | None
    nonce: str | None
    created: float
    issuer: str
    instance_url: str
    hybrid: bool = False
    used: bool = False


@dataclass
class DeviceRecord:
    """A pending device authorization."""

    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    created: float
    issuer: str
    instance_url: str
    status: Literal["pending", "approved", "denied", "used"] = "pending"
    username: str | None = None
    last_poll: float | None = None


_UNITS = {"HOURS": 3600, "DAYS": 86400, "MONTHS": 30 * 86400}


def parse_refresh_policy(policy: str) -> tuple[str, float | None]:
    """``(kind, seconds)`` of a refresh-token policy string.

    Args:
        policy: see :attr:`EmulatedApp.refresh_token_policy`.

    Returns:
        ``("infinite", None)``, ``("zero", 0)``, ``("lifetime", s)`` or ``("inactivity",
        s)``.

    Raises:
        ValueError: an unknown policy.
    """
    text = policy.strip()
    if text in ("infinite", "zero"):
        return text, (None if text == "infinite" else 0.0)
    parts = text.split(":")
    kind = parts[0].removeprefix("specific_")
    unit = 1 if len(parts) == 2 else _UNITS.get(parts[-1].upper(), 0)
    if kind in ("lifetime", "inactivity") and len(parts) in (2, 3) and unit:
        try:
            amount = float(parts[1])
        except ValueError:
            amount = -1.0
        if amount >= 0 and amount != float("inf"):
            return kind, amount * unit
    raise ValueError(
        f"unknown refresh token policy {policy!r} (expected infinite, zero, "
        "specific_lifetime:N:HOURS|DAYS|MONTHS, specific_inactivity:N:HOURS|DAYS|"
        "MONTHS, lifetime:SECONDS or inactivity:SECONDS)"
    )


def refresh_token_expired(
    app: EmulatedApp, record: RefreshTokenRecord, now: float
) -> bool:
    """True when the app's refresh-token policy has expired ``record`` at ``now``
    (reference 15.3): ``zero`` always, ``lifetime`` counted from the grant (rotation
    keeps it), ``inactivity`` counted from the token's last use (a sliding window)."""
    kind, seconds = parse_refresh_policy(app.refresh_token_policy)
    if kind == "zero":
        return True
    if seconds is None:
        return False
    started = record.grant_created_at if kind == "lifetime" else record.last_used
    return now > started + seconds


class EmulatorState:
    """Everything the emulator knows, guarded by :attr:`lock`.

    Use ``with state.lock:`` around any read-modify-write; never ``await`` while holding
    it.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.orgs: dict[str, EmulatedOrg] = {}
        self.users: dict[str, EmulatedUser] = {}
        self.apps: dict[str, EmulatedApp] = {}
        self.access_tokens: dict[str, AccessTokenRecord] = {}
        self.refresh_tokens: dict[str, RefreshTokenRecord] = {}
        self.codes: dict[str, AuthCodeRecord] = {}
        self.devices: dict[str, DeviceRecord] = {}
        self.sessions: dict[str, str] = {}
        self.approvals: set[tuple[str, str]] = set()
        self.log: list[LogEntry] = []
        self.call_counts: Counter[str] = Counter()
        self.reuse_detected = 0
        #: refresh tokens whose refresh is being processed (reference 15.1)
        self.refreshes_in_flight: set[str] = set()
        self.concurrent_refresh_rejections = 0
        self.faults: list[Fault] = []
        self.time_offset = 0.0
        self.auto_approve: str | None = None
        self.auto_consent: Literal["allow", "deny"] = "allow"
        self.loopback_kind: LoopbackKind = "my_domain"
        self.loopback_org = DEFAULT_ORG_NAME
        #: Loopback host name (``localhost``, ``127.0.0.1``) → the org it serves, as
        #: that org's My Domain and login host; other loopback names serve
        #: :attr:`loopback_org`. A sandbox org's loopback host is its test.salesforce.com.
        self.loopback_hosts: dict[str, str] = {}
        #: ``"family"``: a token is served (refresh, revoke, introspect, userinfo,
        #: identity) only by its org's hosts of the family that issued it, as at
        #: Salesforce; ``"off"``: by any host.
        self.host_binding: HostBinding = "family"
        self.default_org = DEFAULT_ORG_NAME
        self.default_user = DEFAULT_USERNAME
        self.userinfo_error_status = 401
        self.records = RecordStore()
        self.generation = 0
        self.closing = False

    # ------------------------------------------------------------------ clock
    def now(self) -> float:
        """Current emulator time in epoch seconds (wall clock plus ``time_offset``)."""
        return time.time() + self.time_offset

    # ------------------------------------------------------------------ look-ups (lock
    # held)
    def app_by_client_id(self, client_id: str | None) -> EmulatedApp | None:
        """The app with this consumer key, or ``None``."""
        if not client_id:
            return None
        for app in self.apps.values():
            if app.client_id == client_id:
                if app.propagation_seconds > 0 and app.created_at is not None:
                    # Reference 15.5: a new app is unknown until it has propagated.
                    if self.now() < app.created_at + app.propagation_seconds:
                        return None
                return app
        return None

    def user(self, username: str | None) -> EmulatedUser | None:
        """The user with this username (case-insensitive), or ``None``."""
        if not username:
            return None
        return self.users.get(username.strip().lower())

    def org_of(self, user: EmulatedUser) -> EmulatedOrg:
        """The user's org."""
        return self.orgs[user.org]

    def clear_runtime(self) -> None:
        """Forget every token, code, session, approval, log entry, counter and fault."""
        self.access_tokens.clear()
        self.refresh_tokens.clear()
        self.codes.clear()
        self.devices.clear()
        self.sessions.clear()
        self.approvals.clear()
        self.log.clear()
        self.call_counts.clear()
        self.reuse_detected = 0
        self.refreshes_in_flight.clear()
        self.concurrent_refresh_rejections = 0
        self.faults.clear()
        self.time_offset = 0.0
        self.auto_approve = None
        self.auto_consent = "allow"
        self.records.clear()
        self.generation += 1

    def take_fault(self, path: str, grant_type: str | None) -> Fault | None:
        """Consume one use of the first fault matching this request."""
        for fault in self.faults:
            if fault.path is not None and fault.path.rstrip("/") != path.rstrip("/"):
                continue
            wanted = fault.grant_type
            if wanted is None and fault.kind == "drop_after_rotation":
                if grant_type not in ("refresh_token", "hybrid_refresh"):
                    continue
            elif wanted is not None and wanted != grant_type:
                continue
            fault.count -= 1
            if fault.count <= 0:
                self.faults.remove(fault)
            return fault
        return None
