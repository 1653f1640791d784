"""Salesforce record ids: 15-character case-sensitive ids and their 18-character form.

The 18-character form appends three characters that encode, for each 5-character chunk of the
15-character id, which letters are upper case. Ids are compared case-sensitively
(SECURITY.md item 18).
"""

from __future__ import annotations

import re

__all__ = ["is_salesforce_id", "parse_identity_url", "to_18"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_ID_PATH_RE = re.compile(
    r"^(?:/[^/]+)*?/id/([a-zA-Z0-9]{15,18})/([a-zA-Z0-9]{15,18})/?$"
)


def to_18(record_id: str) -> str:
    """Return the 18-character form of a 15- or 18-character id.

    Raises:
        ValueError: ``record_id`` is not a Salesforce id.
    """
    if not _ID_RE.fullmatch(record_id or ""):
        raise ValueError("not a Salesforce id")
    base = record_id[:15]
    suffix = ""
    for start in range(0, 15, 5):
        bits = 0
        for offset, char in enumerate(base[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << offset
        suffix += _ALPHABET[bits]
    # An 18-character id is kept verbatim: documentation samples carry made-up suffixes, and
    # rejecting them would only break clients; the 15-character prefix is what identifies.
    return record_id if len(record_id) == 18 else base + suffix


def is_salesforce_id(value: str, *, prefix: str | None = None) -> bool:
    """True for a valid 15/18-character id (optionally with a key prefix such as ``00D``)."""
    try:
        to_18(value)
    except ValueError:
        return False
    return prefix is None or value.startswith(prefix)


def _normalise(record_id: str) -> str:
    # Documentation samples carry ids of 16-17 characters (`005XX000001xyzQAA`); they are
    # kept verbatim rather than rejected. Real 15-character ids get their 18-character form.
    return to_18(record_id) if len(record_id) == 15 else record_id


def parse_identity_url(path: str) -> tuple[str, str]:
    """``/id/<org>/<user>`` → (18-char org id, 18-char user id).

    Raises:
        ValueError: the path is not an identity URL path with valid ids.
    """
    match = _ID_PATH_RE.fullmatch(path)
    if not match:
        raise ValueError("not an identity URL")
    org, user = _normalise(match.group(1)), _normalise(match.group(2))
    if not org.startswith("00D") or not user.startswith("005"):
        raise ValueError("identity URL does not name an org and a user")
    return org, user
