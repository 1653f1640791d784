"""What the views do, one function per step: start a login, finish it, disconnect.

Views parse the request and turn :class:`FlowFailure` into the adapter's error page; the
rules live here. The pending login (PKCE verifier, ``next``, login URL) is kept
server-side in :class:`~sfoauth_django.models.PendingAuthorization`, encrypted, keyed by a
hash of ``state`` and bound to the browser session that started it (SECURITY.md items 1-7).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import authenticate, login
from django.db import IntegrityError, router, transaction
from django.http import HttpRequest
from django.utils import timezone

from sfoauth_core.exceptions import (
    AccessDeniedError,
    ConfigurationError,
    FlowError,
    OAuthProtocolError,
    RepeatedParameterError,
    SFOAuthError,
    TransportError,
)
from sfoauth_core.flows.web_server import (
    callback_params,
    parse_authorization_response,
)
from sfoauth_core.storage import TokenCipher
from sfoauth_core.tokens import Token

from . import _runtime
from ._responses import log_configuration_failure
from .adapter import get_adapter, is_safe_next
from .conf import sfoauth_settings, translate_error
from .models import (
    AbstractSalesforceConnection,
    PendingAuthorization,
    get_token_model,
    user_key,
)

security_log = logging.getLogger("sfoauth.security")
logger = logging.getLogger("sfoauth.django")

SESSION_BINDING = "_sfoauth_binding"
#: Session flag set by a disconnect: the next redirect to login says why.
DISCONNECTED = "_sfoauth_disconnected"
MAX_LOGIN_HINT = 80


@dataclass
class FlowFailure(Exception):
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


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _pending_context(state_hash: str) -> str:
    return f"sfoauth-django-pending:{state_hash}"


def _cipher() -> TokenCipher:
    return sfoauth_settings.cipher()


def read_login_options(data: Any) -> LoginOptions:
    """Validate ``next``/``prompt``/``login_hint``/``domain`` from a query or form.

    An unsafe ``next`` is dropped (the user ends on the default page); a bad option is a
    400.
    """
    next_url = data.get("next") or None
    if not is_safe_next(next_url):
        next_url = None
    prompt = data.get("prompt") or None
    login_hint = data.get("login_hint") or None
    if login_hint is not None and (
        len(login_hint) > MAX_LOGIN_HINT or not login_hint.isprintable()
    ):
        raise FlowFailure("invalid_request")
    domain = data.get("domain") or None
    if domain is not None and domain not in sfoauth_settings.LOGIN_URLS:
        raise FlowFailure("invalid_request")
    return LoginOptions(next_url, prompt, login_hint, domain)


def start_login(request: HttpRequest, options: LoginOptions) -> str:
    """Record a pending login and return the Salesforce authorize URL to redirect to.

    Raises:
        FlowFailure: an option is not allowed, or an anonymous user may not sign in.
    """
    adapter = get_adapter(request)
    user = request.user
    if not user.is_authenticated and not adapter.is_sign_in_allowed(request):
        raise FlowFailure("login_required", 403)
    login_url = sfoauth_settings.LOGIN_URLS[options.domain] if options.domain else None
    oauth = _runtime.oauth(login_url=login_url)
    try:
        auth = oauth.authorization_url(
            scopes=adapter.get_scopes(request),
            prompt=options.prompt,
            login_hint=options.login_hint,
        )
    except ConfigurationError as exc:
        if exc.setting in ("redirect_uri", "client_secret"):
            logger.error(
                "cannot start a Salesforce login: %s", translate_error(exc, None)
            )
        raise FlowFailure("invalid_request", 400, exc) from None
    binding = request.session.get(SESSION_BINDING)
    if not isinstance(binding, str) or len(binding) < 32:
        binding = request.session[SESSION_BINDING] = secrets.token_urlsafe(32)
    state_hash = _digest(auth.state)
    payload = {
        "verifier": auth.code_verifier,
        "nonce": auth.nonce,
        "next": options.next_url,
        "login_url": login_url,
        "issuer": auth.issuer,
        "user": str(user.pk) if user.is_authenticated else None,
    }
    now = timezone.now()
    PendingAuthorization.objects.filter(expires_at__lt=now).delete()
    PendingAuthorization.objects.create(
        state_hash=state_hash,
        binding_hash=_digest(binding),
        payload=_cipher().encrypt(
            json.dumps(payload).encode(), context=_pending_context(state_hash)
        ),
        expires_at=now + timedelta(seconds=sfoauth_settings.STATE_TTL),
    )
    return auth.url


def _take_pending(request: HttpRequest) -> tuple[str, dict[str, Any]]:
    """Consume the pending login named by ``state``: single use, session-bound, fresh."""
    state = request.GET.get("state")
    binding = request.session.get(SESSION_BINDING)
    if not state or not isinstance(binding, str):
        security_log.warning(
            "callback rejected: missing state or no login in this session"
        )
        raise FlowFailure("invalid_state")
    state_hash = _digest(state)
    row = PendingAuthorization.objects.filter(state_hash=state_hash).first()
    if row is None:
        security_log.warning("callback rejected: unknown or already used state")
        raise FlowFailure("invalid_state")
    if not hmac.compare_digest(row.binding_hash, _digest(binding)):
        security_log.warning(
            "callback rejected: state belongs to another browser session"
        )
        raise FlowFailure("invalid_state")
    deleted, _ = PendingAuthorization.objects.filter(
        state_hash=state_hash, binding_hash=row.binding_hash
    ).delete()
    if deleted != 1:
        security_log.warning("callback rejected: state used by a concurrent callback")
        raise FlowFailure("invalid_state")
    if row.expires_at <= timezone.now():
        security_log.warning("callback rejected: state expired")
        raise FlowFailure("invalid_state")
    try:
        payload = json.loads(
            _cipher().decrypt(row.payload, context=_pending_context(state_hash))
        )
    except (SFOAuthError, ValueError):
        security_log.warning("callback rejected: pending login record unreadable")
        raise FlowFailure("invalid_state") from None
    starter = payload.get("user")
    current = str(request.user.pk) if request.user.is_authenticated else None
    if starter is not None and starter != current:
        security_log.warning(
            "callback rejected: the user changed since the login started"
        )
        raise FlowFailure("invalid_state")
    return state, payload


def _revoke_quietly(oauth: Any, token: Token) -> None:
    try:
        oauth.revoke(token.refresh_token or token.access_token)
    except SFOAuthError as exc:
        logger.warning("could not revoke an unused grant: %s", type(exc).__name__)


def _username(oauth: Any, token: Token, claims: dict[str, Any]) -> str | None:
    """The Salesforce username for the admin: from the verified ID token, else one
    identity call (best effort: a login never fails for it)."""
    username = claims.get("preferred_username")
    if isinstance(username, str) and username:
        return username
    try:
        found: str | None = oauth.identity(token).username
    except SFOAuthError as exc:
        logger.info("identity lookup for the username failed: %s", type(exc).__name__)
        return None
    return found


def finish_login(request: HttpRequest) -> tuple[str, str | None]:
    """Check the callback, exchange the code, store the token; returns (key, next).

    Raises:
        FlowFailure: any check or step failed; nothing was stored.
    """
    try:
        # state=a&state=b: refused before the pending login is even looked up.
        query = callback_params((k, v) for k, vs in request.GET.lists() for v in vs)
    except RepeatedParameterError as exc:
        security_log.warning("callback rejected: repeated %r", exc.parameter)
        raise FlowFailure("invalid_request", 400, exc) from None
    state, pending = _take_pending(request)
    try:
        code = parse_authorization_response(
            query,
            expected_state=state,
            expected_issuer=pending.get("issuer"),
        )
    except AccessDeniedError as exc:
        raise FlowFailure("access_denied", 400, exc) from None
    except OAuthProtocolError as exc:
        log_configuration_failure(exc, "the Salesforce login (authorize)")
        raise FlowFailure("salesforce_error", 400, exc) from None
    except FlowError as exc:
        security_log.warning("callback rejected: %s", type(exc).__name__)
        raise FlowFailure("invalid_request", 400, exc) from None
    # The token endpoint comes from the server-side record, never from the callback.
    oauth = _runtime.oauth(login_url=pending.get("login_url"))
    try:
        token = oauth.exchange_code(code, code_verifier=pending.get("verifier"))
    except TransportError as exc:
        raise FlowFailure("unavailable", 503, exc) from None
    except OAuthProtocolError as exc:
        log_configuration_failure(exc, "the code exchange")
        raise FlowFailure("exchange_failed", 400, exc) from None
    except SFOAuthError as exc:
        raise FlowFailure("exchange_failed", 502, exc) from None
    if not token.org_id or not token.user_id:
        _revoke_quietly(oauth, token)
        raise FlowFailure("exchange_failed", 502)
    claims: dict[str, Any] = {}
    if token.id_token and pending.get("nonce"):
        # OpenID Connect: the ID token must be the issuer's and carry this login's
        # nonce (SECURITY.md item 14).
        try:
            claims = dict(oauth.verify_id_token(token, nonce=pending["nonce"]))
        except TransportError as exc:  # the key set could not be fetched (503)
            _revoke_quietly(oauth, token)
            raise FlowFailure("unavailable", 503, exc) from None
        except SFOAuthError as exc:
            security_log.warning("callback rejected: ID token %s", type(exc).__name__)
            _revoke_quietly(oauth, token)
            raise FlowFailure("exchange_failed", 400, exc) from None
    user: Any = request.user
    if pending.get("user") is None:
        user = authenticate(request, salesforce_token=token)
        if user is None:
            _revoke_quietly(oauth, token)
            raise FlowFailure("signup_closed", 403)
    key = user_key(token.org_id, token.user_id)
    connection = _claim_row(key, user, token, oauth)
    _runtime.manager().save(key, token, username=_username(oauth, token, claims))
    _runtime.forget_user(user.pk)
    if pending.get("user") is None:
        login(request, user, backend="sfoauth_django.backends.SalesforceBackend")
    request.session.pop(DISCONNECTED, None)
    connection.refresh_from_db()
    get_adapter(request).on_token_obtained(request, connection, token)
    return key, pending.get("next")


def _claim_row(
    key: str, user: Any, token: Token, oauth: Any
) -> AbstractSalesforceConnection:
    """The user's row for ``key``; refuses to move a connection between users or
    to replace the user's link to another Salesforce user of the same org (item 7)."""
    model = get_token_model()
    rows = model._default_manager
    existing: AbstractSalesforceConnection | None = rows.filter(key=key).first()
    if existing is not None and existing.key == key:
        if existing.user_id != user.pk:
            _revoke_quietly(oauth, token)
            security_log.warning(
                "login refused: Salesforce user already linked elsewhere"
            )
            raise FlowFailure("already_linked", 409)
        return existing
    other = (
        rows.filter(user=user, org_id=token.org_id, name="").exclude(key=key).first()
    )
    if other is not None:
        _revoke_quietly(oauth, token)
        raise FlowFailure("different_account", 409)
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
        _revoke_quietly(oauth, token)
        raise FlowFailure("already_linked", 409) from None
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
