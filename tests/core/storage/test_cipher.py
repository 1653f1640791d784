"""TokenCipher: AES-GCM with key ids, record binding, rotation and key validation."""

from __future__ import annotations

import base64

import pytest

from sfoauth_core.config import Secret
from sfoauth_core.exceptions import ConfigurationError, StorageError
from sfoauth_core.storage import TokenCipher

KEY_A = TokenCipher.generate_key()
KEY_B = TokenCipher.generate_key()


def test_generate_key_is_urlsafe_base64_of_32_random_bytes():
    key = TokenCipher.generate_key()
    assert len(key) == 44
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert key != TokenCipher.generate_key()


def test_round_trip_and_format():
    cipher = TokenCipher([KEY_A])
    blob = cipher.encrypt(b"00Dxx!secret-access-token", context="org/user")
    prefix, kid, body = blob.split(".")
    assert prefix == "sfo1"
    assert kid == cipher.primary_key_id
    assert b"secret" not in base64.urlsafe_b64decode(body)
    assert "secret" not in blob
    assert cipher.decrypt(blob, context="org/user") == b"00Dxx!secret-access-token"
    # A fresh nonce every time.
    assert cipher.encrypt(b"x", context="c") != cipher.encrypt(b"x", context="c")


def test_ciphertext_cannot_move_to_another_record():
    cipher = TokenCipher([KEY_A])
    blob = cipher.encrypt(b"token of alice", context="org:alice")
    with pytest.raises(StorageError, match="another record"):
        cipher.decrypt(blob, context="org:mallory")


def test_tampered_ciphertext_fails_authentication():
    cipher = TokenCipher([KEY_A])
    blob = cipher.encrypt(b"token", context="k")
    prefix, kid, body = blob.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    tampered = f"{prefix}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(StorageError, match="failed authentication"):
        cipher.decrypt(tampered, context="k")
    with pytest.raises(StorageError, match="not a sfoauth ciphertext"):
        cipher.decrypt("plain text", context="k")


def test_rotation_encrypts_with_first_and_decrypts_with_any():
    old = TokenCipher([KEY_A])
    blob = old.encrypt(b"refresh", context="k")
    rotated = TokenCipher([KEY_B, KEY_A])
    assert rotated.primary_key_id != old.primary_key_id
    assert rotated.key_ids == (rotated.primary_key_id, old.primary_key_id)
    assert rotated.decrypt(blob, context="k") == b"refresh"
    assert rotated.needs_reencrypt(blob)
    moved = rotated.reencrypt(blob, context="k")
    assert rotated.key_id_of(moved) == rotated.primary_key_id
    assert not rotated.needs_reencrypt(moved)
    # Idempotent: a value already under the first key is returned unchanged.
    assert rotated.reencrypt(moved, context="k") == moved
    assert TokenCipher([KEY_B]).decrypt(moved, context="k") == b"refresh"


def test_unknown_key_id_says_which_and_names_the_setting():
    blob = TokenCipher([KEY_A]).encrypt(b"x", context="k")
    other = TokenCipher([KEY_B], setting="SFOAUTH['TOKEN_KEYS']")
    with pytest.raises(StorageError) as info:
        other.decrypt(blob, context="k")
    message = str(info.value)
    assert TokenCipher([KEY_A]).primary_key_id in message
    assert "SFOAUTH['TOKEN_KEYS']" in message
    assert KEY_A not in message and KEY_B not in message


def test_reencrypt_all_yields_only_changed_rows_and_resumes():
    old = TokenCipher([KEY_A])
    rotated = TokenCipher([KEY_B, KEY_A])
    rows = {
        "a": old.encrypt(b"1", context="a"),
        "b": rotated.encrypt(b"2", context="b"),
        "c": old.encrypt(b"3", context="c"),
    }
    first = dict(rotated.reencrypt_all(list(rows.items())[:2]))  # interrupted after 2
    assert set(first) == {"a"}
    rows.update(first)
    second = dict(rotated.reencrypt_all(rows.items()))
    assert set(second) == {"c"}
    rows.update(second)
    assert dict(rotated.reencrypt_all(rows.items())) == {}
    assert [TokenCipher([KEY_B]).decrypt(v, context=k) for k, v in rows.items()] == [
        b"1",
        b"2",
        b"3",
    ]


@pytest.mark.parametrize(
    "keys, setting, problem",
    [
        ([], "token_keys", "at least one key"),
        (["c2hvcnQ="], "token_keys", "32 bytes"),
        (["not base64 at all!!"], "token_keys", "32 bytes|urlsafe-base64"),
        ([KEY_A, "AAAA"], "token_keys[1]", "32 bytes"),
        ([KEY_A, KEY_A], "token_keys[1]", "repeats"),
        ([base64.urlsafe_b64encode(b"k" * 31).decode()], "token_keys", "got 31"),
    ],
)
def test_bad_keys_raise_configuration_error_naming_the_setting(keys, setting, problem):
    with pytest.raises(ConfigurationError, match=problem) as info:
        TokenCipher(keys)
    assert info.value.setting == setting
    for key in keys:
        if key not in ("", "AAAA"):
            assert key not in str(info.value)


def test_custom_setting_name_and_secret_keys():
    with pytest.raises(ConfigurationError) as info:
        TokenCipher(["short"], setting="SFOAUTH_TOKEN_KEYS")
    assert info.value.setting == "SFOAUTH_TOKEN_KEYS"
    cipher = TokenCipher(Secret(KEY_A))
    assert cipher.decrypt(cipher.encrypt(b"v", context="k"), context="k") == b"v"
    assert KEY_A not in repr(cipher)


def test_fernet_style_use_bytes_keys_and_default_context():
    from cryptography.fernet import Fernet

    # A key made by Fernet.generate_key() (bytes, urlsafe-base64 of 32 bytes) works,
    # alone or in a list, and ciphertexts made without a context round-trip.
    single = TokenCipher(Fernet.generate_key())
    fernet_key = Fernet.generate_key()
    cipher = TokenCipher([fernet_key, KEY_A])
    blob = cipher.encrypt("00Dxx!text-access-token")
    assert "text-access-token" not in blob
    assert cipher.decrypt(blob) == b"00Dxx!text-access-token"
    assert cipher.decrypt(blob.encode("ascii")) == b"00Dxx!text-access-token"
    assert single.decrypt(single.encrypt(b"x")) == b"x"
    # No context is its own context: a record-bound value does not open without it.
    bound = cipher.encrypt(b"bound", context="org:alice")
    with pytest.raises(StorageError, match="another record"):
        cipher.decrypt(bound)
    # Non-ASCII bytes are not a ciphertext: a typed error, not a UnicodeDecodeError.
    with pytest.raises(StorageError, match="not a sfoauth ciphertext"):
        cipher.decrypt("sfo1.é.x".encode())


def test_rotate_is_multifernet_rotate():
    old = TokenCipher([KEY_A])
    blob = old.encrypt(b"refresh", context="c")
    both = TokenCipher([KEY_B, KEY_A])
    rotated = both.rotate(blob, context="c")
    assert both.key_id_of(rotated) == TokenCipher([KEY_B]).primary_key_id
    assert both.rotate(rotated, context="c") == rotated  # idempotent
    assert TokenCipher([KEY_B]).decrypt(rotated, context="c") == b"refresh"
