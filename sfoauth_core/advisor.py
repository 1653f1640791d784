"""The flow advisor: which Salesforce OAuth flow fits an app, and why.

Encodes Salesforce's "OAuth Authorization Flows" guidance together with the platform
status notes of the reference (sections 0, 4 and 10.1):

- Web server flow with PKCE for apps with a server that keeps a secret; confidential
  clients send both ``client_secret`` and ``code_verifier``. PKCE-only for public
  clients.
- User-agent (implicit) flow: discouraged, and orgs can block it
  (``blockOAuthUsrAgtFlow``).
- Username-password flow: blocked by default in orgs created Summer '23 or later and
  being deprecated (KB 000886201); development only.
- Device flow: blocked for the default "Salesforce CLI" app since 2025-08-28, still
  available for your own app (``isDeviceFlowEnabled``).
- Client credentials: My Domain only, with a run-as user.
- JWT bearer: a certificate on the app and pre-authorized users.
- Connected Apps give way to External Client Apps (creation restricted from Spring '26).

Nothing here does I/O; the ``sfoauth advise`` command prints :func:`explain`.
"""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass
from enum import Enum

from .exceptions import ConfigurationError

__all__ = [
    "DEVICE_KINDS",
    "FlowName",
    "FlowRecommendation",
    "explain",
    "recommend_flow",
]

DEVICE_KINDS = frozenset({"input_constrained", "asset_tracking"})


class FlowName(str, Enum):
    """The Salesforce OAuth flows the advisor can recommend."""

    WEB_SERVER = "web_server"
    PKCE = "pkce"
    USER_AGENT = "user_agent"
    ASSET_TOKEN = "asset_token"
    DEVICE = "device"
    JWT_BEARER = "jwt_bearer"
    CLIENT_CREDENTIALS = "client_credentials"
    USERNAME_PASSWORD = "username_password"
    TOKEN_EXCHANGE = "token_exchange"

    @property
    def label(self) -> str:
        """A human-readable name."""
        return _LABELS[self]

    def __str__(self) -> str:
        return self.value


_LABELS = {
    FlowName.WEB_SERVER: "Web Server flow (authorization code + PKCE, client secret)",
    FlowName.PKCE: "Web Server flow with PKCE only (public client, no secret)",
    FlowName.USER_AGENT: "User-Agent flow (implicit)",
    FlowName.ASSET_TOKEN: "Asset Token flow (token exchange for connected devices)",
    FlowName.DEVICE: "Device flow",
    FlowName.JWT_BEARER: "JWT Bearer flow",
    FlowName.CLIENT_CREDENTIALS: "Client Credentials flow",
    FlowName.USERNAME_PASSWORD: "Username-Password flow",
    FlowName.TOKEN_EXCHANGE: "Token Exchange flow (a token from your own identity "
    "provider)",
}


@dataclass(frozen=True, slots=True)
class FlowRecommendation:
    """The advisor's answer.

    Attributes:
        flow: the recommended flow.
        reasons: why it fits the answers given.
        caveats: security and platform warnings that apply.
        alternatives: other flows that could work, best first.
        setup: what to configure on the app / org and in sfoauth.
    """

    flow: FlowName
    reasons: tuple[str, ...]
    caveats: tuple[str, ...] = ()
    alternatives: tuple[FlowName, ...] = ()
    setup: tuple[str, ...] = ()


_ECA = (
    "New Connected Apps cannot be created from Spring '26 without a Support request: "
    "create an External Client App (same endpoints and parameters)."
)
#: Reference 15.5: what differs for an External Client App.
_ECA_NOTES = (
    "External Client App: there is no username-password flow; a newly created app "
    "answers invalid_client_id for several minutes until it propagates; every org "
    "whose users log in must have it installed (else app_not_found); for JWT bearer "
    "it may expect the org's My Domain URL as audience."
)
_ECA_NO_PASSWORD = (
    "You asked for a quick development setup, but External Client Apps have no "
    "username-password flow: this is the closest flow they support."
)
_PKCE_SETUP = "Turn on 'Require Proof Key for Code Exchange (PKCE)' on the app."
_MY_DOMAIN = (
    "Use your org's My Domain URL (https://<name>.my.salesforce.com) as login_url "
    "rather than login.salesforce.com."
)


