"""What the views do, one function per step: start a login, finish it, disconnect.

The login itself is the core's transaction (:mod:`sfoauth_core.login`): options,
``begin_login``, ``complete_login`` and the identity rule. This module binds it to
Django: the browser binding is a random value in the session, the pending login waits in
a :class:`~sfoauth_django.storage.DjangoPendingLoginStore` row (encrypted, keyed by a
hash of ``state``, bound to that session), the local user comes from the
authentication backend, and each :class:`~sfoauth_core.login.LoginErrorCode` becomes a
:class:`FlowFailedError` the views render (SECURITY.md items 1-7).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from django.contrib.auth import authenticate, login
from django.db import IntegrityError, router, transaction
from django.http import HttpRequest
from django.utils import timezone

from sfoauth_core import login as core_login
from sfoauth_core.exceptions import (
    ConfigurationError,
    OAuthProtocolError,
    RepeatedParameterError,
    SFOAuthError,
)
from sfoauth_core.flows.web_server import callback_params
from sfoauth_core.login import (
    CompletedLogin,
    KnownConnection,
    LoginError,
    LoginErrorCode,
    PendingLogin,
)
from sfoauth_core.tokens import Token

from . import _runtime
from ._responses import log_configuration_failure
from .adapter import get_adapter
from .conf import sfoauth_settings, translate_error
from .models import AbstractSalesforceConnection, get_token_model, user_key
from .storage import DjangoPendingLoginStore

security_log = logging.getLogger("sfoauth.security")
logger = logging.getLogger("sfoauth.django")

SESSION_BINDING = "_sfoauth_binding"
#: Session flag set by a disconnect: the next redirect to login says why.
DISCONNECTED = "_sfoauth_disconnected"
MAX_LOGIN_HINT = core_login.MAX_LOGIN_HINT

#: The error page (a key of ``adapter.ERROR_MESSAGES``) and status of each refusal.
LOGIN_ERRORS: dict[LoginErrorCode, tuple[str, int]] = {
    LoginErrorCode.INVALID_REQUEST: ("invalid_request", 400),
    LoginErrorCode.NOT_AUTHENTICATED: ("login_required", 403),
    LoginErrorCode.INVALID_STATE: ("invalid_state", 400),
    LoginErrorCode.INVALID_CALLBACK: ("invalid_request", 400),
    LoginErrorCode.ACCESS_DENIED: ("access_denied", 400),
    LoginErrorCode.AUTHORIZATION_FAILED: ("salesforce_error", 400),
    LoginErrorCode.EXCHANGE_FAILED: ("exchange_failed", 400),
    LoginErrorCode.ID_TOKEN_REJECTED: ("exchange_failed", 400),
    LoginErrorCode.SALESFORCE_ERROR: ("exchange_failed", 502),
    LoginErrorCode.SALESFORCE_UNAVAILABLE: ("unavailable", 503),
    LoginErrorCode.APP_MISCONFIGURED: ("configuration", 502),
    LoginErrorCode.APP_ACCESS_DENIED: ("app_access", 400),
    LoginErrorCode.ALREADY_LINKED: ("already_linked", 409),
    LoginErrorCode.DIFFERENT_ACCOUNT: ("different_account", 409),
    LoginErrorCode.SIGNUP_CLOSED: ("signup_closed", 403),
    LoginErrorCode.STORAGE_UNAVAILABLE: ("unavailable", 503),
}

_STEP_NAMES = {"exchange": "the code exchange", "id_token": "the code exchange"}


@dataclass
class FlowFailedError(Exception):
    """A step failed; the view renders ``error`` with ``status``."""

    error: str
    status: int = 400
    cause: BaseException | None = None


@dataclass(frozen=True)
class LoginOptions:
    """The per-request options a login accepts (each checked against an allowlist)."""

    next_url: str | None = None
    prompt: str | None = None
    login_hint: str | None = None
    domain: str | None = None

    def core(self) -> core_login.LoginOptions:
        """The core's options (``domain`` picks the app's login URL instead)."""
        return core_login.LoginOptions(
            next_url=self.next_url, prompt=self.prompt, login_hint=self.login_hint
        )


def _refused(failure: LoginError) -> FlowFailedError:
    """The view's answer to a refused step, logged as the step deserves."""
    if failure.is_security_event:
        security_log.warning("callback rejected: %s", failure.reason)
    if isinstance(failure.cause, OAuthProtocolError):
        what = _STEP_NAMES.get(failure.step, "the Salesforce login (authorize)")
        log_configuration_failure(failure.cause, what)
    error, status = LOGIN_ERRORS[failure.code]
    return FlowFailedError(error, status, failure.cause)


