"""Keep the callback's ``code`` and ``state`` out of the server's request log.

``runserver`` logs every request line on the ``django.server`` logger
(``"GET /salesforce/callback/?code=...&state=... HTTP/1.1" 302 0``). The app installs
:class:`RedactOAuthQuery` on that logger when it starts (``SFOAuthConfig.ready``), so
the line reads ``?code=[redacted]&state=[redacted]``. Add the filter to your own access
log handlers (gunicorn, uvicorn) the same way:
``logging.getLogger("gunicorn.access").addFilter(RedactOAuthQuery())``.
"""

from __future__ import annotations

import logging
import re

__all__ = ["LOGGERS", "REDACTED", "RedactOAuthQuery", "install", "redact"]

REDACTED = "[redacted]"

# Query parameters that carry one-time secrets of the OAuth flows.
_SECRET_PARAMS = re.compile(
    r"(?P<name>(?:^|(?<=[?&;]))(?:code|state|access_token|refresh_token|id_token))="
    r"[^&;\s\"']*",
    re.IGNORECASE,
)

#: The loggers the app redacts by default.
LOGGERS = ("django.server",)


def redact(text: str) -> str:
    """``text`` with the values of ``code``, ``state`` and token parameters replaced."""
    if "=" not in text:
        return text
    return _SECRET_PARAMS.sub(lambda m: f"{m.group('name')}={REDACTED}", text)


class RedactOAuthQuery(logging.Filter):
    """A logging filter that redacts OAuth secrets from the message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def install() -> None:
    """Add :class:`RedactOAuthQuery` to :data:`LOGGERS` (once)."""
    for name in LOGGERS:
        found = logging.getLogger(name)
        if not any(isinstance(f, RedactOAuthQuery) for f in found.filters):
            found.addFilter(RedactOAuthQuery())