def _web_server(
    can_keep_secret: bool | None, has_my_domain: bool
) -> FlowRecommendation:
    caveats = [
        "Confidential clients send both client_secret and code_verifier on the token "
        "request (Salesforce partner security rules).",
        _ECA,
    ]
    reasons = [
        "A user is present to log in through the browser.",
        "Your server can keep the client secret, and PKCE protects the code as well.",
    ]
    if can_keep_secret is None:
        reasons[1] = (
            "A server-side web app can normally keep the client secret; PKCE protects "
            "the code as well."
        )
        caveats.insert(
            0,
            "If the client cannot keep a secret (mobile, desktop, single-page or CLI "
            "app), "
            "use the PKCE-only flow instead.",
        )
    if not has_my_domain:
        caveats.append(_MY_DOMAIN)
    return FlowRecommendation(
        flow=FlowName.WEB_SERVER,
        reasons=tuple(reasons),
        caveats=tuple(caveats),
        alternatives=(FlowName.PKCE,),
        setup=(
            "Create the app with OAuth enabled, the callback URL (redirect_uri) and "
            "the "
            "scopes you need (add refresh_token to stay connected).",
            _PKCE_SETUP,
            "Configure ConnectedApp(client_id, client_secret, redirect_uri, "
            "login_url).",
            "Use authorization_url() then exchange_code(); sfoauth sends PKCE S256 "
            "always.",
        ),
    )


def _pkce(browser_only: bool, has_my_domain: bool) -> FlowRecommendation:
    reasons = [
        "A user is present to log in through the browser.",
        "The client cannot keep a secret, so the PKCE code verifier is its only proof.",
    ]
    caveats = [
        "Do not ship the client secret in the app; the token request must not include "
        "it.",
        "Refreshing from a public client needs 'Require Secret for Refresh Token Flow' "
        "turned off.",
        _ECA,
    ]
    alternatives: tuple[FlowName, ...] = ()
    if browser_only:
        reasons.append(
            "PKCE replaces the User-Agent flow for browser-only apps: tokens never "
            "appear "
            "in the URL fragment."
        )
        caveats.insert(
            0,
            "The browser calls the token endpoint itself: enable 'CORS for OAuth "
            "endpoints' and allow your origin.",
        )
        caveats.append(
            "The User-Agent flow is discouraged and can be blocked org-wide "
            "(blockOAuthUsrAgtFlow); use it only if the token endpoint cannot be "
            "reached "
            "from the browser.",
        )
        alternatives = (FlowName.USER_AGENT,)
    if not has_my_domain:
        caveats.append(_MY_DOMAIN)
    return FlowRecommendation(
        flow=FlowName.PKCE,
        reasons=tuple(reasons),
        caveats=tuple(caveats),
        alternatives=alternatives,
        setup=(
            "Create the app with OAuth enabled and the callback URL; turn off 'Require "
            "Secret for Web Server Flow'.",
            _PKCE_SETUP,
            "Configure ConnectedApp(client_id, redirect_uri, login_url) without a "
            "client_secret.",
        ),
    )


def _asset_token(can_keep_secret: bool | None) -> FlowRecommendation:
    first = FlowName.PKCE if can_keep_secret is False else FlowName.WEB_SERVER
    return FlowRecommendation(
        flow=FlowName.ASSET_TOKEN,
        reasons=(
            "Asset tokens identify a connected device to your backend with a signed "
            "JWT "
            "and can register it as an Asset record.",
            "The exchange needs a Salesforce access token from a user flow first.",
        ),
        caveats=(
            "Get the access token with the web server flow (or the device flow on an "
            "input-constrained device) before the exchange.",
            "Sign the actor token with the device's private key and put its public key "
            "in "
            "cnf.jwk for proof of possession; the actor token's exact rules are not "
            "documented.",
            "Backends must verify asset tokens (verify_asset_token): signature, "
            "audience "
            "and expiry; the token lives only as long as expires_in.",
            _ECA,
        ),
        alternatives=(first, FlowName.DEVICE),
        setup=(
            "Create a self-signed certificate (SHA-256) in the org for signing asset "
            "tokens.",
            "Enable asset tokens on the app: choose the certificate, audiences and "
            "validity.",
            "Issue asset tokens from an Experience Cloud site or your My Domain "
            "(login_url).",
        ),
    )


