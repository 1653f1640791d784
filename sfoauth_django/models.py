"""Model-backed storage: an abstract connection, the swappable concrete model, pending logins.

A connection is one Salesforce grant: a Django user's link to one org (keyed by the
18-character org id and user id, compared case-sensitively), or a named server-to-server
connection from ``SFOAUTH["CONNECTIONS"]`` (no user). The token set (access token, refresh
token, signature, ID token) is stored only as ciphertext (:class:`~sfoauth_core.storage.TokenCipher`,
bound to the row's key and owner); the columns beside it hold what is safe to show and
query: ids, instance URL, scopes, status and reason.

To add fields, subclass :class:`AbstractSalesforceConnection` in your app and point
``SFOAUTH_TOKEN_MODEL = "yourapp.YourConnection"`` at it (before the first migration); code
reaches the model only through :func:`get_token_model`.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from sfoauth_core.storage import ACTIVE, NEEDS_REAUTH, TokenCipher, TokenRecord
from sfoauth_core.tokens import Token

__all__ = [
    "DEFAULT_TOKEN_MODEL",
    "AbstractSalesforceConnection",
    "PendingAuthorization",
    "SalesforceConnection",
    "connection_key",
    "get_token_model",
    "user_key",
]

DEFAULT_TOKEN_MODEL = "sfoauth_django.SalesforceConnection"
NAMED_PREFIX = "connection:"


def user_key(org_id: str, user_id: str) -> str:
    """The store key of a user's connection: ``<18-char org id>:<18-char user id>``."""
    return f"{org_id}:{user_id}"


def connection_key(name: str) -> str:
    """The store key of the named server-to-server connection ``name``."""
    return NAMED_PREFIX + name


