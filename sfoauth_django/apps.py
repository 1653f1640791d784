"""The Django app config: loads the checks and signals, and redacts the callback's
``code`` and ``state`` from ``runserver``'s request log."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

__all__ = ["SFOAuthConfig"]


class SFOAuthConfig(AppConfig):
    """``sfoauth_django`` in ``INSTALLED_APPS``."""

    name = "sfoauth_django"
    label = "sfoauth_django"
    verbose_name = _("Salesforce OAuth")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import _key_checks, checks, signals  # noqa: F401 - registers them
        from .redaction import install

        install()
