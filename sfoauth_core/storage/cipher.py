"""Authenticated encryption of stored tokens, with key ids and key rotation.

Every persistent store keeps only ciphertext (SECURITY.md item 17). :class:`TokenCipher`
uses AES-256-GCM from ``cryptography``:

* each key has a short **key id** derived from the key itself (a truncated SHA-256),
  written in clear in front of the ciphertext, so decryption picks the right key
  without trying them all and an unknown key id gives a clear error;
* the **associated data** is the record's key (the connection's identity in the
  store), so a ciphertext copied onto another connection's record fails
  authentication instead of silently handing one user's tokens to another;
* **rotation** follows MultiFernet's rule: encrypt with the first key, decrypt with
  any listed key; :meth:`TokenCipher.reencrypt` moves one value to the first key and
  is a no-op for a value already under it, so a sweep over every record is idempotent
  and can be stopped and resumed at any point.

Wire format (ASCII): ``sfo1.<key id>.<urlsafe base64 of nonce || ciphertext || tag>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..config import Secret
from ..exceptions import ConfigurationError, StorageError

__all__ = ["TokenCipher"]

_PREFIX = "sfo1"
_NONCE_BYTES = 12
_KEY_BYTES = 32


def _key_id(key: bytes) -> str:
    digest = hashlib.sha256(b"sfoauth-token-key-id\x00" + key).digest()
    return base64.urlsafe_b64encode(digest[:6]).decode("ascii")


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise StorageError("stored value is not a sfoauth ciphertext") from None
    return value


def _decode_key(value: str | bytes | Secret, setting: str) -> bytes:
    if isinstance(value, Secret):
        value = value.reveal()
    if isinstance(value, str):
        value = value.strip().encode("ascii", "replace")
    if not isinstance(value, bytes):
        raise ConfigurationError(setting, "must be a urlsafe-base64 string")
    try:
        raw = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            setting,
            "is not urlsafe-base64; generate one with TokenCipher.generate_key()",
        ) from None
    if len(raw) != _KEY_BYTES:
        raise ConfigurationError(
            setting,
            f"must decode to {_KEY_BYTES} bytes (got {len(raw)}); generate one with "
            "TokenCipher.generate_key()",
        )
    return raw


class TokenCipher:
    """AES-256-GCM with key ids, record binding and MultiFernet-style rotation.

    Args:
        keys: one or more urlsafe-base64 32-byte keys (strings, bytes or
            :class:`Secret`; a key from ``Fernet.generate_key()`` works too). The
            first encrypts; all of them decrypt. Put a new key first to rotate, keep the
            old ones until :meth:`reencrypt` has run over every record, then drop them.
        setting: the name of the setting the keys came from, used in error messages
            (``"SFOAUTH['TOKEN_KEYS']"``, ``"token_keys"``...). Key values are never
            shown.

    Raises:
        ConfigurationError: no key, a duplicate key, or a key that is not urlsafe-base64
            of exactly 32 bytes. The message names ``setting`` (and the position).

    Example:
        >>> cipher = TokenCipher([TokenCipher.generate_key()])
        >>> blob = cipher.encrypt(b"secret", context="org:user")
        >>> cipher.decrypt(blob, context="org:user")
        b'secret'
    """

    __slots__ = ("_keys", "_primary_id", "setting")

    def __init__(
        self,
        keys: str | bytes | Secret | Sequence[str | bytes | Secret],
        *,
        setting: str = "token_keys",
    ) -> None:
        if isinstance(keys, (str, bytes, Secret)):
            keys = [keys]
        if not keys:
            raise ConfigurationError(setting, "needs at least one key")
        self.setting = setting
        self._keys: dict[str, AESGCM] = {}
        for position, value in enumerate(keys):
            name = setting if len(keys) == 1 else f"{setting}[{position}]"
            raw = _decode_key(value, name)
            kid = _key_id(raw)
            if kid in self._keys:
                raise ConfigurationError(name, "repeats an earlier key")
            self._keys[kid] = AESGCM(raw)
        self._primary_id = next(iter(self._keys))

    @staticmethod
    def generate_key() -> str:
        """A new random key, urlsafe-base64 encoded (44 characters)."""
        return base64.urlsafe_b64encode(os.urandom(_KEY_BYTES)).decode("ascii")

    @property
    def primary_key_id(self) -> str:
        """The id of the key new ciphertexts use (safe to log)."""
        return self._primary_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of every configured key, the primary first (safe to log)."""
        return tuple(self._keys)

    def __repr__(self) -> str:
        return f"TokenCipher(key_ids={self.key_ids!r})"

    @staticmethod
    def _aad(kid: str, context: str) -> bytes:
        return f"{_PREFIX}\x00{kid}\x00{context}".encode()

    def encrypt(self, plaintext: bytes | str, *, context: str = "") -> str:
        """Encrypt ``plaintext`` (``str`` is encoded as UTF-8) bound to ``context``
        with the first key.

        Stores always pass the record's key as ``context``; a value encrypted for one
        context only decrypts with the same one.
        """
        if isinstance(plaintext, str):
            plaintext = plaintext.encode("utf-8")
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._primary_id].encrypt(
            nonce, plaintext, self._aad(self._primary_id, context)
        )
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{_PREFIX}.{self._primary_id}.{body}"

    def key_id_of(self, ciphertext: str | bytes) -> str:
        """The key id a ciphertext was made with.

        Raises:
            StorageError: the value is not a ciphertext of this format.
        """
        parts = _text(ciphertext).split(".")
        if len(parts) != 3 or parts[0] != _PREFIX or not parts[1]:
            raise StorageError("stored value is not a sfoauth ciphertext")
        return parts[1]

    def decrypt(self, ciphertext: str | bytes, *, context: str = "") -> bytes:
        """Decrypt a value made by :meth:`encrypt` with any configured key.

        Raises:
            StorageError: unknown key id (the key was removed too early), the value was
                altered, or it belongs to another record (``context`` differs).
        """
        kid = self.key_id_of(ciphertext)
        aead = self._keys.get(kid)
        if aead is None:
            raise StorageError(
                f"stored token was encrypted with key id {kid!r}, which is not in "
                f"{self.setting}; add that key back (after the new one) and re-encrypt"
            )
        try:
            blob = base64.urlsafe_b64decode(_text(ciphertext).split(".")[2])
        except (binascii.Error, ValueError):
            raise StorageError("stored ciphertext is not valid base64") from None
        nonce, sealed = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
        try:
            return aead.decrypt(nonce, sealed, self._aad(kid, context))
        except InvalidTag:
            raise StorageError(
                "stored ciphertext failed authentication: it was altered, or it "
                "belongs to another record"
            ) from None

    def needs_reencrypt(self, ciphertext: str | bytes) -> bool:
        """True when ``ciphertext`` is not under the first (current) key."""
        return self.key_id_of(ciphertext) != self._primary_id

    def reencrypt(self, ciphertext: str | bytes, *, context: str = "") -> str:
        """Move one value to the first key; returns it unchanged if already there.

        Idempotent, so a sweep can be interrupted and run again.

        Raises:
            StorageError: as :meth:`decrypt`.
        """
        if not self.needs_reencrypt(ciphertext):
            return _text(ciphertext)
        return self.encrypt(self.decrypt(ciphertext, context=context), context=context)

    # MultiFernet's name for the same operation.
    rotate = reencrypt

    def reencrypt_all(
        self, records: Iterable[tuple[str, str]]
    ) -> Iterator[tuple[str, str]]:
        """For ``(context, ciphertext)`` pairs, yield ``(context, new ciphertext)``
        only for the values that changed.

        Stores use it to re-encrypt every row; rows already under the first key are
        skipped, so re-running after an interruption resumes the work.
        """
        for context, ciphertext in records:
            if self.needs_reencrypt(ciphertext):
                yield context, self.reencrypt(ciphertext, context=context)
