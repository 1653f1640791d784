"""A token store in one encrypted local file: the ``sfoauth`` command's store.

The file (default ``$XDG_CONFIG_HOME/sfoauth/tokens.json.enc``, else
``~/.config/sfoauth/tokens.json.enc``) is one :class:`~.cipher.TokenCipher` ciphertext
(AES-256-GCM) of a JSON document holding every connection by key (the CLI's alias);
nothing, not even the keys, is readable without the encryption key. That key comes from
``SFOAUTH_TOKEN_KEY`` (comma-separated keys rotate: the first encrypts, all decrypt) or,
when it is unset, from a key file next to the token file (``<file>.key``), generated on
first use. Both files are created with mode 0600 in a 0700 directory; a key file that
others can read is refused, as ssh does.

Writes go to a temporary file that is renamed over the old one (a crash never leaves
half a file), under an OS file lock (``fcntl.flock``) so that two processes never lose
each other's changes; ``lock(key)`` is a per-key OS file lock, held across a refresh by
whoever shares the file (threads, or ``sfoauth`` processes in several terminals).

Each connection keeps, beside its token and :class:`~.base.TokenRecord` fields, details
the store does not interpret (:meth:`FileTokenStore.details`): the CLI keeps there the
app it logged in with (client id, login URL, scopes) and who logged in.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread

from ..exceptions import ConfigurationError, StorageError
from ..tokens import Token
from .base import TokenRecord, idle_order, marked_record, next_record
from .cipher import TokenCipher

__all__ = [
    "AsyncFileTokenStore",
    "FileTokenStore",
    "default_store_path",
]

T = TypeVar("T")

#: Binds the ciphertext to this use (a token file cannot be passed off as another
#: store's record, nor the other way round).
STORE_CONTEXT = "sfoauth-cli-token-store:v1"
STORE_VERSION = 1
#: Seconds between two tries of a file lock that another process holds.
LOCK_POLL = 0.05
#: Keys of a stored connection that belong to the store; the rest are its details.
_OWN = frozenset({"token", "record", "saved_at"})
#: Files written before records were kept name the login flow; the grant follows.
_FLOW_GRANTS = {
    "web_server": "authorization_code",
    "device": "device",
    "username_password": "password",
    "jwt_bearer": "jwt_bearer",
    "client_credentials": "client_credentials",
}


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/sfoauth/tokens.json.enc`` (``~/.config`` when unset)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "sfoauth" / "tokens.json.enc"


def _write_private(path: Path, data: bytes) -> None:
    # Write beside the target and rename, so a crash never leaves half a file, and the
    # file is 0600 from its first byte (no window where it is world-readable).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


def _try_lock(fd: int) -> bool:
    """Take the OS's exclusive lock on ``fd`` without blocking; ``False`` if held."""
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def _file_lock(path: Path, *, wait: float, what: str) -> Iterator[None]:
    """Hold the OS file lock of ``path`` (created 0600) for the block.

    The lock belongs to this open file: another thread of this process, opening the
    file itself, waits like another process does. Closing the file releases it, so a
    process that dies holds nothing.

    Raises:
        StorageError: the lock file cannot be opened, or the wait ran out.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StorageError(
            f"cannot open the lock file {path}: {exc.strerror or exc}"
        ) from None
    try:
        deadline = time.monotonic() + wait
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise StorageError(f"timed out waiting for the {what}")
            time.sleep(LOCK_POLL)
        yield
    finally:
        os.close(fd)


class FileTokenStore:
    """A :class:`~.base.TokenStore` in one encrypted file, shared by the processes of
    one user on one machine (the ``sfoauth`` command's store).

    Args:
        path: the token file (default: :func:`default_store_path`).
        environ: where ``SFOAUTH_TOKEN_KEY`` is read (``os.environ``).
        lock_wait: seconds to wait for a file lock before :class:`StorageError`.

    Example:
        >>> store = FileTokenStore("~/.config/sfoauth/tokens.json.enc")
        >>> manager = TokenManager(SalesforceOAuth(app), store)
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        lock_wait: float = 120.0,
    ) -> None:
        self.path = (
            Path(path).expanduser() if path is not None else default_store_path()
        )
        self._env = os.environ if environ is None else environ
        self.lock_wait = lock_wait

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    @property
    def key_path(self) -> Path:
        """The key file used when ``SFOAUTH_TOKEN_KEY`` is unset."""
        return self.path.with_name(self.path.name + ".key")

    # The file -------------------------------------------------------------------------
    def _cipher(self, *, create: bool) -> TokenCipher | None:
        keys = [k.strip() for k in self._env.get("SFOAUTH_TOKEN_KEY", "").split(",")]
        keys = [k for k in keys if k]
        if keys:
            return TokenCipher(keys, setting="SFOAUTH_TOKEN_KEY")
        key_path = self.key_path
        try:
            info = key_path.stat()
        except FileNotFoundError:
            if not create:
                return None
            key = TokenCipher.generate_key()
            try:
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another sfoauth process just made it
                return self._cipher(create=False)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(key + "\n")
            return TokenCipher(key, setting=str(key_path))
        if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                str(key_path), "is readable by other users; run chmod 600 on it"
            )
        try:
            key = key_path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            raise StorageError(f"cannot read the key file {key_path}") from None
        return TokenCipher(key, setting=str(key_path))

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            blob = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError):
            raise StorageError(f"cannot read the token file {self.path}") from None
        cipher = self._cipher(create=False)
        if cipher is None:
            raise StorageError(
                f"the token file {self.path} exists but its key file {self.key_path} "
                "does not; set SFOAUTH_TOKEN_KEY to the key it was written with, or "
                "delete the token file to start over"
            )
        plain = cipher.decrypt(blob, context=STORE_CONTEXT)
        try:
            doc = json.loads(plain)
        except ValueError:
            raise StorageError(f"the token file {self.path} is corrupt") from None
        connections = doc.get("connections") if isinstance(doc, dict) else None
        if not isinstance(connections, dict) or not all(
            isinstance(c, dict) for c in connections.values()
        ):
            raise StorageError(f"the token file {self.path} is corrupt")
        return connections

    def _dir(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the directory of {self.path}: {exc.strerror or exc}"
            ) from None

    def _write(self, connections: Mapping[str, Mapping[str, Any]]) -> None:
        doc = {"version": STORE_VERSION, "connections": dict(connections)}
        try:
            cipher = cast(
                "TokenCipher", self._cipher(create=True)
            )  # create: never None
            blob = cipher.encrypt(
                json.dumps(doc).encode("utf-8"), context=STORE_CONTEXT
            )
            _write_private(self.path, blob.encode("ascii") + b"\n")
        except OSError as exc:
            raise StorageError(
                f"cannot write the token file {self.path}: {exc.strerror or exc}"
            ) from None

    def _update(self, change: Callable[[dict[str, dict[str, Any]]], T]) -> T:
        """Read, change and write the file under its write lock (read-modify-write
        across processes: nobody's change is lost)."""
        self._dir()
        lock = self.path.with_name(self.path.name + ".lock")
        with _file_lock(lock, wait=self.lock_wait, what=f"token file {self.path}"):
            connections = self._load()
            result = change(connections)
            self._write(connections)
            return result

    # Records --------------------------------------------------------------------------
    @staticmethod
    def _record(connection: Mapping[str, Any]) -> TokenRecord:
        fields = connection.get("record")
        if isinstance(fields, dict):
            data = {**fields, "token": connection.get("token")}
        else:
            # Written before records were kept: a login's first record.
            grant = _FLOW_GRANTS.get(str(connection.get("flow")), "authorization_code")
            data = {
                "token": connection.get("token"),
                "version": 1,
                "grant": grant,
                "username": connection.get("username")
                if grant == "jwt_bearer"
                else None,
                "updated_at": connection.get("saved_at") or 0.0,
            }
        return TokenRecord.from_dict(data)

    @staticmethod
    def _stored(connection: Mapping[str, Any], record: TokenRecord) -> dict[str, Any]:
        fields = record.to_dict()
        token = fields.pop("token")
        # The token stays where earlier versions read it ("token"), with "saved_at".
        return {
            **connection,
            "token": token,
            "record": fields,
            "saved_at": record.updated_at,
        }

    def get(self, key: str) -> TokenRecord | None:
        """The record under ``key``, or ``None``.

        Raises:
            StorageError: the file cannot be read or decrypted, or the record is
                malformed.
            ConfigurationError: the key file is readable by other users.
        """
        connection = self._load().get(key)
        return self._record(connection) if connection is not None else None

    def save(
        self,
        key: str,
        token: Token,
        *,
        grant: str | None = None,
        username: str | None = None,
        expected_version: int | None = None,
    ) -> TokenRecord:
        """Store ``token``; see :func:`~.base.next_record` for the rules. The
        connection's details are kept."""

        def change(connections: dict[str, dict[str, Any]]) -> TokenRecord:
            connection = connections.get(key) or {}
            current = self._record(connection) if connection else None
            record = next_record(
                key,
                current,
                token=token,
                grant=grant,
                username=username,
                expected_version=expected_version,
            )
            connections[key] = self._stored(connection, record)
            return record

        return self._update(change)

    def mark_needs_reauth(
        self, key: str, reason: str, *, expected_version: int | None = None
    ) -> TokenRecord:
        """Flag the connection as needing a new login, keeping the token."""

        def change(connections: dict[str, dict[str, Any]]) -> TokenRecord:
            connection = connections.get(key)
            current = self._record(connection) if connection else None
            record = next_record(
                key, current, reason=reason, expected_version=expected_version
            )
            connections[key] = self._stored(connection or {}, record)
            return record

        return self._update(change)

    def delete(self, key: str) -> None:
        """Remove the connection, details included (no error when it is not there)."""
        if key in self._load():
            self._update(lambda connections: connections.pop(key, None))

    @contextmanager
    def lock(self, key: str) -> Iterator[object]:
        """Hold ``key``'s OS file lock (``<file>.<hash of key>.lock``) for the block.

        Raises:
            StorageError: the wait (``lock_wait``) ran out.
        """
        self._dir()
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        path = self.path.with_name(f".{self.path.name}.{digest}.lock")
        with _file_lock(path, wait=self.lock_wait, what=f"token lock of {key!r}"):
            yield path

    def set_refresh_marker(
        self, key: str, digest: str | None, *, expected_version: int
    ) -> TokenRecord:
        """Write or clear the "refresh in flight" marker (compare-and-swap; durable when
        it returns: the file is replaced atomically); see :func:`~.base.marked_record`."""

        def change(connections: dict[str, dict[str, Any]]) -> TokenRecord:
            connection = connections.get(key)
            current = self._record(connection) if connection else None
            record = marked_record(
                key, current, digest, expected_version=expected_version
            )
            connections[key] = self._stored(connection or {}, record)
            return record

        return self._update(change)

    def idle_keys(self, *, idle_since: float, limit: int | None = None) -> list[str]:
        """Keys of active connections with a refresh token (not minted grants) whose
        refresh token was last issued or used before ``idle_since`` (epoch seconds;
        ``refreshed_at``, or ``updated_at`` for records without it), oldest first; see
        :func:`~.base.idle_order`.

        A record that no longer parses is left out: it cannot be refreshed anyway.
        """
        records: list[tuple[str, TokenRecord]] = []
        for key, connection in self._load().items():
            try:
                records.append((key, self._record(connection)))
            except StorageError:
                continue
        return idle_order(records, idle_since=idle_since, limit=limit)

    # What the file keeps besides the records ----------------------------------------
    def keys(self) -> list[str]:
        """The stored connections' keys, sorted."""
        return sorted(self._load())

    def details(self, key: str) -> dict[str, Any] | None:
        """What was kept with ``key``'s token besides its record (``None`` when
        nothing is stored)."""
        connection = self._load().get(key)
        if connection is None:
            return None
        return {k: v for k, v in connection.items() if k not in _OWN}

    def set_details(self, key: str, details: Mapping[str, Any]) -> None:
        """Replace the details kept with ``key``'s stored token (JSON values).

        Raises:
            StorageError: nothing is stored under ``key``.
            ValueError: ``details`` uses a name the store keeps for itself.
        """
        clash = _OWN & set(details)
        if clash:
            raise ValueError(f"details cannot be named {', '.join(sorted(clash))}")

        def change(connections: dict[str, dict[str, Any]]) -> None:
            connection = connections.get(key)
            if connection is None:
                raise StorageError(f"no token is stored under {key!r}")
            own = {k: v for k, v in connection.items() if k in _OWN}
            connections[key] = {**dict(details), **own}

        self._update(change)


