"""The ``SFOAUTH`` settings dict, read lazily through one typed object.

Users write one dict in their Django settings::

    SFOAUTH = {
        "CLIENT_ID": "3MVG9...",
        "CLIENT_SECRET": env("SF_SECRET"),
        "REDIRECT_URI": "https://app.example.com/salesforce/callback/",
        "TOKEN_KEYS": [env("SF_TOKEN_KEY")],
    }

:data:`sfoauth_settings` reads it on first attribute access (never at import), refuses
unknown keys, resolves dotted paths with errors naming the setting, and forgets what it
read when ``setting_changed`` fires (``override_settings`` in tests). Each key is a typed
property below, whose docstring is the reference documentation.
:meth:`SFOAuthSettings.to_core_config` is the one place Django settings reach the core.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from sfoauth_core import ConnectedApp, Connection
from sfoauth_core.config import DEFAULT_LOGIN_URL
from sfoauth_core.connections import SERVER_GRANTS
from sfoauth_core.exceptions import ConfigurationError
from sfoauth_core.storage import TokenCipher

__all__ = [
    "CONNECTION_FLOWS",
    "CONNECTION_KEYS",
    "DEFAULTS",
    "IMPORT_STRINGS",
    "REMOVED_SETTINGS",
    "SECRET_SETTINGS",
    "SFOAuthSettings",
    "sfoauth_settings",
]

SETTING_NAME = "SFOAUTH"

DEFAULTS: dict[str, Any] = {
    "CLIENT_ID": None,
    "CLIENT_SECRET": None,
    "REDIRECT_URI": None,
    "LOGIN_URL": DEFAULT_LOGIN_URL,
    "LOGIN_URLS": {},
    "SCOPES": ("api", "refresh_token"),
    "TIMEOUT": 30.0,
    "ALLOW_LOOPBACK": False,
    "EXTRA_HOSTS": (),
    "TOKEN_KEYS": (),
    "CONNECTIONS": {},
    "ADAPTER": "sfoauth_django.adapter.DefaultSFOAuthAdapter",
    "HTTP_CLIENT_FACTORY": None,
    "STATE_TTL": 600,
    "LOGIN_ON_GET": False,
    "LOGIN_REDIRECT_URL": "/",
    "DISCONNECT_REDIRECT_URL": "/",
    "SESSION_TIMEOUT": None,
    "LEEWAY": 60.0,
    "CACHE_TTL": 300.0,
    "REFRESH_TOKEN_IDLE_LIMIT": None,
}

#: Settings holding dotted paths, imported on access.
IMPORT_STRINGS = ("ADAPTER", "HTTP_CLIENT_FACTORY")

#: Settings that existed once, with what replaces them.
REMOVED_SETTINGS: dict[str, str] = {}

#: Keys of one entry of ``CONNECTIONS``.
CONNECTION_KEYS = frozenset(
    {
        "FLOW",
        "CLIENT_ID",
        "CLIENT_SECRET",
        "PRIVATE_KEY",
        "PRIVATE_KEY_FILE",
        "USERNAME",
        "LOGIN_URL",
        "AUDIENCE",
        "SCOPES",
        "TIMEOUT",
        "ALLOW_LOOPBACK",
        "EXTRA_HOSTS",
    }
)
#: Keys (top level or in a ``CONNECTIONS`` entry) whose values are secrets. Each name
#: matches Django's ``SafeExceptionReporterFilter.hidden_settings`` (``SECRET``/``KEY``/
#: ``TOKEN``), so debug pages hide the values even on Django 4.2, which recurses into the
#: ``SFOAUTH`` dict instead of hiding it whole; keep it so when adding a secret setting.
SECRET_SETTINGS = frozenset({"CLIENT_SECRET", "TOKEN_KEYS", "PRIVATE_KEY"})
#: Server-to-server flows a named connection may use.
CONNECTION_FLOWS = SERVER_GRANTS
#: The top-level keys that make the user-facing Connected App.
_APP_KEYS = (
    "CLIENT_ID",
    "CLIENT_SECRET",
    "REDIRECT_URI",
    "LOGIN_URL",
    "SCOPES",
    "TIMEOUT",
    "ALLOW_LOOPBACK",
    "EXTRA_HOSTS",
)
#: The top-level keys a ``CONNECTIONS`` entry falls back to.
_INHERITED_KEYS = tuple(key for key in _APP_KEYS if key != "REDIRECT_URI")


def setting_label(key: str, sub: str | None = None) -> str:
    """``SFOAUTH['KEY']`` (or ``SFOAUTH['CONNECTIONS']['name']['KEY']``) for messages."""
    if sub is None:
        return f"{SETTING_NAME}[{key!r}]"
    return f"{SETTING_NAME}['CONNECTIONS'][{key!r}][{sub!r}]"


_CORE_TO_KEY = {
    "client_id": "CLIENT_ID",
    "client_secret": "CLIENT_SECRET",
    "redirect_uri": "REDIRECT_URI",
    "login_url": "LOGIN_URL",
    "scopes": "SCOPES",
    "private_key": "PRIVATE_KEY",
    "username": "USERNAME",
    "audience": "AUDIENCE",
    "timeout": "TIMEOUT",
}


# Core argument names that the core's messages mention, as the Django settings a user
# of this app writes instead (``allow_loopback=True`` -> ``SFOAUTH['ALLOW_LOOPBACK'] = True``).
_CORE_WORDS = re.compile(
    r"\b(?:pass |set )?(allow_loopback|extra_hosts|login_url|redirect_uri|client_id"
    r"|client_secret|private_key|audience|scopes|timeout)\b(=True)?"
)


def _django_words(problem: str, connection: str | None) -> str:
    def label(match: re.Match[str]) -> str:
        key = match.group(1).upper()
        text = setting_label(connection or key, key if connection else None)
        if match.group(2):
            text += " = True"
        verb = match.group(0)[: match.start(1) - match.start(0)]
        return ("set " if verb.strip() == "pass" else verb) + text

    return _CORE_WORDS.sub(label, problem)


def translate_error(
    exc: ConfigurationError, connection: str | None
) -> ImproperlyConfigured:
    """The core's :class:`ConfigurationError` in Django terms: ``SFOAUTH['KEY']``
    instead of the core's argument names, in the setting and in the explanation (a
    setting already named ``SFOAUTH[...]`` by ``from_mapping`` stays as it is)."""
    setting = exc.setting
    if not setting.startswith(SETTING_NAME + "["):
        key = _CORE_TO_KEY.get(setting, setting.upper())
        setting = setting_label(connection or key, key if connection else None)
    problem = _django_words(exc.problem, connection)
    return ImproperlyConfigured(f"{setting}: {problem}")


class SFOAuthSettings:
    """Lazy, typed access to the ``SFOAUTH`` dict.

    Args:
        defaults: the default of every key (``DEFAULTS``).
        import_strings: keys holding dotted paths (``IMPORT_STRINGS``).

    Raises:
        AttributeError: on access to a key that is not a setting.
        ImproperlyConfigured: ``SFOAUTH`` is not a dict, names an unknown or removed key, or
            a dotted path cannot be imported. Messages name the key, never a value.
    """

    def __init__(
        self,
        defaults: Mapping[str, Any] | None = None,
        import_strings: Sequence[str] | None = None,
    ) -> None:
        self.defaults = dict(DEFAULTS if defaults is None else defaults)
        self.import_strings = tuple(
            IMPORT_STRINGS if import_strings is None else import_strings
        )
        self._lock = threading.Lock()
        self._user: dict[str, Any] | None = None
        self._cache: dict[Any, Any] = {}

    # Loading ------------------------------------------------------------------------
    @property
    def user_settings(self) -> dict[str, Any]:
        """The ``SFOAUTH`` dict as the user wrote it, checked for unknown keys."""
        user = self._user
        if user is None:
            raw = getattr(django_settings, SETTING_NAME, {})
            if not isinstance(raw, Mapping):
                raise ImproperlyConfigured(f"{SETTING_NAME} must be a dict")
            for key in raw:
                if key in REMOVED_SETTINGS:
                    raise ImproperlyConfigured(
                        f"{setting_label(key)} was removed: {REMOVED_SETTINGS[key]}"
                    )
                if key not in self.defaults:
                    raise ImproperlyConfigured(
                        f"{setting_label(str(key))} is not a setting; the settings are "
                        f"{', '.join(sorted(self.defaults))}"
                    )
            user = self._user = dict(raw)
        return user

    def reload(self) -> None:
        """Forget everything read so far (``setting_changed`` calls this)."""
        with self._lock:
            self._user = None
            self._cache.clear()

    def _get(self, key: str) -> Any:
        if key not in self.defaults:
            raise AttributeError(f"Invalid {SETTING_NAME} setting: {key!r}")
        try:
            return self._cache[key]
        except KeyError:
            pass
        value = self.user_settings.get(key, self.defaults[key])
        if key in self.import_strings and isinstance(value, str):
            try:
                value = import_string(value)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f"{setting_label(key)} could not be imported ({type(exc).__name__}: {exc})"
                ) from None
        self._cache[key] = value
        return value

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not properties: unknown settings.
        if name.startswith("_"):
            raise AttributeError(name)
        return self._get(name)

    # The settings ---------------------------------------------------------------------
    @property
    def CLIENT_ID(self) -> str | None:  # noqa: N802 - the setting's name
        """The consumer key of the Connected App users log in through."""
        return cast("str | None", self._get("CLIENT_ID"))

    @property
    def CLIENT_SECRET(self) -> str | None:  # noqa: N802
        """The consumer secret; ``None`` for a public (PKCE-only) app."""
        return cast("str | None", self._get("CLIENT_SECRET"))

    @property
    def REDIRECT_URI(self) -> str | None:  # noqa: N802
        """The absolute callback URL registered on the app (``sfoauth:callback``).

        It is sent as configured: never rebuilt from ``Host`` or ``X-Forwarded-*`` headers.
        """
        return cast("str | None", self._get("REDIRECT_URI"))

    @property
    def LOGIN_URL(self) -> str:  # noqa: N802
        """Where users log in: ``https://login.salesforce.com`` (default), a sandbox or My Domain."""
        return cast(str, self._get("LOGIN_URL"))

    @property
    def LOGIN_URLS(self) -> dict[str, str]:  # noqa: N802
        """Other login URLs a user may pick with ``?domain=<name>`` on the login view.

        Example: ``{"sandbox": "https://test.salesforce.com"}``. Only names listed here are
        accepted; a URL in the query string never is.
        """
        return dict(self._get("LOGIN_URLS"))

    @property
    def SCOPES(self) -> tuple[str, ...]:  # noqa: N802
        """Scopes requested at login (default ``api refresh_token``)."""
        value = self._get("SCOPES")
        return tuple(value.split()) if isinstance(value, str) else tuple(value)

    @property
    def TIMEOUT(self) -> float:  # noqa: N802
        """Connect/read timeout in seconds for every call to Salesforce."""
        return float(self._get("TIMEOUT"))

    @property
    def ALLOW_LOOPBACK(self) -> bool:  # noqa: N802
        """Allow ``http://`` loopback URLs: the local emulator only, never in production."""
        return bool(self._get("ALLOW_LOOPBACK"))

    @property
    def EXTRA_HOSTS(self) -> tuple[str, ...]:  # noqa: N802
        """More hosts trusted with tokens (custom domains): exact names or ``.suffix``."""
        return tuple(self._get("EXTRA_HOSTS"))

    @property
    def TOKEN_KEYS(self) -> tuple[str, ...]:  # noqa: N802
        """Encryption keys for stored tokens; the first encrypts, all decrypt.

        Generate one with ``python -c "from sfoauth_core.storage import TokenCipher;
        print(TokenCipher.generate_key())"``. To rotate, put a new key first, run
        ``manage.py sfoauth_reencrypt``, then drop the old key.
        """
        value = self._get("TOKEN_KEYS")
        return (value,) if isinstance(value, str) else tuple(value)

    @property
    def CONNECTIONS(self) -> dict[str, dict[str, Any]]:  # noqa: N802
        """Named server-to-server connections: ``{"erp": {"FLOW": "jwt_bearer", ...}}``.

        Each entry takes ``FLOW`` (``jwt_bearer`` or ``client_credentials``) and any of
        ``CLIENT_ID``, ``CLIENT_SECRET``, ``PRIVATE_KEY`` / ``PRIVATE_KEY_FILE``,
        ``USERNAME``, ``LOGIN_URL``, ``AUDIENCE``, ``SCOPES``, ``TIMEOUT``,
        ``ALLOW_LOOPBACK``, ``EXTRA_HOSTS``; missing keys fall back to the top-level ones.
        """
        return {str(k): dict(v) for k, v in dict(self._get("CONNECTIONS")).items()}

    @property
    def ADAPTER(self) -> type[Any]:  # noqa: N802
        """Dotted path of the adapter class (see :mod:`sfoauth_django.adapter`)."""
        return cast("type[Any]", self._get("ADAPTER"))

    @property
    def HTTP_CLIENT_FACTORY(self) -> Callable[..., Any] | None:  # noqa: N802
        """Dotted path of ``factory(app, *, asynchronous) -> httpx.Client | httpx.AsyncClient``.

        Use it to add proxies, mTLS or a test transport (the emulator). ``None``: a plain
        httpx client with the app's timeout, TLS verification on and no redirects.
        """
        return cast("Callable[..., Any] | None", self._get("HTTP_CLIENT_FACTORY"))

    @property
    def STATE_TTL(self) -> int:  # noqa: N802
        """Seconds a started login may take before its ``state`` expires (default 600)."""
        return int(self._get("STATE_TTL"))

    @property
    def LOGIN_ON_GET(self) -> bool:  # noqa: N802
        """Start the flow on ``GET`` instead of showing a confirmation form.

        Off by default: a cross-site ``GET`` must not link a Salesforce account silently
        (SECURITY.md item 7), so the login page asks for a ``POST`` with a CSRF token.
        """
        return bool(self._get("LOGIN_ON_GET"))

    @property
    def LOGIN_REDIRECT_URL(self) -> str:  # noqa: N802
        """Where the callback sends the user when no safe ``next`` was given."""
        return str(self._get("LOGIN_REDIRECT_URL"))

    @property
    def DISCONNECT_REDIRECT_URL(self) -> str:  # noqa: N802
        """Where the disconnect view sends the user when no safe ``next`` was given."""
        return str(self._get("DISCONNECT_REDIRECT_URL"))

    @property
    def SESSION_TIMEOUT(self) -> float | None:  # noqa: N802
        """The org's session timeout in seconds, if known: tokens are refreshed before it."""
        value = self._get("SESSION_TIMEOUT")
        return None if value is None else float(value)

    @property
    def LEEWAY(self) -> float:  # noqa: N802
        """Seconds before a known expiry at which a token is refreshed."""
        return float(self._get("LEEWAY"))

    @property
    def CACHE_TTL(self) -> float:  # noqa: N802
        """Seconds a token (and the user's connection) stays in the in-process cache."""
        return float(self._get("CACHE_TTL"))

    @property
    def REFRESH_TOKEN_IDLE_LIMIT(self) -> float | None:  # noqa: N802
        """The app's refresh-token idle limit in seconds ("expire refresh token if not
        used for", reference 15.3), if it has one: ``sfoauth_status`` shows each
        connection's risk against it, and ``sfoauth_keepalive`` refreshes connections
        idle for a third of it by default."""
        value = self._get("REFRESH_TOKEN_IDLE_LIMIT")
        if value is None:
            return None
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = 0.0
        if not seconds > 0:
            raise ImproperlyConfigured(
                f"{setting_label('REFRESH_TOKEN_IDLE_LIMIT')} must be a positive "
                "number of seconds (or None)"
            )
        return seconds

    # Conversions to the core ----------------------------------------------------------
    def to_core_config(self, *, login_url: str | None = None) -> ConnectedApp:
        """The user-facing Connected App as the core's frozen :class:`ConnectedApp`.

        Built once per login URL (and settings change), by
        :meth:`ConnectedApp.from_mapping <sfoauth_core.ConnectedApp.from_mapping>`.

        Args:
            login_url: a login URL chosen from ``LOGIN_URLS`` for one request (a copy is
                built; the shared configuration never changes).

        Raises:
            ImproperlyConfigured: a value is missing or unsafe (named, never shown).
        """
        cache_key = ("_app", login_url)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cast(ConnectedApp, cached)
        values = {key: self._get(key) for key in _APP_KEYS}
        if login_url:
            values["LOGIN_URL"] = login_url
        try:
            app = ConnectedApp.from_mapping(values, label=setting_label)
        except ConfigurationError as exc:
            raise translate_error(exc, None) from None
        self._cache[cache_key] = app
        return app

    def connection(self, name: str) -> Connection:
        """The named connection ``name`` as the core's :class:`Connection` (built once,
        by :meth:`Connection.from_mapping <sfoauth_core.Connection.from_mapping>`; its
        missing keys fall back to the top-level ones).

        Raises:
            ImproperlyConfigured: no such connection, or its settings are invalid.
        """
        cache_key = ("_connection", name)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cast(Connection, cached)
        connections = self.CONNECTIONS
        if name not in connections:
            raise ImproperlyConfigured(
                f"{setting_label('CONNECTIONS')} has no connection named {name!r}"
            )
        entry = connections[name]
        unknown = sorted(set(entry) - CONNECTION_KEYS)
        if unknown:
            raise ImproperlyConfigured(
                f"{setting_label(name, unknown[0])} is not a connection setting"
            )
        values = {key: self._get(key) for key in _INHERITED_KEYS}
        values.update(entry)
        try:
            found = Connection.from_mapping(
                values, label=lambda key: setting_label(name, key)
            )
        except ConfigurationError as exc:
            raise translate_error(exc, name) from None
        self._cache[cache_key] = found
        return found

    def connection_config(self, name: str) -> tuple[str, ConnectedApp]:
        """The flow and :class:`ConnectedApp` of the named connection ``name`` (see
        :meth:`connection`).

        Raises:
            ImproperlyConfigured: no such connection, or its settings are invalid.
        """
        found = self.connection(name)
        return found.resolved_grant, found.app

    def cipher(self) -> TokenCipher:
        """The :class:`TokenCipher` built from ``TOKEN_KEYS``.

        Raises:
            ImproperlyConfigured: no key, or a key that is not 32 urlsafe-base64 bytes.
        """
        cached = self._cache.get("_cipher")
        if cached is not None:
            return cast(TokenCipher, cached)
        try:
            cipher = TokenCipher(
                list(self.TOKEN_KEYS), setting=setting_label("TOKEN_KEYS")
            )
        except ConfigurationError as exc:
            raise ImproperlyConfigured(str(exc)) from None
        self._cache["_cipher"] = cipher
        return cipher


#: The settings object every module of the app reads.
sfoauth_settings = SFOAuthSettings()

_reload_hooks: list[Callable[[], None]] = []


def on_reload(hook: Callable[[], None]) -> Callable[[], None]:
    """Run ``hook`` whenever the settings are reloaded (caches built from them)."""
    _reload_hooks.append(hook)
    return hook


@receiver(setting_changed)
def _reload_sfoauth_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING_NAME, "SFOAUTH_TOKEN_MODEL", "AUTHENTICATION_BACKENDS"):
        sfoauth_settings.reload()
        for hook in tuple(_reload_hooks):
            hook()