def _login_id(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def read_login_options(data: Any) -> LoginOptions:
    """Validate ``next``/``prompt``/``login_hint``/``domain`` from a query or form.

    An unsafe ``next`` is dropped (the user ends on the default page); a bad option is a
    400.
    """
    try:
        options = core_login.read_login_options(
            next=data.get("next"),
            prompt=data.get("prompt"),
            login_hint=data.get("login_hint"),
        )
    except LoginError as failure:
        raise _refused(failure) from None
    domain = data.get("domain") or None
    if domain is not None and domain not in sfoauth_settings.LOGIN_URLS:
        raise FlowFailedError("invalid_request")
    return LoginOptions(options.next_url, options.prompt, options.login_hint, domain)


def _user_binding(request: HttpRequest) -> str | None:
    user = request.user
    return str(user.pk) if user.is_authenticated else None


def start_login(request: HttpRequest, options: LoginOptions) -> str:
    """Record a pending login and return the Salesforce authorize URL to redirect to.

    Raises:
        FlowFailedError: an option is not allowed, or an anonymous user may not sign in.
    """
    adapter = get_adapter(request)
    if not request.user.is_authenticated and not adapter.is_sign_in_allowed(request):
        raise FlowFailedError("login_required", 403)
    login_url = sfoauth_settings.LOGIN_URLS[options.domain] if options.domain else None
    oauth = _runtime.oauth(login_url=login_url)
    try:
        url, pending = core_login.begin_login(
            oauth.app,
            options.core(),
            user=_user_binding(request),
            scopes=adapter.get_scopes(request),
            ttl=sfoauth_settings.STATE_TTL,
        )
    except LoginError as failure:
        exc = failure.cause
        if isinstance(exc, ConfigurationError) and exc.setting in (
            "redirect_uri",
            "client_secret",
        ):
            logger.error(
                "cannot start a Salesforce login: %s", translate_error(exc, None)
            )
        raise _refused(failure) from None
    binding = request.session.get(SESSION_BINDING)
    if not isinstance(binding, str) or len(binding) < 32:
        binding = request.session[SESSION_BINDING] = secrets.token_urlsafe(32)
    _store(binding).put(_login_id(pending.state), pending)
    return url


def _store(binding: str) -> DjangoPendingLoginStore:
    return DjangoPendingLoginStore(sfoauth_settings.cipher(), binding=binding)


def _take_pending(request: HttpRequest, state: str | None) -> PendingLogin:
    """Consume the pending login named by ``state``: single use, session-bound."""
    binding = request.session.get(SESSION_BINDING)
    if not state or not isinstance(binding, str):
        security_log.warning(
            "callback rejected: missing state or no login in this session"
        )
        raise FlowFailedError("invalid_state")
    try:
        pending = _store(binding).take(_login_id(state))
    except LoginError as failure:
        raise _refused(failure) from None
    if pending is None:
        security_log.warning("callback rejected: unknown or already used state")
        raise FlowFailedError("invalid_state")
    return pending


def _username(oauth: Any, done: CompletedLogin) -> str | None:
    """The Salesforce username for the admin: from the verified ID token, else one
    identity call (best effort: a login never fails for it)."""
    if done.username:
        return done.username
    try:
        found: str | None = oauth.identity(done.token).username
    except SFOAuthError as exc:
        logger.info("identity lookup for the username failed: %s", type(exc).__name__)
        return None
    return found


def _revoke_quietly(oauth: Any, token: Token) -> None:
    """Give an unusable grant back (best effort; a token exchange's checks use it)."""
    try:
        oauth.revoke(token)
    except SFOAuthError as exc:
        logger.warning("could not revoke an unused grant: %s", type(exc).__name__)


def _refuse(
    oauth: Any, done: CompletedLogin | Token, code: LoginErrorCode, why: str
) -> NoReturn:
    """Give the new grant back, then fail with ``code``."""
    try:
        oauth.run(core_login.refuse_login(oauth.app, done, code, why))
    except LoginError as failure:
        raise _refused(failure) from None
    raise AssertionError("refuse_login always raises")  # pragma: no cover


def finish_login(request: HttpRequest) -> tuple[str, str | None]:
    """Check the callback, exchange the code, store the token; returns (key, next).

    Raises:
        FlowFailedError: any check or step failed; nothing was stored.
    """
    try:
        # state=a&state=b: refused before the pending login is even looked up.
        query = callback_params((k, v) for k, vs in request.GET.lists() for v in vs)
    except RepeatedParameterError as exc:
        security_log.warning("callback rejected: repeated %r", exc.parameter)
        raise FlowFailedError("invalid_request", 400, exc) from None
    pending = _take_pending(request, query.get("state"))
    # The token endpoint comes from the server-side record, never from the callback.
    oauth = _runtime.oauth()
    try:
        done = oauth.run(
            core_login.complete_login(
                oauth.app,
                pending,
                query,
                user=_user_binding(request),
                jwks_cache=oauth.jwks_cache,
                now=timezone.now().timestamp(),
            )
        )
    except LoginError as failure:
        raise _refused(failure) from None
    token = done.token
    user: Any = request.user
    if pending.user is None:
        user = authenticate(request, salesforce_token=token)
        if user is None:
            _refuse(oauth, done, LoginErrorCode.SIGNUP_CLOSED, "sign-up is closed")
    # complete_login checked that the token names both.
    key = user_key(cast("str", token.org_id), cast("str", token.user_id))
    connection = _claim_row(key, user, done, oauth)  # the login's grant
    _runtime.manager().save(key, token, username=_username(oauth, done))
    _runtime.forget_user(user.pk)
    if pending.user is None:
        login(request, user, backend="sfoauth_django.backends.SalesforceBackend")
    request.session.pop(DISCONNECTED, None)
    connection.refresh_from_db()
    get_adapter(request).on_token_obtained(request, connection, token)
    return key, done.next_url


def _claim_row(
    key: str, user: Any, done: CompletedLogin | Token, oauth: Any
) -> AbstractSalesforceConnection:
    """The user's row for ``key``, under the core's identity rule: a connection never
    moves between users, and never replaces the user's link to another Salesforce user
    of the same org (item 7). ``done`` is a completed login, or the token of another
    grant that links a user (a token exchange); a refused grant is revoked."""
    token: Token = done.token if isinstance(done, CompletedLogin) else done
    model = get_token_model()
    rows = model._default_manager
    existing: AbstractSalesforceConnection | None = rows.filter(key=key).first()
    known: list[KnownConnection] = []
    if existing is not None and existing.key == key:
        known.append(
            KnownConnection(
                existing.org_id,
                existing.salesforce_user_id,
                mine=existing.user_id == user.pk,
            )
        )
    other = (
        rows.filter(user=user, org_id=token.org_id, name="").exclude(key=key).first()
    )
    if other is not None:
        known.append(KnownConnection(other.org_id, other.salesforce_user_id, mine=True))
    conflict = core_login.identity_conflict(token, known)
    if conflict is not None:
        _refuse(oauth, done, conflict, f"Salesforce user {conflict.value}")
    if existing is not None and existing.key == key:
        return existing
    try:
        # The savepoint must be on the database the row is written to (a router may
        # send connections elsewhere); on the default alias an IntegrityError would
        # leave an outer ATOMIC_REQUESTS transaction on that database unusable.
        with transaction.atomic(using=router.db_for_write(model)):
            created: Any = rows.create(
                key=key,
                user=user,
                org_id=token.org_id or "",
                salesforce_user_id=token.user_id or "",
            )
    except IntegrityError:
        _refuse(oauth, done, LoginErrorCode.ALREADY_LINKED, "key taken meanwhile")
    row: AbstractSalesforceConnection = created
    return row


def disconnect(request: HttpRequest) -> bool | None:
    """Revoke the user's connection at Salesforce (best effort) and delete it locally.

    ``org_id`` in the form picks one of several connections. Returns ``None`` when there
    was none, else whether Salesforce confirmed the revocation.
    """
    user: Any = request.user
    rows = get_token_model()._default_manager.filter(user=user, name="")
    org_id = request.POST.get("org_id")
    if org_id:
        rows = rows.filter(org_id=org_id)
    row = rows.order_by("-updated_at").first()
    if row is None or (org_id and row.org_id != org_id):
        return None
    revoked = True
    if row.token_ciphertext:
        revoked = _runtime.manager().revoke(row.key)
    else:
        row.delete()
    _runtime.forget(row.key)
    _runtime.forget_user(user.pk)
    return revoked
