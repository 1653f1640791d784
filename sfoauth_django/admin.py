"""Admin for the connection model in use: ids, status and reason; never a token."""

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
        "name",
        "org_id",
        "salesforce_user_id",
        "status",
        "grant",
        "instance_url",
        "updated_at",
    )
    list_filter = ("status", "org_id", "grant")
    search_fields = ("org_id", "salesforce_user_id", "name", "key")
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
    actions = ["revoke_connections"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(
        description=_("Revoke at Salesforce and delete the selected connections")
    )
    def revoke_connections(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        revoked = 0
        for row in queryset:
            connection: AbstractSalesforceConnection = row
            name = connection.name or None
            if connection.token_ciphertext:
                _runtime.manager(name).revoke(connection.key)
            else:
                connection.delete()
            _runtime.forget(connection.key)
            if connection.user_id is not None:
                _runtime.forget_user(connection.user_id)
            revoked += 1
        self.message_user(
            request, _("%d connection(s) revoked.") % revoked, messages.SUCCESS
        )


admin.site.register(get_token_model(), SalesforceConnectionAdmin)
