"""Signals fired by sfoauth_django; every receiver gets ``sender`` = the connection model.

Common keyword arguments: ``key`` (the connection's store key), ``connection`` (the name
of a ``SFOAUTH["CONNECTIONS"]`` entry, ``None`` for a user's connection), ``token`` (a
:class:`~sfoauth_core.tokens.Token`; its ``repr`` is masked, do not log its values) and
``grant``. They wrap the core's :mod:`sfoauth_core.events`; a receiver that raises is
logged and skipped, since the write it reports has already happened.
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = [
    "connection_needs_reauth",
    "token_obtained",
    "token_refreshed",
    "token_revoked",
]

# Fires after a new grant is stored: the web server callback, `sfoauth_connect`, or the
# first mint of a named connection.
# kwargs: key, connection, token, grant, reason ("")
token_obtained = Signal()

# Fires after a token is refreshed (or a named connection re-minted) and saved, once per
# refresh across every worker.
# kwargs: key, connection, token, grant, reason ("")
token_refreshed = Signal()

# Fires after a disconnect: revoked at Salesforce (best effort) and deleted locally.
# `reason` is "" when Salesforce confirmed the revocation.
# kwargs: key, connection, token (the removed token), grant, reason
token_revoked = Signal()

# Fires when Salesforce refused the grant (revoked, rotated out, expired by policy): the
# row is kept and flagged, and the user is sent back through login on their next request.
# kwargs: key, connection, token, grant, reason (Salesforce's error, safe to show)
connection_needs_reauth = Signal()