def _stamp(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


def _seconds(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


class AbstractSalesforceConnection(models.Model):
    """One stored Salesforce grant. Subclass it to add fields (see the module docstring).

    Token values live only in ``token_ciphertext``; ``str()``, ``repr()`` and the admin
    show ids and status, never a token.
    """

    STATUS_CHOICES = [  # noqa: RUF012 - Django's choices idiom, never mutated
        (ACTIVE, _("Active")),
        (NEEDS_REAUTH, _("Needs re-authorization")),
    ]

    key = models.CharField(_("store key"), max_length=255, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="%(app_label)s_%(class)s_set",
        verbose_name=_("user"),
    )
    name = models.CharField(
        _("connection name"),
        max_length=100,
        blank=True,
        default="",
        help_text=_(
            "Set for named server-to-server connections (SFOAUTH['CONNECTIONS'])."
        ),
    )
    org_id = models.CharField(_("org id"), max_length=18, blank=True, db_index=True)
    salesforce_user_id = models.CharField(
        _("Salesforce user id"), max_length=18, blank=True
    )
    username = models.CharField(
        _("Salesforce username"),
        max_length=255,
        blank=True,
        default="",
        help_text=_(
            "The Salesforce username: the user who connected, or the JWT subject a "
            "jwt_bearer connection is minted for."
        ),
    )
    instance_url = models.URLField(_("instance URL"), max_length=255, blank=True)
    identity_url = models.URLField(_("identity URL"), max_length=255, blank=True)
    scopes = models.TextField(_("scopes"), blank=True, default="")
    grant = models.CharField(_("grant"), max_length=32, default="authorization_code")
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=STATUS_CHOICES,
        default=ACTIVE,
        db_index=True,
    )
    reason = models.TextField(_("reason"), blank=True, default="")
    version = models.PositiveBigIntegerField(_("version"), default=0)
    token_ciphertext = models.TextField(
        _("encrypted token"), blank=True, default="", editable=False
    )
    refreshed_at = models.DateTimeField(
        _("refresh token last used"),
        null=True,
        blank=True,
        db_index=True,
        help_text=_(
            "When the stored refresh token was last issued or used at Salesforce."
        ),
    )
    refresh_started_at = models.DateTimeField(
        _("refresh in flight since"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Set while a refresh may be in flight at Salesforce; another worker does "
            "not present the same refresh token until it is answered or too old."
        ),
    )
    refresh_digest = models.CharField(
        _("refresh in flight: token digest"),
        max_length=64,
        blank=True,
        default="",
        editable=False,
    )
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        verbose_name = _("Salesforce connection")
        verbose_name_plural = _("Salesforce connections")
        constraints = [  # noqa: RUF012 - Django's Meta idiom
            models.UniqueConstraint(
                fields=["user", "org_id"],
                condition=Q(name=""),
                name="%(app_label)s_%(class)s_one_per_user_and_org",
            ),
            models.UniqueConstraint(
                fields=["org_id", "salesforce_user_id"],
                condition=Q(name=""),
                name="%(app_label)s_%(class)s_one_per_salesforce_user",
            ),
        ]

    def __str__(self) -> str:
        if self.name:
            return f"{self.name} ({self.org_id or 'not connected'})"
        return f"{self.salesforce_user_id or '?'} @ {self.org_id or '?'}"

    # Behaviour ----------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        """True when a token is stored (the row may exist before the first save)."""
        return bool(self.token_ciphertext)

    @property
    def needs_reauth(self) -> bool:
        """True once Salesforce refused the grant; the user must log in again."""
        return self.status == NEEDS_REAUTH

    def is_expired(self, leeway: float = 0.0) -> bool:
        """True when the expiry is known and less than ``leeway`` seconds away."""
        if self.expires_at is None:
            return False
        return (
            self.expires_at.timestamp() - leeway
            <= datetime.now(tz=timezone.utc).timestamp()
        )

    def cipher_context(self) -> str:
        """What the ciphertext is bound to: this row's key and owner.

        A ciphertext copied onto another connection (or re-pointed at another user) no
        longer decrypts (SECURITY.md item 17).
        """
        return f"sfoauth-django:{self.key}:{self.user_id or '-'}"

    def to_core_token(self, cipher: TokenCipher) -> Token | None:
        """The decrypted :class:`~sfoauth_core.tokens.Token`, or ``None`` before the first save.

        Raises:
            StorageError: the ciphertext was altered, moved, or made with a removed key.
        """
        if not self.token_ciphertext:
            return None
        plaintext = cipher.decrypt(self.token_ciphertext, context=self.cipher_context())
        return Token.from_dict(json.loads(plaintext))

    def to_record(self, cipher: TokenCipher) -> TokenRecord | None:
        """The core :class:`~sfoauth_core.storage.TokenRecord` of this row."""
        token = self.to_core_token(cipher)
        if token is None:
            return None
        return TokenRecord(
            token=token,
            version=int(self.version),
            grant=self.grant,
            username=self.username or None,
            status=NEEDS_REAUTH if self.status == NEEDS_REAUTH else ACTIVE,
            reason=self.reason,
            updated_at=self.updated_at.timestamp() if self.updated_at else 0.0,
            refreshed_at=_seconds(self.refreshed_at),
            refresh_started_at=_seconds(self.refresh_started_at),
            refresh_digest=self.refresh_digest or None,
        )

    def update_from_core_token(self, token: Token, cipher: TokenCipher) -> None:
        """Encrypt ``token`` into this row and copy its safe fields to the columns."""
        self.token_ciphertext = cipher.encrypt(
            json.dumps(token.to_dict(), separators=(",", ":")).encode(),
            context=self.cipher_context(),
        )
        if token.org_id:
            self.org_id = token.org_id
        if token.user_id:
            self.salesforce_user_id = token.user_id
        self.instance_url = token.instance_url or ""
        self.identity_url = token.id_url or ""
        self.scopes = " ".join(token.scopes)
        self.issued_at = _stamp(token.issued_at)
        self.expires_at = _stamp(token.expires_at)

    def apply_record(self, record: TokenRecord, cipher: TokenCipher) -> None:
        """Copy a record produced by :func:`~sfoauth_core.storage.next_record` to the row."""
        self.update_from_core_token(record.token, cipher)
        self.version = record.version
        self.grant = record.grant
        self.username = record.username or ""
        self.status = record.status
        self.reason = record.reason
        self.refreshed_at = _stamp(record.refreshed_at)
        self.apply_marker(record)

    def apply_marker(self, record: TokenRecord) -> None:
        """Copy a record's "refresh in flight" marker to the row."""
        self.refresh_started_at = _stamp(record.refresh_started_at)
        self.refresh_digest = record.refresh_digest or ""


class SalesforceConnection(AbstractSalesforceConnection):
    """The default connection model; swap it with ``SFOAUTH_TOKEN_MODEL``."""

    class Meta(AbstractSalesforceConnection.Meta):
        swappable = "SFOAUTH_TOKEN_MODEL"


class PendingAuthorization(models.Model):
    """A started browser login waiting for its callback (single use, short-lived).

    Keyed by a hash of ``state``; ``payload`` holds the PKCE verifier, ``next`` and the
    chosen login URL as ciphertext. The callback deletes the row before it exchanges the
    code, so of two racing callbacks with one ``state`` only one gets a row.
    """

    state_hash = models.CharField(max_length=64, primary_key=True)
    binding_hash = models.CharField(max_length=64)
    payload = models.TextField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("pending Salesforce authorization")
        verbose_name_plural = _("pending Salesforce authorizations")

    def __str__(self) -> str:
        return f"pending authorization (expires {self.expires_at:%Y-%m-%d %H:%M:%S})"


def get_token_model() -> type[AbstractSalesforceConnection]:
    """The connection model in use (``SFOAUTH_TOKEN_MODEL``, default ``sfoauth_django.SalesforceConnection``).

    Raises:
        ImproperlyConfigured: the setting does not name an installed model.
    """
    label = getattr(settings, "SFOAUTH_TOKEN_MODEL", None) or DEFAULT_TOKEN_MODEL
    try:
        model: Any = apps.get_model(label, require_ready=False)
    except (ValueError, LookupError):
        raise ImproperlyConfigured(
            f"SFOAUTH_TOKEN_MODEL refers to {label!r}, which is not an installed model"
        ) from None
    if not issubclass(model, AbstractSalesforceConnection):
        raise ImproperlyConfigured(
            "SFOAUTH_TOKEN_MODEL must subclass sfoauth_django.models.AbstractSalesforceConnection"
        )
    return model  # type: ignore[no-any-return]
