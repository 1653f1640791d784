"""Issue 12 item 4: setting up JWT bearer, the replacement of the username-password
flow: a key pair and certificate that Salesforce (the emulator) accepts."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from sfoauth_core import SalesforceOAuth
from sfoauth_core.exceptions import ConfigurationError
from sfoauth_core.jwt_setup import (
    generate_jwt_key_pair,
    jwt_setup_steps,
    write_jwt_key_pair,
)
from sfoauth_core.testing import SalesforceEmulator


def test_the_generated_certificate_works_for_jwt_bearer(tmp_path: Path) -> None:
    pair = generate_jwt_key_pair(common_name="billing-sync")
    key_path, cert_path = write_jwt_key_pair(pair, tmp_path / "jwt")
    emu = SalesforceEmulator()
    emu.upload_certificate("jwt", cert_path.read_text())  # what the admin does
    app = emu.connected_app("jwt", private_key=key_path.read_text())
    with SalesforceOAuth(
        app, http_client=httpx.Client(transport=emu.transport())
    ) as sf:
        token = sf.jwt_bearer()
    assert token.access_token and token.user_id


def test_certificate_fields() -> None:
    pair = generate_jwt_key_pair(common_name="billing-sync", days=30)
    cert = x509.load_pem_x509_certificate(pair.certificate_pem.encode())
    assert cert.subject.rfc4514_string() == "CN=billing-sync"
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha256"
    assert cert.public_key().key_size == 2048  # type: ignore[union-attr]
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days in (29, 30)
    assert pair.not_after == cert.not_valid_after_utc
    assert len(pair.fingerprint.split(":")) == 32


def test_the_key_never_shows_in_repr_or_steps(tmp_path: Path) -> None:
    pair = generate_jwt_key_pair()
    key_path, cert_path = write_jwt_key_pair(pair, tmp_path)
    steps = jwt_setup_steps(
        pair,
        key_path=key_path,
        cert_path=cert_path,
        client_id="3MVG9abc",
        username="int@acme.com",
        login_url="https://acme.my.salesforce.com",
    )
    body = pair.private_key_pem.splitlines()[1]
    assert body not in repr(pair) and body not in steps
    assert "SFOAUTH_PRIVATE_KEY_FILE=" + str(key_path) in steps
    assert "sfoauth login jwt --client-id 3MVG9abc --username int@acme.com" in steps
    assert "Admin approved users are pre-authorized" in steps
    assert pair.fingerprint in steps


def test_the_key_file_is_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    pair = generate_jwt_key_pair()
    key_path, _ = write_jwt_key_pair(pair, tmp_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    before = key_path.read_text()
    with pytest.raises(ConfigurationError, match="already has"):
        write_jwt_key_pair(generate_jwt_key_pair(), tmp_path)
    assert key_path.read_text() == before  # the key the app trusts today survives
    key_path.chmod(0o644)
    write_jwt_key_pair(pair, tmp_path, overwrite=True)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"key_size": 1024}, "key_size"),
        ({"days": 0}, "days"),
        ({"common_name": "  "}, "common_name"),
    ],
)
def test_bad_arguments_are_typed_errors(
    kwargs: dict[str, object], setting: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        generate_jwt_key_pair(**kwargs)  # type: ignore[arg-type]
    assert info.value.setting == setting
