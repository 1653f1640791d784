"""Connected App configuration: explicit, frozen and secret-safe.

The core reads no environment variables and no framework settings; callers build a
:class:`ConnectedApp`. :meth:`ConnectedApp.from_env` is the one optional way to read the
environment. Every URL is checked when the object is built (SECURITY.md items 8 and 27), and
errors name the setting but never print its value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .exceptions import ConfigurationError
from .hosts import (
    LOGIN_HOSTS,
    is_loopback_host,
    is_my_domain_host,
    is_salesforce_host,
    parse_https_url,
)

__all__ = [
    "DEFAULT_LOGIN_URL",
    "MAPPING_KEYS",
    "SANDBOX_LOGIN_URL",
    "ConnectedApp",
    "Secret",
]

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
SANDBOX_LOGIN_URL = "https://test.salesforce.com"
MIN_RSA_KEY_BITS = 2048


class Secret:
    """A string that never shows itself in ``repr``/``str``/logs.

    Use :meth:`reveal` at the one place the value is needed (a request body).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


def _as_secret(value: str | Secret | None, setting: str) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ConfigurationError(setting, "must be a string")
    return Secret(value)


@dataclass(frozen=True, slots=True, init=False, repr=False)
class ConnectedApp:
    """A Salesforce Connected App (or External Client App) as the client sees it.

    Args:
        client_id: the consumer key.
        client_secret: the consumer secret; ``None`` for public (PKCE-only) clients.
        redirect_uri: the absolute callback URL registered on the app.
        login_url: ``https://login.salesforce.com`` (default), ``https://test.salesforce.com``,
            a My Domain URL or an Experience Cloud site URL (may carry a path).
        scopes: scopes requested by default (space-separated on the wire).
        private_key: PEM-encoded RSA private key (>= 2048 bits) for the JWT bearer flow.
        username: the Salesforce username, the JWT ``sub``.
        audience: the JWT ``aud``; derived from ``login_url`` when absent.
        timeout: connect/read timeout in seconds for every request.
        allow_loopback: allow http:// loopback URLs (the local emulator only).
        extra_hosts: more hosts that may receive tokens (exact names, or ``.suffix``).
        verify_signature: check the ``signature`` HMAC when the secret is known.
            A missing signature is refused on code exchange, refresh and user-agent
            answers (Salesforce always signs them).
        strict_signature: also refuse a missing ``signature`` on client credentials,
            username-password, device and token-exchange answers (the reference's
            samples carry one, but it does not say Salesforce always sends it).
            Default ``False``.
        flows: the flows this app will run (``"web_server"``, ``"pkce"``,
            ``"user_agent"``, ``"jwt_bearer"``, ``"client_credentials"``,
            ``"username_password"``, ``"device"``, ``"asset_token"``, ``"introspect"``);
            each one's requirements are checked now instead of at the first call.

    Raises:
        ConfigurationError: a value is missing, malformed or unsafe; the message names the
            setting but not the value.

    Example:
        >>> app = ConnectedApp(client_id="3MVG9Example", client_secret="s3cr3t",
        ...                    redirect_uri="https://app.example.com/callback")
    """

    client_id: str
    client_secret: Secret | None = None
    redirect_uri: str | None = None
    login_url: str = DEFAULT_LOGIN_URL
    scopes: tuple[str, ...] = ("api", "refresh_token")
    private_key: Secret | None = None
    username: str | None = None
    audience: str | None = None
    timeout: float = 30.0
    allow_loopback: bool = False
    extra_hosts: tuple[str, ...] = ()
    verify_signature: bool = True
    strict_signature: bool = False
    _key: Any = field(default=None, repr=False, compare=False)

    def __init__(
        self,
        client_id: str,
        client_secret: str | Secret | None = None,
        redirect_uri: str | None = None,
        login_url: str = DEFAULT_LOGIN_URL,
        scopes: Iterable[str] | str = ("api", "refresh_token"),
        private_key: str | bytes | Secret | None = None,
        username: str | None = None,
        audience: str | None = None,
        timeout: float = 30.0,
        allow_loopback: bool = False,
        extra_hosts: Iterable[str] = (),
        verify_signature: bool = True,
        flows: Iterable[str] = (),
        strict_signature: bool = False,
    ) -> None:
        if not isinstance(client_id, str) or not client_id.strip():
            raise ConfigurationError("client_id", "is required")
        if any(not ch.isalnum() and ch not in "._-" for ch in client_id):
            raise ConfigurationError(
                "client_id", "contains characters a consumer key cannot"
            )
        secret = _as_secret(client_secret, "client_secret")
        if secret is not None and not secret.reveal():
            secret = None
        login_url = login_url.rstrip("/") if isinstance(login_url, str) else login_url
        parts = parse_https_url(
            login_url, setting="login_url", allow_loopback=allow_loopback
        )
        extra = tuple(h.lower() for h in extra_hosts)
        host = parts.hostname or ""
        if not is_loopback_host(host) and not is_salesforce_host(
            host, extra_hosts=extra
        ):
            raise ConfigurationError(
                "login_url",
                "is not a Salesforce host; list the custom domain in extra_hosts to trust it",
            )
        if redirect_uri is not None:
            _check_redirect_uri(redirect_uri)
        if isinstance(scopes, str):
            scopes = scopes.split()
        scope_tuple = tuple(dict.fromkeys(s for s in scopes if s))
        if any(not s.isprintable() or " " in s for s in scope_tuple):
            raise ConfigurationError("scopes", "contains an invalid scope name")
        if audience is not None:
            parse_https_url(audience, setting="audience", allow_loopback=allow_loopback)
            audience = audience.rstrip("/")
        if not (isinstance(timeout, (int, float)) and 0 < timeout <= 600):
            raise ConfigurationError(
                "timeout", "must be a number of seconds in (0, 600]"
            )
        key_secret: Secret | None = None
        loaded_key: Any = None
        if private_key is not None:
            if isinstance(private_key, bytes):
                private_key = private_key.decode("utf-8", "replace")
            key_secret = _as_secret(private_key, "private_key")
            loaded_key = _load_private_key(cast("Secret", key_secret))
        set_ = object.__setattr__
        set_(self, "client_id", client_id.strip())
        set_(self, "client_secret", secret)
        set_(self, "redirect_uri", redirect_uri)
        set_(self, "login_url", login_url)
        set_(self, "scopes", scope_tuple)
        set_(self, "private_key", key_secret)
        set_(self, "username", username)
        set_(self, "audience", audience)
        set_(self, "timeout", float(timeout))
        set_(self, "allow_loopback", bool(allow_loopback))
        set_(self, "extra_hosts", extra)
        set_(self, "verify_signature", bool(verify_signature))
        set_(self, "strict_signature", bool(strict_signature))
        set_(self, "_key", loaded_key)
        for flow in flows:
            self.validate_for(flow)

    def validate_for(self, flow: str) -> None:
        """Check that this app has what ``flow`` needs (SECURITY.md item 27).

        Raises:
            ConfigurationError: naming the missing or unsuitable setting.
        """
        flow = str(flow)
        if flow not in _FLOW_NAMES:
            raise ConfigurationError("flows", f"unknown flow {flow!r}")
        if flow in ("web_server", "pkce", "user_agent") and not self.redirect_uri:
            raise ConfigurationError("redirect_uri", f"is required for the {flow} flow")
        if flow in ("web_server", "client_credentials", "introspect") and not (
            self.client_secret
        ):
            raise ConfigurationError(
                "client_secret", f"is required for the {flow} flow"
            )
        if flow == "jwt_bearer":
            if self._key is None:
                raise ConfigurationError(
                    "private_key", "is required for the JWT bearer flow"
                )
            if not self.username:
                raise ConfigurationError(
                    "username", "is required for the JWT bearer flow"
                )
        if flow == "client_credentials" and not self.is_my_domain:
            raise ConfigurationError(
                "login_url",
                "must be the org's My Domain URL for client credentials "
                "(login/test.salesforce.com answer 'request not supported on this domain')",
            )

    # ------------------------------------------------------------------ derived values
    @property
    def login_host(self) -> str:
        return (urlsplit(self.login_url).hostname or "").lower()

    @property
    def is_my_domain(self) -> bool:
        """True when ``login_url`` is org-specific (My Domain, site, loopback emulator)."""
        host = self.login_host
        return is_loopback_host(host) or is_my_domain_host(host)

    @property
    def jwt_audience(self) -> str:
        """The ``aud`` claim for JWT bearer assertions.

        Explicit ``audience`` wins. Otherwise: ``https://test.salesforce.com`` for sandboxes
        (test host or ``.sandbox.my.salesforce.com``), the site URL (with its path) for
        Experience Cloud, the login URL for the loopback emulator, and
        ``https://login.salesforce.com`` for production and My Domains.
        """
        if self.audience:
            return self.audience
        host = self.login_host
        if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
            return "https://test.salesforce.com"
        if is_loopback_host(host):
            return self.login_url
        path = urlsplit(self.login_url).path.rstrip("/")
        if path or host.endswith((".my.site.com", ".force.com", ".site.com")):
            return self.login_url
        if host in LOGIN_HOSTS or host.endswith(".salesforce.com"):
            return "https://login.salesforce.com"
        return self.login_url

    @property
    def signing_key(self) -> Any:
        """The loaded private key (parsed once, when the app was built)."""
        if self._key is None:
            raise ConfigurationError(
                "private_key", "is required for the JWT bearer flow"
            )
        return self._key

    def trusts_host(self, host: str) -> bool:
        """True if tokens and secrets may be sent to ``host``."""
        host = host.lower()
        if is_loopback_host(host):
            return self.allow_loopback
        return is_salesforce_host(host, extra_hosts=self.extra_hosts)

    def __repr__(self) -> str:
        secret = "'**********'" if self.client_secret else "None"
        key = "'**********'" if self.private_key else "None"
        return (
            f"ConnectedApp(client_id={self.client_id!r}, client_secret={secret}, "
            f"redirect_uri={self.redirect_uri!r}, login_url={self.login_url!r}, "
            f"scopes={self.scopes!r}, private_key={key}, username={self.username!r})"
        )

    def replace(self, **changes: Any) -> ConnectedApp:
        """A copy with some settings changed (the original is never mutated)."""
        values: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": self.redirect_uri,
            "login_url": self.login_url,
            "scopes": self.scopes,
            "private_key": self.private_key,
            "username": self.username,
            "audience": self.audience,
            "timeout": self.timeout,
            "allow_loopback": self.allow_loopback,
            "extra_hosts": self.extra_hosts,
            "verify_signature": self.verify_signature,
            "strict_signature": self.strict_signature,
        }
        values.update(changes)
        return ConnectedApp(**values)

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        *,
        label: Callable[[str], str] | None = None,
    ) -> ConnectedApp:
        """Build from settings named like :meth:`from_env`'s variables, without a prefix.

        The one reader of settings mappings: :meth:`from_env` and ``sfoauth_django``'s
        ``SFOAUTH`` dict (and its ``CONNECTIONS`` entries) both come through here. Keys are
        ``CLIENT_ID``, ``CLIENT_SECRET``, ``REDIRECT_URI``, ``LOGIN_URL``, ``SCOPES``,
        ``PRIVATE_KEY`` (PEM) or ``PRIVATE_KEY_FILE`` (read here, when ``PRIVATE_KEY`` is
        unset), ``USERNAME``, ``AUDIENCE``, ``TIMEOUT``, ``ALLOW_LOOPBACK``,
        ``EXTRA_HOSTS`` and ``FLOWS`` (:data:`MAPPING_KEYS`). Values may be typed (a list of
        scopes, a float, a bool) or strings as an environment holds them (space- or
        comma-separated lists, ``"30"``, ``"true"``); ``None`` means unset.

        Args:
            values: the settings.
            label: how errors name a key (default: the key itself); ``from_env`` adds the
                prefix, Django writes ``SFOAUTH['KEY']``.

        Raises:
            ConfigurationError: an unknown key, or a value missing, malformed or unsafe;
                ``setting`` is ``label(KEY)``, the value is never shown.
        """
        name = label or str

        def get(key: str) -> Any:
            return values.get(key)

        for key in values:
            if key not in MAPPING_KEYS:
                raise ConfigurationError(
                    name(str(key)), "is not a Connected App setting"
                )
        client_id = get("CLIENT_ID")
        if client_id is None:
            raise ConfigurationError(name("CLIENT_ID"), "is required")
        key = get("PRIVATE_KEY")
        key_variable = "PRIVATE_KEY"
        if key is None and get("PRIVATE_KEY_FILE"):
            key_variable = "PRIVATE_KEY_FILE"
            key = _read_key_file(get("PRIVATE_KEY_FILE"), name(key_variable))
        kwargs: dict[str, Any] = {
            "client_id": client_id,
            "client_secret": get("CLIENT_SECRET"),
            "redirect_uri": get("REDIRECT_URI"),
            "login_url": _default(get("LOGIN_URL"), DEFAULT_LOGIN_URL),
            "private_key": key,
            "username": get("USERNAME"),
            "audience": get("AUDIENCE"),
            "timeout": _as_float(get("TIMEOUT"), name("TIMEOUT"), default=30.0),
            "allow_loopback": _as_bool(get("ALLOW_LOOPBACK"), name("ALLOW_LOOPBACK")),
            "extra_hosts": _as_list(get("EXTRA_HOSTS"), name("EXTRA_HOSTS")),
        }
        if get("FLOWS") is not None:
            kwargs["flows"] = _as_list(get("FLOWS"), name("FLOWS"))
        if get("SCOPES") is not None:
            kwargs["scopes"] = _as_list(get("SCOPES"), name("SCOPES"), spaces=True)
        try:
            return cls(**kwargs)
        except ConfigurationError as exc:
            keys = dict(_MAPPING_NAMES, private_key=key_variable)
            raise ConfigurationError(
                name(keys.get(exc.setting, exc.setting.upper())), exc.problem
            ) from None

    @classmethod
    def from_env(
        cls, prefix: str = "SFOAUTH_", environ: Mapping[str, str] | None = None
    ) -> ConnectedApp:
        """Build from ``{prefix}CLIENT_ID``, ``CLIENT_SECRET``, ``REDIRECT_URI``, ``LOGIN_URL``,
        ``SCOPES``, ``PRIVATE_KEY`` (PEM) or ``PRIVATE_KEY_FILE``, ``USERNAME``, ``AUDIENCE``,
        ``TIMEOUT`` (float), ``ALLOW_LOOPBACK`` (bool), ``EXTRA_HOSTS`` and ``FLOWS``
        (comma-separated), read by :meth:`from_mapping`.

        Raises:
            ConfigurationError: naming the variable, never its value.
        """
        env = os.environ if environ is None else environ
        # An empty variable is an unset one.
        values = {key: env.get(prefix + key) or None for key in MAPPING_KEYS}
        if values["CLIENT_ID"] is None:
            raise ConfigurationError(prefix + "CLIENT_ID", "is not set")
        return cls.from_mapping(values, label=lambda key: prefix + key)


