"""A project's own connection model (used when ``SFOAUTH_TOKEN_MODEL`` points here)."""

from __future__ import annotations

from django.db import models

from sfoauth_django.models import AbstractSalesforceConnection


class CustomSalesforceConnection(AbstractSalesforceConnection):
    """The abstract connection plus a project field."""

    team = models.CharField(max_length=50, blank=True, default="")

    class Meta(AbstractSalesforceConnection.Meta):
        swappable = "SFOAUTH_TOKEN_MODEL"