def _token_exchange(has_my_domain: bool) -> FlowRecommendation:
    caveats = [
        "The subject token is single-use evidence from your identity provider: an "
        "exchange is sent once and never retried (sfoauth refuses subject tokens over "
        "10,000 characters before sending).",
        "Each Salesforce user must exist (or be created by your handler) and be "
        "allowed to use the app.",
        _ECA,
    ]
    if not has_my_domain:
        caveats.insert(0, _MY_DOMAIN + " Token exchange is refused elsewhere.")
    return FlowRecommendation(
        flow=FlowName.TOKEN_EXCHANGE,
        reasons=(
            "Your users already sign in with another identity provider (Okta, Auth0, "
            "Entra ID...): their token is traded for a Salesforce token with no "
            "Salesforce login page.",
            "Salesforce runs your Apex token exchange handler, which validates the "
            "outside token and maps it to a Salesforce user.",
        ),
        caveats=tuple(caveats),
        alternatives=(FlowName.WEB_SERVER, FlowName.JWT_BEARER),
        setup=(
            "Write an Apex class extending Auth.OauthTokenExchangeHandler (validate "
            "the token, return the user) and register it as a token exchange handler.",
            "On the app, enable the Token Exchange Flow and choose the handler; turn "
            "on 'Require Secret for Token Exchange Flow' for server-side apps.",
            "Call token_exchange(subject_token, 'access_token' | 'id_token' | 'jwt', "
            "token_handler=...) against your My Domain (login_url).",
        ),
    )


def _device() -> FlowRecommendation:
    return FlowRecommendation(
        flow=FlowName.DEVICE,
        reasons=(
            "The device cannot show a full browser or take typed input; the user "
            "approves "
            "the code on another device.",
        ),
        caveats=(
            "Device flow authorizations with the default 'Salesforce CLI' connected "
            "app "
            "are blocked since 2025-08-28: use your own app.",
            "Salesforce's device flow is non-standard (response_type=device_code and "
            "grant_type=device on the token endpoint); sfoauth handles it.",
            "The user code must be approved within about 10 minutes.",
            _ECA,
        ),
        alternatives=(FlowName.WEB_SERVER, FlowName.PKCE),
        setup=(
            "Enable the device flow on your app (External Client App: global OAuth "
            "setting isDeviceFlowEnabled) and add the refresh_token scope.",
            "Use start_device_flow() and poll_device_flow(); show the user code and "
            "verification URL.",
        ),
    )


def _jwt_bearer(
    can_keep_secret: bool | None, has_my_domain: bool
) -> FlowRecommendation:
    alternatives: tuple[FlowName, ...] = ()
    if can_keep_secret is not False:
        alternatives = (FlowName.CLIENT_CREDENTIALS,)
    return FlowRecommendation(
        flow=FlowName.JWT_BEARER,
        reasons=(
            "No user is present, and the integration acts as a named Salesforce user.",
            "A signed assertion replaces any secret on the wire, and no refresh token "
            "needs to be stored.",
        ),
        caveats=(
            "The user must be pre-authorized (admin-approved profile or permission "
            "set), "
            'or Salesforce answers "user hasn\'t approved this consumer".',
            "The audience is https://login.salesforce.com, https://test.salesforce.com "
            "or the Experience Cloud site URL.",
            "Keep the private key (>= 2048 bits) in a secret store and rotate the "
            "certificate before it expires.",
            _ECA,
        )
        + (() if has_my_domain else (_MY_DOMAIN,)),
        alternatives=alternatives,
        setup=(
            "Create a certificate and upload it to the app ('Use digital signatures').",
            "Set the app's permitted users to 'Admin approved users are "
            "pre-authorized' "
            "and assign the integration user's profile or a permission set.",
            "Configure ConnectedApp(client_id, private_key, username, login_url).",
        ),
    )


