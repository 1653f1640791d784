"""Which hosts may receive a secret or a bearer token.

Salesforce serves OAuth from login/test.salesforce.com, My Domains
(``<name>.my.salesforce.com``, ``<name>--<sbx>.sandbox.my.salesforce.com``, ``.develop.``,
``.scratch.``), Experience Cloud sites (``*.my.site.com``, ``*.force.com``), older instance
hosts (``na15.salesforce.com``) and the government / China variants. See the reference,
section 1.1, and SECURITY.md item 9.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

__all__ = [
    "LOGIN_HOSTS",
    "SALESFORCE_DOMAIN_SUFFIXES",
    "is_loopback_host",
    "is_my_domain_host",
    "is_salesforce_host",
    "origin_of",
    "parse_https_url",
]

LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})

SALESFORCE_DOMAIN_SUFFIXES: tuple[str, ...] = (
    ".salesforce.com",
    ".force.com",
    ".site.com",
    ".cloudforce.com",
    ".database.com",
    ".salesforce.mil",
    ".crmforce.mil",
    ".my-salesforce.com",
    ".sfcrmproducts.cn",
    ".sfcrmapps.cn",
    ".salesforce-setup.com",
)

# A DNS name: labels of letters, digits and inner hyphens. Anything else (a backslash, which
# browsers turn into "/", a space, a percent sign) could make a host check lie.
_HOST_RE = re.compile(
    r"\A(?=.{1,253}\Z)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*"
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z"
)

# Hosts that look like Salesforce but cannot serve a token endpoint for client credentials.
_NOT_MY_DOMAIN_SUFFIXES = (".salesforce-setup.com",)


@functools.lru_cache(maxsize=1024)
def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_salesforce_host(host: str, *, extra_hosts: Iterable[str] = ()) -> bool:
    """True when ``host`` is under one of Salesforce's domains or is listed by the app.

    The comparison is on whole DNS labels: ``evilsalesforce.com`` and
    ``salesforce.com.evil.example`` are not Salesforce hosts.
    """
    return _is_salesforce_host(host, tuple(extra_hosts))


# Every token response is checked against these rules: cache the answers per host (a
# process talks to a handful of hosts), they are pure functions of their arguments.
@functools.lru_cache(maxsize=1024)
def _is_salesforce_host(host: str, extra_hosts: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    if not _HOST_RE.match(host):
        return False
    for extra in extra_hosts:
        extra = extra.lower().rstrip(".")
        if host == extra or (extra.startswith(".") and host.endswith(extra)):
            return True
    return any(host.endswith(suffix) for suffix in SALESFORCE_DOMAIN_SUFFIXES)


def is_my_domain_host(host: str) -> bool:
    """True for an org-specific host (My Domain, sandbox, site, custom): not login/test/setup."""
    host = host.lower().rstrip(".")
    if host in LOGIN_HOSTS:
        return False
    return not any(host.endswith(suffix) for suffix in _NOT_MY_DOMAIN_SUFFIXES)


def parse_https_url(
    value: str, *, setting: str, allow_loopback: bool = False, allow_path: bool = True
) -> SplitResult:
    """Parse and check a configured URL; raise ``ConfigurationError`` naming ``setting``.

    Rules (SECURITY.md item 8): https only (http only for loopback hosts when
    ``allow_loopback``), a host, no userinfo, no fragment, no query, no whitespace or
    control characters.
    """
    from .exceptions import ConfigurationError

    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(setting, "is empty")
    if any(not ch.isprintable() or ch.isspace() for ch in value):
        raise ConfigurationError(setting, "contains whitespace or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ConfigurationError(setting, "is not a valid URL") from None
    if parts.scheme not in ("https", "http"):
        raise ConfigurationError(setting, "must be an https:// URL")
    host = parts.hostname or ""
    if not host:
        raise ConfigurationError(setting, "has no host")
    if "@" in parts.netloc:
        raise ConfigurationError(
            setting, "must not contain user information (user@host)"
        )
    if "?" in value or "#" in value:
        raise ConfigurationError(setting, "must not contain a query or fragment")
    if not allow_path and parts.path not in ("", "/"):
        raise ConfigurationError(setting, "must not contain a path")
    loopback = is_loopback_host(host)
    if not loopback and not _HOST_RE.match(host.rstrip(".")):
        raise ConfigurationError(setting, "has an invalid host name")
    if parts.scheme == "http" and not (allow_loopback and loopback):
        raise ConfigurationError(
            setting,
            "must be an https:// URL (http is allowed only for loopback hosts when "
            "allow_loopback=True, e.g. the emulator)",
        )
    if loopback and not allow_loopback:
        raise ConfigurationError(
            setting,
            "points to a loopback host; pass allow_loopback=True for the emulator",
        )
    del port
    return parts


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower-cased host."""
    parts = urlsplit(url)
    netloc = (parts.hostname or "").lower()
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}"
