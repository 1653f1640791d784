"""Validation of ``next`` URLs (SECURITY.md item 4)."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["safe_next_path"]

_MAX_LENGTH = 2048


def safe_next_path(candidate: str | None, default: str = "/") -> str:
    """``candidate`` if it is a same-origin relative path, else ``default``.

    Only printable ASCII paths starting with one ``/`` survive: no scheme, no host, no
    ``//`` or ``/\\`` (which browsers read as another host), no backslash, whitespace
    or control character anywhere (browsers strip or rewrite those), no fragment-only
    tricks. Everything else, however disguised, ends on ``default``.
    """
    if not candidate or len(candidate) > _MAX_LENGTH:
        return default
    if any(not (0x21 <= ord(ch) <= 0x7E) for ch in candidate):
        return default
    if "\\" in candidate or not candidate.startswith("/"):
        return default
    if candidate.startswith("//"):
        return default
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return default
    if parts.scheme or parts.netloc:
        return default
    return candidate