#: The keys :meth:`ConnectedApp.from_mapping` reads.
MAPPING_KEYS = (
    "CLIENT_ID",
    "CLIENT_SECRET",
    "REDIRECT_URI",
    "LOGIN_URL",
    "SCOPES",
    "PRIVATE_KEY",
    "PRIVATE_KEY_FILE",
    "USERNAME",
    "AUDIENCE",
    "TIMEOUT",
    "ALLOW_LOOPBACK",
    "EXTRA_HOSTS",
    "FLOWS",
)

_FLOW_NAMES = frozenset(
    {
        "web_server",
        "pkce",
        "user_agent",
        "jwt_bearer",
        "client_credentials",
        "username_password",
        "device",
        "asset_token",
        "introspect",
    }
)

# Core argument names (in the constructor's errors) -> mapping keys, where not just upper().
_MAPPING_NAMES = {"private_key": "PRIVATE_KEY", "flows": "FLOWS"}


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _read_key_file(path: Any, name: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, TypeError, ValueError):  # UnicodeDecodeError is a ValueError
        raise ConfigurationError(name, "cannot be read") from None


def _as_bool(value: Any, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower() if isinstance(value, (str, int)) else ""
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(name, "must be true or false")


def _as_float(value: Any, name: str, *, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool):
        raise ConfigurationError(name, "must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(name, "must be a number") from None


def _as_list(value: Any, name: str, *, spaces: bool = False) -> tuple[str, ...]:
    """A list setting: a sequence of strings, or one string separated by commas (and
    spaces, for scopes)."""
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.replace(",", " ") if spaces else value
        parts = text.split() if spaces else text.split(",")
        return tuple(p.strip() for p in parts if p.strip())
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = tuple(value)
        if all(isinstance(item, str) for item in items):
            return tuple(item.strip() for item in items if item.strip())
    raise ConfigurationError(name, "must be a list of strings")


def _check_redirect_uri(value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigurationError("redirect_uri", "is empty")
    if any(not ch.isprintable() or ch.isspace() for ch in value):
        raise ConfigurationError(
            "redirect_uri", "contains whitespace or control characters"
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigurationError("redirect_uri", "is not a valid URL") from None
    if not parts.scheme:
        raise ConfigurationError("redirect_uri", "must be an absolute URL")
    if "#" in value:
        raise ConfigurationError("redirect_uri", "must not contain a fragment")
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigurationError(
                "redirect_uri", "must be an absolute URL with a host"
            )
        if "@" in parts.netloc:
            raise ConfigurationError(
                "redirect_uri", "must not contain user information"
            )
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ConfigurationError(
                "redirect_uri", "must use https (http only for localhost / loopback)"
            )
    elif parts.scheme in ("javascript", "data", "file", "vbscript"):
        raise ConfigurationError(
            "redirect_uri", "uses a scheme that cannot be a callback"
        )


def _load_private_key(secret: Secret) -> Any:
    try:
        key = load_pem_private_key(secret.reveal().encode("utf-8"), password=None)
    except (ValueError, TypeError):
        raise ConfigurationError(
            "private_key",
            "cannot be read (expected an unencrypted PEM RSA private key)",
        ) from None
    except UnsupportedAlgorithm:  # odd or unsupported keys
        raise ConfigurationError("private_key", "cannot be read") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("private_key", "must be an RSA key (RS256)")
    if key.key_size < MIN_RSA_KEY_BITS:
        raise ConfigurationError(
            "private_key", f"must be at least {MIN_RSA_KEY_BITS} bits"
        )
    return key
