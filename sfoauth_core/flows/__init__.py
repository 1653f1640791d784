"""Every Salesforce OAuth flow as a sans-IO generator, one module per flow.

A flow yields :class:`~sfoauth_core.flows._base.HttpRequest` (or ``Wait``) values and
receives :class:`~sfoauth_core.flows._base.HttpResponse` values; the drivers in
``sfoauth_core.http`` run them over httpx, synchronously or asynchronously.
"""

from __future__ import annotations

from ._base import Flow, HttpRequest, HttpResponse, RetryPolicy, Wait

__all__ = ["Flow", "HttpRequest", "HttpResponse", "RetryPolicy", "Wait"]
