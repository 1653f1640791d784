"""The sync and async clients and the drivers that run flows over httpx."""

from __future__ import annotations

from ._drivers import run_async, run_sync
from .async_client import AsyncSalesforceOAuth
from .client import SalesforceOAuth

__all__ = ["AsyncSalesforceOAuth", "SalesforceOAuth", "run_async", "run_sync"]
