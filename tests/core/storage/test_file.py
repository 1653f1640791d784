"""The encrypted file store (the ``sfoauth`` command's): files written by earlier versions
still load, 0600/0700 and opacity, key rotation and bad keys, atomic writes, OS file
locks shared with other processes, no lost update between processes, and the details
kept beside each record. The TokenStore contract itself runs in test_contract.py."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.storage import CIPHER_KEY, make_token

from sfoauth_core.exceptions import ConfigurationError, StorageError
from sfoauth_core.storage import (
    FileTokenStore,
    TokenCipher,
    TokenStore,
    VersionConflictError,
)
from sfoauth_core.storage.file import STORE_CONTEXT

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "cfg" / "tokens.json.enc"


def legacy_file(path: Path, key: str, connections: dict) -> None:
    """A token file as sfoauth wrote it before the store kept records."""
    path.parent.mkdir(mode=0o700, parents=True)
    doc = {"version": 1, "connections": connections}
    blob = TokenCipher(key).encrypt(json.dumps(doc).encode(), context=STORE_CONTEXT)
    path.write_text(blob + "\n", encoding="ascii")
    os.chmod(path, 0o600)


def plain(path: Path, key: str) -> dict:
    return json.loads(
        TokenCipher(key).decrypt(path.read_text().strip(), context=STORE_CONTEXT)
    )


def test_is_a_token_store(path):
    assert isinstance(FileTokenStore(path), TokenStore)
    assert repr(FileTokenStore(path)) == f"FileTokenStore({str(path)!r})"


def test_a_file_written_before_records_loads_and_keeps_its_details(path):
    token = make_token(1)
    jwt = make_token(2, refresh_token=None)
    legacy_file(
        path,
        CIPHER_KEY,
        {
            "jane@acme.com": {
                "username": "jane@acme.com",
                "org_id": "00DXX0000001abcEAA",
                "flow": "web_server",
                "client_id": "3MVG9web",
                "login_url": "https://login.salesforce.com",
                "allow_loopback": False,
                "scopes": ["api", "refresh_token"],
                "saved_at": 1767229200.5,
                "token": token.to_dict(),
            },
            "int": {
                "username": "int@acme.com",
                "flow": "jwt_bearer",
                "client_id": "3MVG9jwt",
                "login_url": "https://login.salesforce.com",
                "saved_at": 1767229201.0,
                "token": jwt.to_dict(),
            },
        },
    )
    store = FileTokenStore(path, environ={"SFOAUTH_TOKEN_KEY": CIPHER_KEY})
    record = store.get("jane@acme.com")
    assert record is not None and record.token == token
    assert (record.version, record.grant, record.username, record.status) == (
        1,
        "authorization_code",
        None,
        "active",
    )
    assert record.updated_at == 1767229200.5
    minted = store.get("int")
    assert minted is not None
    assert (minted.grant, minted.username, minted.is_minted) == (
        "jwt_bearer",
        "int@acme.com",
        True,
    )
    assert store.keys() == ["int", "jane@acme.com"]
    assert store.details("jane@acme.com") == {
        "username": "jane@acme.com",
        "org_id": "00DXX0000001abcEAA",
        "flow": "web_server",
        "client_id": "3MVG9web",
        "login_url": "https://login.salesforce.com",
        "allow_loopback": False,
        "scopes": ["api", "refresh_token"],
    }

    # A refresh through the store: compare-and-swap on the legacy record's version.
    newer = make_token(3)
    saved = store.save("jane@acme.com", newer, expected_version=1)
    assert (saved.version, saved.grant) == (2, "authorization_code")
    with pytest.raises(VersionConflictError):
        store.save("jane@acme.com", make_token(4), expected_version=1)
    entry = plain(path, CIPHER_KEY)["connections"]["jane@acme.com"]
    # Earlier versions read "token", "client_id", "login_url" and "saved_at": still there.
    assert entry["token"] == newer.to_dict()
    assert entry["client_id"] == "3MVG9web" and entry["flow"] == "web_server"
    assert entry["saved_at"] == saved.updated_at
    assert entry["record"]["version"] == 2
    assert "token" not in entry["record"]


def test_files_are_private_and_opaque(path):
    store = FileTokenStore(path, environ={})
    token = make_token(1)
    store.save("jane@acme.com", token)
    store.set_details("jane@acme.com", {"login_url": "https://acme.my.salesforce.com"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    raw = path.read_bytes()
    assert raw.startswith(b"sfo1.")
    for secret in (token.access_token, token.refresh_token or "", "jane", "acme"):
        assert secret[:12].encode() not in raw
    assert str(token.access_token) not in repr(store.get("jane@acme.com"))
    # Only the store's files are in the directory: no temporary file left behind.
    names = {p.name for p in path.parent.iterdir()}
    assert {n for n in names if not n.endswith(".lock")} == {
        "tokens.json.enc",
        "tokens.json.enc.key",
    }


def test_key_rotation_wrong_key_and_unsafe_key_file(path):
    old, new = TokenCipher.generate_key(), TokenCipher.generate_key()
    FileTokenStore(path, environ={"SFOAUTH_TOKEN_KEY": old}).save("a", make_token(1))
    assert not FileTokenStore(path).key_path.exists()
    rotating = FileTokenStore(path, environ={"SFOAUTH_TOKEN_KEY": f"{new}, {old}"})
    assert rotating.get("a") is not None
    rotating.save("b", make_token(2))  # the whole file is re-written under the new key
    assert FileTokenStore(path, environ={"SFOAUTH_TOKEN_KEY": new}).keys() == ["a", "b"]
    with pytest.raises(StorageError, match="not in SFOAUTH_TOKEN_KEY"):
        FileTokenStore(path, environ={"SFOAUTH_TOKEN_KEY": old}).get("a")
    with pytest.raises(StorageError, match="set SFOAUTH_TOKEN_KEY"):
        FileTokenStore(path, environ={}).get("a")  # no key file, no key

    other = path.with_name("other.enc")
    FileTokenStore(other, environ={}).save("a", make_token(1))
    key_file = other.with_name("other.enc.key")
    os.chmod(key_file, 0o644)
    with pytest.raises(ConfigurationError, match="readable by other users"):
        FileTokenStore(other, environ={}).get("a")


def test_a_corrupt_file_is_a_storage_error(path):
    store = FileTokenStore(path, environ={"SFOAUTH_TOKEN_KEY": CIPHER_KEY})
    path.parent.mkdir(parents=True)
    cipher = TokenCipher(CIPHER_KEY)
    for doc in (b"[]", b'{"connections": {"a": 3}}', b"not json"):
        path.write_text(cipher.encrypt(doc, context=STORE_CONTEXT))
        with pytest.raises(StorageError, match="corrupt"):
            store.get("a")
    path.write_text(
        cipher.encrypt(
            b'{"connections": {"a": {"token": {"x": 1}}}}', context=STORE_CONTEXT
        )
    )
    with pytest.raises(StorageError, match="malformed"):
        store.get("a")


def test_a_failed_write_leaves_the_old_file_whole(path, monkeypatch):
    store = FileTokenStore(path, environ={"SFOAUTH_TOKEN_KEY": CIPHER_KEY})
    first = make_token(1)
    store.save("a", first)
    before = path.read_bytes()

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(StorageError, match="No space left on device"):
        store.save("a", make_token(2))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert store.get("a").token == first  # type: ignore[union-attr]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_details_are_kept_across_saves_and_cannot_shadow_the_record(path):
    store = FileTokenStore(path, environ={"SFOAUTH_TOKEN_KEY": CIPHER_KEY})
    assert store.details("a") is None
    with pytest.raises(StorageError, match="no token is stored"):
        store.set_details("a", {"client_id": "x"})
    store.save("a", make_token(1))
    store.set_details("a", {"client_id": "3MVG9", "scopes": ["api"]})
    store.save("a", make_token(2), expected_version=1)
    store.mark_needs_reauth("a", "invalid_grant", expected_version=2)
    assert store.details("a") == {"client_id": "3MVG9", "scopes": ["api"]}
    assert store.get("a").needs_reauth  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="token"):
        store.set_details("a", {"token": {}})
    store.delete("a")
    assert store.details("a") is None and store.keys() == []


def _child(code: str, path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SFOAUTH_TOKEN_KEY": CIPHER_KEY}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), str(path)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_lock_is_shared_with_other_processes_and_dies_with_them(path):
    holder = _child(
        """
        import sys
        from sfoauth_core.storage import FileTokenStore
        with FileTokenStore(sys.argv[1]).lock("k"):
            print("held", flush=True)
            sys.stdin.readline()
        """,
        path,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        store = FileTokenStore(path, lock_wait=0.2)
        with pytest.raises(StorageError, match="timed out waiting for the token lock"):
            with store.lock("k"):
                pass
        with store.lock("other"):  # another key: not serialised
            pass
    finally:
        holder.kill()  # dies holding the lock: the OS releases it
        holder.communicate()
    with FileTokenStore(path, lock_wait=5).lock("k"):
        pass


def test_processes_writing_at_once_lose_nothing(path):
    code = """
        import sys, uuid
        from sfoauth_core.storage import FileTokenStore
        from sfoauth_core.tokens import Token
        store = FileTokenStore(sys.argv[1])
        name = sys.stdin.readline().strip()
        for n in range(15):
            token = Token(access_token=f"00D!{uuid.uuid4().hex}")
            store.save(f"{name}-{n}", token)
        print("done", flush=True)
        """
    children = [_child(code, path) for _ in range(3)]
    for number, child in enumerate(children):
        assert child.stdin is not None
        child.stdin.write(f"p{number}\n")
        child.stdin.flush()
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert out == "done\n"
    store = FileTokenStore(path, environ={"SFOAUTH_TOKEN_KEY": CIPHER_KEY})
    assert len(store.keys()) == 45


def test_idle_keys_lists_refreshable_connections_oldest_first(path):
    store = FileTokenStore(path, environ={"SFOAUTH_TOKEN_KEY": CIPHER_KEY})
    store.save("old", make_token(1))
    store.save("older", make_token(2))
    store.save("minted", make_token(3, refresh_token=None), grant="jwt_bearer")
    store.save("flagged", make_token(4))
    store.mark_needs_reauth("flagged", "invalid_grant")
    store.save("no-refresh", make_token(5, refresh_token=None))
    stamps = {"old": 1000.0, "older": 500.0, "minted": 10.0, "no-refresh": 10.0}

    def stamped(connections: dict) -> None:
        # When each refresh token was last used (refreshed_at; updated_at for files
        # written before it was kept).
        for key, when in {**stamps, "flagged": 10.0}.items():
            connections[key]["record"]["refreshed_at"] = when
            connections[key]["record"]["updated_at"] = when

    store._update(stamped)
    assert store.idle_keys(idle_since=2000.0) == ["older", "old"]
    assert store.idle_keys(idle_since=2000.0, limit=1) == ["older"]
    assert store.idle_keys(idle_since=800.0) == ["older"]
    assert store.idle_keys(idle_since=100.0) == []