def _client_credentials(has_my_domain: bool) -> FlowRecommendation:
    caveats = [
        "Every call runs as the run-as user: give it the API Only permission and the "
        "least privilege it needs.",
        "Client credentials does not work on login.salesforce.com or "
        "test.salesforce.com ('request not supported on this domain').",
        "There is no refresh token: sfoauth requests a new token when needed.",
        _ECA,
    ]
    if not has_my_domain:
        caveats.insert(0, "This flow needs your org's My Domain URL as login_url.")
    return FlowRecommendation(
        flow=FlowName.CLIENT_CREDENTIALS,
        reasons=(
            "No user is present, and your server can keep the client secret.",
            "No private key or certificate is needed.",
        ),
        caveats=tuple(caveats),
        alternatives=(FlowName.JWT_BEARER,),
        setup=(
            "Enable the client credentials flow on the app and choose a run-as user.",
            _MY_DOMAIN,
            "Configure ConnectedApp(client_id, client_secret, login_url=<My Domain>).",
        ),
    )


def _bootstrap() -> FlowRecommendation:
    return FlowRecommendation(
        flow=FlowName.PKCE,
        reasons=(
            "No user is present at run time, but the integration can hold neither a "
            "private key nor a client secret.",
            "A person authorizes once (sfoauth login web); the stored refresh token "
            "then "
            "keeps the integration connected.",
        ),
        caveats=(
            "Store the refresh token encrypted; if it is revoked or expires by policy, "
            "someone must log in again.",
            "Prefer the JWT bearer flow as soon as the integration can hold a private "
            "key.",
            _ECA,
        ),
        alternatives=(FlowName.JWT_BEARER, FlowName.CLIENT_CREDENTIALS),
        setup=(
            "Add the refresh_token scope to the app and set the refresh token policy "
            "to 'valid until revoked' (or a long expiry).",
            _PKCE_SETUP,
            "Run `sfoauth login web` once and keep the stored token.",
        ),
    )


def _username_password(
    can_keep_secret: bool | None, has_my_domain: bool
) -> FlowRecommendation:
    alternatives: list[FlowName] = []
    if has_my_domain and can_keep_secret is not False:
        alternatives.append(FlowName.CLIENT_CREDENTIALS)
    alternatives.append(
        FlowName.PKCE if can_keep_secret is False else FlowName.WEB_SERVER
    )
    return FlowRecommendation(
        flow=FlowName.USERNAME_PASSWORD,
        reasons=(
            "You asked for a quick development setup: a username and password give a "
            "token without a browser or a certificate.",
        ),
        caveats=(
            "Blocked by default in orgs created Summer '23 or later (org setting "
            "'Allow "
            "OAuth Username-Password Flows').",
            "Salesforce is retiring this flow: it stops working for connected apps in "
            "Winter '27 (enforcement reported for 2027-02-20) and External Client Apps "
            "never had it. Plan the move now: JWT bearer or client credentials for "
            "integrations, the web server flow with PKCE for people; never use it in "
            "production.",
            "The password carries the user's security token unless the IP is trusted; "
            "there are no scopes and no refresh token.",
            _ECA,
        ),
        alternatives=tuple(alternatives),
        setup=(
            "Allow the username-password flow in the org's OAuth and OpenID Connect "
            "settings (development orgs only).",
            "Call password(username, password, security_token=...); sfoauth warns "
            "(once per process) that the flow is retired.",
            "Migrating: `sfoauth login jwt --setup` makes the key pair and certificate "
            "for JWT bearer and prints the steps (docs/flows/username-password.md, "
            "'Migrating off it').",
        ),
    )


