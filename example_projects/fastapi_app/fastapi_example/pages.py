"""Plain HTML pages (no template engine): every value is escaped, no token is shown.

Element ids are stable so that browser tests can find them: ``#connection-state``
(``data-connected="yes|no"``), ``#connect-form`` / ``#connect-button``, ``#accounts`` (rows
``tr.account``), ``#org-limits``, ``#integration-accounts``, ``#user-connection`` and
``#integration-connection`` (``dd`` ids below), ``#disconnect-form`` /
``#disconnect-button``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from sfoauth_core.storage import TokenRecord

STYLE = """
body{font-family:system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
nav a{margin-right:1rem} table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
dt{font-weight:600;margin-top:.4rem} .note{color:#555} .error{color:#a00}
button{font-size:1rem;padding:.4rem 1rem}
"""


def layout(title: str, body: str) -> str:
    """A full page: navigation, then ``body`` (already escaped HTML)."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="referrer" content="same-origin">
<title>{escape(title)} · sfoauth FastAPI example</title><style>{STYLE}</style></head>
<body>
<nav id="nav">
  <a id="nav-home" href="/">Home</a>
  <a id="nav-org" href="/org">My org</a>
  <a id="nav-integration" href="/integration">Integration (JWT)</a>
  <a id="nav-status" href="/status">Connection status</a>
</nav>
<h1 id="page-title">{escape(title)}</h1>
{body}
</body></html>"""


def connect_form(next_path: str) -> str:
    """``POST /salesforce/login``: the click that starts a login (the router's ``GET``
    shows a "Connect to Salesforce" page instead)."""
    return (
        '<form id="connect-form" method="post" action="/salesforce/login">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        '<button id="connect-button" type="submit">Connect Salesforce</button>'
        "</form>"
    )


def disconnect_form(next_path: str) -> str:
    """``POST /salesforce/disconnect?next=...`` (the router refuses cross-site posts)."""
    return (
        f'<form id="disconnect-form" method="post" '
        f'action="/salesforce/disconnect?next={escape(next_path)}">'
        '<button id="disconnect-button" type="submit">Disconnect Salesforce</button>'
        "</form>"
    )


def limits_table(limits: Mapping[str, Any], table_id: str) -> str:
    rows = "".join(
        f'<tr class="limit"><td>{escape(str(name))}</td>'
        f"<td>{escape(str(value.get('Remaining')))}</td>"
        f"<td>{escape(str(value.get('Max')))}</td></tr>"
        for name, value in sorted(limits.items())
        if isinstance(value, Mapping)
    )
    return (
        f'<table id="{table_id}"><tr><th>Limit</th><th>Remaining</th><th>Max</th></tr>'
        f"{rows}</table>"
    )


def accounts_table(records: Iterable[Mapping[str, Any]], table_id: str) -> str:
    rows = "".join(
        f'<tr class="account" data-id="{escape(str(r.get("Id")))}">'
        f'<td class="account-name">{escape(str(r.get("Name")))}</td>'
        f'<td class="account-industry">{escape(str(r.get("Industry") or ""))}</td></tr>'
        for r in records
    )
    return (
        f'<table id="{table_id}"><tr><th>Account</th><th>Industry</th></tr>'
        f"{rows}</table>"
    )


def connection_details(prefix: str, record: TokenRecord | None) -> str:
    """The safe fields of a stored connection (ids, URLs, scopes, status; no token)."""
    if record is None:
        return f'<p id="{prefix}-missing" class="note">No connection stored.</p>'
    token = record.token
    fields = [
        ("status", "Status", record.status),
        ("org-id", "Org id", token.org_id or ""),
        ("user-id", "Salesforce user id", token.user_id or ""),
        ("instance-url", "Instance URL", token.instance_url or ""),
        ("scopes", "Scopes", " ".join(token.scopes or ())),
        ("grant", "Obtained by", record.grant),
        ("reason", "Needs re-authorization because", record.reason or "—"),
    ]
    items = "".join(
        f'<dt>{escape(label)}</dt><dd id="{prefix}-{key}">{escape(str(value))}</dd>'
        for key, label, value in fields
    )
    return f"<dl>{items}</dl>"
