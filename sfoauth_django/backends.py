"""``SalesforceBackend``: "Sign in with Salesforce" as a Django authentication backend.

Add ``"sfoauth_django.backends.SalesforceBackend"`` to ``AUTHENTICATION_BACKENDS`` (next
to ``ModelBackend``) and anonymous visitors may log in through ``sfoauth:login``. Users are
found by the 18-character org id and user id of the Salesforce identity, never by email.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from sfoauth_core.exceptions import SFOAuthError
from sfoauth_core.tokens import Identity, Token

from .adapter import get_adapter

__all__ = ["SalesforceBackend"]

logger = logging.getLogger("sfoauth.django")


class SalesforceBackend(ModelBackend):
    """Authenticates ``authenticate(request, salesforce_token=token)``.

    Finds the user through :meth:`~sfoauth_django.adapter.DefaultSFOAuthAdapter.get_user_for_identity`;
    when there is none and the adapter is open for sign-up, creates one with
    :meth:`~sfoauth_django.adapter.DefaultSFOAuthAdapter.new_user`. Inactive users are refused.
    """

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        salesforce_token: Token | None = None,
        **kwargs: Any,
    ) -> Any:
        if not isinstance(salesforce_token, Token):
            return None
        if not salesforce_token.org_id or not salesforce_token.user_id:
            return None
        adapter = get_adapter(request)
        user = adapter.get_user_for_identity(request, salesforce_token)
        if user is None:
            identity = self._identity(salesforce_token)
            if not adapter.is_open_for_signup(request, salesforce_token, identity):
                return None
            user = adapter.new_user(request, salesforce_token, identity)
        candidate: Any = user
        return user if self.user_can_authenticate(candidate) else None

    @staticmethod
    def _identity(token: Token) -> Identity | None:
        from . import _runtime

        try:
            return _runtime.oauth().identity(token)
        except SFOAuthError as exc:
            logger.info("identity lookup for sign-up failed: %s", type(exc).__name__)
            return None
