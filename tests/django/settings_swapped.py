"""The test settings with the connection model swapped for ``sfoauth_testapp``'s."""

from __future__ import annotations

from settings import *  # noqa: F403

SFOAUTH_TOKEN_MODEL = "sfoauth_testapp.CustomSalesforceConnection"