def recommend_flow(
    *,
    can_keep_secret: bool | None = None,
    user_present: bool = True,
    device: str | None = None,
    server_to_server: bool = False,
    can_hold_private_key: bool = True,
    has_my_domain: bool = True,
    development_only: bool = False,
    browser_only: bool = False,
    external_idp: bool = False,
    external_client_app: bool = False,
) -> FlowRecommendation:
    """Recommend a Salesforce OAuth flow from a few facts about the app.

    The decision, in order:

    1. ``device="asset_tracking"`` → Asset Token.
    2. ``device="input_constrained"`` with a user present → Device.
    3. ``development_only`` → Username-Password (with every caveat), except for an
       External Client App (``external_client_app``), which has no such flow: the
       decision continues with the steps below.
    4. Users present who already sign in with another identity provider
       (``external_idp``) → Token Exchange.
    5. No user present, or server to server: JWT Bearer if the integration can hold a
       private key; otherwise Client Credentials if it can keep a secret; otherwise a
       one-time PKCE browser login that stores a refresh token.
    6. A user in a browser-only app, or a client that cannot keep a secret → PKCE.
    7. Otherwise → Web Server with PKCE and the client secret.

    Args:
        can_keep_secret: whether the client can keep a secret (``None``: unknown).
        user_present: whether a person can log in interactively.
        device: ``None``, ``"input_constrained"`` (TV, CLI on a headless box) or
            ``"asset_tracking"`` (IoT device identified to a backend).
        server_to_server: an integration with no user at run time.
        can_hold_private_key: the integration can keep an RSA private key.
        has_my_domain: the app uses the org's My Domain URL as login URL.
        development_only: a quick setup for development; security trade-offs accepted.
        browser_only: the app runs entirely in the browser (no server).
        external_idp: users sign in to your app with another identity provider
            (Okta, Auth0, Entra ID) whose tokens can be exchanged.
        external_client_app: the app is an External Client App (no username-password
            flow, propagation delay, per-org installation; reference 15.5).

    Returns:
        The flow, with reasons, caveats, alternatives and setup steps.

    Raises:
        ConfigurationError: ``device`` is not one of the known kinds.

    Example:
        >>> recommend_flow(server_to_server=True).flow
        <FlowName.JWT_BEARER: 'jwt_bearer'>
    """
    if device is not None and device not in DEVICE_KINDS:
        raise ConfigurationError(
            "device", "must be None, 'input_constrained' or 'asset_tracking'"
        )
    rec = _decide(
        can_keep_secret=can_keep_secret,
        user_present=user_present,
        device=device,
        server_to_server=server_to_server,
        can_hold_private_key=can_hold_private_key,
        has_my_domain=has_my_domain,
        development_only=development_only and not external_client_app,
        browser_only=browser_only,
        external_idp=external_idp,
    )
    if not external_client_app:
        return rec
    reasons = rec.reasons + ((_ECA_NO_PASSWORD,) if development_only else ())
    return dataclasses.replace(
        rec,
        reasons=reasons,
        caveats=tuple(_ECA_NOTES if c == _ECA else c for c in rec.caveats),
        alternatives=tuple(
            a for a in rec.alternatives if a is not FlowName.USERNAME_PASSWORD
        ),
    )


def _decide(
    *,
    can_keep_secret: bool | None,
    user_present: bool,
    device: str | None,
    server_to_server: bool,
    can_hold_private_key: bool,
    has_my_domain: bool,
    development_only: bool,
    browser_only: bool,
    external_idp: bool,
) -> FlowRecommendation:
    headless = server_to_server or not user_present
    if device == "asset_tracking":
        return _asset_token(can_keep_secret)
    if device == "input_constrained" and not headless:
        return _device()
    if development_only:
        return _username_password(can_keep_secret, has_my_domain)
    if external_idp and not headless:
        return _token_exchange(has_my_domain)
    if headless:
        if can_hold_private_key:
            return _jwt_bearer(can_keep_secret, has_my_domain)
        if can_keep_secret is not False:
            return _client_credentials(has_my_domain)
        return _bootstrap()
    if browser_only or can_keep_secret is False:
        return _pkce(browser_only, has_my_domain)
    return _web_server(can_keep_secret, has_my_domain)


def explain(rec: FlowRecommendation, *, width: int = 88) -> str:
    """Render a recommendation as plain text for the command line.

    Example:
        >>> print(explain(recommend_flow(can_keep_secret=True)))  # doctest: +ELLIPSIS
        Recommended: Web Server flow (authorization code + PKCE, client secret) ...
    """
    lines = [f"Recommended: {rec.flow.label} [{rec.flow.value}]", ""]
    sections = (
        ("Why", [f"- {item}" for item in rec.reasons]),
        ("Caveats", [f"- {item}" for item in rec.caveats]),
        ("Alternatives", [f"- {a.label} [{a.value}]" for a in rec.alternatives]),
        ("Setup", [f"{n}. {step}" for n, step in enumerate(rec.setup, 1)]),
    )
    for title, items in sections:
        if not items:
            continue
        lines.append(f"{title}:")
        for item in items:
            hang = " " * (item.index(" ") + 3)
            lines.append(
                textwrap.fill(item, width, initial_indent="  ", subsequent_indent=hang)
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
