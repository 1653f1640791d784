"""The emulator's state operations, in one place.

Each function takes the :class:`EmulatorState` and takes ``state.lock`` itself, so
callers (the :class:`SalesforceEmulator` facade, the control API) delegate in one line
and never touch the lock. Request handlers that run a whole request under the lock
(``oauth.py``, ``authorize.py``, ``tokens.py``…) keep doing so; the helpers they call
document that they expect the lock held.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from . import authorize as authorize_module
from ._ids import to_18
from .constants import AUTHORIZE_PATH, DEFAULT_USERNAME
from .crypto import cached_private_key, check_certificate_pem, private_pem, public_pem
from .defaults import install_defaults
from .state import (
    EmulatedApp,
    EmulatedOrg,
    EmulatedUser,
    EmulatorState,
    Fault,
    LogEntry,
)
from .tokens import Grant, issue_token_response, resolve_scopes, wants_refresh
from .vhosts import HostContext, resolve_host

__all__ = [
    "READ_ONLY_FIELDS",
    "add_app",
    "add_org",
    "add_user",
    "advance_time",
    "authorize",
    "begin_request",
    "call_counts",
    "calls",
    "clear_faults",
    "concurrent_refresh_rejections",
    "expire_access_tokens",
    "inject_fault",
    "issue_tokens",
    "log_request",
    "patch_record",
    "request_log",
    "reset",
    "resolve_request_host",
    "reuse_detected",
    "seed_defaults",
    "set_auto_approve",
    "set_auto_consent",
    "set_device_status",
    "set_host_binding",
    "set_loopback_hosts",
    "set_loopback_kind",
    "upload_certificate",
]

#: Fields the control API's PATCH refuses to change (they are the records' keys).
READ_ONLY_FIELDS = frozenset({"name", "client_id", "username", "user_id", "org_id"})


def _fields(cls: type[Any], values: dict[str, Any]) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")


# ---------------------------------------------------------------------- data
def seed_defaults(state: EmulatorState) -> None:
    """Install the default org, users and apps."""
    with state.lock:
        install_defaults(state)


def add_org(
    state: EmulatorState,
    name: str,
    *,
    org_id: str,
    my_domain: str | None = None,
    **policies: Any,
) -> EmulatedOrg:
    """Add (or replace) an org (see :meth:`SalesforceEmulator.add_org`)."""
    _fields(EmulatedOrg, policies)
    org = EmulatedOrg(
        name=name, org_id=to_18(org_id), my_domain=my_domain or name, **policies
    )
    with state.lock:
        state.orgs[name] = org
    return org


def add_user(
    state: EmulatorState,
    username: str,
    password: str,
    *,
    user_id: str,
    org: str | None = None,
    **fields: Any,
) -> EmulatedUser:
    """Add (or replace) a user (see :meth:`SalesforceEmulator.add_user`)."""
    _fields(EmulatedUser, fields)
    fields.setdefault("email", username)
    user = EmulatedUser(
        username=username,
        password=password,
        user_id=to_18(user_id),
        org=org or state.default_org,
        **fields,
    )
    with state.lock:
        if user.org not in state.orgs:
            raise ValueError(f"unknown org {user.org!r}")
        state.users[username.lower()] = user
    return user


def add_app(
    state: EmulatorState, name: str, *, client_id: str, **policies: Any
) -> EmulatedApp:
    """Add (or replace) an app (see :meth:`SalesforceEmulator.add_app`)."""
    if policies.pop("jwt_key", False):
        key = cached_private_key(f"app:{name}")
        policies.setdefault("certificate_pem", public_pem(key))
        policies.setdefault("private_key_pem", private_pem(key))
    if policies.get("certificate_pem") is not None:
        check_certificate_pem(policies["certificate_pem"])
    _fields(EmulatedApp, policies)
    app = EmulatedApp(name=name, client_id=client_id, **policies)
    with state.lock:
        if app.created_at is None:
            app.created_at = state.now()
        state.apps[name] = app
    return app


def upload_certificate(
    state: EmulatorState, name: str, certificate_pem: str
) -> EmulatedApp:
    """Give app ``name`` a JWT bearer certificate and forget its private key."""
    check_certificate_pem(certificate_pem)
    with state.lock:
        app = state.apps[name]
        app.certificate_pem = certificate_pem
        app.private_key_pem = None
    return app


def _patch(target: object, data: dict[str, Any]) -> list[str]:
    names = {f.name for f in dataclasses.fields(target)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in names or k in READ_ONLY_FIELDS]
    if unknown:
        return unknown
    for key, value in data.items():
        current = getattr(target, key)
        if isinstance(current, set):
            value = set(value)
        elif isinstance(current, tuple):
            value = tuple(value)
        setattr(target, key, value)
    return []


def patch_record(
    state: EmulatorState, kind: str, name: str, data: dict[str, Any]
) -> list[str]:
    """Change fields of app, user or org ``name`` (``kind``: ``apps``, ``users``,
    ``orgs``), as the control API's PATCH does.

    A ``certificate_pem`` on an app is an upload, as in Setup: checked, and the
    emulator's copy of the old private key is dropped.

    Returns:
        The unknown or read-only field names (nothing is changed then).

    Raises:
        LookupError: unknown collection or record.
        ValueError: a bad certificate or field value.
    """
    if kind not in ("apps", "users", "orgs"):
        raise LookupError(f"unknown collection {kind!r}")
    with state.lock:
        target: object | None
        if kind == "apps":
            target = state.apps.get(name)
        elif kind == "users":
            target = state.user(name)
        else:
            target = state.orgs.get(name)
        if target is None:
            raise LookupError(f"unknown {kind[:-1]} {name!r}")
        if kind == "apps" and data.get("certificate_pem") is not None:
            try:
                check_certificate_pem(data["certificate_pem"])
            except ValueError as exc:
                raise ValueError(f"certificate_pem: {exc}") from None
            data = {**data}
            data.setdefault("private_key_pem", None)
        return _patch(target, data)


# ---------------------------------------------------------------------- control
def set_auto_approve(state: EmulatorState, username: str | None) -> None:
    """Log in and consent as ``username`` on authorize requests (``None``: pages)."""
    with state.lock:
        if username is not None and state.user(username) is None:
            raise ValueError(f"unknown user {username!r}")
        state.auto_approve = username


def set_auto_consent(state: EmulatorState, value: Literal["allow", "deny"]) -> None:
    """What the scripted user answers on the consent page."""
    with state.lock:
        state.auto_consent = value


def set_loopback_kind(
    state: EmulatorState, value: Literal["my_domain", "login"]
) -> None:
    """What a loopback host acts as."""
    with state.lock:
        state.loopback_kind = value


def set_loopback_hosts(state: EmulatorState, value: dict[str, str]) -> None:
    """Give loopback host names to orgs (``{"localhost": "beta"}``)."""
    hosts = {str(k).strip("[]").lower(): str(v) for k, v in dict(value).items()}
    with state.lock:
        unknown = sorted(v for v in hosts.values() if v not in state.orgs)
        if unknown:
            raise ValueError(f"unknown org(s) {', '.join(map(repr, unknown))}")
        state.loopback_hosts = hosts


def set_host_binding(state: EmulatorState, value: Literal["family", "off"]) -> None:
    """``"family"``: tokens are served only by their environment's hosts;
    ``"off"``: by any host."""
    if value not in ("family", "off"):
        raise ValueError("host_binding must be 'family' or 'off'")
    with state.lock:
        state.host_binding = value


def expire_access_tokens(state: EmulatorState, user: str | None = None) -> int:
    """Expire every access token (or one user's); returns how many were live."""
    with state.lock:
        now = state.now()
        count = 0
        for record in state.access_tokens.values():
            if user is None or record.username.lower() == user.lower():
                if record.expires_at > now:
                    count += 1
                record.expires_at = now - 1
        return count


def advance_time(state: EmulatorState, seconds: float) -> None:
    """Move the emulator's clock forward."""
    with state.lock:
        state.time_offset += seconds


def set_device_status(
    state: EmulatorState, user_code: str, user: str | None, approved: bool
) -> None:
    """Approve (as ``user``) or deny a pending device authorization.

    Raises:
        KeyError: no such pending user code (or unknown user).
    """
    with state.lock:
        authorize_module.set_device_status(state, user_code, user, approved)


def calls(state: EmulatorState, grant_type: str | None = None) -> int:
    """Token-endpoint calls so far (all, or for one ``grant_type``)."""
    with state.lock:
        if grant_type is None:
            return sum(state.call_counts.values())
        return state.call_counts.get(grant_type, 0)


def call_counts(state: EmulatorState) -> dict[str, int]:
    """Token-endpoint calls by grant type (a copy)."""
    with state.lock:
        return dict(state.call_counts)


def request_log(state: EmulatorState) -> list[LogEntry]:
    """A copy of the request log (secrets masked)."""
    with state.lock:
        return list(state.log)


def reuse_detected(state: EmulatorState) -> int:
    """How many times a rotated-out refresh token was replayed."""
    with state.lock:
        return state.reuse_detected


def concurrent_refresh_rejections(state: EmulatorState) -> int:
    """How many refreshes were refused as concurrent."""
    with state.lock:
        return state.concurrent_refresh_rejections


def inject_fault(state: EmulatorState, fault: Fault) -> None:
    """Queue a copy of ``fault``."""
    with state.lock:
        state.faults.append(dataclasses.replace(fault))


def clear_faults(state: EmulatorState) -> None:
    """Remove every pending fault."""
    with state.lock:
        state.faults.clear()


def reset(state: EmulatorState, *, defaults: bool) -> None:
    """Drop tokens, log and faults; reinstall the default data when ``defaults``."""
    with state.lock:
        state.clear_runtime()
        if defaults:
            install_defaults(state)


# ---------------------------------------------------------------------- requests
def resolve_request_host(
    state: EmulatorState, scope: dict[str, Any]
) -> tuple[HostContext, str] | None:
    """The host context and the path within it for an ASGI ``scope`` (``None``: an
    unknown host)."""
    with state.lock:
        return resolve_host(state, scope)


def begin_request(
    state: EmulatorState, path: str, grant_type: str | None, *, token_call: bool
) -> tuple[float, int, Fault | None]:
    """Count a token call and take the fault it meets; returns the emulator's time,
    its generation (a :func:`reset` changes it) and the fault (if any)."""
    with state.lock:
        started = state.now()
        generation = state.generation
        if token_call:
            state.call_counts[grant_type or ""] += 1
        return started, generation, state.take_fault(path, grant_type)


def log_request(state: EmulatorState, entry: LogEntry) -> None:
    """Append ``entry`` to the request log."""
    with state.lock:
        state.log.append(entry)


# ---------------------------------------------------------------------- flows
def authorize(
    state: EmulatorState,
    *,
    base_url: str,
    app: str = "web",
    client_id: str | None = None,
    redirect_uri: str | None = None,
    user: str = DEFAULT_USERNAME,
    approve: bool = True,
    response_type: str = "code",
    scope: str | None = None,
    state_param: str | None = None,
    code_challenge: str | None = None,
    code_challenge_method: str | None = None,
    nonce: str | None = None,
) -> str:
    """Run an authorization at ``base_url`` as ``user`` without a browser; returns
    the callback URL (see :meth:`SalesforceEmulator.authorize`).

    Raises:
        ValueError: the request would be rendered as an error page, or the host or
            user is unknown.
    """
    emulated = state.apps[app]
    params = {
        "client_id": client_id or emulated.client_id,
        "redirect_uri": redirect_uri or emulated.callback_urls[0],
        "response_type": response_type,
    }
    optional = {
        "scope": scope,
        "state": state_param,
        "code_challenge": code_challenge,
        "code_challenge_method": code_challenge_method,
        "nonce": nonce,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    scheme, _, rest = base_url.partition("://")
    netloc, _, path = rest.partition("/")
    scope_dict: dict[str, Any] = {
        "scheme": scheme,
        "headers": [(b"host", netloc.encode())],
        "path": "/" + path.rstrip("/") + AUTHORIZE_PATH if path else AUTHORIZE_PATH,
    }
    with state.lock:
        resolved = resolve_host(state, scope_dict)
        if resolved is None:
            raise ValueError(f"unknown host {netloc!r}")
        ctx: HostContext = resolved[0]
        try:
            outcome = authorize_module.decide_authorization(
                state, ctx, params, forced_user=user, forced_consent=approve
            )
        except authorize_module.PageError as exc:
            raise ValueError(f"{exc.error}: {exc.description}") from None
    return outcome.location


def issue_tokens(
    state: EmulatorState,
    app: str = "web",
    user: str = DEFAULT_USERNAME,
    *,
    scopes: str | None = None,
    refresh: bool | None = None,
    issuer: str = "https://login.salesforce.com",
) -> dict[str, str]:
    """Issue tokens directly (no HTTP), as a web-server flow would; returns the
    body."""
    with state.lock:
        emulated = state.apps[app]
        subject = state.user(user)
        if subject is None:
            raise ValueError(f"unknown user {user!r}")
        org = state.org_of(subject)
        granted = resolve_scopes(emulated, scopes)
        grant = Grant(
            emulated,
            subject,
            org,
            granted,
            issuer,
            org.my_domain_url,
            "authorization_code",
        )
        return issue_token_response(
            state,
            grant,
            refresh=wants_refresh(granted) if refresh is None else refresh,
        )
