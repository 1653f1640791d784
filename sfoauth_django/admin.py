"""Admin for the connection model in use: ids, status and reason; never a token.

Deleting a connection here (the delete button or the "Delete selected" action) revokes
its grant at Salesforce first, like the revoke action: a deleted row never leaves a live
grant behind without the admin being told.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from . import _runtime
from .models import AbstractSalesforceConnection, get_token_model

__all__ = ["SalesforceConnectionAdmin"]


class SalesforceConnectionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Lists connections with filters by status and org, and a revoke action.

    The encrypted token column is excluded from every page and form.
    """

    list_display = (
        "__str__",
        "user",
        "username",
        "name",
        "org_id",
        "salesforce_user_id",
        "status",
        "grant",
        "instance_url",
        "updated_at",
    )
    list_filter = ("status", "org_id", "grant")
    search_fields = ("org_id", "salesforce_user_id", "username", "name", "key")
    exclude = ("token_ciphertext",)
    readonly_fields = (
        "key",
        "user",
        "name",
        "org_id",
        "salesforce_user_id",
        "username",
        "instance_url",
        "identity_url",
        "scopes",
        "grant",
        "status",
        "reason",
        "version",
        "issued_at",
        "expires_at",
        "created_at",
        "updated_at",
    )
    actions = ("revoke_connections",)
    delete_confirmation_template = "sfoauth/admin_delete_confirmation.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def _revoke(self, connection: AbstractSalesforceConnection) -> bool:
        """Revoke at Salesforce (best effort) and delete; whether Salesforce confirmed."""
        confirmed = True
        if connection.token_ciphertext:
            confirmed = _runtime.manager(connection.name or None).revoke(connection.key)
        else:
            connection.delete()
        _runtime.forget(connection.key)
        if connection.user_id is not None:
            _runtime.forget_user(connection.user_id)
        return confirmed

    def _report(self, request: HttpRequest, done: int, unconfirmed: list[str]) -> None:
        self.message_user(
            request,
            _("%d connection(s) revoked at Salesforce and deleted.") % done,
            messages.SUCCESS,
        )
        if unconfirmed:
            self._report_unconfirmed(request, ", ".join(unconfirmed))

    @admin.action(
        description=_("Revoke at Salesforce and delete the selected connections")
    )
    def revoke_connections(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        rows = list(queryset)
        unconfirmed = [str(row) for row in rows if not self._revoke(row)]
        self._report(request, len(rows), unconfirmed)

    def get_actions(self, request: HttpRequest) -> Any:
        # Django's "Delete selected" would delete rows without telling Salesforce; the
        # revoke action above is the way to remove several at once.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        """The delete button: revoke at Salesforce, then delete (never only locally)."""
        if not self._revoke(obj):
            self._report_unconfirmed(request, str(obj))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for row in list(queryset):
            if not self._revoke(row):
                self._report_unconfirmed(request, str(row))

    def _report_unconfirmed(self, request: HttpRequest, label: str) -> None:
        self.message_user(
            request,
            _(
                "Deleted %s here, but Salesforce did not confirm the revocation: the "
                "grant may still be live there. Revoke it in Salesforce Setup "
                "(Connected Apps OAuth Usage)."
            )
            % label,
            messages.WARNING,
        )


admin.site.register(get_token_model(), SalesforceConnectionAdmin)
