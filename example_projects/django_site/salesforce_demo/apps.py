from __future__ import annotations

from django.apps import AppConfig


class SalesforceDemoConfig(AppConfig):
    name = "salesforce_demo"
    verbose_name = "sfoauth example pages"
    default_auto_field = "django.db.models.BigAutoField"