class AsyncFileTokenStore:
    """The :class:`~.base.AsyncTokenStore` twin of :class:`FileTokenStore`: the same
    file and locks, the file work done in a worker thread.

    Args:
        path: the token file (default: :func:`default_store_path`).
        environ: where ``SFOAUTH_TOKEN_KEY`` is read (``os.environ``).
        lock_wait: seconds to wait for a file lock before :class:`StorageError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        lock_wait: float = 120.0,
    ) -> None:
        self.sync = FileTokenStore(path, environ=environ, lock_wait=lock_wait)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.sync.path)!r})"

    @property
    def path(self) -> Path:
        return self.sync.path

    async def get(self, key: str) -> TokenRecord | None:
        """The record under ``key``, or ``None``."""
        return await anyio.to_thread.run_sync(self.sync.get, key)

    async def save(
        self,
        key: str,
        token: Token,
        *,
        grant: str | None = None,
        username: str | None = None,
        expected_version: int | None = None,
    ) -> TokenRecord:
        """Store ``token``; see :meth:`FileTokenStore.save`."""

        def save() -> TokenRecord:
            return self.sync.save(
                key,
                token,
                grant=grant,
                username=username,
                expected_version=expected_version,
            )

        return await anyio.to_thread.run_sync(save)

    async def mark_needs_reauth(
        self, key: str, reason: str, *, expected_version: int | None = None
    ) -> TokenRecord:
        """Flag the connection as needing a new login, keeping the token."""

        def mark() -> TokenRecord:
            return self.sync.mark_needs_reauth(
                key, reason, expected_version=expected_version
            )

        return await anyio.to_thread.run_sync(mark)

    async def delete(self, key: str) -> None:
        """Remove the connection (no error when it is not there)."""
        await anyio.to_thread.run_sync(self.sync.delete, key)

    async def set_refresh_marker(
        self, key: str, digest: str | None, *, expected_version: int
    ) -> TokenRecord:
        """See :meth:`FileTokenStore.set_refresh_marker`."""

        def mark() -> TokenRecord:
            return self.sync.set_refresh_marker(
                key, digest, expected_version=expected_version
            )

        return await anyio.to_thread.run_sync(mark)

    async def idle_keys(
        self, *, idle_since: float, limit: int | None = None
    ) -> list[str]:
        """See :meth:`FileTokenStore.idle_keys`."""

        def idle() -> list[str]:
            return self.sync.idle_keys(idle_since=idle_since, limit=limit)

        return await anyio.to_thread.run_sync(idle)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[object]:
        """Hold ``key``'s OS file lock for the block (waited for in a worker thread;
        the event loop keeps running)."""
        held = self.sync.lock(key)
        # Shielded: a cancelled wait must not leave a lock taken in the thread behind
        # (the wait is bounded by lock_wait).
        with anyio.CancelScope(shield=True):
            path = await anyio.to_thread.run_sync(held.__enter__)
        try:
            yield path
        finally:
            # Releasing is closing a file descriptor: no wait, no thread needed.
            held.__exit__(None, None, None)
