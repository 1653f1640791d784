"""Validation of ``next`` URLs (SECURITY.md item 4): the core's rule, one for both
adapters (:func:`sfoauth_core.login.safe_next`)."""

from __future__ import annotations

from sfoauth_core.login import safe_next

__all__ = ["safe_next_path"]


def safe_next_path(candidate: str | None, default: str = "/") -> str:
    """``candidate`` if it is a same-origin relative path, else ``default``.

    Only printable ASCII paths starting with one ``/`` survive: no scheme, no host, no
    ``//`` or ``/\\`` (which browsers read as another host), no backslash, whitespace
    or control character anywhere (browsers strip or rewrite those). Everything else,
    however disguised, ends on ``default``.
    """
    return safe_next(candidate) or default
