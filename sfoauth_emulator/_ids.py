"""The emulator's own Salesforce-id and loopback rules.

Written apart from ``sfoauth_core.ids`` / ``sfoauth_core.hosts`` on purpose: a fake that
shares the client's helpers agrees with the client's bugs and cannot catch them.
"""

from __future__ import annotations

import ipaddress
import string

__all__ = ["is_loopback", "to_18"]

# Salesforce's checksum alphabet: A-Z then 0-5, indexed by a 5-bit "which are upper" mask.
_CHECKSUM_CHARS = string.ascii_uppercase + "012345"
_ID_CHARS = frozenset(string.ascii_letters + string.digits)


def to_18(record_id: str) -> str:
    """The 18-character form of a 15-character id; an 18-character id is kept as given.

    Raises:
        ValueError: not 15 or 18 letters and digits.
    """
    if len(record_id) not in (15, 18) or not set(record_id) <= _ID_CHARS:
        raise ValueError(f"not a Salesforce id: {record_id!r}")
    if len(record_id) == 18:
        return record_id
    chunks = (record_id[i : i + 5] for i in (0, 5, 10))
    suffix = "".join(
        _CHECKSUM_CHARS[sum(1 << n for n, ch in enumerate(chunk) if ch.isupper())]
        for chunk in chunks
    )
    return record_id + suffix


def is_loopback(hostname: str) -> bool:
    """``localhost`` (and names under it) and loopback addresses, v4 or v6."""
    name = hostname.lower().removeprefix("[").removesuffix("]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
