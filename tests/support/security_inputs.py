"""Hostile inputs shared by the security tests of the core and both adapters
(SECURITY.md items 4 and 5: ``next`` open redirects and ``iss`` mix-ups).

A module of its own (not ``conftest``) so that every test directory can import it.
"""

from __future__ import annotations

import string
from urllib.parse import urljoin

from hypothesis import strategies as st

__all__ = ["REDIRECT_PARTS", "browser_target", "near_miss_issuers", "next_candidates"]


def browser_target(origin: str, location: str) -> str:
    """Where a browser on ``origin`` goes for ``Location: location``.

    Follows the WHATWG URL parser where it differs from ``urljoin``: leading and
    trailing C0 controls and spaces are stripped, tabs and newlines are removed
    anywhere, and a backslash counts as a slash in http(s) URLs.
    """
    cleaned = location.strip("".join(map(chr, range(0x21))))
    for ch in "\t\n\r":
        cleaned = cleaned.replace(ch, "")
    return urljoin(origin + "/", cleaned.replace("\\", "/"))


# Shapes open redirects hide in, glued together in any order.
REDIRECT_PARTS = [
    "/",
    "//",
    "\\",
    "/\\",
    "\\/",
    "%2F",
    "%2f%2f",
    "%5C",
    "%09",
    "\t",
    "\n",
    "\r",
    " ",
    "\x00",
    "\x7f",
    "https:",
    "http:",
    "javascript:",
    "data:",
    "evil.example",
    "@evil.example",
    ":443",
    ".",
    "?next=//evil",
    "#",
    "\u3002",  # ideographic full stop
    "\uff0f",  # fullwidth solidus
    "\u2215",  # division slash
    "\u2028",
    "\u00a0",
]


def next_candidates(local_page: str) -> st.SearchStrategy[str]:
    """``next`` values: open-redirect shapes glued together (with one of the app's own
    pages among the parts), any text, and paths of printable characters."""
    parts = [*REDIRECT_PARTS, local_page]
    return (
        st.lists(st.sampled_from(parts), min_size=1, max_size=6).map("".join)
        | st.text(max_size=30)
        | st.text(alphabet=string.printable, max_size=30).map(lambda s: "/" + s)
    )


def near_miss_issuers(issuer: str) -> st.SearchStrategy[str]:
    """``iss`` values that are not ``issuer`` (except by chance in any text): other
    case, scheme, port, path, suffix, query, Salesforce's other hosts, padding."""
    return st.sampled_from(
        [
            issuer.upper(),
            issuer.replace("https", "http"),
            issuer + ".evil.example",
            issuer + ":443",
            issuer + "/services",
            issuer + "/",
            issuer + "?x=1",
            issuer.replace("acme", "acme2"),
            "https://login.salesforce.com",
            "https://test.salesforce.com",
            " " + issuer,
            issuer + "%00",
            issuer + "\x00",
            issuer.replace(".com", ".com."),
        ]
    ) | st.text(max_size=40)
