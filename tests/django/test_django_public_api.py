"""sfoauth_django's public surface: ARCHITECTURE.md's names, a sorted and importable
``__all__`` (the core's and FastAPI's are checked in tests/test_public_api.py)."""

from __future__ import annotations

import importlib
import inspect

import pytest


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order, as in tests/test_public_api.py.
    return (0, name) if name.isupper() else (1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", ["sfoauth_django", "sfoauth_django.signals"])
def test_all_is_sorted_and_importable(name):
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported in (sorted(exported), sorted(exported, key=_isort_key))
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.{attribute}"


def test_django_contract_names():
    import sfoauth_django
    from sfoauth_django import signals

    for name in (
        "SalesforceMiddleware",
        "SalesforceRequiredMixin",
        "SalesforceSession",
        "salesforce_required",
        "AbstractSalesforceConnection",
        "DjangoTokenStore",
        "AsyncDjangoTokenStore",
        "SalesforceBackend",
        "get_token_model",
    ):
        assert name in sfoauth_django.__all__, name
    for name in (
        "token_obtained",
        "token_refreshed",
        "token_revoked",
        "connection_needs_reauth",
    ):
        assert name in signals.__all__, name
    from sfoauth_django import decorators

    sig = inspect.signature(decorators.salesforce_required)
    assert "connection" in sig.parameters


def test_django_urls_names():
    from django.urls import reverse

    assert reverse("sfoauth:login")
    assert reverse("sfoauth:callback")
    assert reverse("sfoauth:disconnect")
